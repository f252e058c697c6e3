//! Application assembly: one way to build the appliance, used by `serve`, `rehearse`,
//! `simulate`, `loadtest`, the benches and the tests.
//!
//! Models load once, before the port opens ([`Engines::load`]); a missing model file fails there
//! with the path and the command that fetches it. [`AppBuilder`] then wires the engines, the
//! store, the Twilio REST client, the dialer, the CRM courier and the recordings' retention
//! sweep into the HTTP state. Its knobs are the few that differ between those users: fake
//! engines, no database, the rehearsal clock, the dialer's polling interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call::registry::CallRegistry;
use crate::call::SessionDeps;
use crate::config::Config;
use crate::crm::{Courier, CourierOptions};
use crate::dialer::{Clock, Dialer, DialerOptions};
use crate::engine::llama::LlamaEngine;
use crate::engine::piper::PiperEngine;
use crate::engine::whisper::WhisperEngine;
use crate::engine::{EngineError, LanguageModel, SpeechToText, TextToSpeech};
use crate::http::AppState;
use crate::script::format::Script;
use crate::script::ScriptBook;
use crate::store::{Store, StoreError};
use crate::twilio_rest::{TwilioAuth, TwilioClient, TwilioError};

/// The three real engines, loaded.
#[derive(Clone)]
pub struct Engines {
    pub stt: WhisperEngine,
    pub llm: LlamaEngine,
    pub tts: PiperEngine,
}

