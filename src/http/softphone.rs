//! The browser softphone: a script writer talks to a campaign's script from the browser's
//! microphone, through the same session a Twilio call runs ([`run_session`]), so what they hear
//! is what a caller would hear. The browser's PCM is translated to Twilio's messages by the pure
//! [`crate::call::browser`]; the server treats it as a call without Twilio and nothing leaves the
//! box (the session gets no Twilio REST client: no hang-up or transfer request goes out).
//!
//! - `GET /softphone?campaign=<id>`: a minimal page holding the softphone (the console embeds
//!   the same `<div id="softphone" data-campaign="<id>">` and script tags).
//! - `GET /softphone/ws?campaign=<id>`: the call's WebSocket. Same-origin upgrades only (a page
//!   elsewhere must not open calls with the operator's cookie: cross-site WebSocket hijacking);
//!   unknown campaign 404, 503 when `server.max_calls` run. Login is layered on these routes by
//!   the console, not here.
//! - `GET /softphone/transcript/<call_sid>`: the live transcript of a call this softphone made.
//! - `GET /softphone/softphone.js`, `GET /softphone/worklet.js`: the page's code (embedded).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::{AppError, AppState};
use crate::call::browser::{self, Downstream, Uplink, Upstream, MAX_AUDIO_BYTES};
use crate::call::session::{run_session, WsIn};
use crate::model::CallMetadata;

const SOFTPHONE_JS: &str = include_str!("softphone/softphone.js");
const WORKLET_JS: &str = include_str!("softphone/worklet.js");
const PAGE_HTML: &str = include_str!("softphone/page.html");

/// Largest WebSocket message or frame read: one second of audio; bigger ones are refused from
/// their header, before they are read.
const MAX_MESSAGE: usize = MAX_AUDIO_BYTES + 1024;
/// Softphone calls remembered for their transcript (oldest forgotten first); the registry
/// itself forgets a finished call after ten minutes.
const MAX_REMEMBERED: usize = 1024;
/// The standalone page's policy.
const PAGE_CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
object-src 'none'; base-uri 'none'; frame-ancestors 'self'";
/// Used in `start` when no Twilio account is configured (the registry then checks none).
const NO_ACCOUNT: &str = "AC00000000000000000000000000000000";

/// The softphone's routes; mount once (the set of its calls lives in these routes).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/softphone", get(page))
        .route("/softphone/ws", get(upgrade))
        .route("/softphone/transcript/{call_sid}", get(transcript))
        .route(
            "/softphone/softphone.js",
            get(|| async { asset(SOFTPHONE_JS) }),
        )
        .route("/softphone/worklet.js", get(|| async { asset(WORKLET_JS) }))
        .layer(Extension(Softphones::default()))
}

/// The SIDs of the calls the softphone made: only their transcripts are served here, so this
/// route cannot read a real caller's words.
#[derive(Clone, Default)]
struct Softphones(Arc<Mutex<VecDeque<String>>>);

impl Softphones {
    fn add(&self, sid: String) {
        let mut sids = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if sids.len() >= MAX_REMEMBERED {
            sids.pop_front();
        }
        sids.push_back(sid);
    }

    fn contains(&self, sid: &str) -> bool {
        let sids = self.0.lock().unwrap_or_else(|p| p.into_inner());
        sids.iter().any(|s| s == sid)
    }
}

#[derive(serde::Deserialize)]
struct CampaignQuery {
    campaign: Option<String>,
}

fn asset(code: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Served from the binary: a new build must reach the browser at once.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        code,
    )
        .into_response()
}

async fn page(Query(q): Query<CampaignQuery>) -> Response {
    let campaign = q.campaign.as_deref().map(html_escape).unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            // Only our own script runs and only our server is reached.
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        PAGE_HTML.replace("{campaign}", &campaign),
    )
        .into_response()
}

