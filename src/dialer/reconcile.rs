//! The reconcile pass: settles, by asking Twilio, what no live dialer is working on, so a
//! restart, a crash or a dead appliance never dials a lead twice nor loses a call.
//!
//! - Claims nobody works on (this appliance's from before its restart, anyone's whose lease
//!   ran out) and `dial_unknown` leads: a call Twilio lists for the claim is adopted; a
//!   `dialing` lead Twilio does not list becomes `dial_unknown`, since its create may still
//!   surface in the list; a `dial_unknown` lead still not listed `settle_unknown` after it got
//!   there goes back to pending with no attempt used. Every move is a compare-and-set.
//! - `in_call` leads whose final callback never came (lost while we were down, or refused by
//!   a failing database): on the first pass all of them, later those past their longest
//!   possible call; a call Twilio says ended is settled.
//! - Campaigns running in the store without a loop here (resumed after a restart, or started
//!   on another appliance) get one.
//!
//! The first pass runs at startup in the background, retried with back-off until it gets
//! through (Twilio may be down); later passes run every `reconcile_every`.

use std::time::Duration;

use chrono::Utc;

use super::faults::Backoff;
use super::{after_ms, audit_lead, checked, created_at, new_call, Dialer, DialerError};
use crate::model::{
    is_terminal_status, Campaign, CampaignState, Lead, LeadState, StatusUpdate, StoredCall,
};
use crate::store::now_ms;
use crate::twilio_rest::{CallFilter, CallResource};

/// `date_created` has one-second resolution and Twilio's clock is not ours.
const CREATED_SLACK_MS: i64 = 2_000;
/// Past ring timeout and time limit, how long a call's final callback may be late.
const LATE_CALLBACK_MS: i64 = 60_000;

