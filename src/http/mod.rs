//! HTTP surface (axum routes only; logic lives in `call`, `twilio` and `engine`).
//!
//! - `POST /twilio/voice`: Twilio's voice webhook (signed) -> TwiML that connects the call's audio
//!   to our media WebSocket, with the call's metadata as `<Parameter>`s.
//! - `GET /twilio/media`: the bidirectional Media Streams WebSocket.
//! - `POST /v1/calls`, `GET /v1/calls/{call_sid}`: the engine API (bearer token).
//! - `GET /health`: liveness, version and enabled backends.

mod error;
mod media_ws;
mod twilio_webhooks;
mod v1;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

pub use error::AppError;

use crate::call::registry::CallRegistry;
use crate::call::session::SessionDeps;
use crate::config::Config;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub session: SessionDeps,
    pub registry: CallRegistry,
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/twilio/voice", post(twilio_webhooks::voice))
        .route("/twilio/media", get(media_ws::upgrade))
        .route("/v1/calls", post(v1::create_call))
        .route("/v1/calls/{call_sid}", get(v1::get_call))
        .with_state(state)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": crate::build_info::VERSION,
        "backends": crate::build_info::BACKENDS,
    }))
}
