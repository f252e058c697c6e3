//! From what was said to an instant: the day, the time of day, the time zone (DST gaps and
//! repeats), the calling window and a suggestion when it is outside.

use super::scan::*;
use super::*;

/// What time of that day to use.
#[derive(Debug, Clone, Copy)]
pub(super) enum When {
    Clock(u32),
    Part(Part),
    Day,
}

/// The instant an answer names, before the past/window checks; `None` if it names none.
pub(super) fn resolve(f: &Found, now: DateTime<Tz>, window: &CallingWindow) -> Option<SlotTime> {
    let today = local_of(now)?.date();
    let only_today = matches!(f.day, None | Some(DayRef::Offset(0)));
    if f.clock.is_none() && f.part.is_none() && only_today {
        match f.rel {
            Some(Rel::In { minutes, approx }) => {
                let at = now.checked_add_signed(Duration::try_minutes(minutes)?)?;
                let whole = Duration::seconds(i64::from(at.second()))
                    + Duration::nanoseconds(i64::from(at.nanosecond()));
                let precision = if approx {
                    Precision::PartOfDay
                } else {
                    Precision::Exact
                };
                return Some(SlotTime {
                    at: at.checked_sub_signed(whole)?,
                    precision,
                });
            }
            Some(Rel::Later) => {
                return Some(SlotTime {
                    at: half_hour_after(now, 120)?,
                    precision: Precision::PartOfDay,
                })
            }
            None => {}
        }
    }
    let when = match (f.clock, f.part) {
        (Some(c), part) => When::Clock(c.minutes(part)),
        (None, Some(p)) => When::Part(p),
        (None, None) if f.day.is_some() => When::Day,
        (None, None) => return None,
    };
    // No day named: today, else tomorrow. Today's weekday: today, else next week.
    let (date, roll) = match f.day {
        None => (today, Some(1)),
        Some(d) => day_date(d, today)?,
    };
    let soon = !matches!(f.day, Some(DayRef::Weekday(..)));
    let first = on_day(date, when, now, today, window, soon)?;
    match roll {
        Some(n) if first.at <= now => {
            let later = date.checked_add_days(chrono::Days::new(n))?;
            on_day(later, when, now, today, window, false)
        }
        _ => Some(first),
    }
}

/// The date a day reference means, and how far to roll it if its time has passed.
pub(super) fn day_date(d: DayRef, today: NaiveDate) -> Option<(NaiveDate, Option<u64>)> {
    let shift = |n: i64| today.checked_add_signed(Duration::try_days(n)?);
    let idx = i64::from(today.weekday().num_days_from_monday());
    Some(match d {
        DayRef::Offset(n) => (shift(n)?, None),
        DayRef::Weekday(wd, which) => {
            let target = i64::from(wd.num_days_from_monday());
            let ahead = (target - idx).rem_euclid(7);
            let n = match which {
                Which::This => ahead,
                // Still to come this week (or today): next week's.
                Which::Next if target >= idx => ahead + 7,
                Which::Next => ahead,
                Which::Last if ahead == 0 => -7,
                Which::Last => ahead - 7,
            };
            let roll = (which == Which::This && n == 0).then_some(7);
            (shift(n)?, roll)
        }
        DayRef::NextWeek => (shift(7 - idx)?, None),
        DayRef::Date { month, day, year } => {
            let date = NaiveDate::from_ymd_opt(year.unwrap_or(today.year()), month, day)?;
            let slip = (today - date).num_days() <= 60;
            if year.is_some() || date >= today || slip {
                (date, None)
            } else {
                (
                    NaiveDate::from_ymd_opt(today.year().checked_add(1)?, month, day)?,
                    None,
                )
            }
        }
        DayRef::MonthDay(day) => {
            let mut first = today.with_day(1)?;
            let mut found = None;
            for _ in 0..12 {
                if let Some(d) = first.with_day(day).filter(|d| *d >= today) {
                    found = Some(d);
                    break;
                }
                first = first.checked_add_months(Months::new(1))?;
            }
            (found?, None)
        }
    })
}

