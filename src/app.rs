//! Application assembly: load every model once, before the port opens, then build the router
//! state. A missing model file fails here with the path and the command that fetches it.

use std::sync::Arc;
use std::time::Instant;

use crate::call::registry::CallRegistry;
use crate::call::session::SessionDeps;
use crate::config::Config;
use crate::engine::llama::LlamaEngine;
use crate::engine::piper::PiperEngine;
use crate::engine::whisper::WhisperEngine;
use crate::engine::EngineError;
use crate::http::AppState;

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

/// Router state from a config and loaded engines.
pub fn state(config: Config, engines: &Engines) -> AppState {
    let registry = CallRegistry::default();
    let session = SessionDeps {
        stt: Arc::new(engines.stt.clone()),
        llm: Arc::new(engines.llm.clone()),
        tts: Arc::new(engines.tts.clone()),
        conversation: config.conversation.clone(),
        turn: config.turn.clone(),
        registry: registry.clone(),
    };
    AppState {
        config: Arc::new(config),
        session,
        registry,
    }
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
