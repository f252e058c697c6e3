//! Twilio REST client for calls: create, fetch, list, hang up, cancel, redirect and update with
//! new TwiML (a transfer's `<Dial>`).
//!
//! The contract (paths, form keys, JSON shapes) is the "REST: calls" section of
//! shared/docs/twilio.md. The one subtle part is retrying a *create*: a 5xx or a timeout after the
//! request went out does not mean Twilio did not place the call, and dialling a consumer twice is
//! both a bad experience and a compliance risk. So [`TwilioClient::create_call`] only retries
//! blindly when the request surely never reached Twilio (connect errors) or was rejected up front
//! (429); otherwise it first looks for the call it may already have created.
//!
//! Secrets (auth token, API key secret) never appear in `Debug` output, logs or error messages.

mod calls;
mod error;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use calls::{create_form, same_number, CallPage};
pub use calls::{CallFilter, CallResource, CreateCall, MachineDetection};
pub use error::TwilioError;
use error::{api_error, Failure};

/// Default per-request timeout (connect + send + whole response).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// `list_calls` stops following `next_page_uri` after this many pages.
const MAX_PAGES: usize = 20;
/// Twilio's call responses are a few KiB; anything far larger is not Twilio.
const MAX_BODY_BYTES: usize = 4 << 20;
/// Longest error message we keep from a response body (non-JSON bodies can be whole HTML pages).
const MAX_ERROR_MESSAGE: usize = 512;
/// `date_created` has one-second resolution and our clock is not Twilio's.
const CREATED_SLACK_SECS: i64 = 2;
/// Twilio's "call not found / already gone" error code.
const CODE_NOT_FOUND: u32 = 20404;
/// "Call is not in-progress. Cannot redirect / update": it ended on its own meanwhile.
const CODE_NOT_IN_PROGRESS: u32 = 21220;
/// Twilio's "too many requests" error code.
const CODE_TOO_MANY_REQUESTS: u32 = 20429;

/// How we authenticate: account auth token, or an API key (SK...) + secret; the AccountSid stays in
/// the path either way.
#[derive(Clone)]
pub enum TwilioAuth {
    AuthToken(String),
    ApiKey { sid: String, secret: String },
}

impl TwilioAuth {
    /// HTTP Basic user and password: the account SID for an auth token, the key SID for an API key.
    fn basic<'a>(&'a self, account_sid: &'a str) -> (&'a str, &'a str) {
        match self {
            TwilioAuth::AuthToken(token) => (account_sid, token),
            TwilioAuth::ApiKey { sid, secret } => (sid, secret),
        }
    }
}

/// Redacts the token/secret; the key SID is an identifier, not a secret, and helps debugging.
impl fmt::Debug for TwilioAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TwilioAuth::AuthToken(_) => f.write_str("AuthToken(<redacted>)"),
            TwilioAuth::ApiKey { sid, .. } => f
                .debug_struct("ApiKey")
                .field("sid", sid)
                .field("secret", &format_args!("<redacted>"))
                .finish(),
        }
    }
}

/// Back-off for retried requests: exponential from `base_delay`, capped at `max_delay`, with full
/// jitter so that many dialer workers hitting a 429 together do not retry in lockstep.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts including the first (0 is treated as 1).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// Delay before the retry that follows failed attempt number `attempt` (1-based).
    /// A server-sent `Retry-After` wins over the computed back-off, but never beyond `max_delay`.
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_delay);
        }
        let cap = 2u32
            .checked_pow(attempt.saturating_sub(1))
            .and_then(|factor| self.base_delay.checked_mul(factor))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let cap_us = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::thread_rng().gen_range(0..=cap_us))
    }
}

/// Twilio REST client for one account. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    /// Normalised base URL without trailing slash, e.g. `https://api.twilio.com`.
    base: String,
    base_url: url::Url,
    account_sid: String,
    auth: TwilioAuth,
    retry: RetryPolicy,
}

impl fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioClient")
            .field("base", &self.base)
            .field("account_sid", &self.account_sid)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .finish()
    }
}

/// SIDs go into URL paths, so only plain alphanumerics are accepted (no `/`, `..`, `?`).
fn valid_sid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn build_http(timeout: Duration) -> Result<reqwest::Client, TwilioError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // Twilio does not redirect API calls; following one could carry Basic auth elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("telemarketer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| TwilioError::InvalidConfig(format!("HTTP client: {}", describe(e))))
}

