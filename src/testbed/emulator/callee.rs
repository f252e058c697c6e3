//! The callee on the line: a persona's audio prepared before the call is answered, and the
//! steps the simulated caller plays on the media stream (a person's lines, a machine's greeting
//! and beep, a fax's tones).

use std::sync::Arc;
use std::time::Duration;

use super::{CallerLine, Persona, Shared, BEEP, VOICEMAIL_MAX};
use crate::testbed::sim::{CallerStep, SimReport};
use crate::testbed::voice::{self, Voice, VoiceError};

/// A human answers the agent's turn once it has been quiet this long (unless told otherwise).
const TURN_QUIET: Duration = Duration::from_millis(800);
const TURN_MAX: Duration = Duration::from_secs(30);
/// A silence this short between two lines is a pause mid-turn; a longer one ends the turn.
const MID_TURN_PAUSE: Duration = Duration::from_secs(3);

/// The persona's audio, ready before the call is answered.
pub(super) enum Prepared {
    Nothing,
    Human(Vec<Line>),
    Machine { greeting: Arc<Vec<i16>> },
    Fax,
}

/// A human's line with its audio rendered; settings that only shape audio are gone.
pub(super) enum Line {
    Say { pcm: Arc<Vec<i16>>, text: String },
    Silence(Duration),
    Key(char),
    HangUp,
    Over(Duration),
    HangUpAfter(Duration),
    Raw(String),
    Binary,
    Noise(Option<f32>),
    Patience(Duration),
}

/// What the next spoken line waits for.
#[derive(Clone, Copy)]
enum Cue {
    /// The agent spoke and then was quiet (a new turn).
    Agent,
    /// Nothing: right after a silence.
    Now,
    /// The agent started talking this long ago (a new turn, over the agent).
    Over(Duration),
}

/// The callee's side of the stream, and whether what was heard must be trimmed to after the
/// caller's first utterance (a machine's greeting and beep).
pub(super) fn caller_steps(prepared: &Prepared, skip_greeting: bool) -> (Vec<CallerStep>, bool) {
    match prepared {
        Prepared::Human(lines) => (human_steps(lines), false),
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
        Prepared::Nothing => (vec![wait(TURN_QUIET)], false),
    }
}

fn wait(quiet: Duration) -> CallerStep {
    CallerStep::WaitForAgent {
        quiet,
        max: TURN_MAX,
    }
}

