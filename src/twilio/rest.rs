//! Twilio REST client for calls: create, fetch, list, hang up, cancel and redirect.
//!
//! The contract (paths, form keys, JSON shapes) is the "REST: calls" section of
//! shared/docs/twilio.md. The one subtle part is retrying a *create*: a 5xx or a timeout after the
//! request went out does not mean Twilio did not place the call, and dialling a consumer twice is
//! both a bad experience and a compliance risk. So [`TwilioClient::create_call`] only retries
//! blindly when the request surely never reached Twilio (connect errors) or was rejected up front
//! (429); otherwise it first looks for the call it may already have created.
//!
//! Secrets (auth token, API key secret) never appear in `Debug` output, logs or error messages.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rand::Rng;
use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};

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

/// Answering-machine detection mode (`MachineDetection` form value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineDetection {
    Enable,
    DetectMessageEnd,
}

impl MachineDetection {
    fn as_str(self) -> &'static str {
        match self {
            MachineDetection::Enable => "Enable",
            MachineDetection::DetectMessageEnd => "DetectMessageEnd",
        }
    }
}

/// Parameters of an outbound call (`POST Calls.json`).
#[derive(Debug, Clone, Default)]
pub struct CreateCall {
    pub to: String,
    pub from: String,
    /// TwiML URL Twilio fetches when the call connects.
    pub url: String,
    pub method: Option<String>,
    pub status_callback: Option<String>,
    /// Sent as one repeated `StatusCallbackEvent` form key per value (Twilio rejects a joined
    /// list); empty means initiated, ringing, answered, completed.
    pub status_callback_events: Vec<String>,
    pub machine_detection: Option<MachineDetection>,
    pub async_amd: bool,
    pub async_amd_status_callback: Option<String>,
    pub machine_detection_timeout: Option<u32>,
    /// Ring timeout in seconds (Twilio's default is 60).
    pub timeout: Option<u32>,
    /// Maximum call length in seconds.
    pub time_limit: Option<u32>,
}

const DEFAULT_STATUS_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

/// The subset of Twilio's call resource the product uses; unknown fields are ignored.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct CallResource {
    pub sid: String,
    pub status: String,
    /// `null` reads as "" so one odd call cannot fail a whole list page.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub to: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub from: String,
    #[serde(default)]
    pub direction: Option<String>,
    /// RFC 2822, e.g. `Tue, 31 Aug 2010 20:36:28 +0000`.
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    /// Seconds, as a string.
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub answered_by: Option<String>,
    #[serde(default)]
    pub account_sid: Option<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Filter for [`TwilioClient::list_calls`]: query keys `To`, `From`, `Status`, `StartTime>=`.
#[derive(Debug, Default, Clone)]
pub struct CallFilter {
    pub to: Option<String>,
    pub from: Option<String>,
    pub status: Option<String>,
    pub start_time_after: Option<NaiveDate>,
}

/// One page of `GET Calls.json`.
#[derive(Deserialize)]
struct CallPage {
    calls: Vec<CallResource>,
    #[serde(default)]
    next_page_uri: Option<String>,
}

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
    /// 5xx or network failure after all retries. From `create_call` this means the outcome is
    /// unknown only if the call could not be looked up; see its docs.
    #[error("Twilio unavailable after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: String },
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
            TwilioError::Decode(_) | TwilioError::InvalidConfig(_) => false,
        }
    }
}

