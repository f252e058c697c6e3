//! A campaign loop's trouble: what the API shows while it retries, what the audit log keeps
//! (one line when a run of failures begins, one when it ends, never one per retry), and the
//! back-off between tries.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{Dialer, DialerError};
use crate::model::DialerFault;
use crate::store::now_ms;

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Exponential back-off with a cap.
pub(super) struct Backoff(Duration);

impl Backoff {
    pub(super) fn new() -> Self {
        Self(FIRST_BACKOFF)
    }

    /// The wait before the next try; each call doubles the one after.
    pub(super) fn next(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        wait
    }

    pub(super) fn reset(&mut self) {
        self.0 = FIRST_BACKOFF;
    }
}

struct Run {
    view: DialerFault,
    /// The run's first line is in the audit log (a write that failed is tried again on the
    /// next failure, and at the latest when the run ends).
    audited: bool,
    /// The last failure was Twilio's: the loop probes Twilio before claiming another lead.
    twilio: bool,
}

/// Failing campaign loops, by campaign id.
#[derive(Default)]
pub(super) struct Faults(Mutex<HashMap<String, Run>>);

impl Faults {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Run>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn view(&self, campaign_id: &str) -> Option<DialerFault> {
        self.lock().get(campaign_id).map(|r| r.view.clone())
    }

    /// Whether the campaign's last failure was Twilio's.
    pub(super) fn twilio_down(&self, campaign_id: &str) -> bool {
        self.lock().get(campaign_id).is_some_and(|r| r.twilio)
    }
}

impl Dialer {
    /// A failed pass: shown on the campaign, logged, audited once per run of failures.
    pub(super) async fn report_fault(&self, campaign_id: &str, error: &DialerError) {
        let now = now_ms();
        let message = error.to_string();
        let (failures, audited) = {
            let mut faults = self.inner.faults.lock();
            let run = faults.entry(campaign_id.to_string()).or_insert(Run {
                view: DialerFault {
                    error: String::new(),
                    since_ms: now,
                    last_at_ms: now,
                    failures: 0,
                },
                audited: false,
                twilio: false,
            });
            run.view.error = message.clone();
            run.view.last_at_ms = now;
            run.view.failures += 1;
            run.twilio = matches!(error, DialerError::Twilio(_));
            (run.view.failures, run.audited)
        };
        tracing::warn!(campaign = campaign_id, failures, error = %message, "campaign loop failed; retrying with back-off");
        if !audited {
            let reason = format!("{message}; retrying with back-off");
            if self
                .store()
                .audit(campaign_id, None, None, "dialer_error", &reason)
                .await
                .is_ok()
            {
                if let Some(run) = self.inner.faults.lock().get_mut(campaign_id) {
                    run.audited = true;
                }
            }
        }
    }

    /// A pass succeeded: ends the run of failures, if any, with a line in the audit log.
    pub(super) async fn clear_fault(&self, campaign_id: &str) {
        let Some(run) = self.inner.faults.lock().remove(campaign_id) else {
            return;
        };
        let v = &run.view;
        tracing::info!(
            campaign = campaign_id,
            failures = v.failures,
            "campaign loop recovered"
        );
        let store = self.store();
        if !run.audited {
            // The store was down for the whole run: say so now.
            let reason = format!("{}; retried with back-off", v.error);
            if let Err(e) = store
                .audit(campaign_id, None, None, "dialer_error", &reason)
                .await
            {
                tracing::warn!(error = %e, "cannot audit the dialer's failures");
            }
        }
        let reason = format!(
            "dialing again after {} failed passes over {} s (last: {})",
            v.failures,
            (now_ms() - v.since_ms).max(0) / 1000,
            v.error
        );
        if let Err(e) = store
            .audit(campaign_id, None, None, "dialer_recovered", &reason)
            .await
        {
            tracing::warn!(error = %e, "cannot audit the dialer's recovery");
        }
    }
}
