//! Configuration: an optional TOML file over embedded defaults, validated into a [`Config`] that
//! cannot be invalid (ripgrep's raw -> validated pattern). Secrets never live in the file: they
//! come from the environment only, and `Debug` output redacts them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod raw;

pub use raw::*;

/// Errors in the config file or environment.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("conversation.script: {0}")]
    Script(#[from] crate::script::format::ScriptError),
    /// The open conversation (no script) built from `[conversation]`: each problem keyed there.
    #[error("{}", .0.iter().map(|p| format!("config key `{}`: {}", p.key, p.reason)).collect::<Vec<_>>().join("; "))]
    Conversation(Vec<crate::script::format::Problem>),
}

/// The default admission limit (`server.max_calls`) per CPU core: `loadtest` through the solar
/// script on a 2-core machine with the test models kept p95 under 1.5 s at the caller's ear up
/// to 4 calls, and passed it at 8 (README "Latency and load").
pub const CALLS_PER_CORE: usize = 2;

/// Validated configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub allow_unsigned_webhooks: bool,
    pub max_calls: usize,
    pub shutdown_grace: std::time::Duration,
    pub max_connections: usize,
    pub header_timeout: std::time::Duration,
    /// Media streams need neither a signature nor a registered call (loopback only).
    pub allow_unregistered_media: bool,
    pub models: ModelPaths,
    pub stt: crate::engine::whisper::WhisperConfig,
    pub llm: crate::engine::llama::LlamaConfig,
    pub tts: crate::engine::piper::PiperConfig,
    /// Renderings of each fixed line tried at warm-up (`[tts] takes`; see [`crate::call::voice`]).
    pub fixed_line_takes: usize,
    pub conversation: ConversationConfig,
    pub turn: TurnConfig,
    pub store_url: String,
    pub twilio: TwilioConfig,
    pub dialer: DialerConfig,
    pub crm: CrmConfig,
    /// Where recorded calls' WAVs are kept (absolute, so a later working directory does not
    /// lose them): `[recordings] dir`, else a `recordings` folder beside the SQLite file.
    pub recordings_dir: PathBuf,
    pub secrets: Secrets,
}

impl Config {
    /// The Twilio account we answer for: the environment's, else the config's.
    pub fn account_sid(&self) -> Option<&str> {
        self.secrets
            .twilio_account_sid
            .as_deref()
            .or(self.twilio.account_sid.as_deref())
    }
}

/// The dialer's clocks for claims and reconciling (see [`RawDialer`]).
#[derive(Debug, Clone)]
pub struct DialerConfig {
    pub lease: std::time::Duration,
    pub settle_unknown: std::time::Duration,
    pub reconcile_every: std::time::Duration,
}

/// Where Twilio's REST API is and which account we dial from.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub base_url: String,
    pub account_sid: Option<String>,
    pub worker_id: String,
}

