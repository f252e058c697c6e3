//! The operator console at `/`: server-rendered HTML (maud escapes every value, so a caller's
//! words or a lead file cannot inject markup), one stylesheet and one small script embedded in
//! the binary, no CDN and no build step. Plain forms post and redirect; the live pages use
//! Server-Sent Events.
//!
//! Every page and every asset that shows data sits behind [`auth::Operator`] (the login); every
//! write checks the session's CSRF token and refuses other sites ([`auth::cross_site_guard`]).
//! The bearer-token `/v1` API stays for machines.
//!
//! - `/campaigns`: list, create, import, start/pause/resume/stop, the funnel per node.
//! - `/live`: calls in progress with their transcripts and latency (SSE), hang up.
//! - `/calls`: search the records; a record with its history, transcript, recording, audit.
//! - `/dnc`: the do-not-call list: add, remove (with reason), CSV export; every change audited.
//! - `/scripts`: edit a campaign's script with validation, its graph, a text chat against it,
//!   and the browser softphone (`/softphone/..`, its own routes, behind the same login).

// A page handler's early exit is a whole response (a redirect, a 403): that is the error type.
#![allow(clippy::result_large_err)]

mod auth;
mod calls;
mod campaigns;
mod dnc;
mod scripts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};

pub use auth::hash_password;
pub use auth::{LoginLimiter, Operator, COOKIE};

use super::AppState;
use crate::store::Store;

/// The console's in-memory state: login attempts and open script chats.
#[derive(Clone, Default)]
pub struct Console {
    pub logins: LoginLimiter,
    pub chats: scripts::Chats,
}

pub type Page = Html<String>;

/// The console's routes (merged into the appliance's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/campaigns") }))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .route("/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/campaigns/{id}", get(campaigns::show))
        .route("/campaigns/{id}/import", post(campaigns::import))
        .route("/campaigns/{id}/action", post(campaigns::action))
        .route("/live", get(calls::live_page))
        .route("/live/events", get(calls::live_events))
        .route("/live/{sid}/hangup", post(calls::hang_up))
        .route("/calls", get(calls::search))
        .route("/calls/{sid}", get(calls::record))
        .route("/calls/{sid}/recording.wav", get(calls::recording))
        .route("/dnc", get(dnc::list).post(dnc::add))
        .route("/dnc/remove", post(dnc::remove))
        .route("/dnc.csv", get(dnc::export))
        .route("/scripts", get(scripts::list))
        .route("/scripts/{id}", get(scripts::edit).post(scripts::save))
        .route("/scripts/{id}/chat", post(scripts::chat))
        .layer(axum::middleware::from_fn(auth::cross_site_guard))
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The stylesheet shows no data: served without a login (the login page uses it).
async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CSS,
    )
}

async fn js(_: Operator) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        JS,
    )
}

const NAV: [(&str, &str); 5] = [
    ("/campaigns", "Campaigns"),
    ("/live", "Live calls"),
    ("/calls", "Call records"),
    ("/dnc", "Do-not-call"),
    ("/scripts", "Scripts"),
];

fn head(title: &str) -> Markup {
    html! {
        (DOCTYPE)
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · telemarketer" }
        link rel="stylesheet" href="/assets/console.css";
    }
}

/// A page of the console: the navigation, the operator and a logout button around `body`.
pub fn page(op: &Operator, title: &str, body: Markup) -> Page {
    let markup = html! {
        html lang="en" {
            head { (head(title)) script src="/assets/console.js" defer {} }
            body data-csrf=(op.csrf) {
                header {
                    nav {
                        strong { "telemarketer" }
                        @for (href, name) in NAV {
                            a href=(href) aria-current=[(name == title || title.starts_with(name)).then_some("page")] { (name) }
                        }
                    }
                    form.logout method="post" action="/logout" {
                        (csrf(op))
                        span { (op.username) }
                        button type="submit" { "Log out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(markup.into_string())
}

/// A page without the navigation (the login).
fn page_bare(title: &str, body: Markup) -> Page {
    Html(
        html! { html lang="en" { head { (head(title)) } body.bare { main { (body) } } } }
            .into_string(),
    )
}

/// The hidden CSRF field every form carries.
pub fn csrf(op: &Operator) -> Markup {
    html! { input type="hidden" name="_csrf" value=(op.csrf); }
}

/// Flash messages travel in the redirect's query (`?ok=` / `?error=`), escaped on the way in.
pub fn flash(ok: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = ok { p.ok role="status" { (m) } }
        @if let Some(m) = error { p.error role="alert" { (m) } }
    }
}

/// Redirects to `path` with a flash message.
pub fn back(path: &str, ok: Result<String, String>) -> Response {
    let (key, msg) = match &ok {
        Ok(m) => ("ok", m.as_str()),
        Err(m) => ("error", m.as_str()),
    };
    let msg: String = url::form_urlencoded::byte_serialize(msg.as_bytes()).collect();
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}{key}={msg}")).into_response()
}

/// What a handler answers: its page or redirect, or the error page a check or the store gave
/// (`?` on [`store`], [`failed`], [`Operator::check_csrf`]).
pub type Reply = Result<Response, Response>;

fn store(state: &AppState) -> Result<&Store, Response> {
    state.store.as_ref().ok_or_else(|| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the console needs a database",
        )
            .into_response()
    })
}

/// A store error as a page-level response (details in the log).
fn failed(e: impl std::fmt::Display) -> Response {
    let text = e.to_string();
    if text.contains("not found") {
        return (StatusCode::NOT_FOUND, text).into_response();
    }
    tracing::error!(error = %text, "console page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "database error (see the server log)",
    )
        .into_response()
}

/// Unix ms as UTC "2026-12-03 14:05:09".
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// Where the call's recording plays from, when it has one on this appliance's disk (the file
/// is written when the call ends).
async fn recording_url(state: &AppState, sid: &str) -> Option<String> {
    let rec = state.store.as_ref()?.recording(sid).await.ok()??;
    tokio::fs::metadata(&rec.path)
        .await
        .ok()
        .map(|_| format!("/calls/{sid}/recording.wav"))
}

/// Raw HTML the code itself wrote (an SVG we rendered), never data.
fn trusted(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}

/// Per-key memory bounded by count: the oldest entry goes first.
#[derive(Clone)]
pub struct Bounded<T> {
    inner: Arc<Mutex<Entries<T>>>,
}

/// The entries and their keys, oldest first.
type Entries<T> = (HashMap<String, T>, std::collections::VecDeque<String>);

impl<T> Default for Bounded<T> {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
        }
    }
}

impl<T: Clone> Bounded<T> {
    pub fn get(&self, key: &str) -> Option<T> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .get(key)
            .cloned()
    }

    pub fn put(&self, key: &str, value: T, max: usize) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *g;
        if map.insert(key.to_string(), value).is_none() {
            order.push_back(key.to_string());
        }
        while map.len() > max {
            match order.pop_front() {
                Some(old) => {
                    map.remove(&old);
                }
                None => break,
            }
        }
    }

    pub fn remove(&self, key: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0.remove(key);
        g.1.retain(|k| k != key);
    }
}