/// For an attribute value: the campaign id comes from the query string.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn upgrade(
    State(state): State<AppState>,
    Extension(softphones): Extension<Softphones>,
    Query(q): Query<CampaignQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers, state.config.public_url.as_deref()) {
        tracing::warn!(origin = ?headers.get(header::ORIGIN), "softphone upgrade from another origin refused");
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    if let Some(id) = &q.campaign {
        if let Err(e) = load_script(&state, id).await {
            return e.into_response();
        }
    }
    let Some(place) = state.live.enter() else {
        return AppError::Busy("too many calls at once".into()).into_response();
    };
    let call_sid = format!("CA{}", uuid::Uuid::new_v4().simple());
    // No numbers: an opt-out on a practice call lists nobody; no lead fields either.
    let metadata = CallMetadata {
        call_sid: call_sid.clone(),
        campaign_id: q.campaign.clone(),
        ..Default::default()
    };
    if let Err(e) = state.registry.register(metadata) {
        return AppError::Busy(e.to_string()).into_response();
    }
    softphones.add(call_sid.clone());
    tracing::info!(%call_sid, campaign = ?q.campaign, "softphone call");
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            serve(socket, state, call_sid, q.campaign).await;
            drop(place);
        })
}

/// The campaign's script into the session's book (a script writer tries it before the
/// campaign dials); 404 for a campaign that does not exist.
async fn load_script(state: &AppState, id: &str) -> Result<(), AppError> {
    if state.session.scripts.get(id).is_some() {
        return Ok(());
    }
    let Some(store) = &state.store else {
        return Err(AppError::NotFound(format!("campaign {id}")));
    };
    let campaign = store.campaign(id).await?;
    let (script, _) =
        crate::dialer::Dialer::check_campaign(&campaign).map_err(AppError::BadRequest)?;
    state.session.scripts.insert(id, script);
    Ok(())
}

/// Whether the upgrade comes from a page of this server: its `Origin` names the host the
/// request was sent to (scheme aside: a TLS proxy may sit in front), or `server.public_url`.
/// Browsers always send `Origin` on a WebSocket upgrade; one without it is refused too.
fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(|o| url::Url::parse(o).ok())
    else {
        return false;
    };
    let (Some(host), Some(port)) = (origin.host_str(), origin.port_or_known_default()) else {
        return false;
    };
    if let Some(public) = public_url.and_then(|p| url::Url::parse(p).ok()) {
        if public.origin() == origin.origin() {
            return true;
        }
    }
    let Some(request_host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // `Host` without a port means the default port of the scheme the page was loaded with.
    let Ok(request) = url::Url::parse(&format!("{}://{request_host}", origin.scheme())) else {
        return false;
    };
    request
        .host_str()
        .is_some_and(|h| h.eq_ignore_ascii_case(host))
        && request.port_or_known_default() == Some(port)
        && request.path() == "/"
}