#[derive(Debug, Clone)]
pub struct ModelPaths {
    pub stt: PathBuf,
    pub llm: PathBuf,
    pub tts: PathBuf,
    pub tts_config: PathBuf,
    pub onnxruntime: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ConversationConfig {
    /// The script every call not placed for a campaign follows: the configured one, the shipped
    /// example, or the open conversation built from the `[conversation]` keys. Always present,
    /// so the disclosure, opt-out, silence and duration rules hold on every call.
    pub script: std::sync::Arc<crate::script::format::Script>,
    pub max_reply_tokens: u32,
    /// Sentences of an open-conversation reply.
    pub max_reply_sentences: usize,
    /// Work done while the caller answers: the next generated line, the classifier's prompt.
    pub prepare_lines: bool,
}

#[derive(Debug, Clone)]
pub struct TurnConfig {
    pub vad_aggressiveness: u8,
    pub min_speech_ms: u32,
    pub endpoint_silence_ms: u32,
    pub min_endpoint_ms: u32,
    pub max_endpoint_ms: u32,
    pub barge_in_min_ms: u32,
    pub backchannels: Vec<String>,
    pub echo_onset_ms: u32,
    pub echo_margin_db: f32,
    pub max_utterance_ms: u32,
    pub output_lead_ms: u32,
    pub dead_air_ms: u32,
    /// Silence kept after a turn the script could not read, before it asks again.
    pub unclear_hold_ms: u32,
    /// A turn heard with less confidence than this that the rules cannot read is not
    /// classified by the LLM: the agent asks again instead of guessing from misheard words.
    pub min_confidence: f32,
    pub resume_window_ms: u32,
    pub resume_heard_ms: u32,
}

/// Delivery of CRM webhooks (`[crm]`); the signing secret is
/// [`Secrets::crm_secret`].
#[derive(Debug, Clone)]
pub struct CrmConfig {
    pub retry: crate::crm::webhook::RetrySchedule,
    pub timeout: std::time::Duration,
    pub poll: std::time::Duration,
}

/// Secrets, from the environment only.
#[derive(Clone, Default)]
pub struct Secrets {
    /// `TELEMARKETER_API_TOKEN`: bearer token for the `/v1` API.
    pub api_token: Option<String>,
    /// `TWILIO_AUTH_TOKEN`: verifies webhook signatures (and authenticates REST calls).
    pub twilio_auth_token: Option<String>,
    /// `TWILIO_ACCOUNT_SID` (not secret, but it travels with the token).
    pub twilio_account_sid: Option<String>,
    /// `TWILIO_API_KEY_SID` + `TWILIO_API_KEY_SECRET`: REST auth by API key instead of the token.
    pub twilio_api_key: Option<(String, String)>,
    /// `TELEMARKETER_DATABASE_URL`: overrides `store.url` (it may carry a password).
    pub database_url: Option<String>,
    /// `TELEMARKETER_CRM_SECRET`: signs the webhooks to customers' CRMs.
    pub crm_secret: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |s: &Option<String>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Secrets")
            .field("api_token", &shown(&self.api_token))
            .field("twilio_auth_token", &shown(&self.twilio_auth_token))
            .field(
                "twilio_api_key",
                &shown(&self.twilio_api_key.as_ref().map(|k| k.0.clone())),
            )
            .field("database_url", &shown(&self.database_url))
            .field("crm_secret", &shown(&self.crm_secret))
            .finish()
    }
}

impl Secrets {
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            api_token: get("TELEMARKETER_API_TOKEN"),
            twilio_auth_token: get("TWILIO_AUTH_TOKEN"),
            twilio_account_sid: get("TWILIO_ACCOUNT_SID"),
            twilio_api_key: get("TWILIO_API_KEY_SID").zip(get("TWILIO_API_KEY_SECRET")),
            database_url: get("TELEMARKETER_DATABASE_URL"),
            crm_secret: get("TELEMARKETER_CRM_SECRET"),
        }
    }
}

pub const DEFAULT_GREETING: &str =
    "Hi, this is Nova, an automated AI assistant calling from Sunrise Solar. \
Is now a good time for a quick question about your electricity bill?";

pub const DEFAULT_OPT_OUT_MESSAGE: &str =
    "Understood. I have removed your number from our list and you will not be called again. Goodbye.";

pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are Nova, a friendly, brief phone agent for Sunrise Solar. \
You are talking on the phone, so answer in one or two short spoken sentences, without lists, \
markdown or emojis. Your goal is to book a free solar consultation.";

/// An engine's queue bounds: `{section}.queue_limit` jobs (1..=4096, default 64) waiting at
/// most `{section}.max_wait_ms` (100..=120000, default 10000).
fn queue_limits(
    section: &'static str,
    limit: Option<usize>,
    wait_ms: Option<u64>,
) -> Result<crate::engine::QueueLimits, ConfigError> {
    let (limit_key, wait_key) = match section {
        "stt" => ("stt.queue_limit", "stt.max_wait_ms"),
        "llm" => ("llm.queue_limit", "llm.max_wait_ms"),
        _ => ("tts.queue_limit", "tts.max_wait_ms"),
    };
    let invalid = |key, reason: &str| ConfigError::Invalid {
        key,
        reason: reason.into(),
    };
    let default = crate::engine::QueueLimits::default();
    let max_jobs = limit.unwrap_or(default.max_jobs);
    if !(1..=4096).contains(&max_jobs) {
        return Err(invalid(limit_key, "between 1 and 4096"));
    }
    let max_wait = wait_ms.map_or(default.max_wait, std::time::Duration::from_millis);
    if !(100..=120_000).contains(&max_wait.as_millis()) {
        return Err(invalid(wait_key, "between 100 and 120000"));
    }
    Ok(crate::engine::QueueLimits { max_jobs, max_wait })
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(4)
}

