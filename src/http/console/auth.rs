//! The console's login: operator accounts (argon2 hashes in the store, made with the CLI), a
//! session cookie (HttpOnly, SameSite=Strict, Secure behind https), a CSRF token on every form,
//! a cross-site guard on every write, and rate-limited login attempts.
//!
//! [`Operator`] is an extractor, like the API's `Bearer`: a page handler takes it first, so no
//! page can forget the check; without a session the browser is sent to the login page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{page_bare, Page};
use crate::http::AppState;
use crate::store::Store;

/// The session cookie's name.
pub const COOKIE: &str = "tm_session";
/// How long a login lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed logins per user name (and per client) within [`LOCKOUT`] before refusing.
const MAX_FAILURES: u32 = 5;
const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Names the limiter tracks at once: a flood of made-up names cannot grow it.
const MAX_TRACKED: usize = 10_000;

/// Hashes a password for the store (argon2id, random salt, PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to verify against when the user does not exist, so a wrong name costs the same time
/// as a wrong password (no user enumeration by timing).
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default())
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Failed attempts per key (a user name, a client address) in a sliding window.
#[derive(Clone, Default)]
pub struct LoginLimiter {
    failures: Arc<Mutex<HashMap<String, (u32, Instant)>>>,
}

impl LoginLimiter {
    fn blocked(&self, key: &str) -> bool {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .is_some_and(|(n, since)| *n >= MAX_FAILURES && since.elapsed() < LOCKOUT)
    }

    fn fail(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, since)| since.elapsed() < LOCKOUT);
        }
        if map.len() >= MAX_TRACKED && !map.contains_key(key) {
            // Still full of live entries: an attack in progress; the per-name lockouts it
            // already earned stay, this newcomer is not tracked.
            return;
        }
        let entry = map.entry(key.to_string()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= LOCKOUT {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn succeed(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// A logged-in operator (the request carried a live session cookie).
pub struct Operator {
    pub username: String,
    pub csrf: String,
}

impl Operator {
    /// Every form of the console carries the session's token; a form from anywhere else
    /// cannot know it.
    pub fn check_csrf(&self, given: &str) -> Result<(), Response> {
        if bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes())) && !given.is_empty() {
            Ok(())
        } else {
            tracing::warn!(user = %self.username, "console form with a wrong CSRF token refused");
            Err((
                StatusCode::FORBIDDEN,
                "this form expired or came from another site: reload the page",
            )
                .into_response())
        }
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn login_redirect(parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(store) = state.store.as_ref() else {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "the console needs a database",
            )
                .into_response());
        };
        let Some(token) = cookie_value(&parts.headers, COOKIE) else {
            return Err(login_redirect(parts));
        };
        match store.session(&token_hash(token)).await {
            Ok(Some(s)) => Ok(Operator {
                username: s.username,
                csrf: s.csrf,
            }),
            Ok(None) => Err(login_redirect(parts)),
            Err(e) => {
                tracing::error!(error = %e, "console session lookup failed");
                Err((StatusCode::INTERNAL_SERVER_ERROR, "database error").into_response())
            }
        }
    }
}

/// Refuses a write from another site before any handler runs: `Sec-Fetch-Site: cross-site`
/// (every current browser sends it), or an `Origin` that is not this host. SameSite=Strict
/// already keeps the cookie off such requests, and the CSRF token is checked too.
pub async fn cross_site_guard(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let h = req.headers();
        let fetch_site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = h
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(|o| o.split_once("://").map(|(_, h)| h).unwrap_or(o));
        let foreign = fetch_site == Some("cross-site")
            || matches!((origin_host, host), (Some(o), Some(h)) if o != h)
            || (origin_host == Some("null"));
        if foreign {
            tracing::warn!(path = %req.uri().path(), "cross-site console write refused");
            return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
        }
    }
    let mut res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html && !res.headers().contains_key(header::CONTENT_SECURITY_POLICY) {
        // Only our own scripts, worklets, sockets and media; inline styles for the funnel's bars.
        res.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            axum::http::HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; connect-src 'self'; media-src 'self'; \
                 img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; \
                 form-action 'self'",
            ),
        );
    }
    res
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only our own paths: a login link cannot send the operator to another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/campaigns",
    }
}

pub async fn login_page(Query(q): Query<Next>) -> Page {
    login_form(q.next.as_deref(), None)
}

fn login_form(next: Option<&str>, error: Option<&str>) -> Page {
    page_bare(
        "Log in",
        html! {
            form.login method="post" action="/login" {
                h1 { "telemarketer" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                input type="hidden" name="next" value=(safe_next(next));
                label { "User name" input name="username" autocomplete="username" required autofocus; }
                label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(store) = state.store.as_ref() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the console needs a database",
        )
            .into_response();
    };
    let limiter = &state.console.logins;
    let user = form.username.trim().to_lowercase();
    let client = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| format!("ip:{}", v.split(',').next().unwrap_or("").trim()));
    let keys: Vec<String> = std::iter::once(format!("user:{user}"))
        .chain(client)
        .collect();
    if keys.iter().any(|k| limiter.blocked(k)) {
        tracing::warn!("console login refused: too many failed attempts");
        let mut page = login_form(
            form.next.as_deref(),
            Some("Too many failed attempts: try again in 15 minutes."),
        )
        .into_response();
        *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return page;
    }
    let hash = match store.operator_hash(&user).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "operator lookup failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "database error").into_response();
        }
    };
    let password = form.password;
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| decoy_hash().to_string());
    // argon2 takes tens of milliseconds of CPU: off the async workers.
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false)
        && known;
    if !ok {
        keys.iter().for_each(|k| limiter.fail(k));
        tracing::warn!("console login failed");
        let mut page =
            login_form(form.next.as_deref(), Some("Wrong user name or password.")).into_response();
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return page;
    }
    keys.iter().for_each(|k| limiter.succeed(k));
    let token = random_hex(32);
    let expires = crate::store::now_ms() + SESSION_TTL.as_millis() as i64;
    if let Err(e) = store
        .create_session(&token_hash(&token), &user, &random_hex(32), expires)
        .await
    {
        tracing::error!(error = %e, "cannot create a console session");
        return (StatusCode::INTERNAL_SERVER_ERROR, "database error").into_response();
    }
    audit(store, &user, "login", "").await;
    let secure = state
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to(safe_next(form.next.as_deref())),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(rename = "_csrf", default)]
    pub csrf: String,
}

pub async fn logout(
    op: Operator,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = op.check_csrf(&form.csrf) {
        return r;
    }
    if let (Some(store), Some(token)) = (state.store.as_ref(), cookie_value(&headers, COOKIE)) {
        if let Err(e) = store.end_session(&token_hash(token)).await {
            tracing::error!(error = %e, "cannot end a console session");
        }
        audit(store, &op.username, "logout", "").await;
    }
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

/// A console change for the record; a failure to write it is logged, not fatal to the page.
pub async fn audit(store: &Store, user: &str, action: &str, detail: &str) {
    if let Err(e) = store.console_audit(user, action, detail).await {
        tracing::error!(error = %e, action, "console audit entry not written");
    }
}
