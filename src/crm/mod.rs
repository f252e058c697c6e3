//! Results pushed to the customer's CRM: signed webhooks on call end and on do-not-call.
//!
//! The dialer and the store write each event into the outbox (`crm_outbox`) in the same
//! transaction as the fact it reports, so a crash right after cannot lose it. The [`Courier`]
//! is the only sender: it polls for due events (a bounded batch), takes each one with a
//! compare-and-set (two appliances sharing a database never send the same try twice), POSTs
//! the JSON body signed per [`webhook`], and records the try: 2xx is delivered; any other
//! answer or a network error is retried on [`webhook::RetrySchedule`] and, after the last
//! try, kept as `failed` for the delivery log. Its state is the table, so a restart or a CRM
//! outage loses nothing; a receiver may see an event again only if we died between its 2xx and
//! our write, which the stable event id lets it drop.

pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::model::DueEvent;
use crate::store::{now_ms, Store, StoreError};
use webhook::RetrySchedule;

/// Events one poll takes at most: a backlog drains batch by batch without a large read.
const BATCH: u32 = 32;
/// Largest body we send: our events are a few KiB; more means a bug, not a CRM's problem.
const MAX_BODY: usize = 256 * 1024;
/// Extra time a taken event stays ours past the request's timeout.
const TAKE_MARGIN: Duration = Duration::from_secs(5);

/// How the courier sends.
#[derive(Clone)]
pub struct CourierOptions {
    /// `TELEMARKETER_CRM_SECRET`.
    pub secret: String,
    pub retry: RetrySchedule,
    /// One request's limit, connecting included.
    pub timeout: Duration,
    /// How often the outbox is looked at.
    pub poll: Duration,
}

impl std::fmt::Debug for CourierOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CourierOptions")
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

/// The running sender; cheap to clone.
#[derive(Clone)]
pub struct Courier {
    stop: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Courier {
    /// Starts the delivery loop on the current runtime.
    pub fn spawn(store: Store, options: CourierOptions) -> Self {
        let stop = CancellationToken::new();
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            // A webhook answers where it is asked; a redirect would turn the POST into a GET.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("telemarketer/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let task = tokio::spawn(run(store, http, options, stop.clone()));
        Self {
            stop,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Stops taking events and waits for the one in flight (at most its timeout); what is
    /// still pending is sent after the next start.
    pub async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn run(
    store: Store,
    http: reqwest::Client,
    options: CourierOptions,
    stop: CancellationToken,
) {
    tracing::info!(retry = ?options.retry, "CRM courier running");
    let mut failing = false;
    loop {
        let full = match deliver_due(&store, &http, &options, &stop).await {
            Ok(n) => {
                failing = false;
                n >= BATCH as usize
            }
            Err(e) => {
                // Loud once per outage of the database, not once per poll.
                if !failing {
                    tracing::error!(error = %e, "CRM outbox unreadable; retrying");
                }
                failing = true;
                false
            }
        };
        if stop.is_cancelled() {
            return;
        }
        if !full {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(options.poll) => {}
            }
        }
    }
}

/// One poll: sends every due event of a batch; the number of events found.
async fn deliver_due(
    store: &Store,
    http: &reqwest::Client,
    options: &CourierOptions,
    stop: &CancellationToken,
) -> Result<usize, StoreError> {
    let due = store.due_events(now_ms(), BATCH).await?;
    // Campaign -> webhook URL, read once per batch (a corrected URL applies on the next try).
    let mut urls: HashMap<String, Option<String>> = HashMap::new();
    for event in &due {
        if stop.is_cancelled() {
            break;
        }
        let until = now_ms().saturating_add((options.timeout + TAKE_MARGIN).as_millis() as i64);
        if !store.take_event(event, until).await? {
            continue;
        }
        let url = match urls.get(&event.campaign_id).cloned() {
            Some(url) => url,
            None => {
                let url = match store.campaign(&event.campaign_id).await {
                    Ok(c) => c.settings.crm_webhook_url,
                    Err(StoreError::NotFound(_)) => None,
                    Err(e) => return Err(e),
                };
                urls.insert(event.campaign_id.clone(), url.clone());
                url
            }
        };
        let result = match url {
            Some(url) => send(http, &options.secret, &url, event).await,
            None => Err((None, "the campaign has no crm_webhook_url now".to_string())),
        };
        let attempts = event.attempts.saturating_add(1);
        match result {
            Ok(status) => {
                store
                    .record_attempt(event.id, true, Some(status), None, None)
                    .await?;
                tracing::info!(event = %event.event_id, campaign = %event.campaign_id, attempts, "CRM event delivered");
            }
            Err((status, error)) => {
                let next = options
                    .retry
                    .after(attempts)
                    .map(|d| now_ms().saturating_add(d.as_millis() as i64));
                store
                    .record_attempt(event.id, false, status, Some(&error), next)
                    .await?;
                if next.is_some() {
                    tracing::warn!(event = %event.event_id, campaign = %event.campaign_id, attempts, %error, "CRM delivery failed; will retry");
                } else {
                    tracing::error!(event = %event.event_id, campaign = %event.campaign_id, attempts, %error, "CRM delivery given up");
                }
            }
        }
    }
    Ok(due.len())
}

/// One POST. Ok: the CRM's 2xx status; Err: its status if it answered, and why it failed.
async fn send(
    http: &reqwest::Client,
    secret: &str,
    url: &str,
    event: &DueEvent,
) -> Result<u16, (Option<u16>, String)> {
    if event.payload.len() > MAX_BODY {
        return Err((None, format!("payload over {MAX_BODY} bytes")));
    }
    let t = now_ms() / 1000;
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header(
            webhook::SIGNATURE_HEADER,
            webhook::sign(secret, t, event.payload.as_bytes()),
        )
        .header(webhook::EVENT_ID_HEADER, &event.event_id)
        .header(webhook::EVENT_KIND_HEADER, event.kind.as_str())
        .body(event.payload.clone())
        .send()
        .await
        .map_err(|e| (None, why(e)))?;
    let status = response.status().as_u16();
    if response.status().is_success() {
        Ok(status)
    } else {
        Err((Some(status), format!("HTTP {status}")))
    }
}

/// A request error with its causes (connection refused, timed out), without the URL.
fn why(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
