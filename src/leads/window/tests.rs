use super::*;
use chrono_tz::America::{Los_Angeles, New_York, Phoenix};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid test time")
}
fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("valid test time")
}
fn closed(at: DateTime<Utc>) -> WindowCheck {
    WindowCheck::Closed { opens_at: at }
}

#[test]
fn constructors() {
    assert_eq!(
        CallingWindow::legal(),
        CallingWindow {
            start: time(8, 0),
            end: time(21, 0)
        }
    );
    assert_eq!(CallingWindow::default(), CallingWindow::legal());
    assert_eq!(
        CallingWindow::parse("09:30", "20:00"),
        Ok(CallingWindow {
            start: time(9, 30),
            end: time(20, 0)
        })
    );
    assert_eq!(
        CallingWindow::parse(" 08:00 ", "21:00:00"),
        Ok(CallingWindow::legal())
    );
    assert_eq!(
        CallingWindow::parse("07:59", "20:00"),
        Err(WindowError::OutsideLegalHours {
            start: time(7, 59),
            end: time(20, 0)
        })
    );
    assert_eq!(
        CallingWindow::parse("09:00", "21:01"),
        Err(WindowError::OutsideLegalHours {
            start: time(9, 0),
            end: time(21, 1)
        })
    );
    assert_eq!(
        CallingWindow::parse("12:00", "12:00"),
        Err(WindowError::StartNotBeforeEnd {
            start: time(12, 0),
            end: time(12, 0)
        })
    );
    assert_eq!(
        CallingWindow::parse("20:00", "09:00"),
        Err(WindowError::StartNotBeforeEnd {
            start: time(20, 0),
            end: time(9, 0)
        })
    );
    assert_eq!(
        CallingWindow::parse("9am", "20:00"),
        Err(WindowError::BadTime("9am".into()))
    );
    assert_eq!(
        CallingWindow::parse("09:00", "24:00"),
        Err(WindowError::BadTime("24:00".into()))
    );
    assert_eq!(
        CallingWindow::parse("09:00", ""),
        Err(WindowError::BadTime("".into()))
    );
    let msg = CallingWindow::parse("07:00", "20:00")
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "calling window 07:00-20:00 is outside the legal 08:00-21:00 local time"
    );
}

#[test]
fn edges_new_york_summer() {
    let w = CallingWindow::legal();
    // EDT = UTC-4: 08:00 local = 12:00 UTC, 21:00 local = 01:00 UTC next day.
    assert_eq!(
        w.check(New_York, utc(2024, 7, 1, 11, 59)),
        closed(utc(2024, 7, 1, 12, 0))
    );
    assert_eq!(w.check(New_York, utc(2024, 7, 1, 12, 0)), WindowCheck::Open);
    assert_eq!(w.check(New_York, utc(2024, 7, 2, 0, 59)), WindowCheck::Open);
    // 21:00 sharp is closed; opens 08:00 the next local day.
    assert_eq!(
        w.check(New_York, utc(2024, 7, 2, 1, 0)),
        closed(utc(2024, 7, 2, 12, 0))
    );
    // Just after local midnight: opens the same local day.
    assert_eq!(
        w.check(New_York, utc(2024, 7, 2, 4, 30)),
        closed(utc(2024, 7, 2, 12, 0))
    );
}

#[test]
fn narrower_window() {
    let w = CallingWindow::parse("09:30", "17:00").expect("valid");
    // New York, winter (EST = UTC-5): 09:30 local = 14:30 UTC.
    assert_eq!(
        w.check(New_York, utc(2024, 1, 10, 14, 0)),
        closed(utc(2024, 1, 10, 14, 30))
    );
    assert_eq!(
        w.check(New_York, utc(2024, 1, 10, 14, 30)),
        WindowCheck::Open
    );
    assert_eq!(
        w.check(New_York, utc(2024, 1, 10, 21, 59)),
        WindowCheck::Open
    );
    assert_eq!(
        w.check(New_York, utc(2024, 1, 10, 22, 0)),
        closed(utc(2024, 1, 11, 14, 30))
    );
    // Open in the legal window but not in this one.
    assert_eq!(
        CallingWindow::legal().check(New_York, utc(2024, 1, 10, 13, 0)),
        WindowCheck::Open
    );
    assert_eq!(
        w.check(New_York, utc(2024, 1, 10, 13, 0)),
        closed(utc(2024, 1, 10, 14, 30))
    );
}

