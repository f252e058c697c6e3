//! One campaign's loop on this appliance: wait for a slot, claim, decide, pace, decide again,
//! dial. A failed pass is retried with back-off and reported ([`super::faults`]); the loop
//! ends only when the campaign is stopped or completed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::decide::{self, DialDecision};
use super::faults::Backoff;
use super::{after_ms, audit_lead, new_call, url_encode, Dialer, DialerError};
use crate::leads::CallingWindow;
use crate::model::{Campaign, CampaignState, Lead, LeadState};
use crate::script::format::Script;
use crate::store::now_ms;
use crate::twilio_rest::{CreateCall, MachineDetection, TwilioError};

/// What one pass of a campaign loop did.
enum Pass {
    /// Moved a lead on: go on at once.
    Busy,
    /// Nothing to do now: wait for a call to end, a control change or the poll.
    Idle,
    /// The campaign is stopped or completed.
    Done,
}

/// Takes a lead out of the in-flight set when its dial is over, however it ends.
struct InFlight<'a> {
    dialer: &'a Dialer,
    lead_id: i64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.dialer.lock_in_flight().remove(&self.lead_id);
    }
}

impl Dialer {
    pub(super) fn spawn_loop(
        &self,
        campaign: &Campaign,
        (script, window): (Arc<Script>, CallingWindow),
    ) {
        self.inner.scripts.insert(&campaign.id, script);
        let (tx, rx) = watch::channel(CampaignState::Running);
        self.lock_running().insert(campaign.id.clone(), tx);
        let dialer = self.clone();
        let campaign = campaign.clone();
        tokio::spawn(async move {
            let id = campaign.id.clone();
            dialer.run_campaign(campaign, window, rx).await;
            // Ours is closed now (its receiver is gone); a newer loop's is not.
            let mut running = dialer.lock_running();
            if running.get(&id).is_some_and(|tx| tx.is_closed()) {
                running.remove(&id);
            }
        });
    }

    async fn run_campaign(
        &self,
        campaign: Campaign,
        window: CallingWindow,
        mut control: watch::Receiver<CampaignState>,
    ) {
        let id = campaign.id.clone();
        // Settings were range-checked before the loop started; the fallback is for safety.
        let pace = Duration::try_from_secs_f64(1.0 / campaign.settings.calls_per_second)
            .unwrap_or(Duration::from_secs(1));
        let mut next_slot = Instant::now();
        let mut backoff = Backoff::new();
        tracing::info!(campaign = %id, "campaign running");
        loop {
            // A stop given on this appliance ends the loop even while the store is down.
            if matches!(
                *control.borrow_and_update(),
                CampaignState::Stopped | CampaignState::Completed
            ) {
                return;
            }
            match self.pass(&campaign, &window, pace, &mut next_slot).await {
                Ok(pass) => {
                    self.clear_fault(&id).await;
                    backoff.reset();
                    match pass {
                        Pass::Busy => {}
                        Pass::Idle => {
                            tokio::select! {
                                _ = self.inner.wake.notified() => {}
                                _ = control.changed() => {}
                                _ = tokio::time::sleep(self.inner.options.idle_poll) => {}
                            }
                        }
                        Pass::Done => return,
                    }
                }
                Err(e) => {
                    self.report_fault(&id, &e).await;
                    tokio::select! {
                        _ = control.changed() => {}
                        _ = tokio::time::sleep(backoff.next()) => {}
                    }
                }
            }
        }
    }

