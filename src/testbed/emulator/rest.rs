//! The REST surface: Twilio's Calls API under `/2010-04-01/Accounts/{AccountSid}/`, and
//! `/_emulator/*` control routes for the CLI.
//!
//! Bodies are parsed by hand with `form_urlencoded` (not axum's `Form`) so repeated keys such as
//! `StatusCallbackEvent` survive and a malformed body can never be rejected with a non-Twilio
//! error shape.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc;

use super::{
    first, is_terminal, lifecycle, new_sid, CallRecord, EmulatedCall, Fault, Shared, VoiceSource,
};

type Shr = State<Arc<Shared>>;
type Params = Vec<(String, String)>;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(create).get(list),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Calls/{sid}",
            get(fetch).post(update),
        )
        .route("/_emulator/faults", post(faults))
        .route("/_emulator/calls", get(emulator_calls))
        .fallback(fallback)
        .with_state(shared)
}

/// A Twilio error answer; rendered as Twilio's error JSON.
struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        });
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        resp
    }
}

fn api_error(status: StatusCode, code: u32, message: &str) -> ApiError {
    ApiError {
        status,
        code,
        message: message.to_string(),
    }
}

/// Twilio's error JSON.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    api_error(status, code, message).into_response()
}

async fn fallback() -> Response {
    not_found()
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        20404,
        "The requested resource was not found",
    )
}

fn parse_form(bytes: &[u8]) -> Params {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// Basic auth as `AccountSid:AuthToken` or `SK...:AuthToken`, and the path's account must be ours.
fn authorized(shared: &Shared, account: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let cfg = &shared.config;
    let ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        })
        .is_some_and(|(user, pass)| {
            (user == cfg.account_sid || user.starts_with("SK")) && pass == cfg.auth_token
        });
    if ok && account == cfg.account_sid {
        Ok(())
    } else {
        Err(api_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate"))
    }
}

fn rfc2822(t: &DateTime<Utc>) -> String {
    t.to_rfc2822()
}

/// The call resource as Twilio renders it.
fn call_json(account: &str, r: &CallRecord) -> Value {
    let c = &r.call;
    let uri = format!("/2010-04-01/Accounts/{account}/Calls/{}", c.sid);
    let sub = |name: &str| format!("{uri}/{name}.json");
    json!({
        "account_sid": account,
        "annotation": null,
        "answered_by": c.answered_by,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": rfc2822(&r.date_created),
        "date_updated": rfc2822(&r.date_updated),
        "direction": super::lifecycle::direction(c.inbound),
        "duration": r.duration.map(|d| d.to_string()),
        "end_time": r.end_time.as_ref().map(rfc2822),
        "forwarded_from": null,
        "from": c.from,
        "from_formatted": c.from,
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": null,
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": c.sid,
        "start_time": r.start_time.as_ref().map(rfc2822),
        "status": c.status,
        "subresource_uris": {
            "notifications": sub("Notifications"),
            "recordings": sub("Recordings"),
            "payments": sub("Payments"),
            "events": sub("Events"),
            "siprec": sub("Siprec"),
            "streams": sub("Streams"),
            "user_defined_message_subscriptions": sub("UserDefinedMessageSubscriptions"),
            "user_defined_messages": sub("UserDefinedMessages"),
        },
        "to": c.to,
        "to_formatted": c.to,
        "trunk_sid": null,
        "uri": format!("{uri}.json"),
    })
}

