//! The dialer's decisions as pure functions: may this lead be dialed now, and what happens to a
//! lead after its call ended. No I/O, no clock: `now` is an argument, so every rule is
//! unit-tested at any hour in any timezone.

use chrono::{DateTime, Utc};

use crate::leads::{CallingWindow, WindowCheck};
use crate::store::{CampaignSettings, DncEntry, Lead, LeadState};

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
}

/// Busy / no-answer / failed are retried on the campaign's schedule until attempts run out;
/// an answered call is done with the engine's outcome (or what the answering side was).
pub fn after_call(
    settings: &CampaignSettings,
    attempts: u32,
    status: &str,
    answered_by: Option<&str>,
    engine_outcome: Option<&str>,
    now: DateTime<Utc>,
) -> AfterCall {
    let unanswered = matches!(status, "busy" | "no-answer" | "failed" | "canceled");
    if unanswered {
        if attempts < settings.max_attempts {
            let delays = &settings.retry_delays_s;
            let delay = delays
                .get(attempts.saturating_sub(1) as usize)
                .or(delays.last())
                .copied()
                .unwrap_or(3600);
            let at = now + chrono::Duration::seconds(delay as i64);
            return AfterCall {
                state: LeadState::Pending,
                next_attempt_at: Some(at),
                outcome: status.to_string(),
                decision: "retry_scheduled",
                reason: format!(
                    "attempt {attempts} of {} ended {status}; retry in {delay} s",
                    settings.max_attempts
                ),
            };
        }
        return AfterCall {
            state: LeadState::Failed,
            next_attempt_at: None,
            outcome: status.to_string(),
            decision: "attempts_exhausted",
            reason: format!("all {attempts} attempts ended unanswered (last: {status})"),
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn lead(tz: &str, consent: bool) -> Lead {
        Lead {
            id: 1,
            campaign_id: "c".into(),
            phone: "+14155550123".into(),
            name: None,
            fields: Default::default(),
            timezone: tz.into(),
            consent,
            source: None,
            state: LeadState::Dialing,
            attempts: 0,
            next_attempt_at_ms: 0,
            claimed_at_ms: None,
            outcome: None,
        }
    }

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 15, h, m, 0).unwrap()
    }

    #[test]
    fn do_not_call_beats_everything() {
        let dnc = DncEntry {
            phone: "+14155550123".into(),
            reason: "asked".into(),
            source: "call".into(),
            added_at_ms: 0,
        };
        let d = before_dial(
            &lead("America/New_York", true),
            Some(&dnc),
            &CallingWindow::legal(),
            utc(16, 0),
        );
        assert!(
            matches!(
                d,
                DialDecision::Skip {
                    decision: "skip_dnc",
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn consent_is_required() {
        let d = before_dial(
            &lead("America/New_York", false),
            None,
            &CallingWindow::legal(),
            utc(16, 0),
        );
        assert!(
            matches!(
                d,
                DialDecision::Skip {
                    decision: "skip_consent",
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn calling_hours_are_the_leads_local_time() {
        // 16:00 UTC in June is 12:00 in New York (open) and 06:00 in Honolulu (closed).
        let window = CallingWindow::legal();
        assert_eq!(
            before_dial(&lead("America/New_York", true), None, &window, utc(16, 0)),
            DialDecision::Dial
        );
        match before_dial(&lead("Pacific/Honolulu", true), None, &window, utc(16, 0)) {
            DialDecision::Defer {
                until, decision, ..
            } => {
                assert_eq!(decision, "defer_window");
                assert_eq!(until, utc(18, 0)); // 08:00 HST
            }
            other => panic!("{other:?}"),
        }
        let d = before_dial(&lead("Mars/Olympus", true), None, &window, utc(16, 0));
        assert!(matches!(
            d,
            DialDecision::Skip {
                decision: "skip_timezone",
                ..
            }
        ));
    }

    #[test]
    fn unanswered_calls_retry_on_schedule_then_fail() {
        let s = CampaignSettings {
            max_attempts: 3,
            retry_delays_s: vec![60, 600],
            ..Default::default()
        };
        let a = after_call(&s, 1, "busy", None, None, utc(12, 0));
        assert_eq!(a.state, LeadState::Pending);
        assert_eq!(a.next_attempt_at, Some(utc(12, 1)));
        let a = after_call(&s, 2, "no-answer", None, None, utc(12, 0));
        assert_eq!(a.next_attempt_at, Some(utc(12, 10)));
        let a = after_call(&s, 3, "failed", None, None, utc(12, 0));
        assert_eq!(
            (a.state, a.decision),
            (LeadState::Failed, "attempts_exhausted")
        );
    }

    #[test]
    fn answered_calls_take_the_engines_outcome() {
        let s = CampaignSettings::default();
        let a = after_call(
            &s,
            1,
            "completed",
            Some("human"),
            Some("interested"),
            utc(12, 0),
        );
        assert_eq!(
            (a.state, a.outcome.as_str()),
            (LeadState::Done, "interested")
        );
        let a = after_call(
            &s,
            1,
            "completed",
            Some("machine_end_beep"),
            None,
            utc(12, 0),
        );
        assert_eq!(a.outcome, "voicemail");
        let a = after_call(&s, 1, "completed", Some("fax"), None, utc(12, 0));
        assert_eq!(a.outcome, "fax");
    }
}