    async fn pass(
        &self,
        campaign: &Campaign,
        window: &CallingWindow,
        pace: Duration,
        next_slot: &mut Instant,
    ) -> Result<Pass, DialerError> {
        let store = &self.inner.store;
        let id = &campaign.id;
        // The store is the truth: another appliance may have paused or stopped the campaign.
        match store.campaign(id).await?.state {
            CampaignState::Running => {}
            CampaignState::Paused | CampaignState::Draft => return Ok(Pass::Idle),
            CampaignState::Stopped | CampaignState::Completed => return Ok(Pass::Done),
        }
        let counts = store.lead_counts(id).await?;
        if counts.open() == 0 {
            store
                .set_campaign_state(id, CampaignState::Completed)
                .await?;
            tracing::info!(campaign = %id, ?counts, "campaign completed");
            return Ok(Pass::Done);
        }
        if counts.busy() >= u64::from(campaign.settings.max_concurrent) || self.is_draining() {
            return Ok(Pass::Idle);
        }
        if self.inner.faults.twilio_down(id) {
            // Twilio failed last time: see it answer before taking a lead.
            self.inner.twilio.check().await?;
        }
        let now = now_ms();
        let due_by = self.inner.options.clock.now_ms();
        let worker = &self.inner.options.worker_id;
        let lease_until = after_ms(now, self.inner.options.lease);
        let Some(lead) = store
            .claim_due_lead(id, due_by, now, worker, lease_until)
            .await?
        else {
            return Ok(Pass::Idle);
        };
        self.lock_in_flight().insert(lead.id);
        let _in_flight = InFlight {
            dialer: self,
            lead_id: lead.id,
        };
        match self.ready_to_dial(campaign, window, &lead, next_slot).await {
            Ok(true) => {
                *next_slot = Instant::now() + pace;
                self.dial(campaign, &lead).await?;
            }
            Ok(false) => {}
            Err(e) => {
                // Nothing was sent: give the lead back now rather than when its lease ends.
                let due = self.inner.options.clock.now_ms();
                if let Err(release) = store.release_claim(&lead, None, due).await {
                    tracing::warn!(lead = lead.id, error = %release, "claim left to its lease");
                }
                return Err(e);
            }
        }
        Ok(Pass::Busy)
    }

    /// Decides on a claimed lead (skips and deferrals are applied at once), waits for the
    /// pacing slot, and decides again right before the create: the do-not-call list (an
    /// opt-out on another call, an operator), the calling hours or the campaign's state may
    /// have changed during the wait. True: dial now.
    async fn ready_to_dial(
        &self,
        campaign: &Campaign,
        window: &CallingWindow,
        lead: &Lead,
        next_slot: &Instant,
    ) -> Result<bool, DialerError> {
        if !self.decide(lead, window).await? {
            return Ok(false);
        }
        tokio::time::sleep_until(*next_slot).await;
        let store = &self.inner.store;
        if store.campaign(&campaign.id).await?.state != CampaignState::Running {
            let due = self.inner.options.clock.now_ms();
            store.release_claim(lead, None, due).await?;
            return Ok(false);
        }
        self.decide(lead, window).await
    }

    /// [`decide::before_dial`] on the current do-not-call list and clock; a skip or deferral
    /// is applied and audited. True: dial.
    async fn decide(&self, lead: &Lead, window: &CallingWindow) -> Result<bool, DialerError> {
        let store = &self.inner.store;
        let dnc = store.dnc_entry(&lead.phone).await?;
        let now = self.inner.options.clock.now();
        match decide::before_dial(lead, dnc.as_ref(), window, now) {
            DialDecision::Dial => Ok(true),
            DialDecision::Skip { decision, reason } => {
                store
                    .set_lead_state(lead.id, LeadState::Skipped, 0, Some(decision))
                    .await?;
                audit_lead(store, lead, decision, &reason).await?;
                Ok(false)
            }
            DialDecision::Defer {
                until,
                decision,
                reason,
            } => {
                store
                    .set_lead_state(lead.id, LeadState::Pending, until.timestamp_millis(), None)
                    .await?;
                audit_lead(store, lead, decision, &reason).await?;
                Ok(false)
            }
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
                // If this fails the lead stays claimed; once the lease lapses, the reconcile
                // adopts the call from Twilio's list.
                store
                    .record_dial(&new_call(&call, &campaign.id, lead.id))
                    .await?;
            }
            // The call may exist (a 2xx we cannot read counts too): Twilio's list settles it.
            Err(e @ (TwilioError::CreateUnknown { .. } | TwilioError::Decode(_))) => {
                let settle = self.inner.options.settle_unknown;
                let settle_at = after_ms(now_ms(), settle);
                let worker = &self.inner.options.worker_id;
                store
                    .mark_dial_unknown(lead, None, worker, settle_at)
                    .await?;
                let reason = format!(
                    "{e}; not dialed again until Twilio's call list shows whether the call \
                     exists (taken as not placed after {} s)",
                    settle.as_secs()
                );
                audit_lead(store, lead, "dial_unknown", &reason).await?;
                return Err(e.into());
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
                // Surely not placed (Twilio unreachable, rate limited, misconfigured): the lead
                // goes back with no attempt used, and the loop backs off, probing Twilio
                // before it takes the next one.
                let due = self.inner.options.clock.now_ms();
                store.release_claim(lead, None, due).await?;
                let reason = format!("{e}; back to pending, no attempt used");
                audit_lead(store, lead, "dial_not_placed", &reason).await?;
                return Err(e.into());
            }
        }
        Ok(())
    }
}
