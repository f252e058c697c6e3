//! Application assembly: load every model once, before the port opens, then build the router
//! state. A missing model file fails here with the path and the command that fetches it.

use std::sync::Arc;
use std::time::Instant;

use crate::call::registry::CallRegistry;
use crate::call::session::SessionDeps;
use crate::config::Config;
use crate::dialer::{Dialer, DialerOptions};
use crate::engine::llama::LlamaEngine;
use crate::engine::piper::PiperEngine;
use crate::engine::whisper::WhisperEngine;
use crate::engine::EngineError;
use crate::http::AppState;
use crate::script::ScriptBook;
use crate::store::{Store, StoreError};
use crate::twilio::rest::TwilioClient;

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

/// Router state from a config and loaded engines: the conversation engine alone, calls kept
/// in memory (simulate, loadtest, benches).
pub fn state(config: Config, engines: &Engines) -> AppState {
    state_with(config, engines, CallRegistry::default(), None, None)
}

fn state_with(
    config: Config,
    engines: &Engines,
    registry: CallRegistry,
    twilio: Option<TwilioClient>,
    store: Option<(Store, Option<Dialer>)>,
) -> AppState {
    let scripts = ScriptBook::default();
    let session = SessionDeps {
        stt: Arc::new(engines.stt.clone()),
        llm: Arc::new(engines.llm.clone()),
        tts: Arc::new(engines.tts.clone()),
        conversation: config.conversation.clone(),
        turn: config.turn.clone(),
        registry: registry.clone(),
        scripts,
        twilio,
    };
    let (store, dialer) = match store {
        Some((s, d)) => (Some(s), d),
        None => (None, None),
    };
    AppState {
        config: Arc::new(config),
        session,
        registry,
        store,
        dialer,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Twilio REST client: {0}")]
    Twilio(#[from] crate::twilio::rest::TwilioError),
    #[error("recovering campaigns after restart: {0}")]
    Recover(#[from] crate::dialer::DialerError),
    #[error("server.public_url is required to dial (Twilio must reach our webhooks)")]
    NoPublicUrl,
}

/// The whole appliance: store (calls, turns, outcomes, do-not-call), and the dialer when Twilio
/// credentials are configured. Leads left mid-dial by a crash are settled before serving.
pub async fn appliance(config: Config, engines: &Engines) -> Result<AppState, StartError> {
    appliance_with(config, engines, chrono::Duration::zero()).await
}

/// [`appliance`] with the calling-hours clock shifted (rehearsals only).
pub async fn appliance_with(
    config: Config,
    engines: &Engines,
    calling_hours_offset: chrono::Duration,
) -> Result<AppState, StartError> {
    let store = Store::connect(&config.store_url).await?;
    let registry = CallRegistry::with_sink(crate::store::spawn_sink(store.clone()));
    let twilio = config.secrets.twilio_client(&config.twilio).transpose()?;
    let dialer = match (&twilio, &config.public_url) {
        (Some(client), Some(public_url)) => Some(Dialer::new(
            store.clone(),
            client.clone(),
            registry.clone(),
            ScriptBook::default(),
            DialerOptions {
                public_url: public_url.clone(),
                worker_id: config.twilio.worker_id.clone(),
                idle_poll: std::time::Duration::from_millis(500),
                calling_hours_offset,
            },
        )),
        (Some(_), None) => return Err(StartError::NoPublicUrl),
        (None, _) => {
            tracing::warn!(
                "no Twilio credentials (TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN): dialing is off"
            );
            None
        }
    };
    let mut state = state_with(
        config,
        engines,
        registry,
        twilio,
        Some((store, dialer.clone())),
    );
    if let Some(dialer) = &dialer {
        // The dialer and the sessions must share one script book.
        state.session.scripts = dialer.scripts().clone();
        dialer.recover().await?;
    }
    Ok(state)
}

/// Serves until the shutdown future completes (graceful: in-flight calls finish their frames).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, crate::http::router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Starts a server for `config` on an ephemeral loopback port (simulate, loadtest, benches):
/// returns its address and the registry that will hold its calls' transcripts.
pub async fn spawn_local(
    config: Config,
    engines: &Engines,
) -> std::io::Result<(std::net::SocketAddr, CallRegistry)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = state(config, engines);
    let registry = state.registry.clone();
    tokio::spawn(serve(listener, state, std::future::pending()));
    Ok((addr, registry))
}
