//! The dialer: works through each running campaign's leads and places calls through Twilio's
//! REST API, within the law and the campaign's pacing.
//!
//! One task per running campaign loops: wait for a free slot (`max_concurrent`) and the pacing
//! clock (`calls_per_second`), claim the next due lead atomically in the store, decide
//! ([`decide::before_dial`]: do-not-call, consent, calling hours; every decision lands in the
//! audit log), then create the call. Status callbacks ([`Dialer::on_status`]) move the lead on
//! ([`decide::after_call`]: retry schedule, outcome).
//!
//! Crash safety comes from the order of writes: a lead is claimed (`dialing`) before the create
//! request and recorded with its call SID (`in_call`) after it. On start, [`Dialer::recover`]
//! asks Twilio about every lead left `dialing`: a call that was placed is adopted, one that was
//! not goes back to pending. So a kill -9 at any point neither dials a lead twice nor loses a
//! call record.

pub mod decide;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::{watch, Notify};

use crate::call::registry::CallRegistry;
use crate::leads::CallingWindow;
use crate::model::{
    is_terminal_status, Applied, Campaign, CampaignState, Lead, LeadState, NewCall, StatusUpdate,
};
use crate::script::format::Script;
use crate::script::ScriptBook;
use crate::store::{Store, StoreError};
use crate::twilio_rest::{
    CallFilter, CallResource, CreateCall, MachineDetection, TwilioClient, TwilioError,
};
use decide::{AfterCall, DialDecision};

#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Twilio: {0}")]
    Twilio(#[from] TwilioError),
    #[error("campaign {id}: {reason}")]
    Campaign { id: String, reason: String },
}

/// Where Twilio reaches this appliance, and who it is among several.
#[derive(Debug, Clone)]
pub struct DialerOptions {
    /// Public base URL (`https://dialer.example.com`): the voice, status and AMD webhooks.
    pub public_url: String,
    /// Names this appliance in lead claims.
    pub worker_id: String,
    /// How often an idle campaign looks for due leads.
    pub idle_poll: Duration,
    /// Shifts the clock used for calling hours: zero in production; a rehearsal can pretend it
    /// is mid-morning for its fictional leads so it shows calls at any hour of the day.
    pub calling_hours_offset: chrono::Duration,
}

/// Shared handle; cheap to clone.
#[derive(Clone)]
pub struct Dialer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    twilio: TwilioClient,
    registry: CallRegistry,
    scripts: ScriptBook,
    options: DialerOptions,
    running: Mutex<HashMap<String, watch::Sender<CampaignState>>>,
    /// Woken when a call ends or a campaign changes, so loops do not wait for the next poll.
    wake: Notify,
}

/// The call Twilio answered a create with, as the store records it against its lead.
fn new_call(call: &CallResource, campaign_id: &str, lead_id: i64) -> NewCall {
    NewCall {
        sid: call.sid.clone(),
        campaign_id: campaign_id.to_string(),
        lead_id,
        from: call.from.clone(),
        to: call.to.clone(),
        status: call.status.clone(),
    }
}

fn ms_to_utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

