//! The config file as written: every key optional, unknown keys refused, nothing checked yet
//! ([`RawConfig::validate`](super::RawConfig::validate) fills defaults and checks ranges).

use std::path::PathBuf;

use serde::Deserialize;

/// The file as written: every field optional, unknown keys rejected (typos fail loudly).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: RawServer,
    pub models: RawModels,
    pub stt: RawEngine,
    pub llm: RawLlm,
    pub tts: RawTts,
    pub conversation: RawConversation,
    pub turn: RawTurn,
    pub store: RawStore,
    pub twilio: RawTwilio,
    pub dialer: RawDialer,
    pub crm: RawCrm,
    pub recordings: RawRecordings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRecordings {
    /// Where recorded calls' WAVs go (campaigns with `recording` on); default: a `recordings`
    /// folder beside the SQLite file, or `./recordings` with PostgreSQL.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCrm {
    /// Wait after the first failed delivery (doubling per failure up to `retry_cap_s`).
    pub retry_base_ms: Option<u64>,
    pub retry_cap_s: Option<u64>,
    /// Deliveries of one event before it is given up (kept as `failed` in the log).
    pub max_attempts: Option<u32>,
    /// One delivery's limit: connect, send, answer.
    pub timeout_s: Option<u64>,
    /// How often the outbox is looked at for due events.
    pub poll_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDialer {
    /// Seconds a lead claim lasts unless renewed (its dialer renews it every third of that
    /// while the create is in flight); past it, another appliance may settle the lead.
    pub lease_s: Option<u64>,
    /// Seconds Twilio's call list gets to show a call whose create had an unknown outcome
    /// before the lead is taken as never dialed and dialed again.
    pub settle_unknown_s: Option<u64>,
    /// Seconds between reconcile passes: expired claims, unknown creates, calls whose last
    /// callback never came, campaigns another appliance started.
    pub reconcile_s: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    /// `sqlite://telemarketer.db` (default) or `postgres://user@host/db` (the password belongs
    /// in the environment: `TELEMARKETER_DATABASE_URL` overrides this key).
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTwilio {
    /// REST base URL: Twilio's, or a local emulator's (`http://127.0.0.1:3999`).
    pub base_url: Option<String>,
    /// The account (`AC...`); `TWILIO_ACCOUNT_SID` overrides it.
    pub account_sid: Option<String>,
    /// Names this appliance in lead claims and the audit log (default: the host name).
    pub worker_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: Option<String>,
    /// Public base URL Twilio reaches us at (`https://host`); the media stream URL is derived
    /// from it. Without it, the request's Host header is used.
    pub public_url: Option<String>,
    /// Accept Twilio webhooks without `X-Twilio-Signature` when no auth token is set (local dev).
    pub allow_unsigned_webhooks: Option<bool>,
    /// Media streams served at once (default 16); more are refused with 503, so a flood of
    /// WebSocket upgrades cannot exhaust the models or memory.
    pub max_calls: Option<usize>,
    /// On SIGTERM/Ctrl-C, how long live calls may go on before they are told goodbye
    /// (default 30 s); no new calls are dialed meanwhile.
    pub shutdown_grace_s: Option<u64>,
    /// Development only, and only on a loopback `listen` address: accept media streams without
    /// `X-Twilio-Signature` and for calls no webhook or API call registered (their metadata then
    /// comes from the stream's custom parameters).
    pub allow_unregistered_media: Option<bool>,
    /// Open HTTP connections (default 1024); more wait in the kernel's backlog.
    pub max_connections: Option<usize>,
    /// A request's headers must arrive within this (default 10 s), or the socket is closed:
    /// idle and slow-loris connections cannot pile up.
    pub header_timeout_s: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawModels {
    pub dir: Option<PathBuf>,
    pub stt: Option<PathBuf>,
    pub llm: Option<PathBuf>,
    pub tts: Option<PathBuf>,
    pub tts_config: Option<PathBuf>,
    pub onnxruntime: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEngine {
    pub threads: Option<usize>,
    pub workers: Option<usize>,
    /// Jobs that may wait for a worker; more are refused (load shed).
    pub queue_limit: Option<usize>,
    /// The longest a job may wait for a worker before it is dropped unrun.
    pub max_wait_ms: Option<u64>,
    pub audio_ctx: Option<u32>,
    /// Whisper's beam width (0 or 1 = greedy).
    pub beam: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLlm {
    pub threads: Option<usize>,
    pub workers: Option<usize>,
    /// Jobs that may wait for a worker; more are refused (load shed).
    pub queue_limit: Option<usize>,
    /// The longest a job may wait for a worker before it is dropped unrun.
    pub max_wait_ms: Option<u64>,
    pub context_tokens: Option<u32>,
    pub slots_per_worker: Option<u32>,
    pub gpu_layers: Option<u32>,
    pub temperature: Option<f32>,
    pub max_reply_tokens: Option<u32>,
    pub seed: Option<u32>,
    /// One context decodes every live conversation together (default true).
    pub batching: Option<bool>,
    /// Batched: the most prompt tokens one decode step evaluates.
    pub prompt_tokens_per_step: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTts {
    pub threads: Option<usize>,
    pub workers: Option<usize>,
    /// Jobs that may wait for a worker; more are refused (load shed).
    pub queue_limit: Option<usize>,
    /// The longest a job may wait for a worker before it is dropped unrun.
    pub max_wait_ms: Option<u64>,
    pub espeak_data_dir: Option<PathBuf>,
    pub length_scale: Option<f32>,
    /// ONNX Runtime's CUDA execution provider (default: on in `cuda` builds).
    pub gpu: Option<bool>,
    /// Renderings of each fixed line tried when a script loads (1-5, default 3): the first the
    /// ear hears word for word on the phone line is kept for every call (1: the first, unheard).
    pub takes: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConversation {
    /// A telemarketing script (TOML) that drives the call, or `"example"` for the shipped one.
    /// Without it the call follows the open conversation script built from the keys below (a
    /// plain voice assistant under the same rules: disclosure, opt-out, silence, duration).
    pub script: Option<PathBuf>,
    /// The open conversation's first line; must disclose the AI.
    pub greeting: Option<String>,
    /// Keypad digit that opts the caller out (do-not-call) at any time (open conversation; a
    /// script has its own `opt_out_digit`).
    pub opt_out_digit: Option<String>,
    /// Said after an opt-out, before hanging up (open conversation).
    pub opt_out_message: Option<String>,
    /// The open conversation's persona and goal (system message of every reply).
    pub system_prompt: Option<String>,
    pub max_reply_sentences: Option<usize>,
    /// While the caller answers a node's question: write and synthesise the generated line
    /// the answer may lead to, and put the node's classification prompt in the KV cache
    /// (default true).
    pub prepare_lines: Option<bool>,
    /// Accepted for older configs and ignored: history is bounded by tokens (script::context).
    pub max_history_turns: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTurn {
    pub vad_aggressiveness: Option<u8>,
    pub min_speech_ms: Option<u32>,
    /// Silence that ends a turn whose transcript gives no hint.
    pub endpoint_silence_ms: Option<u32>,
    /// Silence that ends a turn that sounds complete ("Yes, that works.").
    pub min_endpoint_ms: Option<u32>,
    /// Silence that always ends a turn (also after a trailing "and", "so", "um").
    pub max_endpoint_ms: Option<u32>,
    /// Caller speech over the agent needed to count as a barge-in.
    pub barge_in_min_ms: Option<u32>,
    /// Words that mean "go on" rather than "stop": the agent resumes after them.
    pub backchannels: Option<Vec<String>>,
    /// Inbound speech within this long after our audio starts is not trusted (echo onset).
    pub echo_onset_ms: Option<u32>,
    /// Inbound audio this many dB under what we play counts as our echo.
    pub echo_margin_db: Option<f32>,
    pub max_utterance_ms: Option<u32>,
    /// Audio sent ahead of real time; small so a `clear` takes effect quickly.
    pub output_lead_ms: Option<u32>,
    /// A caller turn that got no answer this long is logged and the question asked again.
    pub dead_air_ms: Option<u32>,
    /// After a turn the script could not read, this much silence before asking again: a
    /// caller thinking aloud ("Hmm, let me think.") goes on, and both parts become one turn.
    pub unclear_hold_ms: Option<u32>,
    /// Below this recogniser confidence (0-1) a turn the rules cannot read is `unclear`.
    pub min_confidence: Option<f32>,
    /// Speech this soon after a turn ended, before the caller heard `resume_heard_ms` of the
    /// answer, continues that turn (the agent drops its answer and answers both parts).
    pub resume_window_ms: Option<u32>,
    pub resume_heard_ms: Option<u32>,
}