/// `+` and 2..=15 digits.
fn is_e164(n: &str) -> bool {
    n.strip_prefix('+')
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

fn is_http_url(u: &str) -> bool {
    url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

fn method_of(params: &[(String, String)], key: &str) -> String {
    match first(params, key).map(str::to_uppercase).as_deref() {
        Some("GET") => "GET".into(),
        _ => "POST".into(),
    }
}

/// What a create request must carry, checked in Twilio's order.
fn validate_create(params: &[(String, String)]) -> Result<VoiceSource, ApiError> {
    let bad = |code, msg: &str| Err(api_error(StatusCode::BAD_REQUEST, code, msg));
    let to = first(params, "To").unwrap_or("");
    if to.is_empty() {
        return bad(21201, "No 'To' number is specified");
    }
    if !is_e164(to) {
        return bad(21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    if first(params, "From").unwrap_or("").is_empty() {
        return bad(21213, "No 'From' number is specified");
    }
    if let Some(cb) = first(params, "StatusCallback").filter(|s| !s.is_empty()) {
        if !is_http_url(cb) {
            return bad(21609, &format!("Invalid StatusCallback url: {cb}"));
        }
    }
    if let Some(twiml) = first(params, "Twiml").filter(|s| !s.is_empty()) {
        return Ok(VoiceSource::Twiml(twiml.to_string()));
    }
    match first(params, "Url").filter(|s| !s.is_empty()) {
        Some(u) if is_http_url(u) => Ok(VoiceSource::Url {
            url: u.to_string(),
            method: method_of(params, "Method"),
        }),
        Some(u) => bad(21205, &format!("Url is not a valid URL: {u}")),
        None => bad(
            21205,
            "Either a 'Url', 'ApplicationSid' or 'Twiml' parameter is required",
        ),
    }
}

async fn create(
    State(shared): Shr,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_form(&body);
    let to = first(&params, "To").unwrap_or("").to_string();
    let resp = create_inner(&shared, &account, &headers, params);
    tracing::debug!(%to, status = resp.status().as_u16(), "emulator: create call");
    shared
        .state()
        .create_requests
        .push((to, resp.status().as_u16()));
    resp
}

fn create_inner(
    shared: &Arc<Shared>,
    account: &str,
    headers: &HeaderMap,
    params: Params,
) -> Response {
    if let Err(e) = authorized(shared, account, headers) {
        return e.into_response();
    }
    let voice = match validate_create(&params) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let fault = shared.state().faults.pop_front();
    match fault {
        Some(Fault::RateLimited) => {
            return error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests")
        }
        Some(Fault::ServerErrorBeforeCreate) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                20500,
                "Internal Server Error",
            )
        }
        _ => {}
    }
    let to = first(&params, "To").unwrap_or("");
    let nth = shared
        .state()
        .calls
        .iter()
        .filter(|r| r.call.to == to)
        .count();
    let persona = shared.config.persona_for(to, nth);
    let (sid, body) = add_call(shared, account, params, persona, voice, false);
    tracing::info!(%sid, "emulator: call created");
    if fault == Some(Fault::ServerErrorAfterCreate) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal Server Error",
        );
    }
    (StatusCode::CREATED, Json(body)).into_response()
}

/// `StartTime`, `StartTime>=` and `StartTime<=` filters (dates). `StartTime>=2024-01-02` sent
/// unencoded arrives as the key `StartTime>` (the first `=` splits the pair).
fn date_filter(params: &[(String, String)]) -> Vec<(std::cmp::Ordering, NaiveDate)> {
    use std::cmp::Ordering::*;
    params
        .iter()
        .filter_map(|(k, v)| {
            let ord = match k.as_str() {
                "StartTime" => Equal,
                "StartTime>=" | "StartTime>" => Greater,
                "StartTime<=" | "StartTime<" => Less,
                _ => return None,
            };
            let day = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
            Some((ord, day))
        })
        .collect()
}

async fn list(
    State(shared): Shr,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorized(&shared, &account, &headers) {
        return e.into_response();
    }
    let q = parse_form(query.unwrap_or_default().as_bytes());
    let page_size: usize = first(&q, "PageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let page: usize = first(&q, "Page").and_then(|s| s.parse().ok()).unwrap_or(0);
    let to = first(&q, "To");
    let from = first(&q, "From");
    let status = first(&q, "Status");
    let dates = date_filter(&q);
    let calls: Vec<Value> = {
        let st = shared.state();
        st.calls
            .iter()
            .rev() // newest first, as Twilio lists
            .filter(|r| to.is_none_or(|t| r.call.to == t))
            .filter(|r| from.is_none_or(|f| r.call.from == f))
            .filter(|r| status.is_none_or(|s| r.call.status == s))
            .filter(|r| {
                // A call not yet dialled has no start time; its creation date stands in.
                let day = r.start_time.unwrap_or(r.date_created).date_naive();
                dates.iter().all(|(ord, d)| match ord {
                    std::cmp::Ordering::Equal => day == *d,
                    std::cmp::Ordering::Greater => day >= *d,
                    std::cmp::Ordering::Less => day <= *d,
                })
            })
            .map(|r| call_json(&account, r))
            .collect()
    };
    let base = format!("/2010-04-01/Accounts/{account}/Calls.json");
    let page_uri = |p: usize| format!("{base}?PageSize={page_size}&Page={p}");
    let start = page.saturating_mul(page_size).min(calls.len());
    let end = (start + page_size).min(calls.len());
    let has_next = end < calls.len();
    let items: Vec<Value> = calls[start..end].to_vec();
    Json(json!({
        "calls": items,
        "end": end.saturating_sub(1),
        "first_page_uri": page_uri(0),
        "next_page_uri": if has_next { Some(page_uri(page + 1)) } else { None },
        "page": page,
        "page_size": page_size,
        "previous_page_uri": if page > 0 { Some(page_uri(page - 1)) } else { None },
        "start": start,
        "uri": page_uri(page),
    }))
    .into_response()
}

async fn fetch(
    State(shared): Shr,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorized(&shared, &account, &headers) {
        return e.into_response();
    }
    let Some(sid) = sid.strip_suffix(".json") else {
        return not_found();
    };
    match shared.state().find(sid) {
        Some(r) => Json(call_json(&account, r)).into_response(),
        None => not_found(),
    }
}

async fn update(
    State(shared): Shr,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = authorized(&shared, &account, &headers) {
        return e.into_response();
    }
    let Some(sid) = sid.strip_suffix(".json") else {
        return not_found();
    };
    let params = parse_form(&body);
    let status = first(&params, "Status").filter(|s| !s.is_empty());
    let redirect = if let Some(t) = first(&params, "Twiml").filter(|s| !s.is_empty()) {
        Some(VoiceSource::Twiml(t.to_string()))
    } else if let Some(u) = first(&params, "Url").filter(|s| !s.is_empty()) {
        if !is_http_url(u) {
            return error(
                StatusCode::BAD_REQUEST,
                21205,
                &format!("Url is not a valid URL: {u}"),
            );
        }
        Some(VoiceSource::Url {
            url: u.to_string(),
            method: method_of(&params, "Method"),
        })
    } else {
        None
    };
    if let Some(s) = status {
        if s != "completed" && s != "canceled" {
            return error(
                StatusCode::BAD_REQUEST,
                21218,
                &format!("Invalid Status: {s}"),
            );
        }
    }
    if status.is_none() && redirect.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            21218,
            "Either Status, Url or Twiml is required",
        );
    }

    let mut st = shared.state();
    let Some(rec) = st.find_mut(sid) else {
        drop(st);
        return not_found();
    };
    if is_terminal(&rec.call.status) {
        return error(
            StatusCode::BAD_REQUEST,
            21220,
            "Call is not in-progress. Cannot redirect.",
        );
    }
    let live = rec.call.status == "in-progress";
    match status {
        // An answered call completes; one not yet answered is canceled (Twilio never connected it).
        Some("completed") => {
            rec.end(if live { "completed" } else { "canceled" }, Some("api"));
        }
        // Canceling an in-progress call is a no-op at Twilio.
        Some("canceled") if !live => {
            rec.end("canceled", Some("api"));
        }
        _ => {
            if let Some(src) = redirect {
                if live {
                    // The call task drops what it is running and fetches this.
                    let _ = rec.redirects.send(src);
                } else {
                    rec.voice = src;
                }
            }
        }
    }
    tracing::info!(%sid, status = %rec.call.status, "emulator: call updated");
    Json(call_json(&account, rec)).into_response()
}

