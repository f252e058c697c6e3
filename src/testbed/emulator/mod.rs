//! A local Twilio: it behaves toward our server the way Twilio does, so a whole campaign can run
//! offline (the integration test bed, and the product's "rehearse a campaign" feature).
//!
//! What it does, in Twilio's documented shapes (shared/docs/twilio.md):
//! - the REST Calls API (create, list with filters, fetch, update: hang up, cancel, redirect) with
//!   HTTP Basic auth and Twilio's error JSON, plus injectable faults (429, 500 before or after the
//!   call is created) for the dialer's retry paths;
//! - per call, the status-callback lifecycle (`initiated`, `ringing`, `answered`, `completed`),
//!   every webhook form-encoded and signed with `X-Twilio-Signature`, sent in order;
//! - answering machine detection, sync (answer held back until detection) and async
//!   (`AsyncAmdStatusCallback`);
//! - the voice webhook: TwiML is fetched and executed; `<Connect><Stream>` opens a real Media
//!   Streams WebSocket to our server, with [`crate::testbed::sim`] playing the callee ([`Persona`]);
//!   `<Play>` fetches its audio (kept in [`EmulatedCall::played`]);
//! - `<Dial><Number url>` (a transfer): the dialed number answers as its persona (a human after
//!   the ring, `no-answer` never, `busy`), hears the `<Number url>` TwiML (the whisper, kept in
//!   [`DialReport`]), talks for [`BRIDGED`], and the signed `action` gets `DialCallStatus`; the
//!   TwiML it returns continues the call.
//!
//! Layout (split by what changes together):
//! - `mod.rs`: the public API and the shared state (one mutex, never held across an await, so a
//!   REST handler can never wait on a call task or the reverse: our server may call the REST API
//!   from inside a webhook the emulator is awaiting);
//! - `rest.rs`: the axum routes (REST + the `/_emulator` control routes) and call JSON;
//! - `lifecycle.rs`: one tokio task per call: callbacks, AMD, TwiML execution, the media leg;
//!   `lifecycle/dial.rs`: `<Dial>` and `<Play>`;
//! - `twiml.rs`: a small tolerant TwiML reader (only the verbs an outbound dialer uses).
//!
//! Timing is compressed where Twilio's would only slow tests: ringing lasts [`EmulatorConfig::ring`]
//! and AMD decides a human in [`AMD_DETECT`]; the media leg runs in real time (20 ms frames).

mod callee;
mod lifecycle;
mod rest;
pub mod scenario;
#[cfg(test)]
mod tests;
mod twiml;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long AMD takes to call a human (or a fax, or `machine_start`): Twilio needs a few
/// seconds; one keeps tests quick while still separating "answered" from "detected".
pub const AMD_DETECT: Duration = Duration::from_secs(1);
/// The beep an answering machine plays after its greeting.
pub const BEEP: Duration = Duration::from_millis(500);
/// How long a voicemail records after the beep before it hangs up.
pub const VOICEMAIL_MAX: Duration = Duration::from_secs(20);
/// How long a dialed person who answered talks with the caller before hanging up.
pub const BRIDGED: Duration = Duration::from_secs(2);

/// Everything the emulator needs to know.
pub struct EmulatorConfig {
    /// `AC` + 32 hex: the only account the REST API accepts in its path.
    pub account_sid: String,
    /// Checks REST Basic auth (`AccountSid:token`, or any `SK...` key with this token as its
    /// secret) and signs every webhook the emulator sends.
    pub auth_token: String,
    /// Who answers, by the `To` number (E.164).
    pub personas: HashMap<String, Persona>,
    /// Who answers the second, third... call to a number; after the last, the last.
    pub later: HashMap<String, Vec<Persona>>,
    pub default_persona: Persona,
    /// Queued -> ringing and ringing -> answer (or busy, no-answer, failed) each take this long.
    pub ring: Duration,
    /// Speaks the callee's lines (Piper in the product). `None` is refused at start when any
    /// persona has a `Say` line; a machine greeting without TTS is silence of a plausible length.
    pub tts: Option<Arc<dyn crate::engine::TextToSpeech>>,
}