/// `when` on `date`. A part of the day (or, with `soon`, a day alone) asked for today after its
/// anchor has passed means the first half hour at least 30 minutes away, while the part lasts.
pub(super) fn on_day(
    date: NaiveDate,
    when: When,
    now: DateTime<Tz>,
    today: NaiveDate,
    window: &CallingWindow,
    soon: bool,
) -> Option<SlotTime> {
    let (minutes, precision, ends) = match when {
        When::Clock(m) => (m, Precision::Exact, None),
        When::Part(p) => {
            let (anchor, end) = p.span();
            (anchor, Precision::PartOfDay, Some(end))
        }
        When::Day => (day_anchor(window), Precision::Day, soon.then_some(24 * 60)),
    };
    let naive = date
        .and_time(NaiveTime::MIN)
        .checked_add_signed(Duration::minutes(i64::from(minutes)))?;
    let at = localize(now.timezone(), naive, now)?;
    if let Some(end) = ends.filter(|_| date == today && at <= now) {
        let next = half_hour_after(now, 30)?;
        let mins = next.hour() * 60 + next.minute();
        if local_of(next)?.date() == date && mins < end {
            return Some(SlotTime {
                at: next,
                precision,
            });
        }
    }
    Some(SlotTime { at, precision })
}

/// A day alone: 10:00, or the window's first whole minute if 10:00 is outside it.
pub(super) fn day_anchor(window: &CallingWindow) -> u32 {
    let ten = NaiveTime::from_hms_opt(10, 0, 0).unwrap_or(NaiveTime::MIN);
    if window.start <= ten && ten < window.end {
        return 10 * 60;
    }
    let s = window.start.num_seconds_from_midnight();
    s.div_ceil(60)
}

/// `minutes` after `now`, rounded up to the next :00 or :30.
pub(super) fn half_hour_after(now: DateTime<Tz>, minutes: i64) -> Option<DateTime<Tz>> {
    let t = local_of(now.checked_add_signed(Duration::try_minutes(minutes)?)?)?;
    let secs = i64::from(t.num_seconds_from_midnight());
    let up = if secs % 1800 == 0 && t.nanosecond() == 0 {
        0
    } else {
        1800 - secs % 1800
    };
    let rounded = t
        .with_nanosecond(0)?
        .checked_add_signed(Duration::seconds(up))?;
    localize(now.timezone(), rounded, now)
}

/// Local wall time of `t`; `None` (where chrono's accessors would panic) at the very ends of
/// the representable range.
pub(super) fn local_of(t: DateTime<Tz>) -> Option<NaiveDateTime> {
    t.naive_utc().checked_add_offset(t.offset().fix())
}

/// Longest DST/offset gap to walk through (Samoa skipped a whole day in 2011).
pub(super) const MAX_GAP_MINUTES: u32 = 26 * 60;

/// `naive` wall time in `tz`: in a DST gap, the first instant after it; when it occurs twice,
/// the first occurrence still after `now` (else the first).
pub(super) fn localize(tz: Tz, naive: NaiveDateTime, now: DateTime<Tz>) -> Option<DateTime<Tz>> {
    let mut t = naive;
    for _ in 0..=MAX_GAP_MINUTES {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(dt) => return Some(dt),
            LocalResult::Ambiguous(first, second) => {
                return Some(if first <= now && second > now {
                    second
                } else {
                    first
                })
            }
            LocalResult::None => t = t.checked_add_signed(Duration::minutes(1))?,
        }
    }
    None
}

/// Nearest time inside the window for an `at` outside it: that day's opening if too early, an
/// hour before closing if too late (the next day's opening once that has passed).
pub(super) fn suggest(
    at: DateTime<Tz>,
    now: DateTime<Tz>,
    window: &CallingWindow,
) -> Option<DateTime<Tz>> {
    let tz = at.timezone();
    let date = local_of(at)?.date();
    let last = window
        .end
        .overflowing_sub_signed(Duration::hours(1))
        .0
        .max(window.start);
    let time = if at.time() < window.start {
        window.start
    } else {
        last
    };
    match localize(tz, date.and_time(time), now) {
        Some(s) if s > now => Some(s),
        _ => localize(tz, date.succ_opt()?.and_time(window.start), now),
    }
}
