//! The callee on the line: a persona's audio prepared before the call is answered, and the
//! steps the simulated caller plays on the media stream (a person's lines, a machine's greeting
//! and beep, a fax's tones).

use std::sync::Arc;
use std::time::Duration;

use super::{CallerLine, Persona, Shared, BEEP, VOICEMAIL_MAX};
use crate::testbed::sim::{CallerStep, SimReport};

/// A human answers the agent's turn once it has been quiet this long.
const TURN_QUIET: Duration = Duration::from_millis(800);
const TURN_MAX: Duration = Duration::from_secs(30);

/// The persona's audio, ready before the call is answered.
pub(super) enum Prepared {
    Nothing,
    Human(Vec<Line>),
    Machine { greeting: Arc<Vec<i16>> },
    Fax,
}

pub(super) enum Line {
    Say(Arc<Vec<i16>>),
    Silence(Duration),
    Key(char),
    HangUp,
}

/// The callee's side of the stream, and whether what was heard must be trimmed to after the
/// caller's first utterance (a machine's greeting and beep).
pub(super) fn caller_steps(prepared: &Prepared, skip_greeting: bool) -> (Vec<CallerStep>, bool) {
    let wait = CallerStep::WaitForAgent {
        quiet: TURN_QUIET,
        max: TURN_MAX,
    };
    match prepared {
        Prepared::Human(lines) => {
            let mut steps = Vec::new();
            let mut after_silence = false;
            for line in lines {
                match line {
                    Line::Say(pcm) => {
                        if !after_silence {
                            steps.push(wait.clone());
                        }
                        steps.push(CallerStep::Say(pcm.as_ref().clone()));
                        after_silence = false;
                    }
                    Line::Key(k) => {
                        if !after_silence {
                            steps.push(wait.clone());
                        }
                        steps.push(CallerStep::Dtmf(*k));
                        after_silence = false;
                    }
                    Line::Silence(d) => {
                        steps.push(CallerStep::Silence(*d));
                        after_silence = true;
                    }
                    Line::HangUp => return (steps, false),
                }
            }
            steps.push(wait);
            (steps, false)
        }
        Prepared::Machine { greeting } => {
            let mut steps = Vec::new();
            let trim = !skip_greeting;
            if trim {
                let mut pcm = greeting.as_ref().clone();
                pcm.extend(tone(1000.0, BEEP, 0.5));
                steps.push(CallerStep::Say(pcm));
            }
            steps.push(CallerStep::Silence(VOICEMAIL_MAX));
            (steps, trim)
        }
        Prepared::Fax => {
            // CNG: 0.5 s of 1100 Hz every 3.5 s, a few times, then the fax gives up.
            let cng = tone(1100.0, Duration::from_millis(500), 0.5);
            let steps = (0..3)
                .flat_map(|_| {
                    [
                        CallerStep::Say(cng.clone()),
                        CallerStep::Silence(Duration::from_secs(3)),
                    ]
                })
                .collect();
            (steps, false)
        }
        Prepared::Nothing => (vec![wait], false),
    }
}

/// Drops (or cuts) heard stretches that started before `from_ms`.
pub(super) fn keep_heard_from(report: &mut SimReport, from_ms: u64) {
    report.heard.retain_mut(|h| {
        let end = h.start_ms + h.samples.len() as u64 / 8;
        if end <= from_ms {
            return false;
        }
        if h.start_ms < from_ms {
            let cut = (((from_ms - h.start_ms) * 8) as usize).min(h.samples.len());
            h.samples.drain(..cut);
            h.start_ms = from_ms;
        }
        true
    });
}

/// A sine tone at 8 kHz.
pub(super) fn tone(freq: f32, length: Duration, amplitude: f32) -> Vec<i16> {
    let n = (length.as_millis() * 8) as usize;
    (0..n)
        .map(|i| {
            let x = (2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin();
            (x * amplitude * 32767.0) as i16
        })
        .collect()
}

pub(super) fn pcm_duration(pcm: &[i16]) -> Duration {
    Duration::from_millis(pcm.len() as u64 / 8)
}

/// Synthesizes the persona's audio (8 kHz i16).
pub(super) async fn prepare(shared: Arc<Shared>, persona: Persona) -> Result<Prepared, String> {
    Ok(match persona {
        Persona::Human { lines } => {
            let mut out = Vec::with_capacity(lines.len());
            for line in lines {
                out.push(match line {
                    CallerLine::Say(text) => Line::Say(speech(&shared, &text).await?),
                    CallerLine::Silence(d) => Line::Silence(d),
                    CallerLine::Key(k) => Line::Key(k),
                    CallerLine::HangUp => Line::HangUp,
                });
            }
            Prepared::Human(out)
        }
        Persona::Machine { greeting } => {
            let greeting = if shared.config.tts.is_some() {
                speech(&shared, &greeting).await?
            } else {
                // Without a voice, a greeting is silence of about its spoken length.
                let ms = (greeting.chars().count() as u64 * 65).clamp(1000, 30_000);
                Arc::new(vec![0; (ms * 8) as usize])
            };
            Prepared::Machine { greeting }
        }
        Persona::Fax => Prepared::Fax,
        _ => Prepared::Nothing,
    })
}

/// One line of speech at 8 kHz, from the cache or the TTS.
async fn speech(shared: &Shared, text: &str) -> Result<Arc<Vec<i16>>, String> {
    let cached = shared
        .speech_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(text)
        .cloned();
    if let Some(pcm) = cached {
        return Ok(pcm);
    }
    let tts = shared
        .config
        .tts
        .clone()
        .ok_or_else(|| format!("no tts configured to say {text:?}"))?;
    let audio = tts
        .synthesize(text.to_string(), shared.root.child_token())
        .await
        .map_err(|e| format!("tts failed on {text:?}: {e}"))?;
    let pcm = Arc::new(
        crate::audio::to_phone_pcm(&audio.samples, audio.sample_rate)
            .map_err(|e| format!("resampling tts audio: {e}"))?,
    );
    shared
        .speech_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(text.to_string(), pcm.clone());
    Ok(pcm)
}
