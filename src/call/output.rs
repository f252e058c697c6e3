//! The output pacer: agent audio -> 8 kHz mu-law -> whole 20 ms frames sent on a clock.
//!
//! Twilio plays what we send in order and buffers the rest. Sending everything at once would make
//! `clear` the only way to stop talking and would make marks meaningless, so we keep only a small
//! lead (`lead_frames`) ahead of real time. One resampler per stream (not per chunk) so clause
//! boundaries leave no clicks. After each clause we send a `mark`: Twilio echoes it when that
//! audio has been played, which is how the session knows what the caller actually heard.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::recording::Recording;
use super::speech::SpeechBoard;
use super::turn::EchoGuard;
use crate::audio::vad::{frame_dbfs, AUDIBLE_DBFS};

use crate::audio::{mulaw, resample::StreamResampler, FRAME_SAMPLES, TWILIO_RATE};
use crate::twilio::media::OutboundMessage;

const FRAME: Duration = Duration::from_millis(20);

/// What the session asks the pacer to do.
#[derive(Debug)]
pub enum OutputCommand {
    /// One synthesised clause of an agent utterance, at the voice's sample rate. Sent as soon
    /// as it is ready: the pacer does not wait to know whether more clauses follow.
    Clause {
        speech_id: u64,
        clause_index: u32,
        samples: Vec<f32>,
        sample_rate: u32,
        /// The utterance's token: once cancelled, none of its frames leave (stale audio).
        cancel: CancellationToken,
    },
    /// The utterance is complete: flush the resampler tail, pad to a whole frame and send the
    /// utterance's final mark ([`end_mark_name`]), which Twilio echoes once all of it was played.
    EndSpeech { speech_id: u64 },
    /// Drop the audio of cancelled utterances (barge-in, priority lane) and send Twilio `clear`
    /// when that is safe: audio that must be heard (the disclosure, the goodbye, an opt-out
    /// confirmation) is never dropped, and `clear` would drop Twilio's whole buffer, so while such
    /// audio is in it the few cancelled frames behind it (at most the lead) play out instead.
    Clear,
}

/// What the pacer reports back.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputEvent {
    /// The first audible frame of an utterance left for Twilio; `plays_at` is when the caller
    /// hears it (the pacer's clock), not when it was sent: frames go out a lead ahead, a reply
    /// queued behind other audio plays later, and Piper opens each clause with near-silence.
    FirstAudible { speech_id: u64, plays_at: Instant },
    /// A mark named `name` was sent after the clause's last frame.
    MarkSent { name: String },
    /// The outbound WebSocket is gone.
    Closed,
}

/// The mark name for a clause; parsed back by [`parse_mark`].
pub fn mark_name(speech_id: u64, clause_index: u32) -> String {
    format!("s{speech_id}c{clause_index}")
}

/// The mark that follows an utterance's last audio.
pub fn end_mark_name(speech_id: u64) -> String {
    format!("s{speech_id}end")
}

/// The speech id of an utterance's end mark.
pub fn parse_end_mark(name: &str) -> Option<u64> {
    name.strip_prefix('s')?.strip_suffix("end")?.parse().ok()
}

/// `(speech_id, clause_index)` from a clause mark we sent.
pub fn parse_mark(name: &str) -> Option<(u64, u32)> {
    let rest = name.strip_prefix('s')?;
    let (s, c) = rest.split_once('c')?;
    Some((s.parse().ok()?, c.parse().ok()?))
}

enum Queued {
    Frame {
        speech_id: u64,
        clause_index: u32,
        /// Position of this frame in its clause, and the clause's frame count.
        position: (u32, u32),
        payload: Vec<u8>,
        level_db: f32,
        cancel: CancellationToken,
    },
    Mark {
        name: String,
        cancel: CancellationToken,
    },
}

impl Queued {
    fn cancelled(&self) -> bool {
        match self {
            Queued::Frame { cancel, .. } | Queued::Mark { cancel, .. } => cancel.is_cancelled(),
        }
    }
}

