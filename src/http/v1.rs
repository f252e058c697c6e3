//! The engine API: register a conversation's metadata before Twilio connects its media stream,
//! read a call's transcript afterwards. Bearer-token auth ([`super::bearer::Bearer`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::bearer::Bearer;
use super::{AppError, AppState};
use crate::call::registry::RegisterRefused;
use crate::model::{CallMetadata, CallRecord};

/// Twilio call SIDs are `CA` + 32 hex digits.
pub fn is_call_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("CA") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

pub(super) async fn create_call(
    _: Bearer,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CallRecord>), AppError> {
    let mut metadata: CallMetadata = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    // Only a campaign's settings record a call (through the voice webhook), never a request.
    metadata.record = false;
    if !is_call_sid(&metadata.call_sid) {
        return Err(AppError::BadRequest(
            "call_sid must be a Twilio call SID (CA + 32 hex digits)".into(),
        ));
    }
    match state.registry.register(metadata) {
        Ok(record) => {
            keep_record(&state, &record).await;
            Ok((StatusCode::CREATED, Json(record)))
        }
        Err(e @ RegisterRefused::AlreadyStreamed(_)) => Err(AppError::Conflict(e.to_string())),
        Err(e @ RegisterRefused::Full) => Err(AppError::Busy(e.to_string())),
    }
}

/// A registered call gets its row in the store (when there is one), so its transcript and
/// verdict are kept whoever placed it. A store error is logged, not fatal: the call goes on.
pub(super) async fn keep_record(state: &AppState, record: &CallRecord) {
    if let Some(store) = &state.store {
        if let Err(e) = store.record_call(&record.metadata).await {
            tracing::error!(call_sid = %record.metadata.call_sid, error = %e, "cannot record the call");
        }
    }
}

pub(super) async fn get_call(
    _: Bearer,
    State(state): State<AppState>,
    Path(call_sid): Path<String>,
) -> Result<Json<CallRecord>, AppError> {
    state
        .registry
        .get(&call_sid)
        .map(Json)
        .ok_or(AppError::NotFound(format!("call {call_sid}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn call_sid_shape() {
        assert!(super::is_call_sid("CA0123456789abcdef0123456789abcdef"));
        assert!(!super::is_call_sid("CA123"));
        assert!(!super::is_call_sid("XX0123456789abcdef0123456789abcdef"));
    }
}
