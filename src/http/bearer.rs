//! The API's authentication as an extractor: a handler of the engine or admin API takes a
//! [`Bearer`] (first, so nothing else of the request is read before the check), the way every
//! Twilio webhook takes a `SignedForm`, so no handler can forget the check.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use super::{AppError, AppState};

/// Proof that the request carried `Authorization: Bearer <api_token>` (compared in constant
/// time). Without a configured token the API is off (503), never open.
pub(super) struct Bearer;

impl Bearer {
    fn check(state: &AppState, headers: &HeaderMap) -> Result<Self, AppError> {
        let expected = state
            .config
            .secrets
            .api_token
            .as_deref()
            .ok_or(AppError::ApiDisabled)?;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AppError::Unauthorized)?;
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Self)
        } else {
            Err(AppError::Unauthorized)
        }
    }
}

impl FromRequestParts<AppState> for Bearer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Self::check(state, &parts.headers)
    }
}
