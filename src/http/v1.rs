//! The engine API: register a conversation's metadata before Twilio connects its media stream,
//! read a call's transcript afterwards. Bearer-token auth, compared in constant time.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use subtle::ConstantTimeEq;

use super::{AppError, AppState};
use crate::model::{CallMetadata, CallRecord};

pub(super) fn check_bearer(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let expected = state
        .config
        .secrets
        .api_token
        .as_deref()
        .ok_or(AppError::ApiDisabled)?;
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthorized)?;
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(AppError::Unauthorized)
    }
}

/// Twilio call SIDs are `CA` + 32 hex digits.
pub fn is_call_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("CA") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

pub(super) async fn create_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CallRecord>), AppError> {
    check_bearer(&state, &headers)?;
    let metadata: CallMetadata = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    if !is_call_sid(&metadata.call_sid) {
        return Err(AppError::BadRequest(
            "call_sid must be a Twilio call SID (CA + 32 hex digits)".into(),
        ));
    }
    Ok((StatusCode::CREATED, Json(state.registry.register(metadata))))
}

pub(super) async fn get_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call_sid): Path<String>,
) -> Result<Json<CallRecord>, AppError> {
    check_bearer(&state, &headers)?;
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
