//! Errors: Twilio's error JSON mapped, and each failed attempt classified by whether Twilio may
//! have acted on it (which decides whether a create may be resent).

use std::time::Duration;

use reqwest::StatusCode;

use super::{CODE_TOO_MANY_REQUESTS, MAX_ERROR_MESSAGE};

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error (its error JSON mapped; `status` is the HTTP status).
    #[error("Twilio API error (HTTP {status}{}): {message}", code_suffix(.code))]
    Api {
        status: u16,
        code: Option<u32>,
        message: String,
        more_info: Option<String>,
    },
    /// Still 429 / 20429 after all retries.
    #[error("Twilio rate limit still hit after {attempts} attempts")]
    RateLimited { attempts: u32 },
    /// 5xx or network failure after all retries. From `create_call` it means no attempt
    /// reached Twilio: the call was surely not placed.
    #[error("Twilio unavailable after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: String },
    /// `create_call` only: an attempt may have reached Twilio (5xx, timeout or reset after
    /// sending) and the call list did not settle it (no such call listed yet, or the list
    /// failed). The call may exist: never retry blindly, ask the list again later.
    #[error("Twilio may have placed the call (outcome unknown after {attempts} attempts): {last}")]
    CreateUnknown { attempts: u32, last: String },
    /// A success response that is not the expected JSON.
    #[error("cannot decode Twilio response: {0}")]
    Decode(String),
    #[error("invalid Twilio configuration: {0}")]
    InvalidConfig(String),
}

fn code_suffix(code: &Option<u32>) -> String {
    code.map(|c| format!(", code {c}")).unwrap_or_default()
}

impl TwilioError {
    /// Twilio's numeric error code, if known (20429 for [`TwilioError::RateLimited`]).
    pub fn code(&self) -> Option<u32> {
        match self {
            TwilioError::Api { code, .. } => *code,
            TwilioError::RateLimited { .. } => Some(CODE_TOO_MANY_REQUESTS),
            _ => None,
        }
    }

    /// Whether trying the same operation again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            TwilioError::Api { status, code, .. } => {
                *status == 429 || *status >= 500 || *code == Some(CODE_TOO_MANY_REQUESTS)
            }
            TwilioError::RateLimited { .. } | TwilioError::Unavailable { .. } => true,
            // Retrying may place a second call.
            TwilioError::CreateUnknown { .. } => false,
            TwilioError::Decode(_) | TwilioError::InvalidConfig(_) => false,
        }
    }
}

/// Why one HTTP attempt failed, classified by whether Twilio may have acted on it.
pub(super) enum Failure {
    /// 429 / 20429: rejected before doing anything, safe to resend.
    RateLimited { retry_after: Option<Duration> },
    /// Never reached Twilio (connect error): safe to resend.
    NotSent(String),
    /// May have reached Twilio and been acted on (5xx, timeout or reset after sending).
    MaybeSent {
        retry_after: Option<Duration>,
        detail: String,
    },
    /// Not worth retrying (4xx, undecodable, bad config).
    Fatal(TwilioError),
}

impl Failure {
    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::RateLimited { retry_after } | Failure::MaybeSent { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    pub(super) fn detail(&self) -> String {
        match self {
            Failure::RateLimited { .. } => "rate limited (429)".to_owned(),
            Failure::NotSent(d) | Failure::MaybeSent { detail: d, .. } => d.clone(),
            Failure::Fatal(e) => e.to_string(),
        }
    }

    /// The error to report once no attempts are left; `maybe_created`: some attempt of this
    /// create may have reached Twilio.
    pub(super) fn exhausted_create(self, attempts: u32, maybe_created: bool) -> TwilioError {
        match self {
            Failure::Fatal(e) => e,
            other if maybe_created => TwilioError::CreateUnknown {
                attempts,
                last: other.detail(),
            },
            other => other.exhausted(attempts),
        }
    }

    /// The error to report once no attempts are left.
    pub(super) fn exhausted(self, attempts: u32) -> TwilioError {
        match self {
            Failure::RateLimited { .. } => TwilioError::RateLimited { attempts },
            Failure::Fatal(e) => e,
            other => TwilioError::Unavailable {
                attempts,
                last: other.detail(),
            },
        }
    }
}

/// Maps Twilio's error JSON (`{"code","message","more_info","status"}`); tolerates non-JSON
/// bodies from proxies. The HTTP status of the response wins over the body's `status`.
pub(super) fn api_error(status: StatusCode, body: &[u8]) -> TwilioError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let obj = json.as_ref().and_then(|v| v.as_object());
    let code = obj.and_then(|o| o.get("code")).and_then(|c| match c {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let str_field = |k: &str| {
        obj.and_then(|o| o.get(k))
            .and_then(|v| v.as_str())
            .map(|s| truncate(s, MAX_ERROR_MESSAGE))
    };
    let message = str_field("message")
        .filter(|m| !m.is_empty())
        .or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (obj.is_none() && !text.is_empty()).then(|| truncate(text, MAX_ERROR_MESSAGE))
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    TwilioError::Api {
        status: status.as_u16(),
        code,
        message,
        more_info: str_field("more_info"),
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}
