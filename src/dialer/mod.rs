//! The dialer: works through each running campaign's leads and places calls through Twilio's
//! REST API, within the law and the campaign's pacing, on one appliance or several sharing a
//! PostgreSQL database.
//!
//! One task per running campaign loops ([`run`]): wait for a free slot (`max_concurrent`,
//! counted over the whole fleet), claim the next due lead atomically in the store, decide
//! ([`decide::before_dial`]: do-not-call, consent, calling hours; every decision lands in the
//! audit log), wait for the pacing clock (`calls_per_second`), check the do-not-call list once
//! more (a number listed meanwhile is not dialed), then create the call. Status callbacks
//! ([`Dialer::on_status`]) move the lead on ([`decide::after_call`]: retry schedule, outcome),
//! and, for a campaign with a CRM webhook, put a `call.ended` event in the outbox in the same
//! write.
//! A failed pass (database, Twilio) is retried with back-off, shown on the campaign and audited
//! once ([`faults`]); the loop never dies of it while the campaign says running.
//!
//! Nobody is dialed twice. A lead is claimed (`dialing`, with this appliance's name and a
//! lease it renews while the create is in flight) before the create request and recorded with
//! its call SID (`in_call`) after it. A create whose outcome is unknown (Twilio may have placed
//! the call) parks the lead in `dial_unknown`, never a blind retry. The reconcile pass
//! ([`reconcile`]: at startup in the background, then periodically) settles what no live
//! dialer is working on (this appliance's claims from before a restart, claims whose lease ran
//! out, `dial_unknown` leads) by Twilio's call list: a placed call is adopted; a lead Twilio
//! still does not list after `dialer.settle_unknown_s` goes back to pending. It also settles
//! calls whose final callback never came and starts loops for campaigns another appliance
//! started. So a kill -9, a restart or a dead appliance neither dials a lead twice nor loses a
//! call record, and startup never waits for Twilio.

pub mod decide;
mod faults;
mod reconcile;
mod run;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};

use crate::call::registry::CallRegistry;
use crate::leads::CallingWindow;
use crate::model::crm::CallEnd;
use crate::model::{
    is_terminal_status, Applied, Campaign, CampaignState, DialerFault, Lead, LeadState, NewCall,
    NewEvent, StatusUpdate, StoredCall,
};
use crate::script::format::Script;
use crate::script::ScriptBook;
use crate::store::{now_ms, Store, StoreError};
use crate::twilio_rest::{CallResource, TwilioClient, TwilioError};
use decide::AfterCall;

#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Twilio: {0}")]
    Twilio(#[from] TwilioError),
    #[error("campaign {id}: {reason}")]
    Campaign { id: String, reason: String },
}

/// The dialer's clock for what is due: the wall clock in production; a test sets it to
/// "09:59 tomorrow in the lead's zone" and moves it on. It decides which leads are due, the
/// calling hours and when a retry or callback is scheduled; claims and leases stay on the
/// wall clock (other appliances compare them with theirs).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    pub fn new(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }

    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new(Utc::now)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now().to_rfc3339())
    }
}