/// `POST /_emulator/faults` with a JSON array such as `["RateLimited","ServerErrorAfterCreate"]`.
async fn faults(State(shared): Shr, body: Bytes) -> Response {
    match serde_json::from_slice::<Vec<Fault>>(&body) {
        Ok(list) => {
            let n = list.len();
            shared.state().faults.extend(list);
            Json(json!({"queued": n})).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, 20001, &format!("bad faults: {e}")),
    }
}

/// `GET /_emulator/calls`: a summary of every call, for the CLI.
async fn emulator_calls(State(shared): Shr) -> Response {
    let st = shared.state();
    let calls: Vec<Value> = st
        .calls
        .iter()
        .map(|r| {
            let c = &r.call;
            json!({
                "sid": c.sid, "to": c.to, "from": c.from, "status": c.status,
                "answered_by": c.answered_by, "hung_up_by": c.hung_up_by,
                "status_events": c.status_events(), "error": c.error, "said": c.said,
                "agent_audio_ms": c.media.as_ref().map(|m| m.heard.iter().map(|h| h.samples.len() as u64 / 8).sum::<u64>()),
                "done": r.done,
            })
        })
        .collect();
    Json(json!({"calls": calls, "create_requests": st.create_requests})).into_response()
}

/// Records a new call and starts its life (`inbound`: a person rang our number). Returns its
/// SID and its REST representation.
pub(super) fn add_call(
    shared: &Arc<Shared>,
    account: &str,
    params: Params,
    persona: super::Persona,
    voice: VoiceSource,
    inbound: bool,
) -> (String, serde_json::Value) {
    let to = first(&params, "To").unwrap_or("").to_string();
    let from = first(&params, "From").unwrap_or("").to_string();
    let (redirect_tx, redirect_rx) = mpsc::unbounded_channel();
    let now = Utc::now();
    let sid = new_sid("CA");
    let record = CallRecord {
        call: EmulatedCall {
            sid: sid.clone(),
            to,
            from,
            inbound,
            status: "queued".into(),
            answered_by: None,
            create_params: params,
            callbacks: Vec::new(),
            twiml: None,
            media: None,
            hung_up_by: None,
            said: Vec::new(),
            played: Vec::new(),
            dial: None,
            error: None,
        },
        persona,
        date_created: now,
        date_updated: now,
        start_time: None,
        end_time: None,
        answered_at: None,
        duration: None,
        voice,
        hangup: shared.root.child_token(),
        redirects: redirect_tx,
        done: false,
    };
    let body = call_json(account, &record);
    shared.state().calls.push(record);
    tokio::spawn(lifecycle::run(shared.clone(), sid.clone(), redirect_rx));
    (sid, body)
}