impl Persona {
    /// A person who says these lines (each waits for the agent, see [`Persona::Human`]).
    pub fn human(lines: &[&str]) -> Self {
        Self::Human {
            lines: lines
                .iter()
                .map(|l| CallerLine::Say(l.to_string()))
                .collect(),
        }
    }

    /// Whether the configured TTS must speak for this persona: a line said in the default
    /// voice (Piper), or a machine's greeting.
    pub fn needs_tts(&self) -> bool {
        match self {
            Self::Human { lines } => {
                let mut tts = true;
                lines.iter().any(|l| match l {
                    CallerLine::Voice(v) => {
                        tts = *v == crate::testbed::voice::Voice::Tts;
                        false
                    }
                    CallerLine::Say(_) => tts,
                    _ => false,
                })
            }
            Self::Machine { .. } => true,
            _ => false,
        }
    }
}

impl EmulatorConfig {
    /// No personas, everyone a silent human who waits for the agent and hangs up, 500 ms rings.
    pub fn new(account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            personas: HashMap::new(),
            later: HashMap::new(),
            default_persona: Persona::Human { lines: Vec::new() },
            ring: Duration::from_millis(500),
            tts: None,
        }
    }

    /// Who answers and how long it rings, from a rehearsal scenario (no voice yet).
    pub fn from_scenario(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        scenario: &scenario::Scenario,
    ) -> Self {
        Self {
            ring: scenario.ring,
            default_persona: scenario.default_persona.clone(),
            personas: scenario.personas.clone(),
            later: scenario.later.clone(),
            ..Self::new(account_sid, auth_token)
        }
    }

    /// Who answers the `nth` call (0: the first) to `to`.
    fn persona_for(&self, to: &str, nth: usize) -> Persona {
        let later = nth
            .checked_sub(1)
            .and_then(|i| self.later.get(to).and_then(|l| l.get(i).or(l.last())));
        later
            .or_else(|| self.personas.get(to))
            .unwrap_or(&self.default_persona)
            .clone()
    }
}

/// Who (or what) answers a number.
#[derive(Debug, Clone)]
pub enum Persona {
    /// Answers. Before each `Say`/`Key` line it waits for the agent to speak and then be quiet
    /// for 800 ms (at most 30 s), except right after a `Silence` line, which sets the timing
    /// itself (`[Silence(0), Say("Hello?")]` speaks first). After the last line it waits for the
    /// agent once more and hangs up, unless our server ends the call first.
    Human { lines: Vec<CallerLine> },
    /// Never answered: the `completed` event carries `CallStatus=busy`.
    Busy,
    /// Never answered: `CallStatus=no-answer`.
    NoAnswer,
    /// Never answered nor rang (a bad number): `CallStatus=failed`.
    Failed,
    /// An answering machine: the greeting, a 1 kHz beep, then it records what is played
    /// (at most [`VOICEMAIL_MAX`]).
    Machine { greeting: String },
    /// A fax machine: answers and sends CNG tones, then hangs up.
    Fax,
}

/// One thing a human callee does (the scenario's line mini-language, see [`scenario`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CallerLine {
    Say(String),
    /// Stay quiet; the next line then starts regardless of the agent (a pause mid-turn when
    /// it sits between two lines).
    Silence(Duration),
    Key(char),
    HangUp,
    /// The next line starts this long after the agent starts talking (barge-in at a phase).
    Over(Duration),
    /// Quiet unintelligible speech this long.
    Mumble(Duration),
    /// Hang up this far into the next line (mid-sentence).
    HangUpAfter(Duration),
    /// A text frame sent as is (malformed input mid-call).
    Raw(String),
    /// A binary frame (Twilio never sends one).
    Binary,
    /// The voice of the lines after this one.
    Voice(crate::testbed::voice::Voice),
    /// Line noise (dBFS RMS) under everything sent from here on; `None` stops it.
    Noise(Option<f32>),
    /// How long the agent must be quiet before the caller answers (default 800 ms).
    Patience(Duration),
}

