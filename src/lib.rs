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
//!   --> transcript --> engine::llama (LLM thread: every call's tokens in one batch, streamed)
//!   --> script::clauses (clause splitter) --> engine::piper (TTS thread, per clause)
//!   --> call::output (resample voice->8k, mu-law, 20 ms frames on a clock, marks) --> Twilio
//! ```
//! The pacer's `Clear` command is the priority lane for barge-in: it drops queued audio and sends
//! Twilio `clear`.
//!
//! ## Where a caller's words go (the script decides, the model only helps)
//!
//! ```text
//! transcript --> script::runner (the clock, in the lead's zone) --> script::classify (rules:
//!   opt-out, wrong person, decline, call later, FAQs and other questions, the node's example
//!   phrases, typed answers read by script::slots; then the LLM under a GBNF grammar: one of
//!   the node's labels, an FAQ or "unclear") --> script::machine::step(state, event) -> actions
//!   --> Say (fixed line, variables spoken by type) | Generate (LLM sentences within the node's
//!   goal, script::context keeps the prompt in budget) | Capture | MarkDoNotCall
//!   | HangUp(Outcome) --> call::agent speaks them --> registry (transcript, verdict)
//! Every call follows a script: the campaign's, the configured one, or the open conversation
//! made from `[conversation]` (one open node), so the legal rules hold on every call.
//! ```
//!
//! ## Tasks and channels of one call
//!
//! ```text
//! http::media_ws   reader task: WebSocket frames -> WsIn ----------------+ (mpsc, bounded)
//!                  writer task: <- String (Twilio JSON) <-------------+  |
//! call::session    inbound loop (owns VAD, endpointer, pending turn):  |  |
//!                    WsIn -> frames -> barge-in (SpeechBoard::interrupt + OutputCommand::Clear)
//!                    -> STT jobs (engine thread; results back on an mpsc tagged by attempt)
//!                    -> AgentInput::{Turn, Dtmf} (mpsc) --------------+  |
//! call::agent      agent task (owns the script runner, history):      |  |
//!                    AgentInput -> LLM jobs (engine thread; tokens on an mpsc)
//!                    -> clauses -> TTS jobs (engine thread) -> OutputCommand (mpsc)
//! call::output     pacer task (owns the resampler, queue, play clock):   |
//!                    OutputCommand -> 20 ms media + marks -> writer ----+
//!                    OutputEvent::{FirstAudible, ...} -> agent (mpsc)
//! shared:          SpeechBoard (which clauses were queued, played, cut), EchoGuard,
//!                  CallRegistry -> CallSink (store writer task)
//! one CancellationToken ends the agent and its engine jobs when the stream ends
//! ```
//!
//! ## Where a lead goes
//!
//! ```text
//! CSV/JSON --> leads (E.164, timezone, consent) --> store (leads table)
//! dialer loop: claim lead (atomic) --> dialer::decide (do-not-call, consent, calling hours; audit)
//!   --> twilio_rest create call (Url = /twilio/voice?campaign&lead, status callbacks, AMD)
//! Twilio --> /twilio/voice (signed) --> TwiML <Connect><Stream> with the lead's variables
//!   --> the call above, following the campaign's script --> registry --> store (turns, outcome,
//!   do-not-call at once)
//! Twilio --> /twilio/status (signed, by SequenceNumber) --> store --> dialer::decide::after_call
//!   (retry schedule, callback at the caller's time, or final outcome) and ::remember (the
//!   lead's memory: answers and a summary line, which the next call starts from) + `call.ended`
//!   into the CRM outbox (same transaction)
//! opt-out / operator --> do-not-call list + `lead.do_not_call` into the outbox (same transaction)
//!   --> crm::Courier (signed POST, retries with back-off) --> the customer's CRM
//! ```
//!
//! ## Layout
//! Every arrow points down (`tests/architecture.rs` checks it): [`model`] holds the records that
//! cross rooms; the pure rooms ([`model`], [`audio`], [`twilio`], [`leads`], the script's format,
//! machine and classifier, [`dialer::decide`], [`crm::webhook`]) import no I/O.
//! - [`model`]: shared records: call metadata, turns and latency, call records, campaigns, leads,
//!   do-not-call entries, the admin API's bodies.
//! - [`config`]: TOML + environment -> validated [`config::Config`]; secrets from env only.
//! - [`app`]: loads every model once (before the port opens); [`app::AppBuilder`] is the one way
//!   to assemble the appliance (serve, rehearse, simulate, loadtest, benches, tests).
//! - [`http`]: axum routes: Twilio webhooks and media WebSocket, the `/v1` engine API, health,
//!   the browser softphone (a practice call through the same session; [`call::browser`]).
//! - [`twilio`]: pure Twilio protocol: Media Streams messages, signatures, TwiML.
//! - [`twilio_rest`]: the Twilio REST client (calls: create, fetch, list, hang up, redirect).
//! - [`client`]: a typed client of our admin API (the CLI and the tests use it).
//! - [`audio`]: pure audio front end: mu-law, resampling, VAD and endpointing.
//! - [`engine`]: STT / LLM / TTS traits and the real engines on dedicated OS threads.
//! - [`call`]: one call: session (inbound loop), agent, output pacer, speech handles, registry,
//!   and its recording when the campaign records (caller left, agent right as heard).
//! - [`script`]: the telemarketing script (TOML), its pure state machine, the classifier, the
//!   clause splitter and the runner that drives them with an LLM.
//! - [`leads`]: lead import (CSV/JSON), phone numbers, timezones, calling windows (pure).
//! - [`store`]: campaigns, leads, calls, turns, do-not-call, audit log, which call has a
//!   recording and the sweep that deletes them after their retention (SQLite or PostgreSQL).
//! - [`dialer`]: campaign loops: pacing, compliance checks, retries, crash recovery.
//! - [`crm`]: signed webhooks to the customer's CRM (call ended, do-not-call) from an outbox
//!   table, with retries; `crm::webhook` holds the pure signature and retry schedule.
//! - `testbed` (cargo feature, on by default): a local Twilio emulator and simulated callers, for
//!   tests, rehearsals and benches; a black box that speaks only Twilio's protocols. It also holds
//!   the acceptance corpus format, the judge and the measurements at the caller's ear.
//! - `rehearsal` (with `testbed`): the appliance dialing the emulator offline; runs the
//!   acceptance corpus and prints its table (`rehearse --suite`, `tests/corpus.rs`).
//! - [`telemetry`]: Prometheus metrics (per-stage latency histograms, calls, queue depths).

pub mod app;
pub mod audio;
pub mod call;
pub mod client;
pub mod config;
pub mod crm;
pub mod dialer;
pub mod engine;
pub mod http;
pub mod leads;
pub mod model;
#[cfg(feature = "testbed")]
pub mod rehearsal;
pub mod script;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testbed")]
pub mod testbed;
pub mod twilio;
pub mod twilio_rest;

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
