//! Events for the customer's CRM: what a call's end and an opt-out tell it, and the outbox row
//! that carries each one until the CRM has it.
//!
//! The payload is built here, from records the dialer and the store already hold, so the store
//! can write it in the same transaction as the fact it reports. It carries no transcript text
//! (callers' words stay on the appliance): a link to the call's record instead.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// A dialed call is over and its lead has moved on (retry or final outcome).
    #[serde(rename = "call.ended")]
    CallEnded,
    /// A lead's number went on the do-not-call list.
    #[serde(rename = "lead.do_not_call")]
    DoNotCall,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallEnded => "call.ended",
            Self::DoNotCall => "lead.do_not_call",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "call.ended" => Self::CallEnded,
            "lead.do_not_call" => Self::DoNotCall,
            _ => return None,
        })
    }
}

/// An event to put in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub campaign_id: String,
    pub kind: EventKind,
    /// Stable and unique (`call.ended:<sid>`, `lead.do_not_call:<lead id>`): the same fact
    /// written twice is one event, and receivers deduplicate by it.
    pub event_id: String,
    /// The JSON body, as sent.
    pub payload: String,
}

/// What the dialer knows when a call ends.
#[derive(Debug, Clone)]
pub struct CallEnd<'a> {
    pub campaign_id: &'a str,
    pub call_sid: &'a str,
    pub lead_id: i64,
    pub phone: &'a str,
    /// Twilio's final status (`completed`, `busy`, `no-answer`, ...).
    pub status: &'a str,
    pub outcome: &'a str,
    /// The lead's state after the call (`done`, or `pending` for a retry or callback).
    pub lead_state: &'a str,
    pub variables: &'a BTreeMap<String, String>,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    /// Where the call's record (transcript, statuses) is, on the admin API.
    pub transcript_url: String,
}

/// A short line for a CRM's activity feed: the outcome, and what the caller told us.
pub fn summary(outcome: &str, status: &str, variables: &BTreeMap<String, String>) -> String {
    let mut line = match outcome {
        "" => format!("Call {status}"),
        o => format!("Call {status}: {}", o.replace('_', " ")),
    };
    if !variables.is_empty() {
        let vars: Vec<String> = variables.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!(" ({})", vars.join(", ")));
    }
    // Bounded: variables are short, but a CRM's summary field may not be.
    if line.chars().count() > 300 {
        line = line.chars().take(299).collect::<String>() + "…";
    }
    line
}

impl CallEnd<'_> {
    pub fn event(&self) -> NewEvent {
        let event_id = format!("{}:{}", EventKind::CallEnded.as_str(), self.call_sid);
        let payload = serde_json::json!({
            "event_id": event_id,
            "kind": EventKind::CallEnded,
            "campaign_id": self.campaign_id,
            "call_sid": self.call_sid,
            "lead": { "id": self.lead_id, "phone": self.phone, "state": self.lead_state },
            "status": self.status,
            "outcome": self.outcome,
            "variables": self.variables,
            "summary": summary(self.outcome, self.status, self.variables),
            "transcript_url": self.transcript_url,
            "started_at_ms": self.started_at_ms,
            "ended_at_ms": self.ended_at_ms,
        });
        NewEvent {
            campaign_id: self.campaign_id.to_string(),
            kind: EventKind::CallEnded,
            event_id,
            payload: payload.to_string(),
        }
    }
}

/// A lead's number put on the do-not-call list (`source`: `call` for an opt-out on a call,
/// `api` for an operator).
pub fn do_not_call_event(
    campaign_id: &str,
    lead_id: i64,
    phone: &str,
    source: &str,
    reason: &str,
    at_ms: i64,
) -> NewEvent {
    let event_id = format!("{}:{lead_id}", EventKind::DoNotCall.as_str());
    let payload = serde_json::json!({
        "event_id": event_id,
        "kind": EventKind::DoNotCall,
        "campaign_id": campaign_id,
        "lead": { "id": lead_id, "phone": phone },
        "source": source,
        "reason": reason,
        "at_ms": at_ms,
    });
    NewEvent {
        campaign_id: campaign_id.to_string(),
        kind: EventKind::DoNotCall,
        event_id,
        payload: payload.to_string(),
    }
}

/// Where an event is on its way to the CRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet; tried again at `next_attempt_ms`.
    Pending,
    /// The CRM answered 2xx.
    Delivered,
    /// Given up after the last retry; kept for the log.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// One outbox row, as the delivery log shows it (without the payload: it holds a caller's
/// number and answers, and the log is for seeing whether the CRM takes our events).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub campaign_id: String,
    pub event_id: String,
    pub kind: EventKind,
    pub state: DeliveryState,
    /// Deliveries tried so far.
    pub attempts: u32,
    pub next_attempt_ms: i64,
    /// The CRM's HTTP status on the last try, if it answered.
    pub last_status: Option<u16>,
    /// Why the last try failed (status, timeout, connection refused).
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
}

/// A due outbox row, for the courier: where it goes is the campaign's (read at send time, so a
/// corrected URL takes effect on the next retry).
#[derive(Debug, Clone)]
pub struct DueEvent {
    pub id: i64,
    pub campaign_id: String,
    pub event_id: String,
    pub kind: EventKind,
    pub payload: String,
    pub attempts: u32,
    pub next_attempt_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_end_says_outcome_variables_and_where_the_transcript_is() {
        let vars = BTreeMap::from([("callback_time".to_string(), "tomorrow 10:00".to_string())]);
        let e = CallEnd {
            campaign_id: "c1",
            call_sid: "CA1",
            lead_id: 7,
            phone: "+14155550100",
            status: "completed",
            outcome: "callback",
            lead_state: "pending",
            variables: &vars,
            started_at_ms: 1,
            ended_at_ms: 2,
            transcript_url: "https://x/v1/calls/CA1/record".into(),
        }
        .event();
        assert_eq!(e.event_id, "call.ended:CA1");
        let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(v["kind"], "call.ended");
        assert_eq!(v["event_id"], "call.ended:CA1");
        assert_eq!(v["outcome"], "callback");
        assert_eq!(v["variables"]["callback_time"], "tomorrow 10:00");
        assert_eq!(
            v["summary"],
            "Call completed: callback (callback_time=tomorrow 10:00)"
        );
        assert_eq!(v["lead"]["phone"], "+14155550100");
    }

    #[test]
    fn an_opt_out_names_the_lead_and_the_source() {
        let e = do_not_call_event("c1", 9, "+14155550101", "call", "asked", 5);
        assert_eq!(e.event_id, "lead.do_not_call:9");
        let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(v["kind"], "lead.do_not_call");
        assert_eq!(v["source"], "call");
        assert_eq!(v["at_ms"], 5);
    }

    #[test]
    fn long_summaries_are_cut() {
        let vars = BTreeMap::from([("note".to_string(), "x".repeat(1000))]);
        assert_eq!(summary("done", "completed", &vars).chars().count(), 300);
    }
}
