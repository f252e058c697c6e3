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
        claimed_by: None,
        claimed_at_ms: None,
        claim_expires_at_ms: None,
        outcome: None,
        callbacks: 0,
        memory: None,
        callback_at: None,
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
    let a = after_call(&s, 1, "busy", None, None, Callbacks::default(), utc(12, 0));
    assert_eq!(a.state, LeadState::Pending);
    assert_eq!(a.next_attempt_at, Some(utc(12, 1)));
    let a = after_call(
        &s,
        2,
        "no-answer",
        None,
        None,
        Callbacks::default(),
        utc(12, 0),
    );
    assert_eq!(a.next_attempt_at, Some(utc(12, 10)));
    let a = after_call(
        &s,
        3,
        "failed",
        None,
        None,
        Callbacks::default(),
        utc(12, 0),
    );
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
        Callbacks::default(),
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
        Callbacks::default(),
        utc(12, 0),
    );
    assert_eq!(a.outcome, "voicemail");
    let a = after_call(
        &s,
        1,
        "completed",
        Some("fax"),
        None,
        Callbacks::default(),
        utc(12, 0),
    );
    assert_eq!(a.outcome, "fax");
    // Handed to a person: done, never retried.
    let a = after_call(
        &s,
        1,
        "completed",
        Some("human"),
        Some("transferred"),
        Callbacks::default(),
        utc(12, 0),
    );
    assert_eq!(
        (a.state, a.outcome.as_str()),
        (LeadState::Done, "transferred")
    );
}

#[test]
fn a_callback_is_dialed_when_the_caller_asked_and_counted_apart_from_retries() {
    let s = CampaignSettings {
        max_attempts: 2,
        max_callbacks: 2,
        callback_delay_s: 3600,
        ..Default::default()
    };
    let callback = |made, time: Option<&str>, now| {
        after_call(
            &s,
            made + 1,
            "completed",
            Some("human"),
            Some("callback"),
            Callbacks::asked(made, time),
            now,
        )
    };
    // "Tomorrow at ten" in Los Angeles, as the time slot stores it.
    let a = callback(0, Some("2026-06-16T10:00:00-07:00"), utc(12, 0));
    assert_eq!(
        (a.state, a.decision, a.callback, a.outcome.as_str()),
        (LeadState::Pending, "callback_scheduled", true, "callback")
    );
    assert_eq!(
        a.next_attempt_at,
        Some(Utc.with_ymd_and_hms(2026, 6, 16, 17, 0, 0).unwrap())
    );
    // A part of the day or a day only keeps its mark; the time is still read.
    let a = callback(0, Some("2026-06-16T09:00:00-07:00~"), utc(12, 0));
    assert_eq!(
        a.next_attempt_at,
        Some(Utc.with_ymd_and_hms(2026, 6, 16, 16, 0, 0).unwrap())
    );
    // No time (or one already past, or unreadable): the campaign's delay.
    for time in [
        None,
        Some("2026-06-15T04:00:00-07:00"),
        Some("tomorrow-ish"),
    ] {
        let a = callback(0, time, utc(12, 0));
        assert_eq!(a.next_attempt_at, Some(utc(13, 0)), "{time:?}");
        assert!(a.reason.contains("no time given"), "{}", a.reason);
    }
    // The second callback still happens; the third is not made: the lead is done.
    assert!(callback(1, None, utc(12, 0)).callback);
    let a = callback(2, None, utc(12, 0));
    assert_eq!(
        (a.state, a.callback, a.outcome.as_str()),
        (LeadState::Done, false, "callback")
    );
    // Callback dials do not use up the retries: 2 callbacks + 1 unanswered of 2 attempts.
    let a = after_call(
        &s,
        3,
        "no-answer",
        None,
        None,
        Callbacks::asked(2, None),
        utc(12, 0),
    );
    assert_eq!(
        (a.state, a.decision),
        (LeadState::Pending, "retry_scheduled")
    );
    let a = after_call(
        &s,
        4,
        "busy",
        None,
        None,
        Callbacks::asked(2, None),
        utc(12, 0),
    );
    assert_eq!(a.state, LeadState::Failed);
}

#[test]
fn huge_retry_delays_never_overflow_the_clock() {
    let settings = CampaignSettings {
        max_attempts: 5,
        retry_delays_s: vec![u64::MAX],
        ..Default::default()
    };
    assert!(settings.check().is_err());
    // Settings stored before range checks existed are capped at 30 days, not a panic.
    let a = after_call(
        &settings,
        1,
        "busy",
        None,
        None,
        Callbacks::default(),
        utc(12, 0),
    );
    let wait = a.next_attempt_at.unwrap() - utc(12, 0);
    assert_eq!(wait.num_days(), 30);
    // Even at the end of chrono's range.
    let a = after_call(
        &settings,
        1,
        "busy",
        None,
        None,
        Callbacks::default(),
        DateTime::<Utc>::MAX_UTC,
    );
    assert_eq!(a.next_attempt_at, Some(DateTime::<Utc>::MAX_UTC));
}

