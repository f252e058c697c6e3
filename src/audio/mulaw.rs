//! ITU-T G.711 mu-law, the only encoding Twilio Media Streams carries.
//!
//! Decoding goes through a 256-entry table built at compile time (it runs for every inbound
//! byte of every call); encoding is a few integer operations, no table needed.

/// G.711's bias: added before the segment search so that every segment starts at a power of two.
const BIAS: i32 = 0x84;
/// Largest magnitude that still fits the top segment once the bias is added.
const CLIP: i32 = 32635;

/// The reference decoder, used only to build [`DECODE`] at compile time.
const fn decode_slow(code: u8) -> i16 {
    let u = !code;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn build_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = decode_slow(i as u8);
        i += 1;
    }
    t
}

static DECODE: [i16; 256] = build_table();

/// One mu-law byte -> linear 16-bit PCM (range +-32124).
#[inline]
pub fn decode_sample(code: u8) -> i16 {
    DECODE[code as usize]
}

/// Linear 16-bit PCM -> one mu-law byte (magnitudes above 32635 clip; zero encodes as 0xFF).
#[inline]
pub fn encode_sample(pcm: i16) -> u8 {
    let mut s = pcm as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(CLIP) + BIAS;
    // Exponent: position of the highest set bit above bit 7.
    let exponent = (31 - (s as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// A mu-law payload (a Twilio `media` message: 160 bytes per 20 ms) -> PCM.
pub fn decode(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| decode_sample(b)).collect()
}

/// PCM -> mu-law payload.
pub fn encode(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().map(|&s| encode_sample(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(decode_sample(0xFF), 0);
        assert_eq!(decode_sample(0x7F), 0);
        assert_eq!(decode_sample(0x00), -32124);
        assert_eq!(decode_sample(0x80), 32124);
        assert_eq!(encode_sample(0), 0xFF);
        assert_eq!(encode_sample(32767), 0x80);
        assert_eq!(encode_sample(-32768), 0x00);
        assert_eq!(decode(&[0xFF, 0x00, 0x80]), vec![0, -32124, 32124]);
        assert_eq!(encode(&[0, -32768, 32767]), vec![0xFF, 0x00, 0x80]);
        assert!(decode(&[]).is_empty() && encode(&[]).is_empty());
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            let back = encode_sample(decode_sample(code));
            if code == 0x7F {
                assert_eq!(back, 0xFF, "negative zero encodes as positive zero");
            } else {
                assert_eq!(back, code, "code {code:#x}");
            }
        }
    }

    #[test]
    fn encoding_is_monotonic() {
        let mut last = decode_sample(encode_sample(-32768));
        for s in (-32768i32..=32767).step_by(7) {
            let v = decode_sample(encode_sample(s as i16));
            assert!(v >= last, "not monotonic at {s}");
            last = v;
        }
    }

    #[test]
    fn sine_survives_with_telephone_snr() {
        let pcm: Vec<i16> = (0..8000)
            .map(|i| {
                (12000.0 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin()) as i16
            })
            .collect();
        let back = decode(&encode(&pcm));
        let signal: f64 = pcm.iter().map(|&s| (s as f64).powi(2)).sum();
        let noise: f64 = pcm
            .iter()
            .zip(&back)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum();
        let snr = 10.0 * (signal / noise).log10();
        assert!(snr > 30.0, "SNR {snr:.1} dB");
    }
}
