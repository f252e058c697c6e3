//! One error type for every handler, rendered as JSON with the right status (axum's pattern).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("the API is disabled: set TELEMARKETER_API_TOKEN")]
    ApiDisabled,
    #[error("invalid Twilio signature")]
    BadSignature,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this appliance runs without a database")]
    NoStore,
    #[error("dialing is off: {0}")]
    NoDialer(String),
    #[error("busy: {0}")]
    Busy(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Conflict(what) => AppError::Conflict(what),
            other => {
                tracing::error!(error = %other, "store error");
                AppError::Internal("database error (see the server log)".into())
            }
        }
    }
}

impl From<crate::dialer::DialerError> for AppError {
    fn from(e: crate::dialer::DialerError) -> Self {
        use crate::dialer::DialerError;
        match e {
            DialerError::Store(s) => s.into(),
            DialerError::Campaign { .. } => AppError::BadRequest(e.to_string()),
            DialerError::Twilio(t) => {
                tracing::error!(error = %t, "Twilio error");
                AppError::Internal(format!("Twilio: {t}"))
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match self {
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::ApiDisabled => StatusCode::SERVICE_UNAVAILABLE,
            AppError::BadSignature => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::NoStore | AppError::NoDialer(_) | AppError::Busy(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = axum::Json(serde_json::json!({ "error": self.to_string() }));
        (status, body).into_response()
    }
}