/// Runs the pacer until the command channel closes. `lead_frames` is how far ahead of real
/// time we may be. With `echo`, every frame's expected play time and level is recorded so the
/// inbound side can tell our own voice leaking back from the caller. With `recording`, every
/// frame goes to the call's recording at its play time, and what a `clear` drops is taken out.
#[allow(clippy::too_many_arguments)]
pub async fn run_pacer(
    stream_sid: String,
    mut commands: mpsc::Receiver<OutputCommand>,
    ws_out: mpsc::Sender<String>,
    events: mpsc::UnboundedSender<OutputEvent>,
    lead_frames: u32,
    echo: Option<(Arc<Mutex<EchoGuard>>, Instant)>,
    board: Option<SpeechBoard>,
    recording: Option<Recording>,
) {
    // Frames sent with their expected play time: on `clear`, the one playing tells how much of
    // its clause the caller heard, and those still buffered at Twilio whether `clear` is safe.
    let mut sent_log: VecDeque<Sent> = VecDeque::new();
    let mut queue: VecDeque<Queued> = VecDeque::new();
    let mut resampler: Option<(u32, StreamResampler)> = None;
    // 8 kHz samples not yet making up a whole frame.
    let mut partial: Vec<f32> = Vec::new();
    let mut started_speech: Option<u64> = None;
    // The utterance whose end is being flushed shares the last clause's token.
    let mut last_cancel = CancellationToken::new();
    let mut last_clause = 0u32;
    // Playback clock: when Twilio started playing our current run of audio, and frames sent since.
    let mut clock_start = Instant::now();
    let mut frames_sent: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut commands_open = true;

    loop {
        tokio::select! {
            biased;
            cmd = commands.recv(), if commands_open => match cmd {
                None => commands_open = false,
                Some(OutputCommand::Clear) => {
                    let now = Instant::now();
                    let playing = sent_log.iter().rev().find(|e| e.play_at <= now);
                    if let (Some(board), Some(e)) = (&board, playing) {
                        if e.cancel.is_cancelled() {
                            let (pos, total) = e.position;
                            board.cut_at(e.speech_id, e.clause, (pos + 1) as f32 / total.max(1) as f32);
                        }
                    }
                    queue.retain(|q| !q.cancelled());
                    if last_cancel.is_cancelled() {
                        partial.clear();
                        if let Some((_, r)) = resampler.as_mut() {
                            r.reset();
                        }
                    }
                    if started_speech.is_some_and(|id| !queue.iter().any(|q| q.speech_id() == Some(id))) {
                        started_speech = None;
                    }
                    // Still in Twilio's buffer (or playing): must-hear audio keeps it.
                    let must_hear = sent_log
                        .iter()
                        .any(|e| e.play_at + FRAME > now && !e.cancel.is_cancelled());
                    if must_hear {
                        continue;
                    }
                    sent_log.clear();
                    if let Some((guard, t0)) = &echo {
                        if let Ok(mut g) = guard.lock() {
                            g.cut(now.saturating_duration_since(*t0).as_millis() as u64);
                        }
                    }
                    let msg = OutboundMessage::clear(&stream_sid).to_json();
                    if ws_out.send(msg).await.is_err() {
                        let _ = events.send(OutputEvent::Closed);
                        return;
                    }
                    if let Some(r) = &recording {
                        r.unplayed_from(now);
                    }
                    // Twilio's buffer is empty again: restart the clock.
                    frames_sent = 0;
                    clock_start = Instant::now();
                }
                Some(OutputCommand::Clause { speech_id, clause_index, samples, sample_rate, cancel }) => {
                    if cancel.is_cancelled() {
                        continue;
                    }
                    last_cancel = cancel.clone();
                    let r = match resampler.as_mut() {
                        Some((rate, r)) if *rate == sample_rate => r,
                        _ => match StreamResampler::new(sample_rate, TWILIO_RATE) {
                            Ok(r) => &mut resampler.insert((sample_rate, r)).1,
                            Err(e) => {
                                tracing::error!(error = %e, sample_rate, "cannot resample agent audio");
                                continue;
                            }
                        },
                    };
                    partial.extend(r.process(&samples));
                    queue_frames(&mut queue, &mut partial, speech_id, clause_index, &cancel);
                    queue.push_back(Queued::Mark { name: mark_name(speech_id, clause_index), cancel });
                    last_clause = clause_index;
                }
                Some(OutputCommand::EndSpeech { speech_id }) => {
                    if let Some((_, r)) = resampler.as_mut() {
                        partial.extend(r.flush());
                    }
                    let rem = partial.len() % FRAME_SAMPLES;
                    if rem != 0 {
                        partial.resize(partial.len() + FRAME_SAMPLES - rem, 0.0);
                    }
                    if last_cancel.is_cancelled() {
                        partial.clear();
                        continue;
                    }
                    queue_frames(&mut queue, &mut partial, speech_id, last_clause, &last_cancel);
                    queue.push_back(Queued::Mark { name: end_mark_name(speech_id), cancel: last_cancel.clone() });
                }
            },
            _ = tick.tick() => {
                if queue.is_empty() {
                    if !commands_open {
                        return;
                    }
                    continue;
                }
                let now = Instant::now();
                let played = (now.saturating_duration_since(clock_start).as_millis() / FRAME.as_millis()) as u64;
                if frames_sent <= played {
                    // Twilio ran dry (or we never started): the clock restarts with this frame.
                    clock_start = now;
                    frames_sent = 0;
                }
                let played = (now.saturating_duration_since(clock_start).as_millis() / FRAME.as_millis()) as u64;
                while frames_sent < played + lead_frames as u64 {
                    let Some(item) = queue.pop_front() else { break };
                    if item.cancelled() {
                        continue;
                    }
                    let msg = match item {
                        Queued::Frame { speech_id, clause_index, position, payload, level_db, cancel } => {
                            let play_at = clock_start + FRAME * frames_sent as u32;
                            sent_log.push_back(Sent { speech_id, clause: clause_index, position, play_at, cancel });
                            while sent_log.len() > 200 {
                                sent_log.pop_front();
                            }
                            if let Some((guard, t0)) = &echo {
                                let start_ms = play_at.saturating_duration_since(*t0).as_millis() as u64;
                                if let Ok(mut g) = guard.lock() {
                                    g.record_outbound(start_ms, start_ms + 20, level_db);
                                }
                            }
                            if let Some(r) = &recording {
                                r.agent(play_at, &payload);
                            }
                            if started_speech != Some(speech_id) && level_db > AUDIBLE_DBFS {
                                started_speech = Some(speech_id);
                                let _ = events.send(OutputEvent::FirstAudible { speech_id, plays_at: play_at });
                            }
                            frames_sent += 1;
                            OutboundMessage::media(&stream_sid, &payload).to_json()
                        }
                        Queued::Mark { name, .. } => {
                            let _ = events.send(OutputEvent::MarkSent { name: name.clone() });
                            OutboundMessage::mark(&stream_sid, &name).to_json()
                        }
                    };
                    if ws_out.send(msg).await.is_err() {
                        let _ = events.send(OutputEvent::Closed);
                        return;
                    }
                }
            }
        }
    }
}

