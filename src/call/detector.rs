//! The turn detector: when the caller's turn starts, when it is over, when they talk over the
//! agent, and when they go on after a pause that looked like the end of their turn.
//!
//! Pure and clocked in samples (8 kHz, the stream's own clock): frames with the VAD's verdict
//! and transcripts go in, commands come out. The session is the I/O shell around it: it runs
//! the VAD and the echo guard, starts STT jobs, cuts speech on a barge-in and hands finished
//! turns to the agent. Every rule is unit-tested at sample precision.
//!
//! - **Speculative STT**: after `speculate_after_ms` of silence the audio so far is transcribed;
//!   if the caller goes on, that transcript is dropped (a new attempt number).
//! - **End of turn**: [`EndpointRules`] decide from the silence and the transcript's ending
//!   (complete, trailing "and"/"um", no hint); the endpointer's own limit forces an end.
//! - **Barge-in**: `barge_in_min_ms` of caller speech in a turn: stop interruptible speech.
//! - **Continuation**: a turn ended at a pause, and the caller speaks again within
//!   `resume_window_ms` before hearing `resume_heard_ms` of the answer (or its end): the answer
//!   is dropped and the next turn carries both parts, so the agent answers the whole. Both parts
//!   are transcribed together, with the pause between them: Whisper alone on "Who is this?"
//!   after "Hello?" often hears nothing, with the first part before it, it hears both.

use super::turn::{EndpointRules, TurnDecision};
use crate::audio::vad::{frame_dbfs, EndpointConfig, Endpointer, VadEvent, AUDIBLE_DBFS};
use crate::audio::TWILIO_RATE;
use crate::model::TurnLatency;

/// Turn-taking settings, in milliseconds.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    pub rules: EndpointRules,
    /// Speech within twice this starts a turn (a click is not a turn).
    pub min_speech_ms: u32,
    /// A turn longer than this is cut and answered.
    pub max_utterance_ms: u32,
    /// Caller speech in a turn that stops interruptible agent speech.
    pub barge_in_min_ms: u32,
    /// Silence before speculative STT starts: shorter pauses are usually between words.
    pub speculate_after_ms: u32,
    /// Speech this soon after a turn ended may continue it.
    pub resume_window_ms: u32,
    /// ... unless the caller had heard this much of the answer when they started again. A
    /// person answers what they heard only after a reaction time of a few hundred ms, so
    /// words that start later than this respond to the answer: a new turn, not the old one's end.
    pub resume_heard_ms: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            rules: EndpointRules {
                min_silence_ms: 500,
                default_silence_ms: 800,
                max_silence_ms: 3000,
            },
            min_speech_ms: 60,
            max_utterance_ms: 15_000,
            barge_in_min_ms: 200,
            speculate_after_ms: 120,
            resume_window_ms: 2500,
            resume_heard_ms: 400,
        }
    }
}

/// A finished caller turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnEnd {
    /// Numbers the turns of a call, from 1.
    pub id: u64,
    /// What the caller said: with [`TurnEnd::continues`], the earlier part and this one.
    pub text: String,
    /// The words since the continuation (equal to `text` otherwise).
    pub part: String,
    /// Turn `continues` ended at a pause and this one goes on with it.
    pub continues: Option<u64>,
    /// First speech sample (of the earlier part when continuing) and just past the last one.
    pub start_sample: u64,
    pub end_sample: u64,
    /// Just past the turn's last audible frame (above [`AUDIBLE_DBFS`]): where a listener hears
    /// the caller stop. The VAD's end (`end_sample`) trails it by its hangover on a quiet line;
    /// on a noisy one every frame is audible and this is `end_sample`.
    pub audible_end_sample: u64,
    /// From the caller's last audible speech to the decision.
    pub endpointing_ms: f64,
    pub stt_ms: f64,
    /// The recogniser's confidence in `text` ([`crate::engine::Transcript::confidence`]).
    pub confidence: f32,
    /// Our audio was playing when the caller started.
    pub over_agent: bool,
    /// The turn's speech reached the barge-in length (the shell may have cut the agent).
    pub barged_in: bool,
    /// Speech recognition failed: `part` is empty for that reason, not silence.
    pub stt_failed: bool,
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Transcribe this 8 kHz audio; answer with [`TurnDetector::transcript`] and `attempt`.
    Transcribe {
        attempt: u64,
        audio: Vec<i16>,
    },
    /// The caller is talking over the agent: stop interruptible speech. `reaction_ms` runs from
    /// the start of their speech to now.
    BargeIn {
        reaction_ms: f64,
    },
    /// The caller went on after turn `id` before hearing its answer: drop the answer.
    Continued {
        id: u64,
    },
    TurnEnded(TurnEnd),
}

