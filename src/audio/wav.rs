//! WAV (16-bit PCM): in memory, mono, for what we serve Twilio's `<Play>` (the warm transfer's
//! whisper, the no-answer line), rendered by our own TTS since the box is on-prem; and the
//! header of a call recording (stereo), which is written to disk piece by piece after it.

/// The 44-byte `RIFF`/`WAVE` header: one `fmt ` chunk (PCM, 16 bits) and the start of a `data`
/// chunk of `samples` samples (all channels together) that follow it.
pub fn header(channels: u16, sample_rate: u32, samples: usize) -> [u8; 44] {
    let data_len = (samples * 2) as u32;
    let block = channels * 2;
    let mut out = [0u8; 44];
    let fields: [&[u8]; 12] = [
        b"RIFF",
        &(36 + data_len).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(), // PCM
        &channels.to_le_bytes(),
        &sample_rate.to_le_bytes(),
        &(sample_rate * block as u32).to_le_bytes(), // bytes per second
        &block.to_le_bytes(),                        // block align
        &16u16.to_le_bytes(),
        b"data",
        &data_len.to_le_bytes(),
    ];
    let mut at = 0;
    for f in fields {
        out[at..at + f.len()].copy_from_slice(f);
        at += f.len();
    }
    out
}

/// A mono WAV in memory.
pub fn pcm16(pcm: &[i16], sample_rate: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(&header(1, sample_rate, pcm.len()));
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_and_samples_read_back() {
        let wav = super::pcm16(&[0, 1, -1, i16::MAX], 8000);
        assert_eq!(wav.len(), 44 + 8);
        let mut r = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 8000, 16)
        );
        let samples: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(samples, vec![0, 1, -1, i16::MAX]);
    }

    #[test]
    fn a_stereo_header_reads_back() {
        let mut wav = super::header(2, 8000, 4).to_vec();
        for s in [1i16, -1, 2, -2] {
            wav.extend_from_slice(&s.to_le_bytes());
        }
        let mut r = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(r.duration(), 2);
        let samples: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(samples, vec![1, -1, 2, -2]);
    }
}