/// A frame sent to Twilio, with when it plays.
struct Sent {
    speech_id: u64,
    clause: u32,
    /// Position in its clause, and the clause's frame count.
    position: (u32, u32),
    play_at: Instant,
    cancel: CancellationToken,
}

impl Queued {
    fn speech_id(&self) -> Option<u64> {
        match self {
            Queued::Frame { speech_id, .. } => Some(*speech_id),
            Queued::Mark { .. } => None,
        }
    }
}

/// Moves the whole frames of `partial` into the queue as mu-law.
fn queue_frames(
    queue: &mut VecDeque<Queued>,
    partial: &mut Vec<f32>,
    speech_id: u64,
    clause_index: u32,
    cancel: &CancellationToken,
) {
    let whole = partial.len() - partial.len() % FRAME_SAMPLES;
    let total = (whole / FRAME_SAMPLES) as u32;
    for (i, chunk) in partial[..whole].chunks(FRAME_SAMPLES).enumerate() {
        let pcm = crate::audio::f32_to_i16(chunk);
        queue.push_back(Queued::Frame {
            speech_id,
            clause_index,
            position: (i as u32, total),
            level_db: frame_dbfs(&pcm),
            payload: mulaw::encode(&pcm),
            cancel: cancel.clone(),
        });
    }
    partial.drain(..whole);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_names_round_trip() {
        assert_eq!(parse_mark(&mark_name(7, 3)), Some((7, 3)));
        assert_eq!(parse_mark("other"), None);
        assert_eq!(parse_mark("sXc1"), None);
    }
}