/// The turn in progress.
#[derive(Debug)]
struct Pending {
    attempt: u64,
    start: u64,
    over_agent: bool,
    barged_in: bool,
    /// Audio up to the silence start, waiting for speculative STT.
    audio: Option<Vec<i16>>,
    /// What the last STT job was given (with a continued turn's earlier part in front).
    transcribed: Vec<i16>,
    silence_start: Option<u64>,
    stt_started: bool,
    /// `Some(None)`: STT failed.
    transcript: Option<Option<Heard>>,
    /// The endpointer reached its maximum: end as soon as the transcript is ready.
    forced: bool,
    continues: Option<Last>,
}

/// The last finished turn, while the caller may still continue it.
#[derive(Debug, Clone)]
struct Last {
    id: u64,
    text: String,
    /// The audio its transcript came from (both parts of a continued turn).
    audio: Vec<i16>,
    start: u64,
    end: u64,
    /// Agent audio heard since it ended, in samples, and whether that audio has stopped.
    heard: u64,
    answer_over: bool,
}

/// See the module docs.
pub struct TurnDetector {
    config: DetectorConfig,
    endpointer: Endpointer,
    pending: Option<Pending>,
    /// A turn the endpointer ended (maximum reached) whose transcript is still out while the
    /// caller already speaks again.
    finishing: Option<Pending>,
    attempts: u64,
    turns: u64,
    last: Option<Last>,
    /// Just past the last audible inbound frame.
    last_audible: u64,
}

fn ms(samples: u64) -> f64 {
    samples as f64 * 1000.0 / TWILIO_RATE as f64
}

fn samples(ms: u32) -> u64 {
    ms as u64 * TWILIO_RATE as u64 / 1000
}

impl TurnDetector {
    pub fn new(config: DetectorConfig) -> Self {
        // The endpointer's own limit is the maximum; the rules decide earlier.
        let endpointer = Endpointer::new(EndpointConfig {
            min_speech_ms: config.min_speech_ms,
            end_silence_ms: config.rules.max_silence_ms,
            max_utterance_ms: config.max_utterance_ms,
            ..EndpointConfig::default()
        });
        Self {
            config,
            endpointer,
            pending: None,
            finishing: None,
            attempts: 0,
            turns: 0,
            last: None,
            last_audible: 0,
        }
    }

    /// Samples seen since the stream started (the detector's clock).
    pub fn samples_seen(&self) -> u64 {
        self.endpointer.samples_seen()
    }

    /// One frame of inbound audio. `voiced`: the VAD's verdict after the echo guard;
    /// `agent_audible`: our audio is playing at the caller's ear now.
    pub fn frame(&mut self, pcm: &[i16], voiced: bool, agent_audible: bool) -> Vec<Command> {
        let mut out = Vec::new();
        if let Some(last) = self.last.as_mut() {
            if agent_audible {
                last.heard += pcm.len() as u64;
            } else if last.heard > 0 {
                last.answer_over = true;
            }
        }
        let events = self.endpointer.push(pcm, voiced);
        if frame_dbfs(pcm) > AUDIBLE_DBFS {
            self.last_audible = self.endpointer.samples_seen();
        }
        for event in events {
            match event {
                VadEvent::SpeechStarted { at_sample } => {
                    if self.pending.as_ref().is_some_and(|p| p.forced) {
                        self.finishing = self.pending.take();
                    }
                    self.attempts += 1;
                    self.pending = Some(Pending {
                        attempt: self.attempts,
                        start: at_sample,
                        over_agent: agent_audible,
                        barged_in: false,
                        audio: None,
                        transcribed: Vec::new(),
                        silence_start: None,
                        stt_started: false,
                        transcript: None,
                        forced: false,
                        continues: None,
                    });
                }
                VadEvent::SilenceStarted {
                    at_sample,
                    audio_so_far,
                } => {
                    if let Some(p) = self.pending.as_mut() {
                        p.silence_start = Some(at_sample);
                        p.audio = Some(audio_so_far);
                    }
                }
                VadEvent::SpeechResumed { .. } => {
                    if let Some(p) = self.pending.as_mut() {
                        // The caller went on: any speculative transcript is stale.
                        self.attempts += 1;
                        p.attempt = self.attempts;
                        p.silence_start = None;
                        p.audio = None;
                        p.stt_started = false;
                        p.transcript = None;
                    }
                }
                VadEvent::UtteranceEnded { audio, .. } => self.force_end(audio),
            }
        }
        self.check_speech(&mut out);
        self.check_end(&mut out);
        out
    }