impl Dialer {
    pub fn new(
        store: Store,
        twilio: TwilioClient,
        registry: CallRegistry,
        scripts: ScriptBook,
        options: DialerOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                twilio,
                registry,
                scripts,
                options,
                running: Mutex::new(HashMap::new()),
                wake: Notify::new(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The campaign scripts calls follow (shared with the media sessions).
    pub fn scripts(&self) -> &ScriptBook {
        &self.inner.scripts
    }

    /// Validates a campaign's script and window, so a broken campaign fails at creation.
    pub fn check_campaign(campaign: &Campaign) -> Result<(Arc<Script>, CallingWindow), String> {
        let script = Script::from_toml(&format!("campaign {}", campaign.id), &campaign.script_toml)
            .map_err(|e| e.to_string())?;
        let window = CallingWindow::parse(
            &campaign.settings.window_start,
            &campaign.settings.window_end,
        )
        .map_err(|e| format!("calling window: {e}"))?;
        let s = &campaign.settings;
        if !s.from_number.starts_with('+') {
            return Err(
                "settings.from_number must be an E.164 number on the Twilio account".into(),
            );
        }
        if s.max_concurrent == 0 || !(s.calls_per_second > 0.0 && s.calls_per_second <= 100.0) {
            return Err(
                "settings.max_concurrent must be >= 1 and calls_per_second in (0, 100]".into(),
            );
        }
        if s.max_attempts == 0 {
            return Err("settings.max_attempts must be >= 1".into());
        }
        Ok((Arc::new(script), window))
    }

    /// After a restart: settles leads left mid-dial, then resumes campaigns that were running.
    pub async fn recover(&self) -> Result<(), DialerError> {
        for campaign in self.inner.store.campaigns().await? {
            self.recover_campaign(&campaign).await?;
            if campaign.state == CampaignState::Running {
                let checked = checked(&campaign)?;
                self.spawn_loop(&campaign, checked);
            }
        }
        Ok(())
    }

    async fn recover_campaign(&self, campaign: &Campaign) -> Result<(), DialerError> {
        let store = &self.inner.store;
        for lead in store
            .leads_in_state(&campaign.id, LeadState::Dialing)
            .await?
        {
            // The create may or may not have reached Twilio: ask it, never guess.
            let claimed = ms_to_utc(lead.claimed_at_ms.unwrap_or(0));
            let filter = CallFilter {
                to: Some(lead.phone.clone()),
                from: Some(campaign.settings.from_number.clone()),
                start_time_after: Some(claimed.date_naive()),
                ..Default::default()
            };
            let placed = self
                .inner
                .twilio
                .list_calls(&filter)
                .await?
                .into_iter()
                .find(|c| {
                    created_at(c).is_none_or(|t| t >= claimed - chrono::Duration::seconds(2))
                });
            match placed {
                Some(call) => {
                    store
                        .record_dial(&new_call(&call, &campaign.id, lead.id))
                        .await?;
                    audit_lead(
                        store,
                        &lead,
                        "recovered_call",
                        &format!(
                            "restart found call {} ({}) placed before the crash",
                            call.sid, call.status
                        ),
                    )
                    .await?;
                }
                None => {
                    store
                        .set_lead_state(lead.id, LeadState::Pending, 0, None)
                        .await?;
                    audit_lead(
                        store,
                        &lead,
                        "recovered_unplaced",
                        "restart: Twilio has no call for this claim; back to pending",
                    )
                    .await?;
                }
            }
        }
        // Calls that ended while we were down (their final callback went unanswered).
        for lead in store
            .leads_in_state(&campaign.id, LeadState::InCall)
            .await?
        {
            let Some(call) = store.latest_call_for_lead(lead.id).await? else {
                continue;
            };
            if !is_terminal_status(&call.status) {
                let remote = match self.inner.twilio.fetch_call(&call.sid).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(sid = %call.sid, error = %e, "cannot reconcile call");
                        continue;
                    }
                };
                if !is_terminal_status(&remote.status) {
                    continue;
                }
                audit_lead(
                    store,
                    &lead,
                    "reconciled_call",
                    &format!(
                        "restart: call {} ended while we were down (Twilio says {})",
                        call.sid, remote.status
                    ),
                )
                .await?;
                store
                    .apply_status(&StatusUpdate {
                        call_sid: call.sid.clone(),
                        source: "reconcile".into(),
                        sequence: call.last_sequence + 1,
                        status: remote.status.clone(),
                        answered_by: remote.answered_by.clone(),
                        duration_s: remote.duration.as_deref().and_then(|d| d.parse().ok()),
                        params: vec![("Status".into(), remote.status.clone())],
                    })
                    .await?;
            }
            self.settle_call(&call.sid).await?;
        }
        Ok(())
    }

    /// Starts (or resumes) a campaign.
    pub async fn start(&self, campaign_id: &str) -> Result<(), DialerError> {
        let mut campaign = self.inner.store.campaign(campaign_id).await?;
        let checked = checked(&campaign)?;
        self.inner
            .store
            .set_campaign_state(campaign_id, CampaignState::Running)
            .await?;
        campaign.state = CampaignState::Running;
        let sender = self.lock_running().get(campaign_id).cloned();
        match sender {
            Some(tx) if !tx.is_closed() => {
                let _ = tx.send(CampaignState::Running);
            }
            _ => self.spawn_loop(&campaign, checked),
        }
        self.inner.wake.notify_waiters();
        Ok(())
    }

    /// Pauses (no new dials; calls in progress finish) or stops a campaign.
    pub async fn set_state(
        &self,
        campaign_id: &str,
        state: CampaignState,
    ) -> Result<(), DialerError> {
        if state == CampaignState::Running {
            return self.start(campaign_id).await;
        }
        self.inner
            .store
            .set_campaign_state(campaign_id, state)
            .await?;
        if let Some(tx) = self.lock_running().get(campaign_id) {
            let _ = tx.send(state);
        }
        self.inner.wake.notify_waiters();
        Ok(())
    }

