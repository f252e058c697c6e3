//! Expected times, written the way a tester thinks of them ("tomorrow 15:00", "friday morning",
//! "next tuesday 10:00", "in 2h") and checked against what the script stored, relative to the
//! moment of the call in the lead's zone. The corpus must not hard-code dates: it runs any day.
//!
//! The rules follow the script room's documented reading of spoken times (`script::slots`): a
//! weekday is its next occurrence (today's only while that time is still ahead, so today's and
//! next week's are both accepted on that weekday); "next friday" is the Friday of next week
//! (weeks run Monday to Sunday); parts of the day are ranges, not the script's exact choice.
//! Stored values are RFC 3339 instants, optionally marked approximate (`~`, `~day`): anything
//! else (the caller's raw words) is not a time the business can act on.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Timelike, Weekday};
use chrono_tz::Tz;

/// Which day, relative to the day of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Day {
    /// 0 today, 1 tomorrow, 2 the day after tomorrow ...
    Offset(i64),
    /// The next such weekday.
    Weekday(Weekday),
    /// That weekday of next week.
    NextWeek(Weekday),
}

/// A part of the day: morning 05-12, afternoon 12-17, evening 17-22 (a range, since "Friday
/// morning" is a fair booking at 9 or at 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Morning,
    Afternoon,
    Evening,
}

impl Part {
    fn hours(self) -> std::ops::Range<u32> {
        match self {
            Self::Morning => 5..12,
            Self::Afternoon => 12..17,
            Self::Evening => 17..22,
        }
    }
    fn spoken(self) -> &'static str {
        match self {
            Self::Morning => "in the morning",
            Self::Afternoon => "in the afternoon",
            Self::Evening => "in the evening",
        }
    }
}

/// What time of that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    At(NaiveTime),
    Part(Part),
    /// The day alone.
    Any,
}

/// An expected time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    On {
        day: Day,
        clock: Clock,
    },
    /// This long after the call started (accepted from 2 minutes before to 10 minutes after:
    /// the caller says it during the call).
    In(Duration),
}

/// `tomorrow 15:00`, `today 18:00`, `+2 09:00`, `friday morning`, `next tuesday 10:00`,
/// `monday`, `in 2h`, `in 90m`, `in 1h30m`.
pub fn parse(text: &str) -> Result<When, String> {
    let lower = text.trim().to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let bad = |why: &str| Err(format!("time {text:?}: {why}"));
    if words.first() == Some(&"in") {
        return match words.get(1).and_then(|w| span(w)) {
            Some(d) if words.len() == 2 => Ok(When::In(d)),
            _ => bad("write in 2h, in 90m or in 1h30m"),
        };
    }
    let (day, rest) = match words.as_slice() {
        ["today", rest @ ..] => (Day::Offset(0), rest),
        ["tomorrow", rest @ ..] => (Day::Offset(1), rest),
        ["next", w, rest @ ..] => match weekday(w) {
            Some(w) => (Day::NextWeek(w), rest),
            None => return bad("next takes a weekday"),
        },
        [w, rest @ ..] if w.starts_with('+') => match w[1..].parse::<i64>() {
            Ok(n) if (0..=60).contains(&n) => (Day::Offset(n), rest),
            _ => return bad("write +2 for the day after tomorrow"),
        },
        [w, rest @ ..] => match weekday(w) {
            Some(w) => (Day::Weekday(w), rest),
            None => return bad("start with today, tomorrow, +N, a weekday or next <weekday>"),
        },
        [] => return bad("empty"),
    };
    let clock = match rest {
        [] => Clock::Any,
        ["morning"] => Clock::Part(Part::Morning),
        ["afternoon"] => Clock::Part(Part::Afternoon),
        ["evening"] => Clock::Part(Part::Evening),
        ["noon"] => Clock::At(NaiveTime::from_hms_opt(12, 0, 0).expect("noon")),
        [hm] => match NaiveTime::parse_from_str(hm, "%H:%M") {
            Ok(t) => Clock::At(t),
            Err(_) => return bad("write the clock as 15:00"),
        },
        _ => return bad("one clock (15:00) or part of the day (morning) after the day"),
    };
    Ok(When::On { day, clock })
}

fn weekday(w: &str) -> Option<Weekday> {
    w.parse::<Weekday>().ok()
}

/// `2h`, `90m`, `1h30m`.
fn span(w: &str) -> Option<Duration> {
    let (h, m) = match w.split_once('h') {
        Some((h, m)) => (h.parse::<i64>().ok()?, m),
        None => (0, w),
    };
    let m = match m {
        "" => 0,
        m => m.strip_suffix('m')?.parse::<i64>().ok()?,
    };
    (h > 0 || m > 0).then(|| Duration::minutes(h * 60 + m))
}

/// Dates that satisfy `day` for a call at `now`.
fn days(day: Day, now: DateTime<Tz>) -> Vec<NaiveDate> {
    let today = now.date_naive();
    match day {
        Day::Offset(n) => vec![today + Duration::days(n)],
        Day::Weekday(w) => {
            let ahead = (w.num_days_from_monday() as i64
                - today.weekday().num_days_from_monday() as i64)
                .rem_euclid(7);
            let first = today + Duration::days(ahead);
            if ahead == 0 {
                vec![first, first + Duration::days(7)]
            } else {
                vec![first]
            }
        }
        Day::NextWeek(w) => {
            let monday = today - Duration::days(today.weekday().num_days_from_monday() as i64);
            vec![monday + Duration::days(7 + w.num_days_from_monday() as i64)]
        }
    }
}

/// A stored value as an instant in the lead's zone: RFC 3339, optionally marked approximate.
pub fn stored(value: &str, tz: Tz) -> Option<DateTime<Tz>> {
    let v = value.trim();
    let stamp = v
        .strip_suffix("~day")
        .or_else(|| v.strip_suffix('~'))
        .unwrap_or(v);
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.with_timezone(&tz))
}

/// Whether `got` (in the lead's zone) is the time `want` names for a call at `now`.
pub fn matches(want: &When, got: DateTime<Tz>, now: DateTime<Tz>) -> bool {
    match *want {
        When::In(d) => {
            let target = now + d;
            got >= target - Duration::minutes(2) && got <= target + Duration::minutes(10)
        }
        When::On { day, clock } => {
            days(day, now).contains(&got.date_naive())
                && match clock {
                    Clock::Any => true,
                    Clock::At(t) => got.hour() == t.hour() && got.minute() == t.minute(),
                    Clock::Part(p) => p.hours().contains(&got.hour()),
                }
        }
    }
}

/// How the agent reads the time back ("Wednesday, December 2 at 3 p.m."), for heard checks.
/// Of a relative time only the day is certain.
pub fn spoken(want: &When, now: DateTime<Tz>) -> String {
    let (date, clock) = match *want {
        When::In(d) => ((now + d).date_naive(), Clock::Any),
        When::On { day, clock } => (days(day, now)[0], clock),
    };
    let day = date.format("%A, %B %-d").to_string();
    match clock {
        Clock::Any => day,
        Clock::Part(p) => format!("{day} {}", p.spoken()),
        Clock::At(t) => {
            let (h, m) = (t.hour(), t.minute());
            let clock = match (h, m) {
                (12, 0) => "noon".to_string(),
                (0, 0) => "midnight".to_string(),
                _ => {
                    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
                    let half = if h < 12 { "a.m." } else { "p.m." };
                    if m == 0 {
                        format!("{h12} {half}")
                    } else {
                        format!("{h12}:{m:02} {half}")
                    }
                }
            };
            format!("{day} at {clock}")
        }
    }
}

#[cfg(test)]
mod tests;