impl TwilioClient {
    /// `base_url` is `https://api.twilio.com` in production or a local fake's `http://127.0.0.1:PORT`
    /// (trailing slash fine; a path prefix is kept).
    pub fn new(base_url: &str, account_sid: &str, auth: TwilioAuth) -> Result<Self, TwilioError> {
        let parsed = url::Url::parse(base_url.trim())
            .map_err(|e| TwilioError::InvalidConfig(format!("base URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(TwilioError::InvalidConfig(
                "base URL must be http(s)://host".into(),
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(TwilioError::InvalidConfig(
                "base URL must not carry credentials".into(),
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(TwilioError::InvalidConfig(
                "base URL must not have a query or fragment".into(),
            ));
        }
        if !valid_sid(account_sid) {
            return Err(TwilioError::InvalidConfig(
                "account SID must be non-empty and alphanumeric".into(),
            ));
        }
        match &auth {
            TwilioAuth::AuthToken(token) if token.is_empty() => {
                return Err(TwilioError::InvalidConfig("empty auth token".into()));
            }
            TwilioAuth::ApiKey { sid, secret } if !valid_sid(sid) || secret.is_empty() => {
                return Err(TwilioError::InvalidConfig(
                    "API key needs an alphanumeric SID and a non-empty secret".into(),
                ));
            }
            _ => {}
        }
        if parsed.scheme() == "http" && !is_loopback(&parsed) {
            tracing::warn!(
                host = parsed.host_str().unwrap_or(""),
                "Twilio base URL is plain http: credentials travel unencrypted"
            );
        }
        Ok(TwilioClient {
            http: build_http(DEFAULT_TIMEOUT)?,
            base: parsed.as_str().trim_end_matches('/').to_owned(),
            base_url: parsed,
            account_sid: account_sid.to_owned(),
            auth,
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Replaces the per-request timeout (default 15 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, TwilioError> {
        self.http = build_http(timeout)?;
        Ok(self)
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    fn calls_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            self.base, self.account_sid
        )
    }

    fn call_url(&self, sid: &str) -> Result<String, TwilioError> {
        if !valid_sid(sid) {
            return Err(TwilioError::InvalidConfig(format!(
                "call SID must be alphanumeric, got {:?}",
                sid.chars().take(40).collect::<String>()
            )));
        }
        Ok(format!(
            "{}/2010-04-01/Accounts/{}/Calls/{}.json",
            self.base, self.account_sid, sid
        ))
    }

    /// `POST /2010-04-01/Accounts/{Sid}/Calls.json` (form).
    ///
    /// Retries 429 and errors where the request surely did not reach Twilio (connect errors) with
    /// exponential back-off and full jitter. Never blindly retries a create that may have
    /// succeeded (5xx, timeout or reset after sending): before each such retry, and once more
    /// after the last attempt, it lists calls (To, From, StartTime>= the first attempt's UTC date)
    /// and returns a call created at or after the first attempt (2 s slack) instead of placing a
    /// second one. 4xx other than 429 -> [`TwilioError::Api`] at once.
    ///
    /// [`TwilioError::CreateUnknown`]: an attempt may have been acted on and no such call was
    /// listed (or the list itself failed; the message says so). Twilio's list is expected to
    /// show a new call within the back-off, but that is not guaranteed, so the caller must ask
    /// the list again later rather than create again. [`TwilioError::Unavailable`]: no attempt
    /// reached Twilio.
    pub async fn create_call(&self, req: &CreateCall) -> Result<CallResource, TwilioError> {
        let form = create_form(req)?;
        let url = self.calls_url();
        let max = self.retry.attempts();
        let first_send = Utc::now();
        let mut maybe_created = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.send_once(Method::POST, &url, &[], Some(&form)).await {
                Ok(body) => return decode_call(&body),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(f) => f,
            };
            maybe_created |= matches!(failure, Failure::MaybeSent { .. });
            if attempt >= max && !maybe_created {
                return Err(failure.exhausted(attempt));
            }
            let delay = self.retry.delay(attempt, failure.retry_after());
            tracing::warn!(
                op = "create_call",
                attempt,
                max_attempts = max,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                maybe_created,
                reason = %failure.detail(),
                "Twilio create failed; backing off"
            );
            tokio::time::sleep(delay).await;
            if maybe_created {
                match self.find_created(req, first_send).await {
                    Ok(Some(call)) => {
                        tracing::info!(call_sid = %call.sid, "found the call an earlier create attempt placed");
                        return Ok(call);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Without knowing whether the call exists we must not create another.
                        return Err(TwilioError::CreateUnknown {
                            attempts: attempt,
                            last: format!(
                                "{}; then could not check whether the call was created: {e}",
                                failure.detail()
                            ),
                        });
                    }
                }
            }
            if attempt >= max {
                return Err(failure.exhausted_create(attempt, maybe_created));
            }
        }
    }

    /// Looks for a call matching `req` that Twilio created at or after `first_send`.
    async fn find_created(
        &self,
        req: &CreateCall,
        first_send: DateTime<Utc>,
    ) -> Result<Option<CallResource>, TwilioError> {
        let filter = CallFilter {
            to: Some(req.to.clone()),
            from: Some(req.from.clone()),
            status: None,
            start_time_after: Some(first_send.date_naive()),
        };
        let not_before = first_send - chrono::Duration::seconds(CREATED_SLACK_SECS);
        let found = self
            .list_calls(&filter)
            .await?
            .into_iter()
            .filter(|c| same_number(&c.to, &req.to) && same_number(&c.from, &req.from))
            .filter_map(|c| {
                let created = DateTime::parse_from_rfc2822(c.date_created.as_deref()?).ok()?;
                let created = created.with_timezone(&Utc);
                (created >= not_before).then_some((created, c))
            })
            .min_by_key(|(created, _)| *created)
            .map(|(_, c)| c);
        Ok(found)
    }

    /// Whether Twilio answers at all: one small `GET Calls.json` (`PageSize=1`), retried like
    /// any read. The dialer probes with it while Twilio is down instead of burning leads.
    pub async fn check(&self) -> Result<(), TwilioError> {
        let query = [("PageSize", "1".to_owned())];
        self.send_idempotent("check", Method::GET, &self.calls_url(), &query, None)
            .await
            .map(drop)
    }

    /// `GET Calls/{sid}.json`.
    pub async fn fetch_call(&self, sid: &str) -> Result<CallResource, TwilioError> {
        let url = self.call_url(sid)?;
        let body = self
            .send_idempotent("fetch_call", Method::GET, &url, &[], None)
            .await?;
        decode_call(&body)
    }

    /// `GET Calls.json` with the filter; follows `next_page_uri` (relative to the base URL) up to
    /// 20 pages, then stops with a warning rather than walking an account's whole history.
    pub async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallResource>, TwilioError> {
        let mut query: Vec<(&'static str, String)> = Vec::new();
        if let Some(to) = &filter.to {
            query.push(("To", to.clone()));
        }
        if let Some(from) = &filter.from {
            query.push(("From", from.clone()));
        }
        if let Some(status) = &filter.status {
            query.push(("Status", status.clone()));
        }
        if let Some(date) = filter.start_time_after {
            query.push(("StartTime>=", date.format("%Y-%m-%d").to_string()));
        }
        let mut url = self.calls_url();
        let mut calls = Vec::new();
        for _ in 0..MAX_PAGES {
            let body = self
                .send_idempotent("list_calls", Method::GET, &url, &query, None)
                .await?;
            let page: CallPage = decode(&body)?;
            calls.extend(page.calls);
            match page.next_page_uri.filter(|n| !n.is_empty()) {
                Some(next) => {
                    url = self.resolve_next(&next)?;
                    // The next page URI already carries the filter.
                    query.clear();
                }
                None => return Ok(calls),
            }
        }
        tracing::warn!(
            pages = MAX_PAGES,
            calls = calls.len(),
            "list_calls stopped at the page limit"
        );
        Ok(calls)
    }

    /// Joins a `next_page_uri` onto the base URL, refusing anything that would leave its origin
    /// (the request carries our credentials).
    fn resolve_next(&self, next: &str) -> Result<String, TwilioError> {
        let bad = || TwilioError::Decode("next_page_uri is not a path on the API host".into());
        if !next.starts_with('/') || next.starts_with("//") {
            return Err(bad());
        }
        let joined = format!("{}{}", self.base, next);
        let parsed = url::Url::parse(&joined).map_err(|_| bad())?;
        if parsed.origin() != self.base_url.origin()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return Err(bad());
        }
        Ok(joined)
    }

    /// `POST Calls/{sid}.json` `Status=completed`. Twilio errors 20404 (call already gone) and
    /// 21220 (no longer in progress) -> `Ok`.
    pub async fn hang_up(&self, sid: &str) -> Result<(), TwilioError> {
        self.set_status("hang_up", sid, "completed").await
    }

    /// `Status=canceled` (affects queued/ringing calls only); 20404 -> `Ok`.
    pub async fn cancel(&self, sid: &str) -> Result<(), TwilioError> {
        self.set_status("cancel", sid, "canceled").await
    }

    async fn set_status(
        &self,
        op: &'static str,
        sid: &str,
        status: &str,
    ) -> Result<(), TwilioError> {
        let url = self.call_url(sid)?;
        let form = [("Status", status.to_owned())];
        match self
            .send_idempotent(op, Method::POST, &url, &[], Some(&form))
            .await
        {
            Ok(_) => Ok(()),
            // Already over (gone, or ended by the callee first): what we wanted.
            Err(e) if matches!(e.code(), Some(CODE_NOT_FOUND | CODE_NOT_IN_PROGRESS)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Points a live call at new TwiML (e.g. transfer to a human): form `Url=...`, `Method=POST`.
    pub async fn redirect(&self, sid: &str, url: &str) -> Result<CallResource, TwilioError> {
        if url.is_empty() {
            return Err(TwilioError::InvalidConfig("redirect URL is empty".into()));
        }
        let endpoint = self.call_url(sid)?;
        let form = [("Url", url.to_owned()), ("Method", "POST".to_owned())];
        let body = self
            .send_idempotent("redirect", Method::POST, &endpoint, &[], Some(&form))
            .await?;
        decode_call(&body)
    }

    /// Replaces a live call's TwiML with `twiml` (form `Twiml=...`): Twilio stops what runs
    /// (a media stream gets `stop`) and executes the new document, e.g. a `<Dial>` transfer.
    pub async fn update_twiml(&self, sid: &str, twiml: &str) -> Result<CallResource, TwilioError> {
        if twiml.is_empty() {
            return Err(TwilioError::InvalidConfig("TwiML is empty".into()));
        }
        let endpoint = self.call_url(sid)?;
        let form = [("Twiml", twiml.to_owned())];
        let body = self
            .send_idempotent("update_twiml", Method::POST, &endpoint, &[], Some(&form))
            .await?;
        decode_call(&body)
    }

    /// Sends a request that is safe to repeat, retrying 429, 5xx and network errors.
    async fn send_idempotent(
        &self,
        op: &'static str,
        method: Method,
        url: &str,
        query: &[(&'static str, String)],
        form: Option<&[(&'static str, String)]>,
    ) -> Result<Vec<u8>, TwilioError> {
        let max = self.retry.attempts();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.send_once(method.clone(), url, query, form).await {
                Ok(body) => return Ok(body),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(f) => f,
            };
            if attempt >= max {
                return Err(failure.exhausted(attempt));
            }
            let delay = self.retry.delay(attempt, failure.retry_after());
            tracing::warn!(
                op,
                attempt,
                max_attempts = max,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                reason = %failure.detail(),
                "Twilio request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One HTTP exchange; returns the body of a 2xx response.
    async fn send_once(
        &self,
        method: Method,
        url: &str,
        query: &[(&'static str, String)],
        form: Option<&[(&'static str, String)]>,
    ) -> Result<Vec<u8>, Failure> {
        let (user, pass) = self.auth.basic(&self.account_sid);
        let mut rb = self
            .http
            .request(method, url)
            .basic_auth(user, Some(pass))
            .header(ACCEPT, "application/json");
        if !query.is_empty() {
            rb = rb.query(query);
        }
        if let Some(form) = form {
            rb = rb.form(form);
        }
        let mut resp = match rb.send().await {
            Ok(resp) => resp,
            Err(e) if e.is_builder() => {
                return Err(Failure::Fatal(TwilioError::InvalidConfig(describe(e))));
            }
            // A connect error (including a connect timeout) means no byte of the request left.
            Err(e) if e.is_connect() => return Err(Failure::NotSent(describe(e))),
            Err(e) => {
                return Err(Failure::MaybeSent {
                    retry_after: None,
                    detail: describe(e),
                });
            }
        };
        let status = resp.status();
        let retry_after = parse_retry_after(resp.headers());
        let body = match read_body(&mut resp).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return Err(Failure::Fatal(TwilioError::Decode(format!(
                    "HTTP {status} response body over {MAX_BODY_BYTES} bytes"
                ))));
            }
            Err(BodyError::Transport(detail)) => {
                return Err(Failure::MaybeSent {
                    retry_after: None,
                    detail: format!("HTTP {status}, body cut: {detail}"),
                });
            }
        };
        if status.is_success() {
            return Ok(body);
        }
        let err = api_error(status, &body);
        if status == StatusCode::TOO_MANY_REQUESTS || err.code() == Some(CODE_TOO_MANY_REQUESTS) {
            Err(Failure::RateLimited { retry_after })
        } else if status.is_server_error() {
            Err(Failure::MaybeSent {
                retry_after,
                detail: err.to_string(),
            })
        } else {
            Err(Failure::Fatal(err))
        }
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `Retry-After` in delta-seconds; the HTTP-date form is ignored (Twilio sends seconds).
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

enum BodyError {
    TooLarge,
    Transport(String),
}

async fn read_body(resp: &mut reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(BodyError::Transport(describe(e))),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, TwilioError> {
    serde_json::from_slice(body).map_err(|e| TwilioError::Decode(e.to_string()))
}

fn decode_call(body: &[u8]) -> Result<CallResource, TwilioError> {
    decode(body)
}

/// reqwest error text without the URL, plus its causes ("connection refused" lives in a source).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;
