//! Measurement at the caller's ear: what a person on the line experiences after each of their
//! turns, read from the audio Twilio played to them, on their clock.
//!
//! Why audio and not our own timestamps: the server's idea of "first frame sent" says nothing of
//! what was heard (a pacer may pad with silent frames, Piper starts each clause with a breath of
//! silence, a `clear` drops what was queued). So a 20 ms frame counts as agent speech only above
//! [`LOUD_DBFS`], and every number here is computed from the played track alone. Pure.
//!
//! Clock: the simulated caller sends one frame per 20 ms tick; tick `n` is at `n * 20` ms. Caller
//! times are the tick of a line's last frame; agent frame `i` of the played track is tick `i + 1`.

use std::ops::Range;

use crate::audio::vad::{frame_dbfs, AUDIBLE_DBFS};
use crate::audio::FRAME_SAMPLES;
use crate::model::TurnPath;

/// A played frame is speech above this level (the server's own line: see [`AUDIBLE_DBFS`]).
pub const LOUD_DBFS: f32 = AUDIBLE_DBFS;
const FRAME_MS: u64 = 20;

/// Whether a 20 ms frame is audible speech (not silence padding).
pub fn is_loud(frame: &[i16]) -> bool {
    frame_dbfs(frame) > LOUD_DBFS
}

/// One caller turn: the lines said without waiting for the agent (a pause mid-turn included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnSpan {
    /// What was said (the scenario's text), for reports.
    pub label: String,
    /// First and last frame of the caller's audio (ms since the stream started).
    pub start_ms: u64,
    pub end_ms: u64,
}

/// What the caller experienced after one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnTiming {
    /// Index of the turn in the call (0-based).
    pub turn: usize,
    pub label: String,
    pub end_ms: u64,
    /// End of the caller's audio -> first audible agent frame; `None` when the agent said
    /// nothing before the caller's next turn (or the end of the call), or went on speaking.
    pub latency_ms: Option<u64>,
    /// The agent's line went on through the end of the turn (one that may not be cut, like the
    /// disclosure, or a backchannel that cut nothing): the caller waited for nothing, so the turn
    /// has no latency. The server's figure for its answer counts the rest of that line.
    pub over_line: bool,
    /// The longest silence the caller sat through waiting for the agent after this turn: the
    /// latency, or a gap inside the agent's answer, or the whole wait when nothing came.
    pub dead_air_ms: u64,
}

/// Milliseconds (tick times) of the audible frames of a played track.
pub fn loud_times(agent_track: &[i16]) -> Vec<u64> {
    agent_track
        .chunks(FRAME_SAMPLES)
        .enumerate()
        .filter(|(_, f)| is_loud(f))
        .map(|(i, _)| (i as u64 + 1) * FRAME_MS)
        .collect()
}

/// Length of a played track in ms (its last tick).
pub fn track_ms(agent_track: &[i16]) -> u64 {
    agent_track.len().div_ceil(FRAME_SAMPLES) as u64 * FRAME_MS
}

/// The first audible agent frame at or after `from_ms`.
pub fn first_loud_after(loud: &[u64], from_ms: u64) -> Option<u64> {
    let i = loud.partition_point(|&t| t < from_ms);
    loud.get(i).copied()
}

/// Latency and dead air after each turn. A turn's window runs from its end to the next turn's
/// start (or the end of the track); silence after the agent's last audible frame in the window
/// is the caller's own (thinking, or hanging up), not dead air.
pub fn turn_timings(turns: &[TurnSpan], agent_track: &[i16]) -> Vec<TurnTiming> {
    let loud = loud_times(agent_track);
    let end_of_track = track_ms(agent_track);
    turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let until = turns
                .get(i + 1)
                .map(|n| n.start_ms)
                .unwrap_or(end_of_track)
                .max(t.end_ms);
            let lo = loud.partition_point(|&x| x < t.end_ms);
            let hi = loud.partition_point(|&x| x < until);
            let window = &loud[lo..hi];
            // Audible on both sides of the turn's end with no reply-sized quiet between.
            let over_line = match (lo.checked_sub(1).map(|i| loud[i]), window.first()) {
                (Some(before), Some(&after)) => after - before <= ONSET_GAP_MS,
                _ => false,
            };
            // The longest quiet inside what the agent said in the window.
            let gaps = window
                .windows(2)
                .map(|w| w[1] - w[0] - FRAME_MS)
                .max()
                .unwrap_or(0);
            let (latency_ms, dead_air_ms) = match window.first() {
                None => (None, until - t.end_ms),
                Some(_) if over_line => (None, gaps),
                Some(&first) => {
                    let latency = first - t.end_ms;
                    (Some(latency), latency.max(gaps))
                }
            };
            TurnTiming {
                turn: i,
                label: t.label.clone(),
                end_ms: t.end_ms,
                latency_ms,
                over_line,
                dead_air_ms,
            }
        })
        .collect()
}

