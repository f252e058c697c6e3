use chrono::TimeZone;

use super::*;

const LA: Tz = chrono_tz::America::Los_Angeles;

/// Wednesday, December 2 2026, 10:05 in Los Angeles: the rehearsal clock's morning.
fn now() -> DateTime<Tz> {
    LA.with_ymd_and_hms(2026, 12, 2, 10, 5, 0).unwrap()
}

fn at(d: u32, h: u32, m: u32) -> DateTime<Tz> {
    LA.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap()
}

fn ok(want: &str, got: DateTime<Tz>) -> bool {
    matches(&parse(want).unwrap(), got, now())
}

#[test]
fn days_and_clocks_relative_to_the_call() {
    assert!(ok("tomorrow 15:00", at(3, 15, 0)));
    assert!(!ok("tomorrow 15:00", at(3, 15, 30)));
    assert!(!ok("tomorrow 15:00", at(2, 15, 0)));
    assert!(ok("today 18:00", at(2, 18, 0)));
    assert!(ok("+2 09:00", at(4, 9, 0)));
    assert!(ok("tomorrow noon", at(3, 12, 0)));
    assert!(ok("tomorrow", at(3, 10, 0)));
    assert!(ok("tomorrow afternoon", at(3, 14, 0)));
    assert!(!ok("tomorrow afternoon", at(3, 10, 0)));
    // Friday is two days on; Friday morning is any morning hour.
    assert!(ok("friday morning", at(4, 10, 0)));
    assert!(ok("friday morning", at(4, 9, 30)));
    assert!(!ok("friday morning", at(11, 10, 0)));
    // On the day itself both today (later) and next week's are fair.
    assert!(ok("wednesday 16:30", at(2, 16, 30)));
    assert!(ok("wednesday 16:30", at(9, 16, 30)));
    // "next tuesday" is the Tuesday of next week (Dec 8), not the coming one... which here is
    // the same day: the week of Dec 2 runs Nov 30 - Dec 6.
    assert!(ok("next tuesday 10:00", at(8, 10, 0)));
    assert!(!ok("next tuesday 10:00", at(15, 10, 0)));
    assert!(ok("next monday", at(7, 11, 0)));
    assert!(ok("monday 14:30", at(7, 14, 30)));
}

#[test]
fn relative_times_allow_for_the_call_running_on() {
    assert!(ok("in 2h", at(2, 12, 5)));
    assert!(ok("in 2h", at(2, 12, 11)));
    assert!(!ok("in 2h", at(2, 12, 30)));
    assert!(!ok("in 2h", at(2, 11, 0)));
    assert!(ok("in 90m", at(2, 11, 35)));
    assert!(ok("in 1h30m", at(2, 11, 40)));
}

#[test]
fn stored_values_must_be_instants() {
    let t = stored("2026-12-03T15:00:00-08:00", LA).unwrap();
    assert_eq!(t, at(3, 15, 0));
    assert_eq!(stored("2026-12-04T10:00:00-08:00~", LA), Some(at(4, 10, 0)));
    assert_eq!(
        stored("2026-12-04T10:00:00-08:00~day", LA),
        Some(at(4, 10, 0))
    );
    // UTC in, the lead's zone out.
    assert_eq!(stored("2026-12-03T23:00:00Z", LA), Some(at(3, 15, 0)));
    assert_eq!(stored("Tomorrow at three works.", LA), None);
    assert_eq!(stored("", LA), None);
}

#[test]
fn read_back_as_the_agent_says_it() {
    let s = |w: &str| spoken(&parse(w).unwrap(), now());
    assert_eq!(s("tomorrow 15:00"), "Thursday, December 3 at 3 p.m.");
    assert_eq!(s("friday morning"), "Friday, December 4 in the morning");
    assert_eq!(s("tomorrow noon"), "Thursday, December 3 at noon");
    assert_eq!(s("monday 14:30"), "Monday, December 7 at 2:30 p.m.");
    assert_eq!(s("+2 09:00"), "Friday, December 4 at 9 a.m.");
    assert_eq!(s("in 2h"), "Wednesday, December 2");
    assert_eq!(s("next tuesday"), "Tuesday, December 8");
}

#[test]
fn bad_expectations_say_how_to_write_them() {
    for bad in [
        "",
        "someday",
        "tomorrow 3pm",
        "next week",
        "in two hours",
        "in 2",
        "+x 10:00",
        "tomorrow morning 10:00",
    ] {
        let err = parse(bad).unwrap_err();
        assert!(err.contains("time"), "{bad}: {err}");
    }
}