/// A failure injected into the next `Calls.json` creates, consumed in order (only by requests
/// that pass auth and validation: a fault stands for Twilio failing a good request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum Fault {
    /// 429, code 20429; no call.
    RateLimited,
    /// 500; no call.
    ServerErrorBeforeCreate,
    /// 500, but the call was created and runs: the client must list calls to find out.
    ServerErrorAfterCreate,
}

/// Which webhook a [`SentCallback`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// The call's `Url` (TwiML fetch), also after a redirect.
    Voice,
    /// `StatusCallback`.
    Status,
    /// `AsyncAmdStatusCallback`.
    AsyncAmd,
    /// A `<Dial>`'s `<Number url>`: the TwiML for the person who answered (the whisper).
    Whisper,
    /// A `<Dial>`'s `action`: how the dial ended.
    DialAction,
}

/// Media a `<Play>` fetched, as the listener got it.
#[derive(Debug, Clone)]
pub struct Played {
    pub url: String,
    /// Our server's HTTP status; `None` when it did not answer.
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub audio: Vec<u8>,
}

/// A `<Dial>`: who was dialed, how it ended, what the person heard before the bridge.
#[derive(Debug, Clone, Default)]
pub struct DialReport {
    pub number: String,
    /// `DialCallStatus`: completed, no-answer, busy, failed.
    pub status: String,
    /// Seconds bridged (`DialCallDuration`).
    pub duration_s: u64,
    /// The whisper's `<Play>`s and `<Say>`s, in order.
    pub whisper: Vec<Played>,
    pub whisper_said: Vec<String>,
}

/// A webhook the emulator sent to our server.
#[derive(Debug, Clone)]
pub struct SentCallback {
    pub kind: WebhookKind,
    /// The URL as requested (for `GET`, with the parameters in its query string).
    pub url: String,
    pub method: String,
    pub params: Vec<(String, String)>,
    /// The `X-Twilio-Signature` sent.
    pub signature: String,
    /// What our server answered; `None` when it did not answer (refused, timed out).
    pub status: Option<u16>,
}

impl SentCallback {
    /// The first value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        first(&self.params, name)
    }
}

/// A snapshot of one call.
#[derive(Debug, Clone)]
pub struct EmulatedCall {
    pub sid: String,
    pub to: String,
    pub from: String,
    /// A person rang our number ([`RunningEmulator::ring_in`], `Direction=inbound`); else we
    /// placed the call over REST (`outbound-api`).
    pub inbound: bool,
    /// The REST status: queued, ringing, in-progress, completed, busy, no-answer, failed, canceled.
    pub status: String,
    pub answered_by: Option<String>,
    /// The create request's form pairs, as received.
    pub create_params: Vec<(String, String)>,
    /// Every webhook sent for this call, in the order they were answered.
    pub callbacks: Vec<SentCallback>,
    /// The TwiML last executed (fetched from `Url`, or the `Twiml` parameter).
    pub twiml: Option<String>,
    /// The last media leg: what the callee heard. For a machine, `heard` keeps only what was
    /// played after the beep (what the voicemail recorded); `agent_track` keeps the whole line.
    pub media: Option<crate::testbed::sim::SimReport>,
    /// `caller` (the persona hung up), `api` (REST `Status=completed|canceled`), `stream-closed`
    /// (our server closed the WebSocket and the TwiML after `<Connect>` ended the call), `twiml`
    /// (`<Hangup/>`, `<Reject/>` or the end of the document), `time-limit` (the create's
    /// `TimeLimit` ran out), `error` (see `error`).
    pub hung_up_by: Option<String>,
    /// `<Say>` texts and `<Play>` URLs the TwiML played (outside a media stream).
    pub said: Vec<String>,
    /// What each `<Play>` (outside a media stream) fetched.
    pub played: Vec<Played>,
    /// The last `<Dial>`.
    pub dial: Option<DialReport>,
    /// Why the call ended abnormally: the voice webhook failed, unparseable TwiML, media leg
    /// connect failure, TTS failure.
    pub error: Option<String>,
}

