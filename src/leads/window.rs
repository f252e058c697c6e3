//! Calling windows: when a lead may be called, in the lead's local time.
//!
//! 47 CFR 64.1200(c)(1) forbids telephone solicitations before 8 a.m. and
//! after 9 p.m. at the called party's location, so the legal window is the
//! outer bound; campaigns may only narrow it. All arithmetic goes through
//! `chrono_tz` so DST gaps and overlaps resolve to real instants instead of
//! panicking or drifting by an hour.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use thiserror::Error;

/// Why a calling window was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WindowError {
    #[error("calling window {}-{} is outside the legal 08:00-21:00 local time", hm(*.start), hm(*.end))]
    OutsideLegalHours { start: NaiveTime, end: NaiveTime },
    #[error("calling window start {} must be before its end {}", hm(*.start), hm(*.end))]
    StartNotBeforeEnd { start: NaiveTime, end: NaiveTime },
    #[error("invalid time {0:?}: expected HH:MM (24-hour)")]
    BadTime(String),
}

fn hm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// Local wall-clock window `[start, end)` in the lead's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallingWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// Result of [`CallingWindow::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowCheck {
    Open,
    /// Closed; `opens_at` is the next instant the window opens.
    Closed {
        opens_at: DateTime<Utc>,
    },
}

const LEGAL_START: NaiveTime = match NaiveTime::from_hms_opt(8, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};
const LEGAL_END: NaiveTime = match NaiveTime::from_hms_opt(21, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// Longest DST/offset gap we walk through minute by minute (Samoa skipped a
/// whole day in 2011, so a bit more than 24 h).
const MAX_GAP_MINUTES: u32 = 26 * 60;

impl Default for CallingWindow {
    fn default() -> Self {
        Self::legal()
    }
}

impl CallingWindow {
    /// The widest window the law allows: 08:00-21:00 local.
    pub fn legal() -> Self {
        CallingWindow {
            start: LEGAL_START,
            end: LEGAL_END,
        }
    }

    /// A campaign window; must lie within 08:00-21:00 and be non-empty.
    pub fn new(start: NaiveTime, end: NaiveTime) -> Result<Self, WindowError> {
        if start >= end {
            return Err(WindowError::StartNotBeforeEnd { start, end });
        }
        if start < LEGAL_START || end > LEGAL_END {
            return Err(WindowError::OutsideLegalHours { start, end });
        }
        Ok(CallingWindow { start, end })
    }

    /// Parses `"HH:MM"` (or `"HH:MM:SS"`) times, e.g. `parse("09:30", "20:00")`.
    pub fn parse(start: &str, end: &str) -> Result<Self, WindowError> {
        Self::new(parse_time(start)?, parse_time(end)?)
    }

    /// Is the window open at `now` for a lead in `tz`? If not, when does it
    /// next open (as a UTC instant, ready for a scheduler)?
    pub fn check(&self, tz: Tz, now: DateTime<Utc>) -> WindowCheck {
        let local = now.with_timezone(&tz);
        let t = local.time();
        if self.start <= t && t < self.end {
            return WindowCheck::Open;
        }
        let mut date = local.date_naive();
        // A few days covers any real transition; the loop is bounded anyway.
        for _ in 0..8 {
            if let Some(opens_at) = self.opening_on(tz, date, now) {
                return WindowCheck::Closed { opens_at };
            }
            match date.succ_opt() {
                Some(d) => date = d,
                None => break,
            }
        }
        // Unreachable for real zones; stay closed and look again in a day
        // rather than panic on the network path.
        let retry = now.checked_add_signed(Duration::days(1)).unwrap_or(now);
        WindowCheck::Closed { opens_at: retry }
    }

    /// The instant the window opens on local `date`, if that is after `now`
    /// and the day has any window left (a DST gap may swallow the start).
    fn opening_on(&self, tz: Tz, date: NaiveDate, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let open = first_instant_at_or_after(tz, date.and_time(self.start), now)?;
        let open_local = open.with_timezone(&tz);
        let still_that_day = open_local.date_naive() == date && open_local.time() < self.end;
        still_that_day.then_some(open)
    }
}

fn parse_time(s: &str) -> Result<NaiveTime, WindowError> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
        .map_err(|_| WindowError::BadTime(s.to_owned()))
}

/// First instant after `now` whose local wall time is `naive`, or, when
/// `naive` falls in a DST gap, the first instant after the gap.
fn first_instant_at_or_after(
    tz: Tz,
    naive: NaiveDateTime,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut t = naive;
    for _ in 0..=MAX_GAP_MINUTES {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(dt) => {
                let dt = dt.with_timezone(&Utc);
                return (dt > now).then_some(dt);
            }
            LocalResult::Ambiguous(first, second) => {
                // Wall time occurs twice (clocks went back): the first
                // occurrence unless it has already passed.
                let (first, second) = (first.with_timezone(&Utc), second.with_timezone(&Utc));
                return [first, second].into_iter().find(|dt| *dt > now);
            }
            LocalResult::None => t = t.checked_add_signed(Duration::minutes(1))?,
        }
    }
    None
}

#[cfg(test)]
mod tests;
