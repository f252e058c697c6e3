//! # telemarketer
//!
//! An on-prem AI telemarketing appliance: one binary that answers Twilio Media Streams and holds
//! the conversation with local models (Whisper, llama.cpp, Piper). Only Twilio call control and
//! call audio leave the box.
//!
//! ## Where a frame of audio goes
//!
//! ```text
//! Twilio --(WS JSON, 20 ms mu-law 8 kHz)--> http::media_ws --> call::session (inbound loop)
//!   twilio::media::parse_inbound --> audio::mulaw::decode --> audio::vad (WebRTC VAD + Endpointer)
//!   --> utterance --> audio::resample 8k->16k --> engine::whisper (STT thread)
//!   --> transcript --> engine::llama (LLM thread, tokens streamed)
//!   --> call::clauses (clause splitter) --> engine::piper (TTS thread, per clause)
//!   --> call::output (resample voice->8k, mu-law, 20 ms frames on a clock, marks) --> Twilio
//! ```
//! The pacer's `Clear` command is the priority lane for barge-in: it drops queued audio and sends
//! Twilio `clear`.
//!
//! ## Where a lead goes
//!
//! ```text
//! CSV/JSON --> leads (E.164, timezone, consent) --> store (leads table)
//! dialer loop: claim lead (atomic) --> dialer::decide (do-not-call, consent, calling hours; audit)
//!   --> twilio::rest create call (Url = /twilio/voice?campaign&lead, status callbacks, AMD)
//! Twilio --> /twilio/voice (signed) --> TwiML <Connect><Stream> with the lead's variables
//!   --> the call above, following the campaign's script --> registry --> store (turns, outcome,
//!   do-not-call at once)
//! Twilio --> /twilio/status (signed, by SequenceNumber) --> store --> dialer::decide::after_call
//!   (retry schedule or final outcome)
//! ```
//!
//! ## Layout
//! - [`config`]: TOML + environment -> validated [`config::Config`]; secrets from env only.
//! - [`app`]: loads every model once (before the port opens) and builds the HTTP state.
//! - [`http`]: axum routes: Twilio webhooks and media WebSocket, the `/v1` engine API, health.
//! - [`twilio`]: pure Twilio protocol: Media Streams messages, signatures, TwiML.
//! - [`audio`]: pure audio front end: mu-law, resampling, VAD and endpointing.
//! - [`engine`]: STT / LLM / TTS traits and the real engines on dedicated OS threads.
//! - [`call`]: one call: session (inbound loop + agent), clause splitter, output pacer, registry.
//! - [`script`]: the telemarketing script (TOML) and its pure state machine.
//! - [`sim`]: a simulated Twilio + caller over a real WebSocket, for tests and rehearsal.
//! - [`leads`]: lead import (CSV/JSON), phone numbers, timezones, calling windows (pure).
//! - [`store`]: campaigns, leads, calls, turns, do-not-call, audit log (SQLite or PostgreSQL).
//! - [`dialer`]: campaign loops: pacing, compliance checks, retries, crash recovery.
//! - [`emulator`]: a local Twilio (REST, signed callbacks, AMD, media) for offline campaigns.
//! - [`telemetry`]: Prometheus metrics (per-stage latency histograms, calls, queue depths).

pub mod app;
pub mod audio;
pub mod call;
pub mod config;
pub mod dialer;
pub mod emulator;
pub mod engine;
pub mod http;
pub mod leads;
pub mod script;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod twilio;

/// Facts fixed at build time.
pub mod build_info {
    pub const VERSION: &str = env!("CARGO_PKG_VERSION");
    pub const GIT_REV: &str = env!("TELEMARKETER_GIT_REV");
    /// Compute backends compiled in (`cpu`, `cuda`).
    pub const BACKENDS: &str = env!("TELEMARKETER_BACKENDS");
    pub const TARGET_CPU: &str = env!("TELEMARKETER_TARGET_CPU");

    /// The long `--version` text.
    pub const LONG_VERSION: &str = concat!(
        env!("CARGO_PKG_VERSION"),
        " (git ",
        env!("TELEMARKETER_GIT_REV"),
        "; backends: ",
        env!("TELEMARKETER_BACKENDS"),
        "; target-cpu: ",
        env!("TELEMARKETER_TARGET_CPU"),
        ")"
    );
}
