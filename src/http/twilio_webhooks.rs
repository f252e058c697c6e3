//! Twilio's voice webhook: answers with TwiML that connects the call to our media stream.
//! Every request must carry a valid `X-Twilio-Signature` (HMAC-SHA1 with the auth token over the
//! public URL and the sorted form parameters); unsigned requests are refused with 403.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;

use super::{AppError, AppState};
use crate::twilio::{signature, twiml};

/// The public base URL: configured, else from the Host header (behind a TLS proxy, configure it).
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{proto}://{host}")
}

pub(super) async fn voice(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, AppError> {
    let params: Vec<(String, String)> = serde_urlencoded_pairs(&body);
    let base = public_base(&state, &headers);
    match state.config.secrets.twilio_auth_token.as_deref() {
        Some(token) => {
            let url = format!("{base}{uri}");
            let sig = headers
                .get("x-twilio-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if sig.is_empty() || !signature::validate(token, &url, &params, sig) {
                tracing::warn!(%url, "voice webhook with a bad or missing signature rejected");
                return Err(AppError::BadSignature);
            }
        }
        None if state.config.allow_unsigned_webhooks => {}
        None => {
            tracing::warn!("voice webhook refused: TWILIO_AUTH_TOKEN is not set");
            return Err(AppError::BadSignature);
        }
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let call_sid = get("CallSid").unwrap_or_default();
    let mut stream_params = vec![("call_sid".to_string(), call_sid)];
    for (key, name) in [("From", "from"), ("To", "to")] {
        if let Some(v) = get(key) {
            stream_params.push((name.to_string(), v));
        }
    }
    let ws_base = base
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    let xml = twiml::connect_stream(&format!("{ws_base}/twilio/media"), &stream_params, true);
    Ok(([(header::CONTENT_TYPE, "text/xml")], xml))
}

/// Form pairs in order, repeated keys kept (signatures cover every value).
fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}