#[test]
fn settings_are_range_checked_with_every_violation_named() {
    assert!(CampaignSettings::default().check().is_ok());
    let bad_callbacks = CampaignSettings {
        max_callbacks: 11,
        callback_delay_s: 5,
        ..Default::default()
    };
    let err = bad_callbacks.check().unwrap_err();
    assert!(
        err.contains("max_callbacks") && err.contains("callback_delay_s"),
        "{err}"
    );
    let bad = CampaignSettings {
        max_concurrent: 0,
        calls_per_second: f64::NAN,
        max_attempts: 21,
        retry_delays_s: vec![1; 11],
        ring_timeout_s: 4,
        time_limit_s: 14401,
        ..Default::default()
    };
    let err = bad.check().unwrap_err();
    for field in [
        "max_concurrent",
        "calls_per_second",
        "max_attempts",
        "retry_delays_s",
        "ring_timeout_s",
        "time_limit_s",
    ] {
        assert!(err.contains(field), "{field}: {err}");
    }
    let edges = CampaignSettings {
        max_concurrent: 1000,
        calls_per_second: 100.0,
        max_attempts: 20,
        retry_delays_s: vec![0, 30 * 24 * 3600],
        ring_timeout_s: 600,
        time_limit_s: 10,
        ..Default::default()
    };
    assert_eq!(edges.check(), Ok(()));
    let over = CampaignSettings {
        retry_delays_s: vec![30 * 24 * 3600 + 1],
        calls_per_second: 100.01,
        ..Default::default()
    };
    let err = over.check().unwrap_err();
    assert!(
        err.contains("retry_delays_s") && err.contains("calls_per_second"),
        "{err}"
    );
    let transfer = |t: crate::model::TransferSettings| CampaignSettings {
        transfer: Some(t),
        ..Default::default()
    };
    let good = crate::model::TransferSettings {
        number: "+14155550199".into(),
        ..Default::default()
    };
    assert_eq!(transfer(good.clone()).check(), Ok(()));
    let err = transfer(crate::model::TransferSettings {
        number: "555-0199".into(),
        hours_start: "17:00".into(),
        hours_end: "09:00".into(),
        timezone: "Mars/Olympus".into(),
        timeout_s: 4,
        ..good
    })
    .check()
    .unwrap_err();
    for field in [
        "transfer.number",
        "transfer.hours_start",
        "transfer.timezone",
        "transfer.timeout_s",
    ] {
        assert!(err.contains(field), "{field}: {err}");
    }
}

fn vars(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn memory_summarises_the_outcome_and_answers_and_keeps_earlier_ones() {
    let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let ended = tz.with_ymd_and_hms(2026, 12, 1, 14, 5, 0).unwrap();
    let speak = |k: &str, v: &str| {
        if k == "callback_time" {
            "Wednesday, December 2 at 10 a.m.".to_string()
        } else {
            v.to_string()
        }
    };
    let first = remember(
        None,
        "callback",
        &vars(&[
            ("monthly_bill", "200"),
            ("callback_time", "2026-12-02T15:00:00+00:00"),
        ]),
        ended,
        &speak,
    );
    assert_eq!(
        first.summary,
        "Last call 2026-12-01: asked to be called back; callback_time Wednesday, December 2 at \
         10 a.m.; monthly_bill 200."
    );
    assert_eq!(first.outcome, "callback");
    assert_eq!(first.at_ms, ended.timestamp_millis());
    // The second call answers one more question and changes nothing else.
    let second = remember(
        Some(&first),
        "not_interested",
        &vars(&[("owns_home", "true"), ("monthly_bill", " ")]),
        ended + chrono::Duration::days(1),
        &speak,
    );
    assert_eq!(second.variables["monthly_bill"], "200");
    assert_eq!(second.variables["owns_home"], "true");
    assert_eq!(
        second.summary,
        "Last call 2026-12-02: was not interested; owns_home true; callback_time Wednesday, \
         December 2 at 10 a.m.; monthly_bill 200."
    );
    let silent = remember(None, "no_answer", &vars(&[]), ended, &speak);
    assert_eq!(silent.summary, "Last call 2026-12-01: ended no answer.");
}