impl EmulatedCall {
    /// The `CallStatus` of every status callback sent, in order.
    pub fn status_events(&self) -> Vec<String> {
        self.callbacks
            .iter()
            .filter(|c| c.kind == WebhookKind::Status)
            .filter_map(|c| c.param("CallStatus").map(str::to_string))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("emulator config: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The emulator, serving until [`RunningEmulator::shutdown`] or drop.
pub struct RunningEmulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl RunningEmulator {
    /// Validates the config and starts serving on `listen` (`127.0.0.1:0` picks a free port).
    pub async fn start(config: EmulatorConfig, listen: SocketAddr) -> Result<Self, EmulatorError> {
        validate_config(&config)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: listen,
                source,
            })?;
        // Twilio gives up on a webhook after 15 s.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent("TwilioProxy/1.1")
            .build()
            .map_err(|e| EmulatorError::Config(format!("http client: {e}")))?;
        let shared = Arc::new(Shared {
            config,
            http,
            state: Mutex::new(State::default()),
            root: CancellationToken::new(),
            speech_cache: Mutex::new(HashMap::new()),
        });
        let app = rest::router(shared.clone());
        let stop = shared.root.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "emulator server stopped");
            }
        });
        tracing::info!(%addr, "Twilio emulator listening");
        Ok(Self { shared, addr })
    }

    /// `http://127.0.0.1:PORT`: our REST client's Twilio base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for the next `Calls.json` creates.
    pub fn inject(&self, faults: Vec<Fault>) {
        self.shared.state().faults.extend(faults);
    }

    /// Every call so far, in creation order.
    pub fn calls(&self) -> Vec<EmulatedCall> {
        self.shared
            .state()
            .calls
            .iter()
            .map(|r| r.call.clone())
            .collect()
    }

    /// A person (`persona`) at `from` rings our number `to`: like Twilio for a number whose
    /// voice URL is `voice_url` (and status callback `status_callback`, which hears only
    /// `completed`, Twilio's default), the call arrives with `Direction=inbound`, our TwiML
    /// answers it and the person talks as they would on a dialed call. Returns the call SID.
    pub fn ring_in(
        &self,
        from: &str,
        to: &str,
        persona: Persona,
        voice_url: &str,
        status_callback: Option<&str>,
    ) -> String {
        let mut params = vec![
            ("From".to_string(), from.to_string()),
            ("To".to_string(), to.to_string()),
        ];
        if let Some(url) = status_callback {
            params.push(("StatusCallback".into(), url.to_string()));
        }
        let voice = VoiceSource::Url {
            url: voice_url.to_string(),
            method: "POST".into(),
        };
        let account = self.shared.config.account_sid.clone();
        rest::add_call(&self.shared, &account, params, persona, voice, true).0
    }

    /// One call by SID.
    pub fn call(&self, sid: &str) -> Option<EmulatedCall> {
        self.shared.state().find(sid).map(|r| r.call.clone())
    }

    /// Every `POST Calls.json`: the `To` sent and the HTTP status answered.
    pub fn create_requests(&self) -> Vec<(String, u16)> {
        self.shared.state().create_requests.clone()
    }

    /// Waits until every call has ended and sent its last webhook. `false` on timeout.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.state().calls.iter().all(|r| r.done) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the server and every call at once (no further webhooks).
    pub fn shutdown(self) {
        // Drop does the work.
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.shared.root.cancel();
    }
}

fn validate_config(config: &EmulatorConfig) -> Result<(), EmulatorError> {
    let sid = &config.account_sid;
    if !(sid.len() == 34
        && sid.starts_with("AC")
        && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(EmulatorError::Config(format!(
            "account_sid must be AC + 32 hex digits, got {sid:?}"
        )));
    }
    if config.auth_token.is_empty() {
        return Err(EmulatorError::Config("auth_token is empty".into()));
    }
    if config.tts.is_none() {
        let speaks = |p: &Persona| matches!(p, Persona::Human { .. }) && p.needs_tts();
        if let Some(to) = config
            .personas
            .iter()
            .find(|(_, p)| speaks(p))
            .map(|(to, _)| to.clone())
            .or_else(|| {
                speaks(&config.default_persona).then_some(String::from("the default persona"))
            })
        {
            return Err(EmulatorError::Config(format!(
                "the persona for {to} has Say lines but no tts is configured"
            )));
        }
    }
    Ok(())
}