    fn lock_running(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<CampaignState>>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn_loop(&self, campaign: &Campaign, (script, window): (Arc<Script>, CallingWindow)) {
        self.inner.scripts.insert(&campaign.id, script);
        let (tx, rx) = watch::channel(CampaignState::Running);
        self.lock_running().insert(campaign.id.clone(), tx);
        let dialer = self.clone();
        let campaign = campaign.clone();
        tokio::spawn(async move {
            let id = campaign.id.clone();
            if let Err(e) = dialer.run_campaign(campaign, window, rx).await {
                tracing::error!(campaign = %id, error = %e, "campaign loop stopped");
            }
            dialer.lock_running().remove(&id);
        });
    }

    async fn run_campaign(
        &self,
        campaign: Campaign,
        window: CallingWindow,
        mut control: watch::Receiver<CampaignState>,
    ) -> Result<(), DialerError> {
        let store = &self.inner.store;
        let settings = &campaign.settings;
        let pace = Duration::from_secs_f64(1.0 / settings.calls_per_second);
        let mut next_slot = tokio::time::Instant::now();
        tracing::info!(campaign = %campaign.id, "campaign running");
        loop {
            let state = *control.borrow_and_update();
            match state {
                CampaignState::Running => {}
                CampaignState::Paused | CampaignState::Draft => {
                    if control.changed().await.is_err() {
                        return Ok(());
                    }
                    continue;
                }
                CampaignState::Stopped | CampaignState::Completed => return Ok(()),
            }
            let counts = store.lead_counts(&campaign.id).await?;
            if counts.open() == 0 {
                store
                    .set_campaign_state(&campaign.id, CampaignState::Completed)
                    .await?;
                tracing::info!(campaign = %campaign.id, ?counts, "campaign completed");
                return Ok(());
            }
            if counts.dialing + counts.in_call >= settings.max_concurrent as u64 {
                self.idle(&mut control).await;
                continue;
            }
            tokio::time::sleep_until(next_slot).await;
            let now = Utc::now();
            let Some(lead) = store
                .claim_next_lead(
                    &campaign.id,
                    now.timestamp_millis(),
                    &self.inner.options.worker_id,
                )
                .await?
            else {
                self.idle(&mut control).await;
                continue;
            };
            let dnc = store.dnc_entry(&lead.phone).await?;
            let offset = self.inner.options.calling_hours_offset;
            match decide::before_dial(&lead, dnc.as_ref(), &window, now + offset) {
                DialDecision::Skip { decision, reason } => {
                    store
                        .set_lead_state(lead.id, LeadState::Skipped, 0, Some(decision))
                        .await?;
                    audit_lead(store, &lead, decision, &reason).await?;
                }
                DialDecision::Defer {
                    until,
                    decision,
                    reason,
                } => {
                    let until = until - offset;
                    store
                        .set_lead_state(lead.id, LeadState::Pending, until.timestamp_millis(), None)
                        .await?;
                    audit_lead(store, &lead, decision, &reason).await?;
                }
                DialDecision::Dial => {
                    next_slot = tokio::time::Instant::now() + pace;
                    self.dial(&campaign, &lead).await?;
                }
            }
        }
    }

    /// Waits for a call to end, a control change, or the idle poll.
    async fn idle(&self, control: &mut watch::Receiver<CampaignState>) {
        tokio::select! {
            _ = self.inner.wake.notified() => {}
            _ = control.changed() => {}
            _ = tokio::time::sleep(self.inner.options.idle_poll) => {}
        }
    }

    async fn dial(&self, campaign: &Campaign, lead: &Lead) -> Result<(), DialerError> {
        let store = &self.inner.store;
        let s = &campaign.settings;
        let base = &self.inner.options.public_url;
        audit_lead(store, lead, "dial",
                &format!(
                    "attempt {} of {}; not on the do-not-call list; consent on file{}; inside calling hours in {}",
                    lead.attempts + 1,
                    s.max_attempts,
                    lead.source
                        .as_deref()
                        .map(|src| format!(" (source {src})"))
                        .unwrap_or_default(),
                    lead.timezone
                ),
            )
            .await?;
        let request = CreateCall {
            to: lead.phone.clone(),
            from: s.from_number.clone(),
            url: format!(
                "{base}/twilio/voice?campaign={}&lead={}",
                url_encode(&campaign.id),
                lead.id
            ),
            method: Some("POST".into()),
            status_callback: Some(format!("{base}/twilio/status")),
            status_callback_events: vec![
                "initiated".into(),
                "ringing".into(),
                "answered".into(),
                "completed".into(),
            ],
            machine_detection: s
                .machine_detection
                .then_some(MachineDetection::DetectMessageEnd),
            async_amd: false,
            async_amd_status_callback: None,
            machine_detection_timeout: None,
            timeout: Some(s.ring_timeout_s),
            time_limit: Some(s.time_limit_s),
        };
        match self.inner.twilio.create_call(&request).await {
            Ok(call) => {
                tracing::info!(campaign = %campaign.id, lead = lead.id, sid = %call.sid, "call placed");
                store
                    .record_dial(&new_call(&call, &campaign.id, lead.id))
                    .await?;
            }
            Err(e) if !e.is_retryable() && e.code().is_some() => {
                // Twilio refused this number for good (invalid, not allowed): no retry.
                let outcome = format!("twilio_error_{}", e.code().unwrap_or_default());
                store
                    .set_lead_state(lead.id, LeadState::Failed, 0, Some(&outcome))
                    .await?;
                audit_lead(store, lead, "dial_rejected", &e.to_string()).await?;
            }
            Err(e) => {
                // Twilio unreachable or rate limited after retries (and the create was checked
                // not to have happened): try the lead again later, no attempt used.
                let later = Utc::now() + chrono::Duration::seconds(60);
                store
                    .set_lead_state(lead.id, LeadState::Pending, later.timestamp_millis(), None)
                    .await?;
                audit_lead(store, lead, "dial_error", &format!("{e}; retry in 60 s")).await?;
            }
        }
        Ok(())
    }

    /// A status callback: stored in the history, and a terminal one settles the lead.
    pub async fn on_status(&self, update: &StatusUpdate) -> Result<Applied, DialerError> {
        let applied = self.inner.store.apply_status(update).await?;
        if applied == Applied::Updated && is_terminal_status(&update.status) {
            self.settle_call(&update.call_sid).await?;
            self.inner.wake.notify_waiters();
        }
        Ok(applied)
    }

    /// Moves a finished call's lead to its next state (retry or final outcome).
    async fn settle_call(&self, sid: &str) -> Result<(), DialerError> {
        let store = &self.inner.store;
        let call = store.call(sid).await?;
        let Some(lead_id) = call.lead_id else {
            return Ok(());
        };
        let lead = store.lead(lead_id).await?;
        if lead.state != LeadState::InCall {
            return Ok(());
        }
        let campaign = store.campaign(&lead.campaign_id).await?;
        // The engine's verdict: live in this process's registry, else already stored.
        let engine_outcome = self
            .inner
            .registry
            .get(sid)
            .and_then(|r| r.outcome)
            .map(|o| o.as_str().to_string())
            .or(call.outcome.clone());
        let AfterCall {
            state,
            next_attempt_at,
            outcome,
            decision,
            reason,
        } = decide::after_call(
            &campaign.settings,
            lead.attempts,
            &call.status,
            call.answered_by.as_deref(),
            engine_outcome.as_deref(),
            Utc::now(),
        );
        store
            .set_lead_state(
                lead.id,
                state,
                next_attempt_at.map(|t| t.timestamp_millis()).unwrap_or(0),
                Some(&outcome),
            )
            .await?;
        if call.outcome.is_none() && state == LeadState::Done {
            store
                .set_call_outcome(sid, Some(&outcome), &call.variables)
                .await?;
        }
        audit_lead(store, &lead, decision, &format!("{reason} (call {sid})")).await?;
        Ok(())
    }

    /// True once no lead of the campaign is dialing or in a call and none is due before
    /// `horizon` from now (deferred leads may wait for tomorrow's window).
    pub async fn is_settled(
        &self,
        campaign_id: &str,
        horizon: Duration,
    ) -> Result<bool, DialerError> {
        let counts = self.inner.store.lead_counts(campaign_id).await?;
        if counts.dialing + counts.in_call > 0 {
            return Ok(false);
        }
        let due = self.inner.store.next_due_ms(campaign_id).await?;
        let limit = Utc::now().timestamp_millis() + horizon.as_millis() as i64;
        Ok(due.is_none_or(|d| d > limit))
    }
}

/// A campaign's script and window, validated (the dialer's error when they are not).
fn checked(campaign: &Campaign) -> Result<(Arc<Script>, CallingWindow), DialerError> {
    Dialer::check_campaign(campaign).map_err(|reason| DialerError::Campaign {
        id: campaign.id.clone(),
        reason,
    })
}

/// One audit-log line about a lead.
async fn audit_lead(
    store: &Store,
    lead: &Lead,
    decision: &str,
    reason: &str,
) -> Result<(), StoreError> {
    store
        .audit(
            &lead.campaign_id,
            Some(lead.id),
            Some(&lead.phone),
            decision,
            reason,
        )
        .await
}

/// `date_created` (RFC 2822) of a listed call.
fn created_at(call: &crate::twilio_rest::CallResource) -> Option<DateTime<Utc>> {
    call.date_created
        .as_deref()
        .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