impl Engines {
    /// Loads all models (blocking; seconds). Call from a blocking context or before the runtime.
    pub fn load(config: &Config) -> Result<Self, EngineError> {
        let t = Instant::now();
        let stt = WhisperEngine::load(&config.stt)?;
        tracing::info!(ms = t.elapsed().as_millis() as u64, path = %config.stt.model_path.display(), "STT loaded");
        let t = Instant::now();
        let llm = LlamaEngine::load(&config.llm)?;
        tracing::info!(ms = t.elapsed().as_millis() as u64, path = %config.llm.model_path.display(), "LLM loaded");
        let t = Instant::now();
        let tts = PiperEngine::load(&config.tts)?;
        tracing::info!(ms = t.elapsed().as_millis() as u64, path = %config.tts.model_path.display(), "TTS loaded");
        Ok(Self { stt, llm, tts })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Twilio REST client: {0}")]
    Twilio(#[from] TwilioError),
    #[error("server.public_url is required to dial (Twilio must reach our webhooks)")]
    NoPublicUrl,
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// How often recordings past their campaign's retention are looked for (and once at start).
const RETENTION_SWEEP: Duration = Duration::from_secs(3600);

/// Why dialing is off without Twilio credentials.
const NO_CREDENTIALS: &str = "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (REST may use \
TWILIO_API_KEY_SID + TWILIO_API_KEY_SECRET instead of the token), and server.public_url";
/// Why dialing is off with REST credentials but no auth token.
const NO_AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN is not set, so Twilio's webhook signatures \
cannot be verified and every call would be refused at its first webhook (an API key \
authenticates REST only); set TWILIO_AUTH_TOKEN";

/// The REST client, when an account and credentials are configured (API key first: it can be
/// revoked without rotating the account's auth token).
pub fn twilio_client(config: &Config) -> Option<Result<TwilioClient, TwilioError>> {
    let secrets = &config.secrets;
    let account = secrets
        .twilio_account_sid
        .clone()
        .or_else(|| config.twilio.account_sid.clone())?;
    let auth = match (&secrets.twilio_api_key, &secrets.twilio_auth_token) {
        (Some((sid, secret)), _) => TwilioAuth::ApiKey {
            sid: sid.clone(),
            secret: secret.clone(),
        },
        (None, Some(token)) => TwilioAuth::AuthToken(token.clone()),
        (None, None) => return None,
    };
    Some(TwilioClient::new(&config.twilio.base_url, &account, auth))
}

/// Builds the appliance from a validated config and engines.
pub struct AppBuilder {
    config: Config,
    stt: Arc<dyn SpeechToText>,
    llm: Arc<dyn LanguageModel>,
    tts: Arc<dyn TextToSpeech>,
    with_store: bool,
    calling_hours_offset: chrono::Duration,
    dialer_poll: Duration,
    dialer_clock: Clock,
    /// The STT proofs each fixed line's rendering (`[tts] takes`): real engines only, a fake
    /// ear would hear its scripted caller lines.
    proof_fixed_lines: bool,
}

/// A server started by [`AppBuilder::spawn_local`].
pub struct LocalApp {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
}

impl LocalApp {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn media_url(&self) -> String {
        format!("ws://{}/twilio/media", self.addr)
    }
}

impl AppBuilder {
    /// The whole appliance on the real engines: the store from `config`, and the dialer when
    /// Twilio credentials are configured.
    pub fn new(config: Config, engines: &Engines) -> Self {
        let mut builder = Self::with_engines(
            config,
            Arc::new(engines.stt.clone()),
            Arc::new(engines.llm.clone()),
            Arc::new(engines.tts.clone()),
        );
        builder.proof_fixed_lines = true;
        builder
    }

    /// Any engines (tests use fakes).
    pub fn with_engines(
        config: Config,
        stt: Arc<dyn SpeechToText>,
        llm: Arc<dyn LanguageModel>,
        tts: Arc<dyn TextToSpeech>,
    ) -> Self {
        Self {
            config,
            stt,
            llm,
            tts,
            with_store: true,
            calling_hours_offset: chrono::Duration::zero(),
            dialer_poll: Duration::from_millis(500),
            dialer_clock: Clock::default(),
            proof_fixed_lines: false,
        }
    }

    /// The conversation engine alone: calls kept in memory, no database, no dialer
    /// (simulate, loadtest, benches, logic tests).
    pub fn in_memory(mut self) -> Self {
        self.with_store = false;
        self
    }

    /// Shifts the clock used for calling hours (rehearsals only).
    pub fn calling_hours_offset(mut self, offset: chrono::Duration) -> Self {
        self.calling_hours_offset = offset;
        self
    }

    /// The dialer's clock for what is due (tests move it to a callback's time).
    pub fn dialer_clock(mut self, clock: Clock) -> Self {
        self.dialer_clock = clock;
        self
    }

    /// How often an idle campaign looks for due leads.
    pub fn dialer_poll(mut self, every: Duration) -> Self {
        self.dialer_poll = every;
        self
    }

    /// Connects the store and builds the dialer. Never waits for Twilio: the dialer settles
    /// what a crash left mid-dial and resumes running campaigns in the background, retrying
    /// while Twilio is unreachable.
    pub async fn build(self) -> Result<AppState, StartError> {
        // Fixed lines are synthesised once, when a script loads, not on a caller's turn.
        let mut voice = crate::call::voice::Voice::new(self.tts.clone());
        if self.proof_fixed_lines {
            voice = voice.with_proof(self.stt.clone(), self.config.fixed_line_takes);
        }
        let warm = {
            let voice = voice.clone();
            move |script: &Arc<Script>| {
                let (voice, script) = (voice.clone(), script.clone());
                tokio::spawn(async move {
                    let clauses = script
                        .fixed_lines()
                        .iter()
                        .flat_map(|l| clauses(l))
                        .collect();
                    let new = voice.warm(clauses).await;
                    tracing::info!(script = %script.name, clauses = new, "speech cache warmed");
                });
            }
        };
        warm(&self.config.conversation.script);
        let scripts = ScriptBook::with_hook(warm);
        let mut dialer_off = None;
        let policy = crate::call::registry::StartPolicy {
            account_sid: self.config.account_sid().map(str::to_string),
            allow_unregistered: self.config.allow_unregistered_media,
        };
        let (registry, store, twilio, dialer) = if self.with_store {
            let store = Store::connect(&self.config.store_url).await?;
            let registry = CallRegistry::with_sink(crate::store::spawn_sink(store.clone()))
                .with_policy(policy);
            let twilio = twilio_client(&self.config).transpose()?;
            let dialer = match (&twilio, &self.config.public_url) {
                (None, _) => {
                    dialer_off = Some(NO_CREDENTIALS.to_string());
                    tracing::warn!("no Twilio credentials: {NO_CREDENTIALS}");
                    None
                }
                (Some(_), None) => return Err(StartError::NoPublicUrl),
                // Without the auth token no webhook can be verified: every call placed would
                // reach a real person whose call then gets 403 at each step.
                (Some(_), Some(_)) if self.config.secrets.twilio_auth_token.is_none() => {
                    dialer_off = Some(NO_AUTH_TOKEN.to_string());
                    tracing::error!("the dialer is off: {NO_AUTH_TOKEN}");
                    None
                }
                (Some(client), Some(public_url)) => Some(Dialer::new(
                    store.clone(),
                    client.clone(),
                    registry.clone(),
                    scripts.clone(),
                    DialerOptions {
                        public_url: public_url.clone(),
                        worker_id: self.config.twilio.worker_id.clone(),
                        idle_poll: self.dialer_poll,
                        lease: self.config.dialer.lease,
                        settle_unknown: self.config.dialer.settle_unknown,
                        reconcile_every: self.config.dialer.reconcile_every,
                        // A rehearsal's shifted hours hold for the dialer too: what is due
                        // (a callback for "tomorrow at ten") and the calling window.
                        clock: {
                            let (base, offset) =
                                (self.dialer_clock.clone(), self.calling_hours_offset);
                            Clock::new(move || {
                                let now = base.now();
                                now.checked_add_signed(offset).unwrap_or(now)
                            })
                        },
                    },
                )),
            };
            (registry, Some(store), twilio, dialer)
        } else {
            (
                CallRegistry::default().with_policy(policy),
                None,
                None,
                None,
            )
        };
        let session = SessionDeps {
            stt: self.stt,
            llm: self.llm,
            tts: self.tts,
            voice,
            conversation: self.config.conversation.clone(),
            turn: self.config.turn.clone(),
            registry: registry.clone(),
            scripts,
            twilio,
            clock_offset: self.calling_hours_offset,
            shutdown: Default::default(),
            handoffs: Default::default(),
            recordings: self.config.recordings_dir.clone(),
        };
        if let Some(dialer) = &dialer {
            dialer.start_background();
        }
        if let Some(store) = &store {
            crate::store::spawn_retention(store.clone(), RETENTION_SWEEP);
        }
        let crm = match (&store, &self.config.secrets.crm_secret) {
            (Some(store), Some(secret)) => Some(Courier::spawn(
                store.clone(),
                CourierOptions {
                    secret: secret.clone(),
                    retry: self.config.crm.retry,
                    timeout: self.config.crm.timeout,
                    poll: self.config.crm.poll,
                },
            )),
            (Some(_), None) => {
                tracing::info!(
                    "TELEMARKETER_CRM_SECRET is not set: campaigns cannot have a CRM webhook"
                );
                None
            }
            (None, _) => None,
        };
        Ok(AppState {
            live: crate::call::live::LiveSessions::new(self.config.max_calls),
            config: Arc::new(self.config),
            session,
            registry,
            store,
            dialer,
            dialer_off,
            crm,
            console: Default::default(),
        })
    }

    /// Builds and serves on an ephemeral loopback port until the process ends.
    pub async fn spawn_local(self) -> Result<LocalApp, StartError> {
        self.spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
            .await
    }

    /// Builds and serves on a listener bound earlier (when the config must name its address,
    /// as `server.public_url` does for the dialer's webhooks).
    pub async fn spawn(self, listener: tokio::net::TcpListener) -> Result<LocalApp, StartError> {
        let addr = listener.local_addr()?;
        let state = self.build().await?;
        tokio::spawn(serve(listener, state.clone(), std::future::pending()));
        Ok(LocalApp { addr, state })
    }
}

/// Serves until the shutdown future completes (graceful: in-flight calls finish their frames).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = crate::http::listen::ListenLimits {
        max_connections: state.config.max_connections,
        header_timeout: state.config.header_timeout,
    };
    crate::http::listen::serve(listener, crate::http::router(state), limits, shutdown).await
}

/// A line as the agent speaks it, clause by clause (the speech cache's keys).
fn clauses(line: &str) -> Vec<String> {
    let mut splitter = crate::script::clauses::ClauseSplitter::new();
    let mut out = splitter.push(line);
    out.extend(splitter.finish());
    out
}
