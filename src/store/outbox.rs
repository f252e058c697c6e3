//! The CRM outbox: events written with the fact they report, taken by the courier when due,
//! marked delivered, retried or given up. The delivery log reads the same rows.

use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use super::{corrupt, now_ms, Store, StoreError};
use crate::model::{Delivery, DeliveryState, DueEvent, EventKind, NewEvent};

/// Most rows one delivery-log page returns.
pub const MAX_DELIVERY_PAGE: u32 = 500;

/// Adds an event inside the caller's transaction; the same event id again is a no-op (a fact
/// reported twice, or by two appliances, reaches the CRM once).
pub(super) async fn insert_event(
    conn: &mut sqlx::AnyConnection,
    event: &NewEvent,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO crm_outbox (campaign_id, kind, event_id, payload_json, state, attempts,
                                 next_attempt_ms, created_at_ms)
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.campaign_id)
    .bind(event.kind.as_str())
    .bind(&event.event_id)
    .bind(&event.payload)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

fn kind(row: &AnyRow) -> Result<EventKind, StoreError> {
    let kind: String = row.try_get("kind")?;
    EventKind::parse(&kind).ok_or_else(|| corrupt("outbox event kind", kind))
}

fn attempts(row: &AnyRow) -> Result<u32, StoreError> {
    Ok(u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0))
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(Delivery {
        id: row.try_get("id")?,
        campaign_id: row.try_get("campaign_id")?,
        event_id: row.try_get("event_id")?,
        kind: kind(row)?,
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("outbox state", state))?,
        attempts: attempts(row)?,
        next_attempt_ms: row.try_get("next_attempt_ms")?,
        last_status: row
            .try_get::<Option<i64>, _>("last_status")?
            .and_then(|s| u16::try_from(s).ok()),
        last_error: row.try_get("last_error")?,
        created_at_ms: row.try_get("created_at_ms")?,
        delivered_at_ms: row.try_get("delivered_at_ms")?,
    })
}

impl Store {
    /// Puts one event in the outbox on its own (the fact it reports is already stored).
    pub async fn add_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_event(&mut conn, event, now_ms()).await
    }

    /// Pending events due by `now`, oldest first, at most `limit`.
    pub async fn due_events(&self, now: i64, limit: u32) -> Result<Vec<DueEvent>, StoreError> {
        sqlx::query(
            "SELECT id, campaign_id, event_id, kind, payload_json, attempts, next_attempt_ms
             FROM crm_outbox WHERE state = 'pending' AND next_attempt_ms <= $1
             ORDER BY next_attempt_ms, id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(DueEvent {
                id: row.try_get("id")?,
                campaign_id: row.try_get("campaign_id")?,
                event_id: row.try_get("event_id")?,
                kind: kind(row)?,
                payload: row.try_get("payload_json")?,
                attempts: attempts(row)?,
                next_attempt_ms: row.try_get("next_attempt_ms")?,
            })
        })
        .collect()
    }

    /// Takes a due event for one delivery: moves its next attempt to `until` (past the
    /// request's timeout) if nobody else did first. False: another courier (appliance) has
    /// it. Had this courier died mid-request, the event comes due again at `until`.
    pub async fn take_event(&self, event: &DueEvent, until: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE crm_outbox SET next_attempt_ms = $1
             WHERE id = $2 AND state = 'pending' AND next_attempt_ms = $3 AND attempts = $4",
        )
        .bind(until)
        .bind(event.id)
        .bind(event.next_attempt_ms)
        .bind(i64::from(event.attempts))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records one delivery attempt: `next_attempt_ms` None after a failure means give up
    /// (`failed`); a 2xx status means `delivered`.
    pub async fn record_attempt(
        &self,
        id: i64,
        delivered: bool,
        status: Option<u16>,
        error: Option<&str>,
        next_attempt_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let state = match (delivered, next_attempt_ms) {
            (true, _) => DeliveryState::Delivered,
            (false, Some(_)) => DeliveryState::Pending,
            (false, None) => DeliveryState::Failed,
        };
        sqlx::query(
            "UPDATE crm_outbox SET state = $1, attempts = attempts + 1, next_attempt_ms = $2,
                    last_status = $3, last_error = $4, delivered_at_ms = $5
             WHERE id = $6",
        )
        .bind(state.as_str())
        .bind(next_attempt_ms.unwrap_or(now))
        .bind(status.map(i64::from))
        .bind(error.map(str::to_string))
        .bind(delivered.then_some(now))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A campaign's delivery log, newest first: at most `limit` rows (capped at
    /// [`MAX_DELIVERY_PAGE`]) with ids below `before`, if given (the next page).
    pub async fn deliveries(
        &self,
        campaign_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<Delivery>, StoreError> {
        sqlx::query::<Any>(
            "SELECT * FROM crm_outbox WHERE campaign_id = $1 AND id < $2
             ORDER BY id DESC LIMIT $3",
        )
        .bind(campaign_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit.min(MAX_DELIVERY_PAGE)))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(delivery_from_row)
        .collect()
    }
}
