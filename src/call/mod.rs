//! One phone call, from the first `start` message to the last frame.
//!
//! - [`session`]: the inbound loop: parses Twilio's messages, runs VAD and endpointing, starts
//!   speculative STT, decides barge-in, hands finished turns to the agent.
//! - [`agent`]: what to say and when: the script's lines, streamed replies (LLM -> clauses -> TTS),
//!   a history that keeps only what the caller heard, the opt-out.
//! - [`output`]: paces agent audio to Twilio in 20 ms frames with marks; `clear` on demand.
//! - [`speech`]: speech handles: each utterance's clauses, which were played, which were cut.
//! - [`detector`]: the pure turn detector: frames and transcripts in; transcribe, barge in,
//!   continue, end of turn out (the session is its I/O shell).
//! - [`turn`]: pure turn-taking rules (endpointing, backchannels, echo), clocked in samples.
//! - [`voice`]: TTS behind a cache of the scripts' fixed lines; first clauses start at once.
//! - [`registry`]: the live calls: metadata registered before the stream, transcript, verdict.
//! - [`live`]: how many media sessions run now, under a cap.
//! - [`recording`]: a recorded call's two sides on one timeline (caller left, agent right as
//!   played), written as a WAV when the session ends.
//! - [`browser`]: the browser softphone's messages (PCM, marks, keys) translated to and from
//!   Twilio's, so a call from a browser runs through the same session (pure).
//! - [`handoff`]: transfers to a person in flight: the audio Twilio fetches once our stream is
//!   gone (the advisor's whisper, the caller's no-answer line).

pub mod agent;
pub mod browser;
pub mod detector;
pub mod handoff;
pub mod live;
pub mod output;
pub mod recording;
pub mod registry;
pub mod session;
pub mod speech;
pub mod turn;
pub mod voice;

use std::sync::Arc;

use crate::config::{ConversationConfig, TurnConfig};
use crate::engine::{LanguageModel, SpeechToText, TextToSpeech};
use crate::script::ScriptBook;
use crate::twilio_rest::TwilioClient;
use registry::CallRegistry;

/// Everything a session needs, shared by all calls.
#[derive(Clone)]
pub struct SessionDeps {
    pub stt: Arc<dyn SpeechToText>,
    pub llm: Arc<dyn LanguageModel>,
    pub tts: Arc<dyn TextToSpeech>,
    /// The TTS behind a cache of the scripts' fixed lines.
    pub voice: voice::Voice,
    pub conversation: ConversationConfig,
    pub turn: TurnConfig,
    pub registry: CallRegistry,
    /// Per-campaign scripts (a dialed call carries its campaign id as a stream parameter).
    pub scripts: ScriptBook,
    /// Twilio REST, when credentials are configured: the agent's hang-up then ends the call
    /// with `Status=completed` instead of relying on TwiML after the stream closes.
    pub twilio: Option<TwilioClient>,
    /// Added to the wall clock for the script's times (rehearsals pretend it is mid-morning).
    pub clock_offset: chrono::Duration,
    /// The appliance is stopping and its grace is over: every call says goodbye and hangs up.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Transfers to a person in flight (the agent opens them, the webhooks serve them).
    pub handoffs: handoff::Handoffs,
    /// Where recorded calls' WAVs go (`[recordings] dir`); a call records only when its
    /// metadata says so.
    pub recordings: std::path::PathBuf,
}