#[test]
fn dst_spring_forward_new_york() {
    let w = CallingWindow::legal();
    // 2024-03-09 22:00 EST (03:00 UTC on the 10th). Overnight clocks jump
    // 02:00 -> 03:00, so 08:00 on the 10th is EDT = 12:00 UTC, not 13:00.
    assert_eq!(
        w.check(New_York, utc(2024, 3, 10, 3, 0)),
        closed(utc(2024, 3, 10, 12, 0))
    );
    // 07:59 EDT on the change day.
    assert_eq!(
        w.check(New_York, utc(2024, 3, 10, 11, 59)),
        closed(utc(2024, 3, 10, 12, 0))
    );
    assert_eq!(
        w.check(New_York, utc(2024, 3, 10, 12, 0)),
        WindowCheck::Open
    );
    // The evening before: 20:59 EST open, 21:00 EST closed.
    assert_eq!(
        w.check(New_York, utc(2024, 3, 10, 1, 59)),
        WindowCheck::Open
    );
    assert_eq!(
        w.check(New_York, utc(2024, 3, 10, 2, 0)),
        closed(utc(2024, 3, 10, 12, 0))
    );
}

#[test]
fn dst_fall_back_new_york() {
    let w = CallingWindow::legal();
    // 2024-11-03: 01:30 EDT (05:30 UTC), before clocks go back at 02:00.
    // 08:00 that day is EST = 13:00 UTC.
    assert_eq!(
        w.check(New_York, utc(2024, 11, 3, 5, 30)),
        closed(utc(2024, 11, 3, 13, 0))
    );
    // 01:30 EST, the repeated hour.
    assert_eq!(
        w.check(New_York, utc(2024, 11, 3, 6, 30)),
        closed(utc(2024, 11, 3, 13, 0))
    );
    assert_eq!(
        w.check(New_York, utc(2024, 11, 3, 12, 59)),
        closed(utc(2024, 11, 3, 13, 0))
    );
    assert_eq!(
        w.check(New_York, utc(2024, 11, 3, 13, 0)),
        WindowCheck::Open
    );
    // 21:00 EST = 02:00 UTC next day; the day before closes at 01:00 UTC (EDT).
    assert_eq!(
        w.check(New_York, utc(2024, 11, 4, 1, 59)),
        WindowCheck::Open
    );
    assert_eq!(
        w.check(New_York, utc(2024, 11, 4, 2, 0)),
        closed(utc(2024, 11, 4, 13, 0))
    );
    assert_eq!(
        w.check(New_York, utc(2024, 11, 3, 1, 0)),
        closed(utc(2024, 11, 3, 13, 0))
    );
}

#[test]
fn phoenix_has_no_dst() {
    let w = CallingWindow::legal();
    // MST = UTC-7 all year: 08:00 local = 15:00 UTC in January and July.
    for (y, m, d) in [(2024, 1, 15), (2024, 7, 15), (2024, 3, 10), (2024, 11, 3)] {
        assert_eq!(
            w.check(Phoenix, utc(y, m, d, 14, 59)),
            closed(utc(y, m, d, 15, 0))
        );
        assert_eq!(w.check(Phoenix, utc(y, m, d, 15, 0)), WindowCheck::Open);
    }
    // 21:00 MST = 04:00 UTC next day.
    assert_eq!(w.check(Phoenix, utc(2024, 7, 16, 3, 59)), WindowCheck::Open);
    assert_eq!(
        w.check(Phoenix, utc(2024, 7, 16, 4, 0)),
        closed(utc(2024, 7, 16, 15, 0))
    );
    // Same UTC instant, Los Angeles (PDT, UTC-7 in summer) agrees in July
    // but not in January (PST, UTC-8).
    assert_eq!(
        w.check(Los_Angeles, utc(2024, 7, 15, 14, 59)),
        closed(utc(2024, 7, 15, 15, 0))
    );
    assert_eq!(
        w.check(Los_Angeles, utc(2024, 1, 15, 15, 0)),
        closed(utc(2024, 1, 15, 16, 0))
    );
}

#[test]
fn skipped_day_samoa() {
    // Samoa skipped 2011-12-30 entirely (UTC-10 -> UTC+14). From the
    // evening of the 29th the next opening is 08:00 on the 31st (+14).
    let w = CallingWindow::legal();
    let apia = chrono_tz::Pacific::Apia;
    // 2011-12-29 21:30 local (-10) = 2011-12-30 07:30 UTC.
    assert_eq!(
        w.check(apia, utc(2011, 12, 30, 7, 30)),
        closed(utc(2011, 12, 30, 18, 0))
    );
}

#[test]
fn extreme_dates_do_not_panic() {
    let w = CallingWindow::legal();
    for now in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
        let _ = w.check(New_York, now);
    }
}