impl Dialer {
    /// The background reconcile: a full first pass, retried until it succeeds, then a pass
    /// every `reconcile_every` (a failed one is logged and retried at the next).
    pub(super) async fn reconcile_forever(self) {
        let mut backoff = Backoff::new();
        while let Err(e) = self.reconcile_pass(true).await {
            let wait = backoff.next();
            tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "startup reconcile incomplete; retrying");
            tokio::time::sleep(wait).await;
        }
        tracing::info!("startup reconcile done");
        loop {
            tokio::time::sleep(self.inner.options.reconcile_every).await;
            if let Err(e) = self.reconcile_pass(false).await {
                tracing::warn!(error = %e, "reconcile pass incomplete; retrying at the next");
            }
        }
    }

    /// Renews the leases of this appliance's in-flight claims every third of a lease.
    pub(super) async fn renew_leases_forever(self) {
        let every = self.inner.options.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            let ids: Vec<i64> = self.lock_in_flight().iter().copied().collect();
            let until = after_ms(now_ms(), self.inner.options.lease);
            let worker = &self.inner.options.worker_id;
            if let Err(e) = self.inner.store.renew_claims(worker, &ids, until).await {
                tracing::warn!(error = %e, claims = ids.len(), "cannot renew claim leases");
            }
        }
    }

    /// One reconcile pass (see the module docs); `all_calls` checks every `in_call` lead with
    /// Twilio, not only overdue ones. Goes through everything it can, then returns the first
    /// error, if any.
    pub async fn reconcile_pass(&self, all_calls: bool) -> Result<(), DialerError> {
        let store = &self.inner.store;
        let mut first_error = None;
        let campaigns = store.campaigns().await?;
        for campaign in &campaigns {
            if campaign.state == CampaignState::Running && !self.has_loop(&campaign.id) {
                match checked(campaign) {
                    Ok(checked) => self.spawn_loop(campaign, checked),
                    Err(e) => tracing::error!(error = %e, "running campaign cannot be resumed"),
                }
            }
        }
        let now = now_ms();
        let worker = &self.inner.options.worker_id;
        let boot = self.inner.boot_ms;
        for lead in store.unsettled_claims(worker, boot, now).await? {
            if self.lock_in_flight().contains(&lead.id) {
                continue;
            }
            let Some(campaign) = campaigns.iter().find(|c| c.id == lead.campaign_id) else {
                continue;
            };
            if let Err(e) = self.settle_claim(campaign, &lead).await {
                tracing::warn!(lead = lead.id, error = %e, "cannot settle claim yet");
                first_error.get_or_insert(e);
            }
        }
        for campaign in &campaigns {
            for lead in store
                .leads_in_state(&campaign.id, LeadState::InCall)
                .await?
            {
                if let Err(e) = self.check_call(campaign, &lead, all_calls).await {
                    tracing::warn!(lead = lead.id, error = %e, "cannot reconcile call yet");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Settles one claim nobody is working on by Twilio's call list.
    async fn settle_claim(&self, campaign: &Campaign, lead: &Lead) -> Result<(), DialerError> {
        let store = &self.inner.store;
        if let Some(call) = self.placed_call(campaign, lead).await? {
            store
                .record_dial(&new_call(&call, &campaign.id, lead.id))
                .await?;
            let reason = format!(
                "Twilio lists call {} ({}) for the claim of {} (lead was {})",
                call.sid,
                call.status,
                lead.claimed_by.as_deref().unwrap_or("nobody"),
                lead.state.as_str()
            );
            audit_lead(store, lead, "recovered_call", &reason).await?;
            if is_terminal_status(&call.status) {
                // Its last callback came before the call row existed: settle it now.
                let stored = store.call(&call.sid).await?;
                self.finish_call(lead, &stored, &call).await?;
            }
            return Ok(());
        }
        let now = now_ms();
        let worker = &self.inner.options.worker_id;
        match lead.state {
            LeadState::Dialing => {
                let own = lead.claimed_by.as_deref() == Some(worker.as_str());
                // Our own claim from before the restart: nobody renews it. Anyone else's must
                // still be lapsed when we take it (it may have been renewed since we read it).
                let lapsed_by =
                    (!own || lead.claimed_at_ms.unwrap_or(0) >= self.inner.boot_ms).then_some(now);
                let settle = self.inner.options.settle_unknown;
                let settle_at = after_ms(now, settle);
                if store
                    .mark_dial_unknown(lead, lapsed_by, worker, settle_at)
                    .await?
                {
                    let whose = if own {
                        "this appliance's claim from before its restart".to_string()
                    } else {
                        format!(
                            "the lapsed claim of {}",
                            lead.claimed_by.as_deref().unwrap_or("an unknown appliance")
                        )
                    };
                    let reason = format!(
                        "{whose}: Twilio lists no call for it yet; not dialed again until the \
                         list settles it (taken as not placed after {} s)",
                        settle.as_secs()
                    );
                    audit_lead(store, lead, "dial_unknown", &reason).await?;
                }
            }
            // Past its settle time and still not listed: never placed. The compare-and-set
            // fails if another appliance settled it first.
            LeadState::DialUnknown
                if lead.claim_expires_at_ms.unwrap_or(0) <= now
                    && store.release_claim(lead, Some(now), now).await? =>
            {
                let reason = "Twilio lists no call for this claim after the settle time: \
                              not placed; back to pending, no attempt used";
                audit_lead(store, lead, "recovered_unplaced", reason).await?;
                self.inner.wake.notify_waiters();
            }
            _ => {}
        }
        Ok(())
    }

    /// The call Twilio placed for this claim, if it lists one: to the lead, from the
    /// campaign's number, created at or after the claim.
    async fn placed_call(
        &self,
        campaign: &Campaign,
        lead: &Lead,
    ) -> Result<Option<CallResource>, DialerError> {
        let claimed_ms = lead.claimed_at_ms.unwrap_or(0);
        let not_before_ms = claimed_ms.saturating_sub(CREATED_SLACK_MS);
        let claimed = chrono::DateTime::<Utc>::from_timestamp_millis(claimed_ms)
            .unwrap_or(chrono::DateTime::<Utc>::UNIX_EPOCH);
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
            .filter(|c| created_at(c).is_none_or(|t| t.timestamp_millis() >= not_before_ms))
            .min_by_key(|c| created_at(c).map(|t| t.timestamp_millis()));
        Ok(placed)
    }

    /// Settles an `in_call` lead whose call ended without a (recorded) final callback.
    async fn check_call(
        &self,
        campaign: &Campaign,
        lead: &Lead,
        all_calls: bool,
    ) -> Result<(), DialerError> {
        let Some(call) = self.inner.store.latest_call_for_lead(lead.id).await? else {
            return Ok(());
        };
        if is_terminal_status(&call.status) {
            // The callback was stored but the lead never moved on (a failure in between).
            return self.settle_call(&call.sid).await;
        }
        let s = &campaign.settings;
        let longest = Duration::from_secs(u64::from(s.ring_timeout_s) + u64::from(s.time_limit_s));
        let overdue = after_ms(call.created_at_ms, longest).saturating_add(LATE_CALLBACK_MS);
        if !all_calls && now_ms() < overdue {
            return Ok(());
        }
        let remote = self.inner.twilio.fetch_call(&call.sid).await?;
        if is_terminal_status(&remote.status) {
            self.finish_call(lead, &call, &remote).await?;
        }
        Ok(())
    }

    /// Records Twilio's terminal status for a call we missed the end of, and settles its lead.
    async fn finish_call(
        &self,
        lead: &Lead,
        call: &StoredCall,
        remote: &CallResource,
    ) -> Result<(), DialerError> {
        let store = &self.inner.store;
        let reason = format!(
            "call {} ended without its final callback reaching us (Twilio says {})",
            call.sid, remote.status
        );
        audit_lead(store, lead, "reconciled_call", &reason).await?;
        store
            .apply_status(&StatusUpdate {
                call_sid: call.sid.clone(),
                source: "reconcile".into(),
                sequence: call.last_sequence.saturating_add(1),
                status: remote.status.clone(),
                answered_by: remote.answered_by.clone(),
                duration_s: remote.duration.as_deref().and_then(|d| d.parse().ok()),
                params: vec![("Status".into(), remote.status.clone())],
            })
            .await?;
        self.settle_call(&call.sid).await?;
        self.inner.wake.notify_waiters();
        Ok(())
    }
}