/// Where Twilio reaches this appliance, who it is among several, and its clocks.
#[derive(Debug, Clone)]
pub struct DialerOptions {
    /// Public base URL (`https://dialer.example.com`): the voice, status and AMD webhooks.
    pub public_url: String,
    /// Names this appliance in lead claims: appliances sharing a database need distinct ones.
    pub worker_id: String,
    /// How often an idle campaign looks for due leads.
    pub idle_poll: Duration,
    /// How long a claim lasts unless renewed (renewed every third of it while in flight).
    pub lease: Duration,
    /// How long Twilio's call list gets to show a call whose create had an unknown outcome.
    pub settle_unknown: Duration,
    /// Time between reconcile passes.
    pub reconcile_every: Duration,
    /// What is due when, and the calling window: wall time in production (a rehearsal shifts
    /// it to mid-morning for its fictional leads and jumps it to a callback's time).
    pub clock: Clock,
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
    /// When this run of the appliance began: its own claims from before are a previous run's,
    /// which nobody is working on any more.
    boot_ms: i64,
    /// Leads whose claim this run holds with a create about to go or in flight: their leases
    /// are renewed, and the reconcile leaves them alone.
    in_flight: Mutex<HashSet<i64>>,
    faults: faults::Faults,
    /// Shutting down: no new dials (campaign states are untouched, so they resume on restart).
    draining: std::sync::atomic::AtomicBool,
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

/// Unix ms plus a duration, saturating (no clock arithmetic can panic).
fn after_ms(ms: i64, d: Duration) -> i64 {
    ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
                boot_ms: now_ms(),
                in_flight: Mutex::new(HashSet::new()),
                faults: Default::default(),
                draining: Default::default(),
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

    /// The campaign loop's current trouble on this appliance, if it is failing.
    pub fn fault(&self, campaign_id: &str) -> Option<DialerFault> {
        self.inner.faults.view(campaign_id)
    }

    /// Validates a campaign's settings, script and window, so a broken campaign fails at
    /// creation.
    pub fn check_campaign(campaign: &Campaign) -> Result<(Arc<Script>, CallingWindow), String> {
        let s = &campaign.settings;
        s.check()?;
        if !crate::leads::is_e164(&s.from_number) {
            return Err(
                "settings.from_number must be an E.164 number on the Twilio account".into(),
            );
        }
        let script = Script::from_toml(&format!("campaign {}", campaign.id), &campaign.script_toml)
            .map_err(|e| e.to_string())?;
        // Recording a caller who was not told is unlawful in two-party-consent states.
        if s.recording && !crate::model::discloses_recording(&script.disclosure) {
            return Err(format!(
                "settings.recording is on, but the script's disclosure does not tell the caller \
                 the call is recorded (it must mention recording): {:?}",
                script.disclosure
            ));
        }
        let window = CallingWindow::parse(&s.window_start, &s.window_end)
            .map_err(|e| format!("calling window: {e}"))?;
        Ok((Arc::new(script), window))
    }

    /// Starts the background work, without waiting for it (nor for Twilio): the reconcile
    /// pass (first a full one, retried with back-off until it succeeds, then periodic), which
    /// also resumes the campaigns that were running, and the renewal of in-flight leases.
    pub fn start_background(&self) {
        tokio::spawn(self.clone().reconcile_forever());
        tokio::spawn(self.clone().renew_leases_forever());
    }

    /// Places no new calls from now on (shutdown); calls in progress go on.
    pub fn drain(&self) {
        self.inner
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.wake.notify_waiters();
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.inner
            .draining
            .load(std::sync::atomic::Ordering::SeqCst)
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
        if !self.wake_loop(campaign_id, CampaignState::Running) {
            self.spawn_loop(&campaign, checked);
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
        self.wake_loop(campaign_id, state);
        self.inner.wake.notify_waiters();
        Ok(())
    }

    /// Tells this appliance's loop of a campaign about a state change; false if none runs.
    fn wake_loop(&self, campaign_id: &str, state: CampaignState) -> bool {
        match self.lock_running().get(campaign_id) {
            Some(tx) if !tx.is_closed() => {
                let _ = tx.send(state);
                true
            }
            _ => false,
        }
    }

    /// Whether a loop of this campaign runs on this appliance.
    fn has_loop(&self, campaign_id: &str) -> bool {
        self.lock_running()
            .get(campaign_id)
            .is_some_and(|tx| !tx.is_closed())
    }

    fn lock_running(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<CampaignState>>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_in_flight(&self) -> MutexGuard<'_, HashSet<i64>> {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A status callback: stored in the history, and a terminal one settles the lead.
    pub async fn on_status(&self, update: &StatusUpdate) -> Result<Applied, DialerError> {
        let applied = self.inner.store.apply_status(update).await?;
        if applied == Applied::Updated && is_terminal_status(&update.status) {
            if self.session_deciding(&update.call_sid) {
                // The call's session is still deciding (a caller's last words are transcribed
                // after the hang-up) and its verdict is the outcome: settle once it has one,
                // in the background (Twilio's webhook must not wait).
                let (dialer, sid) = (self.clone(), update.call_sid.clone());
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + VERDICT_WAIT;
                    while dialer.session_deciding(&sid) && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    if let Err(e) = dialer.settle_call(&sid).await {
                        tracing::error!(call_sid = %sid, error = %e, "cannot settle the call; the reconcile will");
                    }
                    dialer.inner.wake.notify_waiters();
                });
            } else {
                self.settle_call(&update.call_sid).await?;
                self.inner.wake.notify_waiters();
            }
        }
        Ok(applied)
    }

    /// The call's media session runs in this process and has no verdict yet.
    fn session_deciding(&self, sid: &str) -> bool {
        self.inner
            .registry
            .get(sid)
            .is_some_and(|r| r.status == "in-progress" && r.outcome.is_none())
    }

    /// Moves a finished call's lead to its next state (retry or final outcome), once: when
    /// two appliances settle the same call, one of them does it.
    async fn settle_call(&self, sid: &str) -> Result<(), DialerError> {
        // Not while this process's session still decides the call (the waiter `on_status`
        // started, or the next reconcile pass, settles it then).
        if self.session_deciding(sid) {
            return Ok(());
        }
        let store = &self.inner.store;
        let call = store.call(sid).await?;
        let Some(lead_id) = call.lead_id else {
            return Ok(());
        };
        let lead = store.lead(lead_id).await?;
        if call.from.as_deref() == Some(lead.phone.as_str()) {
            return self.settle_inbound(&call, &lead).await;
        }
        if lead.state != LeadState::InCall {
            return Ok(());
        }
        let campaign = store.campaign(&lead.campaign_id).await?;
        // The engine's verdict and variables: live in this process's registry, else stored.
        let (engine_outcome, variables) = self.verdict(&call);
        let now = self.inner.options.clock.now();
        let callbacks = decide::Callbacks::asked(
            lead.callbacks,
            variables.get("callback_time").map(String::as_str),
        );
        let AfterCall {
            state,
            next_attempt_at,
            outcome,
            decision,
            reason,
            callback,
        } = decide::after_call(
            &campaign.settings,
            lead.attempts,
            &call.status,
            call.answered_by.as_deref(),
            engine_outcome.as_deref(),
            callbacks,
            now,
        );
        // A conversation happened (the script ended it): the next call starts from it. Written
        // before the lead moves on, so the next dial always finds it (a second settler writes
        // the same memory again).
        if let Some(said) = engine_outcome.as_deref() {
            self.remember(&lead, said, &variables, now).await?;
        }
        // The CRM hears of the call in the same write that moves the lead on.
        let event = self.call_end_event(&campaign, &call, &lead, &outcome, state, &variables);
        let moved = store
            .move_lead_counting(
                lead.id,
                LeadState::InCall,
                state,
                next_attempt_at.map(|t| t.timestamp_millis()).unwrap_or(0),
                Some(&outcome),
                callback,
                event.as_ref(),
            )
            .await?;
        if !moved {
            return Ok(());
        }
        if call.outcome.is_none() && state == LeadState::Done {
            store
                .set_call_outcome(sid, Some(&outcome), &call.variables)
                .await?;
        }
        audit_lead(store, &lead, decision, &format!("{reason} (call {sid})")).await?;
        Ok(())
    }

    /// A call the lead placed (inbound): remembered and reported like any conversation. It
    /// moves the lead only while the lead waits to be dialed (`pending`: a callback asked for
    /// is scheduled, a final outcome ends it), never one the dialer holds or has finished.
    async fn settle_inbound(&self, call: &StoredCall, lead: &Lead) -> Result<(), DialerError> {
        let store = &self.inner.store;
        let campaign = store.campaign(&lead.campaign_id).await?;
        let (Some(outcome), variables) = self.verdict(call) else {
            let reason = format!("the lead rang us; no conversation (call {})", call.sid);
            return Ok(audit_lead(store, lead, "inbound_call", &reason).await?);
        };
        let now = self.inner.options.clock.now();
        self.remember(lead, &outcome, &variables, now).await?;
        let callbacks = decide::Callbacks::asked(
            lead.callbacks,
            variables.get("callback_time").map(String::as_str),
        );
        let after = decide::after_call(
            &campaign.settings,
            lead.attempts,
            &call.status,
            call.answered_by.as_deref(),
            Some(&outcome),
            callbacks,
            now,
        );
        let pending = lead.state == LeadState::Pending;
        let state = if pending { after.state } else { lead.state };
        let event = self.call_end_event(&campaign, call, lead, &outcome, state, &variables);
        let moved = pending
            && store
                .move_lead_counting(
                    lead.id,
                    LeadState::Pending,
                    after.state,
                    after.next_attempt_at.map_or(0, |t| t.timestamp_millis()),
                    Some(&after.outcome),
                    after.callback,
                    event.as_ref(),
                )
                .await?;
        if let (false, Some(event)) = (moved, &event) {
            store.add_event(event).await?;
        }
        if call.outcome.is_none() {
            store
                .set_call_outcome(&call.sid, Some(&outcome), &variables)
                .await?;
        }
        let effect = if moved {
            format!("; {}", after.reason)
        } else {
            format!("; the lead stays {}", lead.state.as_str())
        };
        let reason = format!(
            "the lead rang us; outcome {outcome}{effect} (call {})",
            call.sid
        );
        Ok(audit_lead(store, lead, "inbound_call", &reason).await?)
    }

    /// The engine's verdict and variables: live in this process's registry, else stored.
    fn verdict(
        &self,
        call: &StoredCall,
    ) -> (Option<String>, std::collections::BTreeMap<String, String>) {
        match self.inner.registry.get(&call.sid) {
            Some(live) => (
                live.outcome
                    .map(|o| o.as_str().to_string())
                    .or(call.outcome.clone()),
                live.variables,
            ),
            None => (call.outcome.clone(), call.variables.clone()),
        }
    }

    /// The CRM's call-end event, if the campaign has a CRM webhook.
    fn call_end_event(
        &self,
        campaign: &Campaign,
        call: &StoredCall,
        lead: &Lead,
        outcome: &str,
        state: LeadState,
        variables: &std::collections::BTreeMap<String, String>,
    ) -> Option<NewEvent> {
        campaign.settings.crm_webhook_url.is_some().then(|| {
            CallEnd {
                campaign_id: &campaign.id,
                call_sid: &call.sid,
                lead_id: lead.id,
                phone: &lead.phone,
                status: &call.status,
                outcome,
                lead_state: state.as_str(),
                variables,
                started_at_ms: call.created_at_ms,
                ended_at_ms: call.ended_at_ms.unwrap_or_else(now_ms),
                transcript_url: format!(
                    "{}/v1/calls/{}/record",
                    self.inner.options.public_url,
                    url_encode(&call.sid)
                ),
            }
            .event()
        })
    }

    /// Stores the lead's memory after a conversation ([`decide::remember`]), its values
    /// spoken as the campaign's script says them.
    async fn remember(
        &self,
        lead: &Lead,
        outcome: &str,
        captured: &std::collections::BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tz: chrono_tz::Tz = lead.timezone.parse().unwrap_or(chrono_tz::UTC);
        let script = self.inner.scripts.get(&lead.campaign_id);
        let speak = |k: &str, v: &str| match &script {
            Some(s) => s.speak(k, v, tz),
            None => v.to_string(),
        };
        let memory = decide::remember(
            lead.memory.as_ref(),
            outcome,
            captured,
            now.with_timezone(&tz),
            &speak,
        );
        self.inner.store.set_lead_memory(lead.id, &memory).await
    }

    /// True once no lead of the campaign may have a call on the line and none is due before
    /// `horizon` from now (deferred leads may wait for tomorrow's window).
    pub async fn is_settled(
        &self,
        campaign_id: &str,
        horizon: Duration,
    ) -> Result<bool, DialerError> {
        let counts = self.inner.store.lead_counts(campaign_id).await?;
        if counts.busy() > 0 {
            return Ok(false);
        }
        let due = self.inner.store.next_due_ms(campaign_id).await?;
        let limit = after_ms(self.inner.options.clock.now_ms(), horizon);
        Ok(due.is_none_or(|d| d > limit))
    }
}

/// How long a finished call's settling waits for its session's verdict.
const VERDICT_WAIT: Duration = Duration::from_secs(30);

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