/// The first value of a form parameter.
fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A random Twilio SID: two letters + 32 hex.
fn new_sid(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

fn is_terminal(status: &str) -> bool {
    matches!(
        status,
        "completed" | "busy" | "no-answer" | "failed" | "canceled"
    )
}

/// Where a call's TwiML comes from.
#[derive(Debug, Clone)]
enum VoiceSource {
    Url { url: String, method: String },
    Twiml(String),
}

/// State shared by the REST handlers and the call tasks.
struct Shared {
    config: EmulatorConfig,
    http: reqwest::Client,
    state: Mutex<State>,
    /// Cancelled at shutdown: stops the server and every call task.
    root: CancellationToken,
    /// Synthesized callee lines at 8 kHz, by text: a campaign repeats the same persona lines.
    speech_cache: Mutex<HashMap<String, Arc<Vec<i16>>>>,
}

impl Shared {
    /// The state lock. A panic elsewhere must not turn every later request into a panic.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a call's record, if it exists.
    fn with_call<R>(&self, sid: &str, f: impl FnOnce(&mut CallRecord) -> R) -> Option<R> {
        self.state().find_mut(sid).map(f)
    }
}

#[derive(Default)]
struct State {
    calls: Vec<CallRecord>,
    faults: VecDeque<Fault>,
    create_requests: Vec<(String, u16)>,
}

impl State {
    fn find(&self, sid: &str) -> Option<&CallRecord> {
        self.calls.iter().find(|r| r.call.sid == sid)
    }
    fn find_mut(&mut self, sid: &str) -> Option<&mut CallRecord> {
        self.calls.iter_mut().find(|r| r.call.sid == sid)
    }
}

/// One call: the public snapshot plus what the REST API and the call task share.
struct CallRecord {
    call: EmulatedCall,
    persona: Persona,
    date_created: DateTime<Utc>,
    date_updated: DateTime<Utc>,
    start_time: Option<DateTime<Utc>>,
    end_time: Option<DateTime<Utc>>,
    answered_at: Option<Instant>,
    /// Seconds, once ended.
    duration: Option<u64>,
    /// Replaced by a redirect before the call is answered.
    voice: VoiceSource,
    /// Cancelled when the call is ended from outside (REST): interrupts the call task.
    hangup: CancellationToken,
    /// Redirects of a live call (REST `Url=`/`Twiml=`).
    redirects: mpsc::UnboundedSender<VoiceSource>,
    /// The call task has finished (terminal status and the last webhook sent).
    done: bool,
}

impl CallRecord {
    /// Ends the call unless it already ended: the first ending wins (a REST hang-up racing the
    /// callee's hang-up must not be overwritten).
    fn end(&mut self, status: &str, hung_up_by: Option<&str>) -> bool {
        if is_terminal(&self.call.status) {
            return false;
        }
        let now = Utc::now();
        self.call.status = status.to_string();
        if self.call.hung_up_by.is_none() {
            self.call.hung_up_by = hung_up_by.map(str::to_string);
        }
        self.end_time = Some(now);
        self.date_updated = now;
        // Whole seconds, rounded up as Twilio bills them; the 50 ms of slack keeps a
        // `TimeLimit=1` call at "1" despite timer lateness.
        self.duration = Some(
            self.answered_at
                .map(|t| (t.elapsed().as_secs_f64() - 0.05).max(0.0).ceil() as u64)
                .unwrap_or(0),
        );
        self.hangup.cancel();
        true
    }

    fn set_status(&mut self, status: &str) {
        if !is_terminal(&self.call.status) {
            self.call.status = status.to_string();
            self.date_updated = Utc::now();
        }
    }
}
