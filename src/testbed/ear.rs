//! The caller's ear: what a person on the line understood of the agent, as words.
//!
//! Whisper reads each stretch of agent speech on its own ([`measure::speech_segments`]): a
//! whole call is longer than Whisper's 30 s window, and a small model stops early on long clips.
//! Phone audio (8 kHz) is resampled to the model's 16 kHz first.

use super::measure;
use crate::engine::{EngineError, SpeechToText};

/// Agent silences at least this long separate the stretches Whisper reads one by one.
const GAP_MS: u64 = 600;
const MAX_MS: u64 = 20_000;

/// Whisper's transcript of everything in a played track, stretch by stretch, joined by spaces.
pub async fn transcribe(
    stt: &dyn SpeechToText,
    agent_track: &[i16],
) -> Result<String, EngineError> {
    let mut parts = Vec::new();
    for range in measure::speech_segments(agent_track, GAP_MS, MAX_MS) {
        let narrow = crate::audio::i16_to_f32(&agent_track[range]);
        let wide = crate::audio::resample::resample_all(
            &narrow,
            crate::audio::TWILIO_RATE,
            crate::audio::STT_RATE,
        )
        .map_err(|e| EngineError::Inference {
            engine: "resampler",
            reason: e.to_string(),
        })?;
        let text = stt.transcribe(wide).await?.text;
        let text = text.trim();
        if !text.is_empty() {
            parts.push(text.to_string());
        }
    }
    Ok(parts.join(" "))
}
