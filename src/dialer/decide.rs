//! The dialer's decisions as pure functions: may this lead be dialed now, and what happens to a
//! lead after its call ended. No I/O, no clock: `now` is an argument, so every rule is
//! unit-tested at any hour in any timezone.
//!
//! The lead's memory ([`remember`]) is decided here too: the answers so far and a summary
//! line assembled from the outcome and the answers. Assembled, not generated: the small local
//! models summarise a call unreliably (the test model not at all), and what the next call
//! needs is exactly those pieces, which a template says faithfully.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::leads::{CallingWindow, WindowCheck};
use crate::model::{CampaignSettings, DncEntry, Lead, LeadMemory, LeadState, MAX_RETRY_DELAY_S};

/// What to do with a claimed lead right before dialing.
#[derive(Debug, Clone, PartialEq)]
pub enum DialDecision {
    Dial,
    /// Never call this lead in this campaign (final), with the audit decision and reason.
    Skip {
        decision: &'static str,
        reason: String,
    },
    /// Not now: back to pending until `until`.
    Defer {
        until: DateTime<Utc>,
        decision: &'static str,
        reason: String,
    },
}

/// Checks, in the order the law ranks them: do-not-call, consent, calling hours.
pub fn before_dial(
    lead: &Lead,
    dnc: Option<&DncEntry>,
    window: &CallingWindow,
    now: DateTime<Utc>,
) -> DialDecision {
    if let Some(entry) = dnc {
        return DialDecision::Skip {
            decision: "skip_dnc",
            reason: format!(
                "{} is on the do-not-call list ({}; source {})",
                lead.phone, entry.reason, entry.source
            ),
        };
    }
    if !lead.consent {
        return DialDecision::Skip {
            decision: "skip_consent",
            reason: format!(
                "no prior express written consent on file for {} (required for artificial-voice calls)",
                lead.phone
            ),
        };
    }
    let tz: chrono_tz::Tz = match lead.timezone.parse() {
        Ok(tz) => tz,
        Err(_) => {
            return DialDecision::Skip {
                decision: "skip_timezone",
                reason: format!(
                    "unknown timezone `{}`: calling hours cannot be checked",
                    lead.timezone
                ),
            }
        }
    };
    match window.check(tz, now) {
        WindowCheck::Open => DialDecision::Dial,
        WindowCheck::Closed { opens_at } => DialDecision::Defer {
            until: opens_at,
            decision: "defer_window",
            reason: format!(
                "outside calling hours {}-{} in {} (local time {}); next window opens {}",
                window.start.format("%H:%M"),
                window.end.format("%H:%M"),
                tz,
                now.with_timezone(&tz).format("%H:%M"),
                opens_at.to_rfc3339()
            ),
        },
    }
}

/// Where a lead goes after its call reached a terminal Twilio status.
#[derive(Debug, Clone, PartialEq)]
pub struct AfterCall {
    pub state: LeadState,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub outcome: String,
    pub decision: &'static str,
    pub reason: String,
    /// The next attempt is a callback the caller asked for (counted apart from retries).
    pub callback: bool,
}

/// A lead's callbacks so far, and when the caller of this call asked to be called back (the
/// script's `callback_time`, as the time slot stores it), if they said.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Callbacks {
    pub made: u32,
    pub asked_for: Option<DateTime<Utc>>,
}

impl Callbacks {
    /// Reads the time slot's stored form (RFC 3339, with a `~` or `~day` mark when the caller
    /// gave only a part of the day or a day); anything else is no time.
    pub fn asked(made: u32, callback_time: Option<&str>) -> Self {
        let asked_for = callback_time
            .map(|t| t.trim().split('~').next().unwrap_or_default())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        Self { made, asked_for }
    }
}