    /// The endpointer ended the utterance: the turn ends as soon as its transcript is ready.
    fn force_end(&mut self, audio: Vec<i16>) {
        if let Some(p) = self.pending.as_mut() {
            p.forced = true;
            if !p.stt_started {
                p.audio = Some(audio);
            }
        }
    }

    /// The stream ended (the caller hung up, or we did): the turn in progress ends now, so the
    /// caller's last words are transcribed and answered by [`Command::TurnEnded`] once their
    /// transcript comes (an opt-out said just before hanging up still counts).
    pub fn stream_ended(&mut self) -> Vec<Command> {
        let mut out = Vec::new();
        if let Some(VadEvent::UtteranceEnded { audio, .. }) = self.endpointer.finish() {
            self.force_end(audio);
        }
        if let Some(p) = self.pending.as_mut() {
            p.forced = true;
        }
        self.check_end(&mut out);
        out
    }

    /// The transcript of `attempt` is still awaited (otherwise its STT job can be dropped).
    pub fn awaits(&self, attempt: u64) -> bool {
        [self.pending.as_ref(), self.finishing.as_ref()]
            .into_iter()
            .flatten()
            .any(|p| p.attempt == attempt && p.stt_started && p.transcript.is_none())
    }

    /// No turn is in progress or waiting for its transcript.
    pub fn is_idle(&self) -> bool {
        self.pending.is_none() && self.finishing.is_none()
    }

    /// The transcript of an attempt and the recogniser's confidence in it (`None`: recognition
    /// failed). Stale attempts are ignored.
    pub fn transcript(
        &mut self,
        attempt: u64,
        text: Option<(&str, f32)>,
        stt_ms: f64,
    ) -> Vec<Command> {
        let mut out = Vec::new();
        for p in [self.finishing.as_mut(), self.pending.as_mut()]
            .into_iter()
            .flatten()
            .filter(|p| p.attempt == attempt)
        {
            p.transcript = Some(text.map(|(t, confidence)| Heard {
                text: t.to_string(),
                confidence,
                stt_ms,
            }));
        }
        self.check_end(&mut out);
        out
    }

    /// The words of the turn in progress are known but its end is not: the caller is still
    /// pausing (a classifier may start on them, see [`crate::script::runner::ScriptRunner::foresee`]).
    pub fn awaits_end(&self, attempt: u64) -> Option<&str> {
        let p = self.pending.as_ref().filter(|p| p.attempt == attempt)?;
        match &p.transcript {
            Some(Some(h)) if !h.text.is_empty() => Some(&h.text),
            _ => None,
        }
    }

    /// Barge-in and continuation, once the caller has spoken long enough in this turn.
    fn check_speech(&mut self, out: &mut Vec<Command>) {
        let now = self.endpointer.samples_seen();
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        if p.barged_in
            || !self.endpointer.is_in_speech()
            || self.endpointer.speech_ms() < self.config.barge_in_min_ms
        {
            return;
        }
        p.barged_in = true;
        if let Some(last) = self.last.take() {
            let soon = p.start.saturating_sub(last.end) <= samples(self.config.resume_window_ms);
            // What they had heard when they started again: the answer played on over their
            // first words until now.
            let heard = last.heard.saturating_sub(now.saturating_sub(p.start));
            let unheard = heard < samples(self.config.resume_heard_ms) && !last.answer_over;
            if soon && unheard {
                out.push(Command::Continued { id: last.id });
                p.continues = Some(last);
            }
        }
        out.push(Command::BargeIn {
            reaction_ms: ms(now.saturating_sub(p.start)),
        });
    }