impl RawConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Every engine on one thread: what tests and 2-core machines want (ggml threads busy-wait).
    /// Fixed lines are rendered once, unheard: proofing them would take the ear and the voice
    /// from the calls under test while a script warms up.
    pub fn single_threaded(mut self) -> Self {
        self.stt.threads = Some(1);
        self.llm.threads = Some(1);
        self.tts.threads = Some(1);
        self.tts.takes = Some(1);
        self
    }

    /// Fills defaults and checks ranges.
    pub fn validate(self, secrets: Secrets) -> Result<Config, ConfigError> {
        let invalid = |key, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_string(),
        };
        let listen: SocketAddr = self
            .server
            .listen
            .as_deref()
            .unwrap_or("127.0.0.1:8080")
            .parse()
            .map_err(|e| invalid("server.listen", &format!("not an address: {e}")))?;
        if let Some(url) = &self.server.public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid(
                    "server.public_url",
                    "must start with https:// or http://",
                ));
            }
        }
        let dir = self.models.dir.unwrap_or_else(|| PathBuf::from("models"));
        let models = ModelPaths {
            stt: self.models.stt.unwrap_or_else(|| dir.join("stt.bin")),
            llm: self.models.llm.unwrap_or_else(|| dir.join("llm.gguf")),
            tts_config: self
                .models
                .tts_config
                .or_else(|| {
                    self.models
                        .tts
                        .as_ref()
                        .map(|p| PathBuf::from(format!("{}.json", p.display())))
                })
                .unwrap_or_else(|| dir.join("tts.onnx.json")),
            tts: self.models.tts.unwrap_or_else(|| dir.join("tts.onnx")),
            onnxruntime: self
                .models
                .onnxruntime
                .unwrap_or_else(|| dir.join("libonnxruntime.so")),
        };
        let threads = default_threads();
        let positive = |key: &'static str, v: Option<usize>, d: usize| match v {
            Some(0) => Err(invalid(key, "must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(d),
        };
        let stt = crate::engine::whisper::WhisperConfig {
            model_path: models.stt.clone(),
            threads: positive("stt.threads", self.stt.threads, threads)?,
            workers: positive("stt.workers", self.stt.workers, 1)?,
            audio_ctx: self.stt.audio_ctx.unwrap_or(0),
            beam: self.stt.beam.unwrap_or(0),
            use_gpu: cfg!(feature = "cuda"),
            queue: queue_limits("stt", self.stt.queue_limit, self.stt.max_wait_ms)?,
        };
        if stt.audio_ctx > 1500 {
            return Err(invalid("stt.audio_ctx", "at most 1500 (30 s)"));
        }
        // whisper.cpp keeps at most 8 decoders.
        if stt.beam > 8 {
            return Err(invalid("stt.beam", "at most 8 (0 or 1 = greedy)"));
        }
        let temperature = self.llm.temperature.unwrap_or(0.6);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(invalid("llm.temperature", "between 0 and 2"));
        }
        let context_tokens = self.llm.context_tokens.unwrap_or(4096);
        if context_tokens < 512 {
            return Err(invalid("llm.context_tokens", "at least 512"));
        }
        let llm = crate::engine::llama::LlamaConfig {
            model_path: models.llm.clone(),
            threads: positive("llm.threads", self.llm.threads, threads)?,
            workers: positive("llm.workers", self.llm.workers, 1)?,
            context_tokens,
            slots_per_worker: self.llm.slots_per_worker.unwrap_or(4).max(1),
            gpu_layers: self
                .llm
                .gpu_layers
                .unwrap_or(if cfg!(feature = "cuda") { 999 } else { 0 }),
            temperature,
            seed: self.llm.seed.unwrap_or(42),
            queue: queue_limits("llm", self.llm.queue_limit, self.llm.max_wait_ms)?,
            batching: self.llm.batching.unwrap_or(true),
            prompt_tokens_per_step: positive(
                "llm.prompt_tokens_per_step",
                self.llm.prompt_tokens_per_step,
                128,
            )?,
        };
        let tts = crate::engine::piper::PiperConfig {
            model_path: models.tts.clone(),
            config_path: models.tts_config.clone(),
            onnxruntime_path: models.onnxruntime.clone(),
            espeak_data_dir: self.tts.espeak_data_dir.or_else(find_espeak_data),
            threads: positive("tts.threads", self.tts.threads, threads)?,
            workers: positive("tts.workers", self.tts.workers, 1)?,
            length_scale: self.tts.length_scale,
            queue: queue_limits("tts", self.tts.queue_limit, self.tts.max_wait_ms)?,
            gpu: self.tts.gpu.unwrap_or(cfg!(feature = "cuda")),
        };
        let fixed_line_takes = self.tts.takes.unwrap_or(3);
        if !(1..=5).contains(&fixed_line_takes) {
            return Err(invalid("tts.takes", "between 1 and 5"));
        }
        if let Some(ls) = tts.length_scale {
            if !(0.3..=3.0).contains(&ls) {
                return Err(invalid("tts.length_scale", "between 0.3 and 3.0"));
            }
        }
        let max_reply_tokens = self.llm.max_reply_tokens.unwrap_or(60);
        if max_reply_tokens == 0 || max_reply_tokens >= context_tokens / 2 {
            return Err(invalid(
                "llm.max_reply_tokens",
                "between 1 and half of llm.context_tokens",
            ));
        }
        let opt_out_digit = match self.conversation.opt_out_digit.as_deref() {
            None => Some('9'),
            Some("") => None,
            Some(d) if d.len() == 1 && "0123456789*#".contains(d) => d.chars().next(),
            Some(_) => {
                return Err(invalid(
                    "conversation.opt_out_digit",
                    "one of 0-9, * or #, or \"\" to disable",
                ))
            }
        };
        let max_reply_sentences = self.conversation.max_reply_sentences.unwrap_or(2).max(1);
        use crate::script::format::{OpenConversation, Script};
        let script = match self.conversation.script.as_deref() {
            None => {
                let open = OpenConversation {
                    greeting: self
                        .conversation
                        .greeting
                        .unwrap_or_else(|| DEFAULT_GREETING.to_string()),
                    system_prompt: self
                        .conversation
                        .system_prompt
                        .unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.to_string()),
                    opt_out_digit,
                    opt_out_message: self
                        .conversation
                        .opt_out_message
                        .unwrap_or_else(|| DEFAULT_OPT_OUT_MESSAGE.to_string()),
                    max_reply_sentences,
                };
                Script::open_conversation(&open).map_err(ConfigError::Conversation)?
            }
            Some(p) if p == Path::new("example") => Script::from_toml(
                "scripts/campaigns/solar.toml",
                crate::script::EXAMPLE_SCRIPT,
            )?,
            Some(p) => Script::from_file(p)?,
        };
        for w in &script.warnings {
            tracing::warn!(key = %w.key, "conversation.script: {}", w.reason);
        }
        let conversation = ConversationConfig {
            script: std::sync::Arc::new(script),
            max_reply_tokens,
            max_reply_sentences,
            prepare_lines: self.conversation.prepare_lines.unwrap_or(true),
        };
        let turn = TurnConfig {
            vad_aggressiveness: self.turn.vad_aggressiveness.unwrap_or(2),
            min_speech_ms: self.turn.min_speech_ms.unwrap_or(60),
            endpoint_silence_ms: self.turn.endpoint_silence_ms.unwrap_or(800),
            min_endpoint_ms: self.turn.min_endpoint_ms.unwrap_or(500),
            max_endpoint_ms: self.turn.max_endpoint_ms.unwrap_or(3000),
            barge_in_min_ms: self.turn.barge_in_min_ms.unwrap_or(200),
            backchannels: self
                .turn
                .backchannels
                .unwrap_or_else(default_backchannels)
                .into_iter()
                .map(|b| b.to_lowercase())
                .collect(),
            echo_onset_ms: self.turn.echo_onset_ms.unwrap_or(100),
            echo_margin_db: self.turn.echo_margin_db.unwrap_or(12.0),
            max_utterance_ms: self.turn.max_utterance_ms.unwrap_or(15_000),
            output_lead_ms: self.turn.output_lead_ms.unwrap_or(300),
            dead_air_ms: self.turn.dead_air_ms.unwrap_or(2500),
            unclear_hold_ms: self.turn.unclear_hold_ms.unwrap_or(1200),
            min_confidence: self.turn.min_confidence.unwrap_or(0.5),
            resume_window_ms: self.turn.resume_window_ms.unwrap_or(2500),
            resume_heard_ms: self.turn.resume_heard_ms.unwrap_or(400),
        };
        if turn.vad_aggressiveness > 3 {
            return Err(invalid("turn.vad_aggressiveness", "0 to 3"));
        }
        if !(100..=5000).contains(&turn.endpoint_silence_ms) {
            return Err(invalid("turn.endpoint_silence_ms", "between 100 and 5000"));
        }
        if !(turn.min_endpoint_ms <= turn.endpoint_silence_ms
            && turn.endpoint_silence_ms <= turn.max_endpoint_ms)
        {
            return Err(invalid(
                "turn.endpoint_silence_ms",
                "must lie between turn.min_endpoint_ms and turn.max_endpoint_ms",
            ));
        }
        if turn.output_lead_ms < 20 || turn.output_lead_ms > 2000 {
            return Err(invalid("turn.output_lead_ms", "between 20 and 2000"));
        }
        if !(500..=30_000).contains(&turn.dead_air_ms) {
            return Err(invalid("turn.dead_air_ms", "between 500 and 30000"));
        }
        // The hold must end well before the dead-air guard would ask again over it.
        if turn.unclear_hold_ms > 5000 || turn.unclear_hold_ms >= turn.dead_air_ms {
            return Err(invalid(
                "turn.unclear_hold_ms",
                "at most 5000 and less than turn.dead_air_ms",
            ));
        }
        if !(0.0..=1.0).contains(&turn.min_confidence) {
            return Err(invalid(
                "turn.min_confidence",
                "between 0 and 1 (0: the LLM reads every turn the rules cannot)",
            ));
        }
        if turn.resume_window_ms > 10_000 || turn.resume_heard_ms > 10_000 {
            return Err(invalid(
                "turn.resume_window_ms",
                "resume_window_ms and resume_heard_ms at most 10000",
            ));
        }
        let store_url = secrets
            .database_url
            .clone()
            .or(self.store.url)
            .unwrap_or_else(|| "sqlite://telemarketer.db".into());
        if !(store_url.starts_with("sqlite:")
            || store_url.starts_with("postgres://")
            || store_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "store.url",
                "must be sqlite://PATH or postgres://... (TELEMARKETER_DATABASE_URL overrides it)",
            ));
        }
        let twilio = TwilioConfig {
            base_url: self
                .twilio
                .base_url
                .unwrap_or_else(|| "https://api.twilio.com".into())
                .trim_end_matches('/')
                .to_string(),
            account_sid: self.twilio.account_sid,
            // Claims are told apart by it: appliances sharing a database need distinct ones.
            worker_id: self.twilio.worker_id.unwrap_or_else(|| {
                std::env::var("HOSTNAME")
                    .ok()
                    .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "telemarketer".into())
            }),
        };
        if !(twilio.base_url.starts_with("https://") || twilio.base_url.starts_with("http://")) {
            return Err(invalid(
                "twilio.base_url",
                "must start with https:// or http://",
            ));
        }
        if let Some(sid) = &twilio.account_sid {
            if !(sid.len() == 34 && sid.starts_with("AC")) {
                return Err(invalid("twilio.account_sid", "must be AC + 32 hex digits"));
            }
        }
        let seconds = |key, value: Option<u64>, default, range: std::ops::RangeInclusive<u64>| {
            let v = value.unwrap_or(default);
            if range.contains(&v) {
                Ok(std::time::Duration::from_secs(v))
            } else {
                Err(invalid(
                    key,
                    &format!("{}..={} seconds", range.start(), range.end()),
                ))
            }
        };
        let max_calls = self.server.max_calls.unwrap_or_else(|| {
            CALLS_PER_CORE * std::thread::available_parallelism().map_or(1, |n| n.get())
        });
        if !(1..=10_000).contains(&max_calls) {
            return Err(invalid("server.max_calls", "1..=10000 calls"));
        }
        let shutdown_grace = seconds(
            "server.shutdown_grace_s",
            self.server.shutdown_grace_s,
            30,
            0..=3600,
        )?;
        let max_connections = self.server.max_connections.unwrap_or(1024);
        if !(16..=100_000).contains(&max_connections) {
            return Err(invalid("server.max_connections", "16..=100000 connections"));
        }
        let header_timeout = seconds(
            "server.header_timeout_s",
            self.server.header_timeout_s,
            10,
            1..=300,
        )?;
        let allow_unregistered_media = self.server.allow_unregistered_media.unwrap_or(false);
        // Anyone who can reach the port could list any number on the do-not-call list.
        if allow_unregistered_media && !listen.ip().is_loopback() {
            return Err(invalid(
                "server.allow_unregistered_media",
                "only with a loopback server.listen address (127.0.0.1 or ::1)",
            ));
        }
        let dialer = DialerConfig {
            lease: seconds("dialer.lease_s", self.dialer.lease_s, 60, 3..=3600)?,
            settle_unknown: seconds(
                "dialer.settle_unknown_s",
                self.dialer.settle_unknown_s,
                120,
                1..=86_400,
            )?,
            reconcile_every: seconds("dialer.reconcile_s", self.dialer.reconcile_s, 15, 1..=3600)?,
        };
        let defaults = crate::crm::webhook::RetrySchedule::default();
        let retry = crate::crm::webhook::RetrySchedule {
            base: self
                .crm
                .retry_base_ms
                .map_or(defaults.base, std::time::Duration::from_millis),
            cap: seconds("crm.retry_cap_s", self.crm.retry_cap_s, 3600, 1..=86_400)?,
            max_attempts: self.crm.max_attempts.unwrap_or(defaults.max_attempts),
        };
        if !(10..=3_600_000).contains(&retry.base.as_millis()) {
            return Err(invalid("crm.retry_base_ms", "10..=3600000 ms"));
        }
        if !(1..=100).contains(&retry.max_attempts) {
            return Err(invalid("crm.max_attempts", "1..=100"));
        }
        let crm = CrmConfig {
            retry,
            timeout: seconds("crm.timeout_s", self.crm.timeout_s, 10, 1..=120)?,
            poll: std::time::Duration::from_millis(self.crm.poll_ms.unwrap_or(1000)),
        };
        if !(10..=60_000).contains(&crm.poll.as_millis()) {
            return Err(invalid("crm.poll_ms", "10..=60000 ms"));
        }
        let recordings_dir = self
            .recordings
            .dir
            .unwrap_or_else(|| default_recordings_dir(&store_url));
        if recordings_dir.as_os_str().is_empty() {
            return Err(invalid("recordings.dir", "must name a folder"));
        }
        let recordings_dir = std::path::absolute(&recordings_dir).unwrap_or(recordings_dir);
        Ok(Config {
            recordings_dir,
            fixed_line_takes,
            dialer,
            crm,
            store_url,
            twilio,
            listen,
            public_url: self
                .server
                .public_url
                .map(|u| u.trim_end_matches('/').to_string()),
            allow_unsigned_webhooks: self.server.allow_unsigned_webhooks.unwrap_or(false),
            max_calls,
            shutdown_grace,
            max_connections,
            header_timeout,
            allow_unregistered_media,
            models,
            stt,
            llm,
            tts,
            conversation,
            turn,
            secrets,
        })
    }
}

/// `recordings` beside the SQLite file (`sqlite://data/tm.db` -> `data/recordings`); for an
/// in-memory database or PostgreSQL, `./recordings`.
fn default_recordings_dir(store_url: &str) -> PathBuf {
    let file = store_url
        .strip_prefix("sqlite://")
        .or_else(|| store_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .filter(|f| !f.is_empty() && !f.contains(":memory:"));
    match file.and_then(|f| Path::new(f).parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("recordings"),
        _ => PathBuf::from("recordings"),
    }
}

/// Debian's espeak-ng-data location, used when the config names none.
fn find_espeak_data() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/share",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.join("espeak-ng-data").is_dir())
}

/// The default backchannel list.
pub fn default_backchannels() -> Vec<String> {
    [
        "uh-huh", "uh huh", "mm-hmm", "mhm", "mm", "hmm", "yeah", "yep", "yes", "okay", "ok",
        "right", "sure", "i see", "got it", "alright", "uh", "um", "oh",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[cfg(test)]
mod tests;
