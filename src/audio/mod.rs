//! The audio front end, pure and deterministic (no sockets, no clocks).
//!
//! Inbound: Twilio's 8 kHz mu-law, 20 ms frames -> [`mulaw::decode`] -> [`vad`] (WebRTC VAD and
//! the endpointer, both on 8 kHz frames) -> utterance -> [`resample`] 8k -> 16k for Whisper.
//! Outbound: the voice's rate (Piper: 22050 Hz) -> [`resample`] -> 8k -> [`mulaw::encode`] ->
//! 20 ms frames. Time is counted in samples, never read from a clock, so tests are exact.
//! A recorded call: both sides on one timeline ([`stereo`]), written as a WAV ([`wav`]).

pub mod mulaw;
pub mod resample;
pub mod stereo;
pub mod vad;
pub mod wav;

/// Twilio Media Streams' sample rate.
pub const TWILIO_RATE: u32 = 8000;
/// Samples in one 20 ms frame at 8 kHz (= mu-law bytes in one Twilio `media` message).
pub const FRAME_SAMPLES: usize = 160;
/// Twilio's frame length; also a frame length WebRTC VAD accepts.
pub const FRAME_MS: u32 = 20;
/// Whisper's input rate.
pub const STT_RATE: u32 = 16000;

/// Errors of the audio front end: bad configuration or bad frames, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot resample {from} Hz -> {to} Hz: {reason}")]
    Resampler { from: u32, to: u32, reason: String },
    #[error("VAD frames must be 10, 20 or 30 ms at 8 kHz (80/160/240 samples), got {0}")]
    FrameLength(usize),
    #[error("VAD aggressiveness must be 0-3, got {0}")]
    Aggressiveness(u8),
}

/// i16 PCM -> f32 in [-1, 1), the resampler's format.
pub fn i16_to_f32(pcm: &[i16]) -> Vec<f32> {
    pcm.iter().map(|&s| s as f32 / 32768.0).collect()
}

/// f32 -> i16 PCM, clamped (resampler overshoot must not wrap around).
pub fn f32_to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Any voice (a TTS clause, a WAV file) as 8 kHz i16 PCM: what a phone line carries.
pub fn to_phone_pcm(samples: &[f32], sample_rate: u32) -> Result<Vec<i16>, AudioError> {
    if sample_rate == TWILIO_RATE {
        return Ok(f32_to_i16(samples));
    }
    Ok(f32_to_i16(&resample::resample_all(
        samples,
        sample_rate,
        TWILIO_RATE,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_conversion_clamps() {
        assert_eq!(
            f32_to_i16(&[0.0, 1.5, -1.5, 0.5]),
            vec![0, 32767, -32768, 16384]
        );
        assert_eq!(i16_to_f32(&[-32768, 0]), vec![-1.0, 0.0]);
    }
}