    /// Speculative STT once the pause is long enough; the end of the turn by the rules.
    fn check_end(&mut self, out: &mut Vec<Command>) {
        if self
            .finishing
            .as_ref()
            .is_some_and(|f| f.transcript.is_some())
        {
            if let Some(f) = self.finishing.take() {
                let now = self.endpointer.samples_seen();
                self.end_turn(f, now, 0, out);
            }
        }
        let now = self.endpointer.samples_seen();
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        let silence_ms = p
            .silence_start
            .map_or(0, |s| ms(now.saturating_sub(s)) as u32);
        if !p.stt_started && (p.forced || silence_ms >= self.config.speculate_after_ms) {
            if let Some(audio) = p.audio.take() {
                p.stt_started = true;
                let audio = match &p.continues {
                    Some(last) => joined(&last.audio, p.start.saturating_sub(last.end), audio),
                    None => audio,
                };
                p.transcribed = audio.clone();
                out.push(Command::Transcribe {
                    attempt: p.attempt,
                    audio,
                });
            }
        }
        let Some(transcript) = &p.transcript else {
            return;
        };
        let text = transcript.as_ref().map_or("", |h| h.text.as_str());
        let done =
            p.forced || self.config.rules.decide(silence_ms, Some(text)) == TurnDecision::EndTurn;
        if !done {
            return;
        }
        let Some(p) = self.pending.take() else {
            return;
        };
        // A forced end already reset the endpointer (its turn is over); resetting again would
        // drop speech that started since.
        if !p.forced {
            self.endpointer.reset();
        }
        self.end_turn(p, now, silence_ms, out);
    }

    fn end_turn(&mut self, p: Pending, now: u64, silence_ms: u32, out: &mut Vec<Command>) {
        let end = p.silence_start.unwrap_or(now);
        let audible_end = if self.last_audible > p.start && self.last_audible < end {
            self.last_audible
        } else {
            end
        };
        self.turns += 1;
        let heard = p.transcript.clone().flatten().unwrap_or(Heard {
            text: String::new(),
            confidence: 1.0,
            stt_ms: 0.0,
        });
        let (part, stt_ms) = (heard.text.trim().to_string(), heard.stt_ms);
        // A continued turn was transcribed whole: its part is what follows the earlier words.
        let (text, part, start, continues) = match &p.continues {
            Some(last) => (
                part.clone(),
                after(&part, &last.text),
                last.start,
                Some(last.id),
            ),
            None => (part.clone(), part, p.start, None),
        };
        self.last = Some(Last {
            id: self.turns,
            text: text.clone(),
            audio: p.transcribed,
            start,
            end,
            heard: 0,
            answer_over: false,
        });
        out.push(Command::TurnEnded(TurnEnd {
            id: self.turns,
            text,
            part,
            continues,
            start_sample: start,
            end_sample: end,
            audible_end_sample: audible_end,
            endpointing_ms: silence_ms as f64 + ms(end - audible_end),
            stt_ms,
            confidence: heard.confidence,
            over_agent: p.over_agent,
            barged_in: p.barged_in,
            stt_failed: matches!(p.transcript, Some(None)),
        }));
    }
}

impl TurnEnd {
    /// The turn's share of its answer's latency: the rest is filled in as the answer plays.
    pub fn latency(&self) -> TurnLatency {
        TurnLatency {
            endpointing_ms: self.endpointing_ms,
            stt_ms: self.stt_ms,
            speech_end_ms: Some(self.audible_end_sample * 1000 / TWILIO_RATE as u64),
            ..Default::default()
        }
    }
}

/// An attempt's transcript.
#[derive(Debug, Clone)]
struct Heard {
    text: String,
    confidence: f32,
    stt_ms: f64,
}

/// Whisper's window is 30 s: a continued turn keeps the end of its earlier part.
const MAX_JOINED: usize = 28 * TWILIO_RATE as usize;

/// The earlier part, the pause between (at most 1 s of it) and the new part, as one utterance.
fn joined(earlier: &[i16], gap: u64, part: Vec<i16>) -> Vec<i16> {
    let gap = gap.min(TWILIO_RATE as u64) as usize;
    let room = MAX_JOINED.saturating_sub(part.len() + gap);
    let earlier = &earlier[earlier.len().saturating_sub(room)..];
    let mut audio = Vec::with_capacity(earlier.len() + gap + part.len());
    audio.extend_from_slice(earlier);
    audio.resize(earlier.len() + gap, 0);
    audio.extend(part);
    audio
}

/// The words of `whole` after those it shares with `earlier` at its start (compared without
/// case or punctuation); all of `whole` when it does not start with them.
fn after(whole: &str, earlier: &str) -> String {
    let norm = |w: &str| -> String {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let words: Vec<&str> = whole.split_whitespace().collect();
    let before: Vec<String> = earlier
        .split_whitespace()
        .map(norm)
        .filter(|w| !w.is_empty())
        .collect();
    let mut i = 0;
    let mut matched = 0;
    while i < words.len() && matched < before.len() {
        let w = norm(words[i]);
        if !w.is_empty() {
            if w != before[matched] {
                return whole.to_string();
            }
            matched += 1;
        }
        i += 1;
    }
    if matched < before.len() {
        return whole.to_string();
    }
    words[i..].join(" ")
}

#[cfg(test)]
mod tests;
