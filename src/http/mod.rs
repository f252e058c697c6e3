//! HTTP surface (axum routes only; logic lives in `call`, `twilio` and `engine`).
//!
//! - `POST /twilio/voice`: Twilio's voice webhook (signed) -> TwiML that connects the call's audio
//!   to our media WebSocket, with the call's metadata as `<Parameter>`s.
//! - `GET /twilio/media`: the bidirectional Media Streams WebSocket: a signed upgrade, for a call
//!   `/twilio/voice` or `POST /v1/calls` registered, streamed once.
//! - `POST /twilio/status`, `POST /twilio/amd`: status and async AMD callbacks (signed).
//! - `POST /twilio/whisper`, `POST /twilio/transfer` (signed), `GET /twilio/audio/{token}/..`:
//!   a transfer to a person: the advisor's whisper, the end of the `<Dial>`, their audio.
//! - `POST /v1/calls`, `GET /v1/calls/{call_sid}`: the engine API (bearer token).
//! - `/v1/campaigns...`, `/v1/dnc...`, `GET /v1/calls/{sid}/record`: the admin API (bearer
//!   token): campaigns, leads, start/pause, calls with transcripts, do-not-call, CSV export,
//!   the CRM delivery log (`GET /v1/campaigns/{id}/deliveries?limit=&before=`).
//! - `/`, `/login`, `/campaigns`, `/live`, `/calls`, `/dnc`, `/scripts`, `/assets/..`: the
//!   operator console (login, session cookie, CSRF; see [`console`]).
//! - `/softphone...`: the browser softphone ([`softphone`]): a page, its scripts, a same-origin
//!   WebSocket that runs a practice call through the call session, and that call's transcript.
//! - `GET /health`: liveness, version and enabled backends.
//! - `GET /metrics`: Prometheus metrics (bearer token).
//!
//! Not routed here: [`recordings::serve_recording`] (a call's WAV, with `Range`), which the
//! operator console mounts behind its login.

mod admin;
mod bearer;
pub mod console;
mod error;
pub mod listen;
mod media_ws;
pub mod recordings;
pub mod softphone;
mod transfer;
mod twilio_webhooks;
mod v1;

use std::sync::Arc;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::timeout::TimeoutLayer;

pub use error::AppError;

use crate::call::registry::CallRegistry;
use crate::call::SessionDeps;
use crate::config::Config;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub session: SessionDeps,
    pub registry: CallRegistry,
    /// The database, when the appliance runs with one (`serve`); simulate runs without.
    pub store: Option<crate::store::Store>,
    /// The dialer, when Twilio credentials (the auth token among them) and a public URL are
    /// configured.
    pub dialer: Option<crate::dialer::Dialer>,
    /// Why there is no dialer (with a store), for the 503 that refuses a campaign start.
    pub dialer_off: Option<String>,
    /// Media sessions running now, capped at `server.max_calls`.
    pub live: crate::call::live::LiveSessions,
    /// The CRM webhook sender, with a store and `TELEMARKETER_CRM_SECRET`.
    pub crm: Option<crate::crm::Courier>,
    /// The operator console's memory (login attempts, open script chats).
    pub console: console::Console,
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/twilio/voice", post(twilio_webhooks::voice))
        .route("/twilio/media", get(media_ws::upgrade))
        .route("/twilio/status", post(twilio_webhooks::status))
        .route("/twilio/amd", post(twilio_webhooks::amd))
        .route("/twilio/whisper", post(transfer::whisper))
        .route("/twilio/transfer", post(transfer::dial_ended))
        .route("/twilio/audio/{token}/{name}", get(transfer::audio))
        .route("/v1/calls", post(v1::create_call))
        .route("/v1/calls/{call_sid}", get(v1::get_call))
        .route("/v1/calls/{call_sid}/record", get(admin::call_record))
        .route(
            "/v1/campaigns",
            post(admin::create_campaign).get(admin::list_campaigns),
        )
        .route("/v1/campaigns/{id}", get(admin::get_campaign))
        .route(
            "/v1/campaigns/{id}/leads",
            post(admin::import_leads)
                .layer(DefaultBodyLimit::max(LEADS_BODY_LIMIT))
                .get(admin::campaign_leads),
        )
        .route("/v1/campaigns/{id}/calls", get(admin::campaign_calls))
        .route("/v1/campaigns/{id}/audit", get(admin::campaign_audit))
        .route(
            "/v1/campaigns/{id}/deliveries",
            get(admin::campaign_deliveries),
        )
        .route("/v1/campaigns/{id}/export.csv", get(admin::export_csv))
        .route("/v1/campaigns/{id}/{action}", post(admin::campaign_action))
        .route("/v1/dnc", get(admin::dnc_list).post(admin::dnc_add))
        .route("/v1/dnc/{phone}", axum::routing::delete(admin::dnc_remove))
        .merge(console::routes())
        // The softphone is the console's: behind the same login.
        .merge(
            softphone::routes().route_layer(axum::middleware::from_extractor_with_state::<
                console::Operator,
                AppState,
            >(state.clone())),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // A slow client cannot hold a request open; a media stream's socket lives on after its
        // upgrade answered, outside this limit.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// Largest request body: webhooks and API bodies are small.
const BODY_LIMIT: usize = 1024 * 1024;
/// Largest lead import (CSV or JSON).
const LEADS_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// The longest a request may take, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Prometheus metrics (bearer token, like the rest of the API).
async fn metrics(
    _: bearer::Bearer,
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<String, AppError> {
    Ok(crate::telemetry::render(&engines(&state.session)))
}

fn engines(s: &SessionDeps) -> [(&'static str, crate::engine::EngineHealth); 3] {
    [
        ("stt", s.stt.health()),
        ("llm", s.llm.health()),
        ("tts", s.tts.health()),
    ]
}

/// Liveness for a load balancer or orchestrator: 200 "ok" while every engine has a worker
/// serving, 503 "degraded" once one has none (a worker that could not be rebuilt after a
/// panic); each engine's workers, queue, longest running job, restarts and shed jobs.
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let engines = engines(&state.session);
    let up = engines.iter().all(|(_, h)| h.is_up());
    let status = if up {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if up { "ok" } else { "degraded" },
        "version": crate::build_info::VERSION,
        "backends": crate::build_info::BACKENDS,
        "live_calls": state.live.count(),
        "engines": engines.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
    });
    (status, axum::Json(body))
}