/// A person's lines as steps. Every spoken line or key after a wait (for the agent to finish,
/// or to start, with `[over]`) opens a turn; a line after a short silence that follows a line
/// continues it (a pause mid-sentence).
fn human_steps(lines: &[Line]) -> Vec<CallerStep> {
    let mut steps = Vec::new();
    let mut cue = Cue::Agent;
    let mut quiet = TURN_QUIET;
    let mut hang_up_after: Option<Duration> = None;
    // The previous step was a line or a short pause after one: a line now continues the turn.
    let mut mid_turn = false;
    fn open_turn(steps: &mut Vec<CallerStep>, cue: Cue, quiet: Duration, mid: bool, label: &str) {
        match cue {
            Cue::Agent => steps.push(wait(quiet)),
            Cue::Over(after) => steps.push(CallerStep::Over {
                after,
                max: TURN_MAX,
            }),
            Cue::Now if mid => return,
            Cue::Now => {}
        }
        steps.push(CallerStep::Turn(label.to_string()));
    }
    for line in lines {
        match line {
            Line::Say { pcm, text } => {
                open_turn(&mut steps, cue, quiet, mid_turn, text);
                match hang_up_after {
                    Some(d) => {
                        let n = ((d.as_millis() * 8) as usize).min(pcm.len());
                        steps.push(CallerStep::Say(pcm[..n].to_vec()));
                        return steps;
                    }
                    None => steps.push(CallerStep::Say(pcm.as_ref().clone())),
                }
                cue = Cue::Agent;
                mid_turn = true;
            }
            Line::Key(k) => {
                open_turn(&mut steps, cue, quiet, false, &format!("[key {k}]"));
                steps.push(CallerStep::Dtmf(*k));
                cue = Cue::Agent;
                mid_turn = false;
            }
            Line::Silence(d) => {
                steps.push(CallerStep::Silence(*d));
                cue = Cue::Now;
                mid_turn = mid_turn && *d <= MID_TURN_PAUSE;
            }
            Line::Over(d) => cue = Cue::Over(*d),
            Line::HangUpAfter(d) => hang_up_after = Some(*d),
            Line::HangUp => return steps,
            Line::Raw(text) => steps.push(CallerStep::SendRaw(text.clone())),
            Line::Binary => steps.push(CallerStep::SendBinary(vec![0xde, 0xad, 0xbe, 0xef])),
            Line::Noise(level) => steps.push(CallerStep::Noise(*level)),
            Line::Patience(d) => quiet = *d,
        }
    }
    if let Some(d) = hang_up_after {
        // Nothing left to say: hang up after that long.
        steps.push(CallerStep::Silence(d));
        return steps;
    }
    steps.push(wait(quiet));
    steps
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
            let mut voice = Voice::Tts;
            for line in lines {
                out.push(match line {
                    CallerLine::Say(text) => Line::Say {
                        pcm: speech(&shared, &voice, &text).await?,
                        text,
                    },
                    CallerLine::Mumble(d) => Line::Say {
                        pcm: Arc::new(voice::mumble(d)),
                        text: format!("[mumble {:.1}s]", d.as_secs_f32()),
                    },
                    CallerLine::Voice(v) => {
                        voice = v;
                        continue;
                    }
                    CallerLine::Silence(d) => Line::Silence(d),
                    CallerLine::Key(k) => Line::Key(k),
                    CallerLine::HangUp => Line::HangUp,
                    CallerLine::Over(d) => Line::Over(d),
                    CallerLine::HangUpAfter(d) => Line::HangUpAfter(d),
                    CallerLine::Raw(t) => Line::Raw(t),
                    CallerLine::Binary => Line::Binary,
                    CallerLine::Noise(n) => Line::Noise(n),
                    CallerLine::Patience(d) => Line::Patience(d),
                });
            }
            Prepared::Human(out)
        }
        Persona::Machine { greeting } => {
            let greeting = if shared.config.tts.is_some() {
                speech(&shared, &Voice::Tts, &greeting).await?
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

/// One line of speech at 8 kHz in a voice, from the cache or rendered. Without espeak-ng the
/// configured TTS speaks instead (with a warning): a rehearsal still runs, less realistically.
async fn speech(shared: &Shared, voice: &Voice, text: &str) -> Result<Arc<Vec<i16>>, String> {
    let key = match voice {
        Voice::Tts => text.to_string(),
        Voice::Espeak { name, wpm } => format!("espeak:{name}:{wpm}:{text}"),
    };
    let cached = shared
        .speech_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    if let Some(pcm) = cached {
        return Ok(pcm);
    }
    let rendered = match voice {
        Voice::Tts => None,
        Voice::Espeak { name, wpm } => {
            let (t, n, w) = (text.to_string(), name.clone(), *wpm);
            match tokio::task::spawn_blocking(move || voice::espeak(&t, &n, w)).await {
                Ok(Ok(pcm)) => Some(pcm),
                Ok(Err(VoiceError::NotInstalled)) => {
                    tracing::warn!("espeak-ng is not installed: the caller speaks with the TTS");
                    None
                }
                Ok(Err(e)) => return Err(e.to_string()),
                Err(e) => return Err(format!("espeak-ng task: {e}")),
            }
        }
    };
    let pcm = match rendered {
        Some(pcm) => pcm,
        None => tts_speech(shared, text).await?,
    };
    let pcm = Arc::new(pcm);
    shared
        .speech_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, pcm.clone());
    Ok(pcm)
}

async fn tts_speech(shared: &Shared, text: &str) -> Result<Vec<i16>, String> {
    let tts = shared
        .config
        .tts
        .clone()
        .ok_or_else(|| format!("no tts configured to say {text:?}"))?;
    let audio = tts
        .synthesize(text.to_string(), shared.root.child_token())
        .await
        .map_err(|e| format!("tts failed on {text:?}: {e}"))?;
    crate::audio::to_phone_pcm(&audio.samples, audio.sample_rate)
        .map_err(|e| format!("resampling tts audio: {e}"))
}

#[cfg(test)]
mod tests;