/// Agent quiet this long before an audible frame makes it the start of a reply (Piper's pauses
/// between clauses are shorter; a reply comes after the endpointing silence and more).
pub const ONSET_GAP_MS: u64 = 600;

/// The turns the agent started answering before they were over: a reply began (an audible
/// frame after [`ONSET_GAP_MS`] of quiet) while the caller was still inside the turn, in a pause
/// the agent took for its end. Each such turn once, by index: the false turn ends as the caller
/// met them.
pub fn early_answers(turns: &[TurnSpan], agent_track: &[i16]) -> Vec<usize> {
    let loud = loud_times(agent_track);
    let onsets: Vec<u64> = loud
        .iter()
        .enumerate()
        .filter(|(i, &t)| *i == 0 || t - loud[i - 1] > ONSET_GAP_MS)
        .map(|(_, &t)| t)
        .collect();
    turns
        .iter()
        .enumerate()
        .filter(|(_, t)| onsets.iter().any(|&o| o > t.start_ms && o < t.end_ms))
        .map(|(i, _)| i)
        .collect()
}

/// The server's own figure for one reply (its stored turn latency).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerFigure {
    /// When it heard the caller's speech end, on the caller's clock (ms of inbound audio).
    pub speech_end_ms: u64,
    pub voice_to_voice_ms: f64,
    pub path: Option<TurnPath>,
}

/// One caller turn's latency at the ear next to the server's figure for the same reply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    pub turn: usize,
    pub ear_ms: u64,
    pub server_ms: f64,
    pub path: Option<TurnPath>,
}

impl Agreement {
    /// Positive when the server reads higher than the ear.
    pub fn diff_ms(&self) -> f64 {
        self.server_ms - self.ear_ms as f64
    }
}

/// How far apart the server's and the caller's ends of speech may be and still be one turn:
/// the VAD's hangover on one side, a clip's trailing quiet on the other.
pub const PAIR_WINDOW_MS: u64 = 400;

/// Pairs each answered caller turn with the server's figure whose end of speech is nearest to
/// the turn's end, within [`PAIR_WINDOW_MS`]; a turn the server ended elsewhere (a pause it took
/// for an end, noise it took for speech) stays unpaired rather than matched to a wrong reply.
pub fn agreement(timings: &[TurnTiming], server: &[ServerFigure]) -> Vec<Agreement> {
    timings
        .iter()
        .filter_map(|t| {
            let ear_ms = t.latency_ms?;
            let best = server
                .iter()
                .filter(|f| f.speech_end_ms.abs_diff(t.end_ms) <= PAIR_WINDOW_MS)
                .min_by_key(|f| f.speech_end_ms.abs_diff(t.end_ms))?;
            Some(Agreement {
                turn: t.turn,
                ear_ms,
                server_ms: best.voice_to_voice_ms,
                path: best.path,
            })
        })
        .collect()
}

/// Stretches of audible agent audio (sample ranges) to transcribe one by one: split where the
/// agent was quiet for `gap_ms` or more, and never longer than `max_ms` (Whisper reads 30 s at
/// most and tends to stop early on long clips). Each range keeps 100 ms of context either side.
pub fn speech_segments(agent_track: &[i16], gap_ms: u64, max_ms: u64) -> Vec<Range<usize>> {
    let loud = loud_times(agent_track);
    let mut out: Vec<(u64, u64)> = Vec::new();
    for t in loud {
        match out.last_mut() {
            Some((start, end)) if t - *end <= gap_ms && t - *start < max_ms => *end = t,
            _ => out.push((t, t)),
        }
    }
    let per_ms = (FRAME_SAMPLES as u64 / FRAME_MS) as usize;
    out.into_iter()
        // A lone click or breath is not a line.
        .filter(|(s, e)| e - s >= 200)
        .map(|(s, e)| {
            // Tick `t` covers samples of frame `t/20 - 1`.
            let a = ((s - FRAME_MS) as usize * per_ms).saturating_sub(100 * per_ms);
            let b = (e as usize * per_ms + 100 * per_ms).min(agent_track.len());
            a..b
        })
        .collect()
}

/// The `p`-th percentile (0-100) by nearest rank; `None` for no values.
pub fn percentile(values: &[u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

#[cfg(test)]
mod tests;