/// Busy / no-answer / failed are retried on the campaign's schedule until attempts run out
/// (callback dials do not count against them); a caller who asked to be called back is dialed
/// again at the time they gave (or after `callback_delay_s`), up to `max_callbacks`; any other
/// answered call is done with the engine's outcome (or what the answering side was).
pub fn after_call(
    settings: &CampaignSettings,
    attempts: u32,
    status: &str,
    answered_by: Option<&str>,
    engine_outcome: Option<&str>,
    callbacks: Callbacks,
    now: DateTime<Utc>,
) -> AfterCall {
    let unanswered = matches!(status, "busy" | "no-answer" | "failed" | "canceled");
    if unanswered {
        if attempts.saturating_sub(callbacks.made) < settings.max_attempts {
            let delay = settings.retry_delay_s(attempts);
            // Capped at 30 days, so this never overflows; checked anyway, as a clock near
            // the end of chrono's range would otherwise panic.
            let at = i64::try_from(delay)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            return AfterCall {
                state: LeadState::Pending,
                next_attempt_at: Some(at),
                outcome: status.to_string(),
                decision: "retry_scheduled",
                reason: format!(
                    "attempt {attempts} of {} ended {status}; retry in {delay} s",
                    settings.max_attempts
                ),
                callback: false,
            };
        }
        return AfterCall {
            state: LeadState::Failed,
            next_attempt_at: None,
            outcome: status.to_string(),
            decision: "attempts_exhausted",
            reason: format!("all {attempts} attempts ended unanswered (last: {status})"),
            callback: false,
        };
    }
    if engine_outcome == Some("callback") && callbacks.made < settings.max_callbacks {
        let (at, when) = match callbacks.asked_for.filter(|t| *t > now) {
            Some(t) => (t, format!("at the time they gave, {}", t.to_rfc3339())),
            None => {
                let delay = settings.callback_delay_s.min(MAX_RETRY_DELAY_S);
                let at = chrono::Duration::try_seconds(delay as i64)
                    .and_then(|d| now.checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                (at, format!("in {delay} s (no time given)"))
            }
        };
        return AfterCall {
            state: LeadState::Pending,
            next_attempt_at: Some(at),
            outcome: "callback".into(),
            decision: "callback_scheduled",
            reason: format!(
                "the caller asked to be called back: callback {} of {}, {when}",
                callbacks.made + 1,
                settings.max_callbacks
            ),
            callback: true,
        };
    }
    let outcome = match (engine_outcome, answered_by) {
        (Some(o), _) => o.to_string(),
        (None, Some("fax")) => "fax".into(),
        (None, Some(a)) if a.starts_with("machine") => "voicemail".into(),
        _ => "no_outcome".into(),
    };
    AfterCall {
        state: LeadState::Done,
        next_attempt_at: None,
        reason: format!(
            "call {status}{}; outcome {outcome}",
            answered_by
                .map(|a| format!(", answered by {a}"))
                .unwrap_or_default()
        ),
        outcome,
        decision: "call_finished",
        callback: false,
    }
}

/// What a lead remembers after an answered call that ended with `outcome` at `ended` (in the
/// lead's zone): this call's answers over the earlier ones, and the summary line. `speak` says
/// a value as the script would (a time as "Thursday, December 3 at 10 a.m.").
pub fn remember(
    before: Option<&LeadMemory>,
    outcome: &str,
    captured: &BTreeMap<String, String>,
    ended: DateTime<chrono_tz::Tz>,
    speak: &dyn Fn(&str, &str) -> String,
) -> LeadMemory {
    let fresh: BTreeMap<&String, &str> = captured
        .iter()
        .map(|(k, v)| (k, v.trim()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let mut variables = before.map(|m| m.variables.clone()).unwrap_or_default();
    variables.extend(fresh.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let what = match outcome {
        "callback" => "asked to be called back".to_string(),
        "interested" => "was interested".into(),
        "not_interested" => "was not interested".into(),
        "do_not_call" => "asked not to be called again".into(),
        "wrong_person" => "reached the wrong person".into(),
        "caller_hung_up" => "hung up".into(),
        "voicemail" | "machine" => "reached an answering machine".into(),
        other => format!("ended {}", other.replace('_', " ")),
    };
    // This call's answers first, by name; then what earlier calls had learned.
    let answers: Vec<String> = fresh
        .keys()
        .copied()
        .chain(variables.keys().filter(|k| !fresh.contains_key(k)))
        .filter_map(|k| variables.get(k).map(|v| format!("{k} {}", speak(k, v))))
        .collect();
    let mut summary = format!("Last call {}: {what}", ended.format("%Y-%m-%d"));
    if !answers.is_empty() {
        summary.push_str("; ");
        summary.push_str(&answers.join("; "));
    }
    summary.push('.');
    LeadMemory {
        at_ms: ended.timestamp_millis(),
        outcome: outcome.to_string(),
        variables,
        summary,
    }
}

#[cfg(test)]
mod tests;