/// Why one HTTP attempt failed, classified by whether Twilio may have acted on it.
enum Failure {
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
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::RateLimited { retry_after } | Failure::MaybeSent { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    fn detail(&self) -> String {
        match self {
            Failure::RateLimited { .. } => "rate limited (429)".to_owned(),
            Failure::NotSent(d) | Failure::MaybeSent { detail: d, .. } => d.clone(),
            Failure::Fatal(e) => e.to_string(),
        }
    }

    /// The error to report once no attempts are left.
    fn exhausted(self, attempts: u32) -> TwilioError {
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
    /// [`TwilioError::Unavailable`] after a possibly-sent attempt means no such call was listed
    /// (or the list itself failed; the message says so); Twilio's list is expected to show a new
    /// call within the back-off, but that is not guaranteed.
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
                        return Err(TwilioError::Unavailable {
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
                return Err(failure.exhausted(attempt));
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

/// The form for `POST Calls.json`, in a stable order; repeated keys stay separate pairs.
fn create_form(req: &CreateCall) -> Result<Vec<(&'static str, String)>, TwilioError> {
    for (name, value) in [("to", &req.to), ("from", &req.from), ("url", &req.url)] {
        if value.trim().is_empty() {
            return Err(TwilioError::InvalidConfig(format!(
                "create_call: `{name}` is empty"
            )));
        }
    }
    let mut form = vec![
        ("To", req.to.clone()),
        ("From", req.from.clone()),
        ("Url", req.url.clone()),
    ];
    if let Some(method) = &req.method {
        form.push(("Method", method.clone()));
    }
    if let Some(cb) = &req.status_callback {
        form.push(("StatusCallback", cb.clone()));
    }
    if req.status_callback_events.is_empty() {
        form.extend(
            DEFAULT_STATUS_EVENTS
                .iter()
                .map(|e| ("StatusCallbackEvent", (*e).to_owned())),
        );
    } else {
        form.extend(
            req.status_callback_events
                .iter()
                .map(|e| ("StatusCallbackEvent", e.clone())),
        );
    }
    if let Some(md) = req.machine_detection {
        form.push(("MachineDetection", md.as_str().to_owned()));
    }
    if req.async_amd {
        form.push(("AsyncAmd", "true".to_owned()));
    }
    if let Some(cb) = &req.async_amd_status_callback {
        form.push(("AsyncAmdStatusCallback", cb.clone()));
    }
    if let Some(t) = req.machine_detection_timeout {
        form.push(("MachineDetectionTimeout", t.to_string()));
    }
    if let Some(t) = req.timeout {
        form.push(("Timeout", t.to_string()));
    }
    if let Some(t) = req.time_limit {
        form.push(("TimeLimit", t.to_string()));
    }
    Ok(form)
}

/// Compares phone numbers/addresses ignoring formatting Twilio may normalise away.
fn same_number(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect()
    };
    norm(a) == norm(b)
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

/// Maps Twilio's error JSON (`{"code","message","more_info","status"}`); tolerates non-JSON
/// bodies from proxies. The HTTP status of the response wins over the body's `status`.
fn api_error(status: StatusCode, body: &[u8]) -> TwilioError {
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
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::Response;
    use axum::Router;
    use base64::Engine as _;
    use serde_json::json;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    const AC: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const CA: &str = "CA0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "tok-s3cret-7f00";
    const TO: &str = "+14155551212";
    const FROM: &str = "+15017122661";

    /// One request as the fake saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        query: Vec<(String, String)>,
        form: Vec<(String, String)>,
        auth: Option<String>,
    }

    struct Reply {
        status: u16,
        body: String,
        headers: Vec<(&'static str, String)>,
        delay: Duration,
    }

    fn reply(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            headers: vec![],
            delay: Duration::ZERO,
        }
    }

    type Script = Box<dyn FnOnce(&Seen) -> Reply + Send>;

    /// Fake Twilio: records every request and answers from a scripted queue (500 when empty).
    #[derive(Clone, Default)]
    struct Fake {
        seen: Arc<Mutex<Vec<Seen>>>,
        script: Arc<Mutex<VecDeque<Script>>>,
    }

    impl Fake {
        fn push(&self, f: impl FnOnce(&Seen) -> Reply + Send + 'static) {
            self.script.lock().unwrap().push_back(Box::new(f));
        }
        fn push_reply(&self, status: u16, body: serde_json::Value) {
            self.push(move |_| reply(status, body));
        }
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    async fn handle(State(fake): State<Fake>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let pairs = |s: &[u8]| -> Vec<(String, String)> {
            url::form_urlencoded::parse(s).into_owned().collect()
        };
        let seen = Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: pairs(parts.uri.query().unwrap_or("").as_bytes()),
            form: pairs(&bytes),
            auth: parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        fake.seen.lock().unwrap().push(seen.clone());
        let next = fake.script.lock().unwrap().pop_front();
        let r = match next {
            Some(f) => f(&seen),
            None => reply(
                500,
                json!({"code": 20500, "message": "unscripted", "status": 500}),
            ),
        };
        if !r.delay.is_zero() {
            tokio::time::sleep(r.delay).await;
        }
        let mut resp = Response::builder()
            .status(r.status)
            .header("content-type", "application/json");
        for (k, v) in r.headers {
            resp = resp.header(k, v);
        }
        resp.body(Body::from(r.body)).unwrap()
    }

    async fn start_fake() -> (Fake, String) {
        let fake = Fake::default();
        let app = Router::new().fallback(handle).with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (fake, format!("http://{addr}/"))
    }

    fn tiny_retry(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    fn client(base: &str) -> TwilioClient {
        TwilioClient::new(base, AC, TwilioAuth::AuthToken(TOKEN.into()))
            .unwrap()
            .with_retry(tiny_retry(5))
    }

    fn rfc2822(t: DateTime<Utc>) -> String {
        t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
    }

    /// A call resource as Twilio returns it, with the many fields we ignore.
    fn call_json(sid: &str, status: &str, date_created: &str) -> serde_json::Value {
        json!({
            "account_sid": AC,
            "annotation": null,
            "answered_by": null,
            "api_version": "2010-04-01",
            "caller_name": null,
            "date_created": date_created,
            "date_updated": date_created,
            "direction": "outbound-api",
            "duration": "0",
            "end_time": null,
            "forwarded_from": null,
            "from": FROM,
            "from_formatted": "(501) 712-2661",
            "group_sid": null,
            "parent_call_sid": null,
            "phone_number_sid": "PNaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "price": null,
            "price_unit": "USD",
            "sid": sid,
            "start_time": null,
            "status": status,
            "subresource_uris": {
                "notifications": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Notifications.json"),
                "recordings": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Recordings.json"),
                "payments": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Payments.json"),
                "events": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Events.json"),
                "siprec": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Siprec.json"),
                "streams": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Streams.json"),
                "user_defined_message_subscriptions": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/UserDefinedMessageSubscriptions.json"),
                "user_defined_messages": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/UserDefinedMessages.json")
            },
            "to": TO,
            "to_formatted": "(415) 555-1212",
            "trunk_sid": null,
            "uri": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}.json"),
            "queue_time": "1000"
        })
    }

    fn page(calls: Vec<serde_json::Value>, next: Option<&str>) -> serde_json::Value {
        json!({
            "calls": calls,
            "end": 0,
            "first_page_uri": format!("/2010-04-01/Accounts/{AC}/Calls.json?PageSize=50&Page=0"),
            "next_page_uri": next,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": null,
            "start": 0,
            "uri": format!("/2010-04-01/Accounts/{AC}/Calls.json?PageSize=50&Page=0")
        })
    }

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    fn full_request() -> CreateCall {
        CreateCall {
            to: TO.into(),
            from: FROM.into(),
            url: "https://dialer.example.com/twiml/outbound?lead=42".into(),
            method: Some("POST".into()),
            status_callback: Some("https://dialer.example.com/twilio/status".into()),
            status_callback_events: vec![],
            machine_detection: Some(MachineDetection::DetectMessageEnd),
            async_amd: true,
            async_amd_status_callback: Some("https://dialer.example.com/twilio/amd".into()),
            machine_detection_timeout: Some(30),
            timeout: Some(25),
            time_limit: Some(600),
        }
    }

    fn simple_request() -> CreateCall {
        CreateCall {
            to: TO.into(),
            from: FROM.into(),
            url: "https://dialer.example.com/twiml".into(),
            ..Default::default()
        }
    }

    fn calls_path() -> String {
        format!("/2010-04-01/Accounts/{AC}/Calls.json")
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn create_sends_documented_form_with_token_auth_and_parses_201() {
        let (fake, base) = start_fake().await;
        let created = "Tue, 31 Aug 2010 20:36:28 +0000";
        fake.push_reply(201, call_json(CA, "queued", created));
        let call = client(&base).create_call(&full_request()).await.unwrap();

        let seen = fake.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].path, calls_path());
        assert!(seen[0].query.is_empty());
        assert_eq!(seen[0].auth.as_deref(), Some(basic(AC, TOKEN).as_str()));
        assert_eq!(
            seen[0].form,
            pairs(&[
                ("To", TO),
                ("From", FROM),
                ("Url", "https://dialer.example.com/twiml/outbound?lead=42"),
                ("Method", "POST"),
                ("StatusCallback", "https://dialer.example.com/twilio/status"),
                ("StatusCallbackEvent", "initiated"),
                ("StatusCallbackEvent", "ringing"),
                ("StatusCallbackEvent", "answered"),
                ("StatusCallbackEvent", "completed"),
                ("MachineDetection", "DetectMessageEnd"),
                ("AsyncAmd", "true"),
                (
                    "AsyncAmdStatusCallback",
                    "https://dialer.example.com/twilio/amd"
                ),
                ("MachineDetectionTimeout", "30"),
                ("Timeout", "25"),
                ("TimeLimit", "600"),
            ])
        );
        assert_eq!(
            call,
            CallResource {
                sid: CA.into(),
                status: "queued".into(),
                to: TO.into(),
                from: FROM.into(),
                direction: Some("outbound-api".into()),
                date_created: Some(created.into()),
                start_time: None,
                duration: Some("0".into()),
                answered_by: None,
                account_sid: Some(AC.into()),
            }
        );
    }

    #[tokio::test]
    async fn create_minimal_form_and_api_key_auth() {
        let (fake, base) = start_fake().await;
        fake.push_reply(
            201,
            call_json(CA, "queued", "Tue, 31 Aug 2010 20:36:28 +0000"),
        );
        let auth = TwilioAuth::ApiKey {
            sid: "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
            secret: "key-secret-99".into(),
        };
        let c = TwilioClient::new(base.trim_end_matches('/'), AC, auth).unwrap();
        let mut req = simple_request();
        req.status_callback_events = vec!["answered".into(), "completed".into()];
        req.machine_detection = Some(MachineDetection::Enable);
        c.create_call(&req).await.unwrap();
        let seen = fake.seen();
        assert_eq!(seen.len(), 1);
        // The AccountSid stays in the path; the key SID is the Basic user.
        assert_eq!(seen[0].path, calls_path());
        assert_eq!(
            seen[0].auth.as_deref(),
            Some(basic("SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "key-secret-99").as_str())
        );
        assert_eq!(
            seen[0].form,
            pairs(&[
                ("To", TO),
                ("From", FROM),
                ("Url", "https://dialer.example.com/twiml"),
                ("StatusCallbackEvent", "answered"),
                ("StatusCallbackEvent", "completed"),
                ("MachineDetection", "Enable"),
            ])
        );
    }

    #[tokio::test]
    async fn create_400_maps_api_error_without_retry() {
        let (fake, base) = start_fake().await;
        fake.push_reply(
            400,
            json!({"code": 21211, "message": "The 'To' number +1415 is not a valid phone number.",
                   "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}),
        );
        let err = client(&base)
            .create_call(&simple_request())
            .await
            .unwrap_err();
        match &err {
            TwilioError::Api {
                status,
                code,
                message,
                more_info,
            } => {
                assert_eq!(*status, 400);
                assert_eq!(*code, Some(21211));
                assert!(message.contains("not a valid phone number"));
                assert_eq!(
                    more_info.as_deref(),
                    Some("https://www.twilio.com/docs/errors/21211")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(err.code(), Some(21211));
        assert!(!err.is_retryable());
        assert_eq!(fake.seen().len(), 1);
    }

    #[tokio::test]
    async fn create_retries_429_then_succeeds() {
        let (fake, base) = start_fake().await;
        let too_many = json!({"code": 20429, "message": "Too Many Requests", "status": 429});
        let t = too_many.clone();
        fake.push(move |_| Reply {
            headers: vec![("retry-after", "0".into())],
            ..reply(429, t)
        });
        fake.push_reply(429, too_many);
        fake.push_reply(
            201,
            call_json(CA, "queued", "Tue, 31 Aug 2010 20:36:28 +0000"),
        );
        let call = client(&base).create_call(&simple_request()).await.unwrap();
        assert_eq!(call.sid, CA);
        let seen = fake.seen();
        assert_eq!(seen.len(), 3);
        // A 429 means nothing was created: no list in between, just three creates.
        assert!(seen
            .iter()
            .all(|s| s.method == "POST" && s.path == calls_path()));
    }

    #[tokio::test]
    async fn create_persistent_429_is_rate_limited() {
        let (fake, base) = start_fake().await;
        for _ in 0..3 {
            fake.push_reply(
                429,
                json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
            );
        }
        let err = client(&base)
            .with_retry(tiny_retry(3))
            .create_call(&simple_request())
            .await
            .unwrap_err();
        assert!(
            matches!(err, TwilioError::RateLimited { attempts: 3 }),
            "{err:?}"
        );
        assert_eq!(err.code(), Some(20429));
        assert!(err.is_retryable());
        assert_eq!(fake.seen().len(), 3);
    }

    #[tokio::test]
    async fn create_500_after_twilio_created_returns_existing_call() {
        let (fake, base) = start_fake().await;
        let created_at = Arc::new(Mutex::new(None));
        let c2 = created_at.clone();
        fake.push(move |_| {
            // Twilio placed the call, then failed to answer.
            *c2.lock().unwrap() = Some(Utc::now());
            reply(
                500,
                json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
            )
        });
        let c3 = created_at.clone();
        fake.push(move |_| {
            let t = c3.lock().unwrap().unwrap();
            reply(200, page(vec![call_json(CA, "ringing", &rfc2822(t))], None))
        });
        let call = client(&base).create_call(&simple_request()).await.unwrap();
        assert_eq!(call.sid, CA);
        assert_eq!(call.status, "ringing");

        let seen = fake.seen();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen.iter().filter(|s| s.method == "POST").count(), 1);
        assert_eq!(seen[1].method, "GET");
        assert_eq!(seen[1].path, calls_path());
        let today = Utc::now().date_naive().format("%Y-%m-%d").to_string();
        assert_eq!(
            seen[1].query,
            pairs(&[("To", TO), ("From", FROM), ("StartTime>=", today.as_str())])
        );
        assert_eq!(seen[1].auth.as_deref(), Some(basic(AC, TOKEN).as_str()));
    }

    #[tokio::test]
    async fn create_500_not_created_lists_then_retries() {
        let (fake, base) = start_fake().await;
        fake.push_reply(
            500,
            json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
        );
        // Only an older call to the same number exists: it must not be mistaken for ours.
        let old = rfc2822(Utc::now() - chrono::Duration::minutes(30));
        fake.push_reply(
            200,
            page(
                vec![call_json(
                    "CAold0000000000000000000000000000",
                    "completed",
                    &old,
                )],
                None,
            ),
        );
        fake.push_reply(201, call_json(CA, "queued", &rfc2822(Utc::now())));
        let call = client(&base).create_call(&simple_request()).await.unwrap();
        assert_eq!(call.sid, CA);
        let methods: Vec<_> = fake.seen().iter().map(|s| s.method.clone()).collect();
        assert_eq!(methods, ["POST", "GET", "POST"]);
    }

    #[tokio::test]
    async fn create_timeout_after_send_is_checked_before_retry() {
        let (fake, base) = start_fake().await;
        fake.push(|_| Reply {
            delay: Duration::from_millis(800),
            ..reply(201, call_json(CA, "queued", &rfc2822(Utc::now())))
        });
        fake.push(|_| {
            reply(
                200,
                page(vec![call_json(CA, "ringing", &rfc2822(Utc::now()))], None),
            )
        });
        let c = client(&base)
            .with_timeout(Duration::from_millis(200))
            .unwrap();
        let call = c.create_call(&simple_request()).await.unwrap();
        assert_eq!(call.sid, CA);
        let methods: Vec<_> = fake.seen().iter().map(|s| s.method.clone()).collect();
        assert_eq!(methods, ["POST", "GET"]);
    }

    #[tokio::test]
    async fn create_persistent_503_is_unavailable_and_never_double_creates() {
        let (fake, base) = start_fake().await;
        for _ in 0..3 {
            fake.push_reply(
                503,
                json!({"code": 20503, "message": "Service Unavailable", "status": 503}),
            );
            fake.push_reply(200, page(vec![], None));
        }
        let err = client(&base)
            .with_retry(tiny_retry(3))
            .create_call(&simple_request())
            .await
            .unwrap_err();
        match &err {
            TwilioError::Unavailable { attempts, last } => {
                assert_eq!(*attempts, 3);
                assert!(last.contains("503"), "{last}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.is_retryable());
        let methods: Vec<_> = fake.seen().iter().map(|s| s.method.clone()).collect();
        // Each create is followed by a check, including a last one after the final attempt.
        assert_eq!(methods, ["POST", "GET", "POST", "GET", "POST", "GET"]);
    }

    #[tokio::test]
    async fn create_does_not_retry_when_check_fails() {
        let (fake, base) = start_fake().await;
        fake.push_reply(502, json!({"message": "bad gateway"}));
        fake.push_reply(
            401,
            json!({"code": 20003, "message": "Authenticate", "status": 401}),
        );
        let err = client(&base)
            .create_call(&simple_request())
            .await
            .unwrap_err();
        assert!(
            matches!(err, TwilioError::Unavailable { attempts: 1, .. }),
            "{err:?}"
        );
        assert_eq!(fake.seen().len(), 2);
    }

    #[tokio::test]
    async fn fetch_persistent_503_is_unavailable_after_max_attempts() {
        let (fake, base) = start_fake().await;
        for _ in 0..5 {
            fake.push(|_| Reply {
                headers: vec![("retry-after", "1".into())], // capped at max_delay (5 ms)
                ..reply(
                    503,
                    json!({"code": 20503, "message": "Service Unavailable", "status": 503}),
                )
            });
        }
        let started = std::time::Instant::now();
        let err = client(&base).fetch_call(CA).await.unwrap_err();
        assert!(
            matches!(err, TwilioError::Unavailable { attempts: 5, .. }),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let seen = fake.seen();
        assert_eq!(seen.len(), 5);
        assert!(seen
            .iter()
            .all(|s| s.method == "GET"
                && s.path == format!("/2010-04-01/Accounts/{AC}/Calls/{CA}.json")));
    }

    #[tokio::test]
    async fn connect_errors_retry_without_listing() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let c = client(&format!("http://127.0.0.1:{port}")).with_retry(tiny_retry(3));
        let err = c.create_call(&simple_request()).await.unwrap_err();
        match &err {
            TwilioError::Unavailable { attempts, last } => {
                assert_eq!(*attempts, 3);
                assert!(!last.contains("could not check"), "{last}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn fetch_call_parses_resource() {
        let (fake, base) = start_fake().await;
        let mut body = call_json(CA, "completed", "Tue, 31 Aug 2010 20:36:28 +0000");
        body["answered_by"] = json!("machine_end_beep");
        body["duration"] = json!("37");
        body["start_time"] = json!("Tue, 31 Aug 2010 20:36:30 +0000");
        fake.push_reply(200, body);
        let call = client(&base).fetch_call(CA).await.unwrap();
        assert_eq!(call.answered_by.as_deref(), Some("machine_end_beep"));
        assert_eq!(call.duration.as_deref(), Some("37"));
        assert_eq!(
            call.start_time.as_deref(),
            Some("Tue, 31 Aug 2010 20:36:30 +0000")
        );
    }

    #[tokio::test]
    async fn hang_up_sends_completed_and_treats_20404_as_done() {
        let (fake, base) = start_fake().await;
        fake.push_reply(
            200,
            call_json(CA, "completed", "Tue, 31 Aug 2010 20:36:28 +0000"),
        );
        fake.push_reply(
            404,
            json!({"code": 20404, "message": "The requested resource was not found",
                   "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}),
        );
        let c = client(&base);
        c.hang_up(CA).await.unwrap();
        c.hang_up(CA).await.unwrap();
        let seen = fake.seen();
        assert_eq!(seen.len(), 2);
        for s in &seen {
            assert_eq!(s.method, "POST");
            assert_eq!(s.path, format!("/2010-04-01/Accounts/{AC}/Calls/{CA}.json"));
            assert_eq!(s.form, pairs(&[("Status", "completed")]));
        }
    }

    #[tokio::test]
    async fn cancel_retries_5xx_and_plain_404_is_an_error() {
        let (fake, base) = start_fake().await;
        fake.push_reply(
            500,
            json!({"code": 20500, "message": "oops", "status": 500}),
        );
        fake.push_reply(
            200,
            call_json(CA, "canceled", "Tue, 31 Aug 2010 20:36:28 +0000"),
        );
        fake.push(|_| Reply {
            status: 404,
            body: "<html>not found</html>".into(),
            headers: vec![],
            delay: Duration::ZERO,
        });
        let c = client(&base);
        c.cancel(CA).await.unwrap();
        let seen = fake.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].form, pairs(&[("Status", "canceled")]));
        let err = c.cancel(CA).await.unwrap_err();
        assert!(
            matches!(&err, TwilioError::Api { status: 404, code: None, message, .. } if message.contains("not found")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn redirect_sends_url_and_post() {
        let (fake, base) = start_fake().await;
        fake.push_reply(
            200,
            call_json(CA, "in-progress", "Tue, 31 Aug 2010 20:36:28 +0000"),
        );
        let call = client(&base)
            .redirect(CA, "https://dialer.example.com/twiml/transfer?agent=7")
            .await
            .unwrap();
        assert_eq!(call.status, "in-progress");
        let seen = fake.seen();
        assert_eq!(
            seen[0].form,
            pairs(&[
                ("Url", "https://dialer.example.com/twiml/transfer?agent=7"),
                ("Method", "POST")
            ])
        );
    }

    #[tokio::test]
    async fn list_calls_follows_next_page_uri() {
        let (fake, base) = start_fake().await;
        let next = format!(
            "/2010-04-01/Accounts/{AC}/Calls.json?To=%2B14155551212&StartTime%3E%3D=2024-05-01&PageSize=2&Page=1&PageToken=PACAbbb"
        );
        let d = "Wed, 01 May 2024 15:00:00 +0000";
        fake.push_reply(
            200,
            page(
                vec![
                    call_json("CA1", "completed", d),
                    call_json("CA2", "busy", d),
                ],
                Some(&next),
            ),
        );
        fake.push_reply(200, page(vec![call_json("CA3", "no-answer", d)], None));
        let filter = CallFilter {
            to: Some(TO.into()),
            start_time_after: NaiveDate::from_ymd_opt(2024, 5, 1),
            ..Default::default()
        };
        let calls = client(&base).list_calls(&filter).await.unwrap();
        let sids: Vec<_> = calls.iter().map(|c| c.sid.as_str()).collect();
        assert_eq!(sids, ["CA1", "CA2", "CA3"]);
        let seen = fake.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].path, calls_path());
        assert_eq!(
            seen[0].query,
            pairs(&[("To", TO), ("StartTime>=", "2024-05-01")])
        );
        assert_eq!(seen[1].path, calls_path());
        assert_eq!(
            seen[1].query,
            pairs(&[
                ("To", TO),
                ("StartTime>=", "2024-05-01"),
                ("PageSize", "2"),
                ("Page", "1"),
                ("PageToken", "PACAbbb")
            ])
        );
        assert!(seen
            .iter()
            .all(|s| s.auth.as_deref() == Some(basic(AC, TOKEN).as_str())));
    }

    #[tokio::test]
    async fn list_calls_refuses_foreign_next_page() {
        let (fake, base) = start_fake().await;
        fake.push_reply(200, page(vec![], Some("@evil.example.com/steal")));
        let err = client(&base)
            .list_calls(&CallFilter::default())
            .await
            .unwrap_err();
        assert!(matches!(err, TwilioError::Decode(_)), "{err:?}");
        assert_eq!(fake.seen().len(), 1);
    }

    #[tokio::test]
    async fn undecodable_success_is_decode_error() {
        let (fake, base) = start_fake().await;
        fake.push(|_| Reply {
            status: 201,
            body: "not json".into(),
            headers: vec![],
            delay: Duration::ZERO,
        });
        let err = client(&base)
            .create_call(&simple_request())
            .await
            .unwrap_err();
        assert!(matches!(err, TwilioError::Decode(_)), "{err:?}");
        assert_eq!(fake.seen().len(), 1);
    }

    #[test]
    fn debug_redacts_secrets() {
        let token = TwilioAuth::AuthToken(TOKEN.into());
        let key = TwilioAuth::ApiKey {
            sid: "SKkey".into(),
            secret: "key-secret-99".into(),
        };
        let t = format!("{token:?}");
        let k = format!("{key:?}");
        assert!(!t.contains(TOKEN), "{t}");
        assert!(!k.contains("key-secret-99"), "{k}");
        assert!(k.contains("SKkey"));
        let c = TwilioClient::new("https://api.twilio.com", AC, token).unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains(TOKEN) && d.contains(AC), "{d}");
    }

    #[test]
    fn new_validates_config() {
        let auth = || TwilioAuth::AuthToken(TOKEN.into());
        assert!(TwilioClient::new("ftp://x", AC, auth()).is_err());
        assert!(TwilioClient::new("not a url", AC, auth()).is_err());
        assert!(TwilioClient::new("https://u:p@api.twilio.com", AC, auth()).is_err());
        assert!(TwilioClient::new("https://api.twilio.com", "AC/../x", auth()).is_err());
        assert!(TwilioClient::new(
            "https://api.twilio.com",
            AC,
            TwilioAuth::AuthToken(String::new())
        )
        .is_err());
        let c = TwilioClient::new("https://api.twilio.com/", AC, auth()).unwrap();
        assert_eq!(c.account_sid(), AC);
        assert_eq!(
            c.calls_url(),
            format!("https://api.twilio.com/2010-04-01/Accounts/{AC}/Calls.json")
        );
        assert!(c.call_url("CA1/../../x").is_err());
    }

    #[test]
    fn backoff_is_capped_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        };
        for attempt in 1..40 {
            let d = p.delay(attempt, None);
            let cap =
                Duration::from_millis(200 * 2u64.saturating_pow(attempt - 1)).min(p.max_delay);
            assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, " 3 ".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn error_mapping_tolerates_odd_bodies() {
        let e = api_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(
            matches!(&e, TwilioError::Api { status: 502, code: None, message, .. } if message.contains("bad gateway"))
        );
        assert!(e.is_retryable());
        let e = api_error(StatusCode::BAD_REQUEST, br#"{"code":"21211","message":""}"#);
        assert!(
            matches!(&e, TwilioError::Api { code: Some(21211), message, .. } if message == "Bad Request")
        );
        let e = api_error(StatusCode::BAD_REQUEST, &[0xff, 0xfe]);
        assert!(matches!(e, TwilioError::Api { status: 400, .. }));
        assert_eq!(
            api_error(
                StatusCode::BAD_REQUEST,
                br#"{"code":21211,"message":"bad To","status":400}"#
            )
            .to_string(),
            "Twilio API error (HTTP 400, code 21211): bad To"
        );
    }

    #[test]
    fn call_resource_tolerates_null_numbers() {
        let mut v = call_json(CA, "queued", "Tue, 31 Aug 2010 20:36:28 +0000");
        v["to"] = json!(null);
        let c: CallResource = serde_json::from_value(v).unwrap();
        assert_eq!(c.to, "");
    }
}