/// The live transcript of one of this softphone's calls.
async fn transcript(
    State(state): State<AppState>,
    Extension(softphones): Extension<Softphones>,
    Path(call_sid): Path<String>,
) -> Result<Response, AppError> {
    let record = softphones
        .contains(&call_sid)
        .then(|| state.registry.get(&call_sid))
        .flatten()
        .ok_or_else(|| AppError::NotFound(format!("softphone call {call_sid}")))?;
    let body = serde_json::json!({
        "call_sid": call_sid,
        "status": record.status,
        "turns": record.turns,
        "outcome": record.outcome,
        "variables": record.variables,
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// One browser call: a reader translating the browser's messages into Twilio's, a writer
/// translating the session's back, and the session between them.
async fn serve(socket: WebSocket, state: AppState, call_sid: String, campaign: Option<String>) {
    let (mut sink, mut stream) = socket.split();
    let (in_tx, in_rx) = mpsc::channel::<WsIn>(256);
    let (out_tx, mut out_rx) = mpsc::channel::<String>(256);
    let stream_sid = format!("MZ{}", uuid::Uuid::new_v4().simple());
    let account = state.config.account_sid().unwrap_or(NO_ACCOUNT).to_string();
    let mut uplink = Uplink::new(&call_sid, &stream_sid, &account);
    let mut parameters = BTreeMap::from([("source".to_string(), "softphone".to_string())]);
    if let Some(c) = campaign {
        parameters.insert("campaign_id".into(), c);
    }
    let opening = uplink.opening(parameters);
    let reader = tokio::spawn(async move {
        for text in opening {
            if in_tx.send(WsIn::Text(text)).await.is_err() {
                return;
            }
        }
        while let Some(frame) = stream.next().await {
            let forward = match frame {
                Ok(Message::Binary(b)) => uplink.audio(&b),
                Ok(Message::Text(t)) => match uplink.text(&t) {
                    Ok(Some(Upstream::Forward(m))) => Ok(vec![m]),
                    Ok(Some(Upstream::Stop(m))) => {
                        let _ = in_tx.send(WsIn::Text(m)).await;
                        break;
                    }
                    Ok(None) => Ok(Vec::new()),
                    Err(e) => Err(e),
                },
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            };
            match forward {
                Ok(messages) => {
                    for m in messages {
                        if in_tx.send(WsIn::Text(m)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "softphone message refused"),
            }
        }
        if let Some(stop) = uplink.stop() {
            let _ = in_tx.send(WsIn::Text(stop)).await;
        }
        let _ = in_tx.send(WsIn::Closed).await;
    });
    let first = browser::call_message(&call_sid);
    let writer = tokio::spawn(async move {
        if sink.send(Message::Text(first.into())).await.is_err() {
            return;
        }
        while let Some(text) = out_rx.recv().await {
            let message = match browser::downstream(&text) {
                Ok(Downstream::Audio(pcm)) => Message::Binary(pcm.into()),
                Ok(Downstream::Text(t)) => Message::Text(t.into()),
                Err(e) => {
                    tracing::warn!(error = %e, "session message not for the browser");
                    continue;
                }
            };
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    // The browser's call is ours alone: no Twilio call to hang up or transfer.
    let mut deps = state.session.clone();
    deps.twilio = None;
    match run_session(in_rx, out_tx, deps).await {
        Ok(summary) => tracing::info!(?summary, "softphone session finished"),
        Err(e) => tracing::warn!(error = %e, "softphone session ended early"),
    }
    let _ = writer.await;
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h.insert(header::HOST, host.parse().unwrap());
        h
    }

    #[test]
    fn only_pages_of_this_server_may_open_a_call() {
        let ok = |o: Option<&str>, host: &str, public: Option<&str>| {
            same_origin(&headers(o, host), public)
        };
        assert!(ok(Some("http://127.0.0.1:8080"), "127.0.0.1:8080", None));
        assert!(ok(Some("http://Console.Example"), "console.example", None));
        assert!(ok(Some("https://console.example"), "console.example", None));
        assert!(ok(
            Some("https://console.example:443"),
            "console.example",
            None
        ));
        // Behind a proxy that rewrites Host: the configured public URL.
        assert!(ok(
            Some("https://console.example"),
            "10.0.0.5:8080",
            Some("https://console.example/")
        ));
        assert!(!ok(Some("http://evil.example"), "127.0.0.1:8080", None));
        assert!(!ok(Some("http://127.0.0.1:9999"), "127.0.0.1:8080", None));
        assert!(!ok(
            Some("https://console.example"),
            "console.example:8080",
            None
        ));
        assert!(!ok(Some("null"), "127.0.0.1:8080", None));
        assert!(!ok(None, "127.0.0.1:8080", None));
        assert!(!ok(Some("http://a.example"), "a.example/evil", None));
        assert!(!ok(Some("http://a.example"), "a.example@b.example", None));
        assert!(!ok(
            Some("https://evil.example"),
            "10.0.0.5:8080",
            Some("https://console.example")
        ));
    }

    #[test]
    fn the_campaign_id_cannot_break_out_of_the_page() {
        assert_eq!(
            html_escape(r#""><script>alert('x')</script>&"#),
            "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
    }

    #[test]
    fn softphone_calls_are_remembered_within_a_bound() {
        let s = Softphones::default();
        for i in 0..MAX_REMEMBERED + 5 {
            s.add(format!("CA{i}"));
        }
        assert!(!s.contains("CA0") && !s.contains("CA4"));
        assert!(s.contains("CA5") && s.contains(&format!("CA{}", MAX_REMEMBERED + 4)));
    }
}
