//! Typed answers read from the caller's transcribed words: times, numbers, yes/no.
//!
//! Whisper hands us "uh, Tomorrow at 10 works." Capturing that raw makes the agent say "booked
//! for Tomorrow at 10 works", and capturing anything at all books answers nobody can act on.
//! So an answer is captured only when it parses (else the script asks again), and lines read the
//! normalised value ([`speak_time`]: "Wednesday, December 2 at 3 p.m."), never the words.
//! Everything is pure: the caller passes `now`, nothing reads a clock.
//!
//! Time rules ([`parse_time`]; `now` and the result are in the lead's zone):
//! - Words are lowercased and punctuation dropped except inside numbers ("3:30", "12/5");
//!   "p.m.", "p m", "3pm" read as pm (likewise am); filler ("uh", "maybe", "works") is ignored.
//! - Days: today, tonight, tomorrow, the day after tomorrow, yesterday, "in 3 days". A weekday is
//!   its next occurrence, today's weekday being today while the time is still ahead, else next
//!   week's; "this Friday" likewise. "Next Friday" is the Friday of next week (weeks run Monday to
//!   Sunday), "last Friday" the one before. "Next week" is next Monday, "the weekend" Saturday.
//!   Dates: "December 5(th)", "the 5th of December", "12/5" (US order), "the 5th" (this month,
//!   else next). A date up to 60 days back is a slip (`Past`); older ones mean next year. A date
//!   beats a weekday ("Tuesday the 8th" is the 8th).
//! - Clock: "3", "three", "3 pm", "3:30", "three thirty", "two oh five", "15:00", "noon",
//!   "midnight", "half past two", "quarter to five" ("to"/"of" only after quarter, 5, 10, 20, 25:
//!   "10 to 11" is 10:50), "10 in the morning", "8 at night". With no am/pm and no part of the day,
//!   1-7 is p.m., 8-11 a.m. and 12 noon: the business-hours reading.
//! - A bare hour ("3", "three") counts only after "at"/"around"/"between", next to a day or part of the day
//!   ("Friday 10"), or when everything else is filler ("three works"): "I have 3 kids" is no time.
//! - Parts of the day are approximate: morning 10:00, lunchtime 12:00, afternoon 14:00, evening
//!   18:00, night/tonight 19:00. If that has passed today but the part has not ("this morning" at
//!   10:15), the first half hour at least 30 minutes away. A day alone is approximate at 10:00 (the
//!   window's start if 10:00 is outside it); "today" alone, the first half hour 30 minutes away.
//! - Relative: "in two hours", "in half an hour", "an hour from now" are exact to the minute; "a
//!   couple of"/"a few" hours (2/3) and "later (today)" (two hours on, next half hour) approximate.
//! - No day named: the next occurrence, today or tomorrow. The result must be after `now` (else
//!   `Past`, so "yesterday" is `Past`) and inside the window, else `OutsideWindow` suggesting the
//!   window's opening that day when too early, an hour before it closes when too late (or the next
//!   day's opening once that hour has passed).
//! - DST: a wall time in a gap is the first instant after the gap; an ambiguous one is its first
//!   occurrence still ahead of `now`.
//!
//! Numbers ([`parse_number`]) are the first number said, in digits ("$1,200", "2.5k") or words,
//! including how prices are spoken ("one fifty" = 150, "twelve hundred"). Yes/no
//! ([`parse_yes_no`]) is `None` for questions, hedges ("not sure") and mixed answers ("yes, no").

use chrono::{
    DateTime, Datelike, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    SecondsFormat, TimeZone, Timelike, Weekday,
};
use chrono_tz::Tz;
use thiserror::Error;

use crate::leads::window::CallingWindow;

mod lexicon;
mod resolve;
mod scan;
#[cfg(test)]
mod tests;

use resolve::*;
use scan::*;

/// How precisely the caller named a time, which decides how it is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// A clock time or an exact offset ("at 3", "in two hours").
    Exact,
    /// A part of the day ("Friday morning", "tonight") or a rough offset ("in a couple of
    /// hours"); spoken as the part of the day.
    PartOfDay,
    /// Only a day ("tomorrow", "Friday"); spoken as the date alone.
    Day,
}

/// A time the caller named, resolved in the lead's time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotTime {
    /// Local date-time in the lead's zone.
    pub at: DateTime<Tz>,
    pub precision: Precision,
}

impl SlotTime {
    /// The caller named a part of the day or only a day, not a clock time.
    pub fn approximate(&self) -> bool {
        self.precision != Precision::Exact
    }
}

/// Why an answer is not a usable time.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TimeError {
    #[error("no time or day in the answer")]
    NoTime,
    #[error("that time has passed")]
    Past,
    #[error("outside calling hours")]
    OutsideWindow {
        /// Nearest time inside the window that day (or the next opening), for the agent to offer.
        suggestion: DateTime<Tz>,
    },
}

/// Reads a spoken/transcribed answer as a time; `now` is the current instant in the lead's zone.
pub fn parse_time(
    text: &str,
    now: DateTime<Tz>,
    window: &CallingWindow,
) -> Result<SlotTime, TimeError> {
    let t = resolve(&scan(&words(text)), now, window).ok_or(TimeError::NoTime)?;
    if t.at <= now {
        return Err(TimeError::Past);
    }
    let time = t.at.time();
    if time < window.start || time >= window.end {
        return Err(
            suggest(t.at, now, window).map_or(TimeError::NoTime, |suggestion| {
                TimeError::OutsideWindow { suggestion }
            }),
        );
    }
    Ok(t)
}

/// A clock time as said aloud: "9 a.m.", "5:30 p.m.", "noon" (calling hours, business hours).
pub fn speak_clock(t: NaiveTime) -> String {
    let (h, m) = (t.hour(), t.minute());
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    let half = if h < 12 { "a.m." } else { "p.m." };
    match (h, m) {
        (12, 0) => "noon".to_string(),
        (_, 0) => format!("{h12} {half}"),
        _ => format!("{h12}:{m:02} {half}"),
    }
}

/// How the agent says it: "Wednesday, December 2 at 3:30 p.m.", "Friday, December 4 in the
/// morning", "Thursday, December 3"; 12:00 is "at noon".
pub fn speak_time(t: &SlotTime) -> String {
    let day = t.at.format("%A, %B %-d");
    match t.precision {
        Precision::Day => day.to_string(),
        Precision::PartOfDay => {
            let part = match t.at.hour() {
                0..=11 => "in the morning",
                12 => "around noon",
                13..=16 => "in the afternoon",
                _ => "in the evening",
            };
            format!("{day} {part}")
        }
        Precision::Exact => {
            let (h, m) = (t.at.hour(), t.at.minute());
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

/// Stored form: RFC 3339 with the offset, "~" appended for a part of the day and "~day" for a
/// day alone ("2026-12-03T10:00:00-08:00~day"), so [`stored_time`] restores the precision.
pub fn store_time(t: &SlotTime) -> String {
    let mark = match t.precision {
        Precision::Exact => "",
        Precision::PartOfDay => "~",
        Precision::Day => "~day",
    };
    format!("{}{mark}", t.at.to_rfc3339_opts(SecondsFormat::Secs, false))
}

/// Reads back [`store_time`]'s form in `tz`; `None` if it is not one.
pub fn stored_time(s: &str, tz: Tz) -> Option<SlotTime> {
    let s = s.trim();
    let (stamp, precision) = if let Some(stamp) = s.strip_suffix("~day") {
        (stamp, Precision::Day)
    } else if let Some(stamp) = s.strip_suffix('~') {
        (stamp, Precision::PartOfDay)
    } else {
        (s, Precision::Exact)
    };
    let at = DateTime::parse_from_rfc3339(stamp).ok()?.with_timezone(&tz);
    Some(SlotTime { at, precision })
}

/// The first number said: "200", "$1,200", "2.5k", "two hundred", "a hundred and fifty",
/// "one fifty" (150), "twelve hundred", "about 90 bucks", "a thousand". `None` when there is none.
pub fn parse_number(text: &str) -> Option<f64> {
    let w = words(text);
    let s = Scan::new(&w);
    (0..w.len()).find_map(|i| s.number(i))
}

/// Yes/no answers: `Some(true)` for "yes", "yeah", "sure", "I do", "of course"...; `Some(false)`
/// for "no", "nope", "I don't", "not really"...; `None` for anything else, questions, hedges
/// ("maybe", "I'm not sure") and answers holding both ("yes, no wait").
pub fn parse_yes_no(text: &str) -> Option<bool> {
    if text.contains('?') {
        return None;
    }
    let w = words(text);
    let mut verdict = None;
    let mut i = 0;
    while i < w.len() {
        let hit = ANSWERS
            .iter()
            .map(|(phrase, v)| (phrase.split(' ').collect::<Vec<_>>(), *v))
            .filter(|(phrase, _)| {
                phrase
                    .iter()
                    .enumerate()
                    .all(|(k, p)| w.get(i + k).is_some_and(|x| x == p))
            })
            .max_by_key(|(phrase, _)| phrase.len());
        let Some((phrase, v)) = hit else {
            i += 1;
            continue;
        };
        match (v, verdict) {
            (None, _) => return None,
            (Some(v), Some(seen)) if v != seen => return None,
            (Some(v), _) => verdict = Some(v),
        }
        i += phrase.len();
    }
    verdict
}

/// Answer phrases (apostrophes dropped, as [`words`] does); the longest match at a position wins,
/// so "of course not" is a no and "I don't know" a hedge.
const ANSWERS: &[(&str, Option<bool>)] = &[
    ("yes", Some(true)),
    ("yeah", Some(true)),
    ("yea", Some(true)),
    ("yep", Some(true)),
    ("yup", Some(true)),
    ("ya", Some(true)),
    ("yah", Some(true)),
    ("sure", Some(true)),
    ("correct", Some(true)),
    ("right", Some(true)),
    ("absolutely", Some(true)),
    ("definitely", Some(true)),
    ("certainly", Some(true)),
    ("of course", Some(true)),
    ("ok", Some(true)),
    ("okay", Some(true)),
    ("alright", Some(true)),
    ("all right", Some(true)),
    ("i do", Some(true)),
    ("we do", Some(true)),
    ("i am", Some(true)),
    ("we are", Some(true)),
    ("i have", Some(true)),
    ("we have", Some(true)),
    ("i did", Some(true)),
    ("we did", Some(true)),
    ("it is", Some(true)),
    ("i think so", Some(true)),
    ("i guess so", Some(true)),
    ("i believe so", Some(true)),
    ("uh huh", Some(true)),
    ("mhm", Some(true)),
    ("mm hmm", Some(true)),
    ("affirmative", Some(true)),
    ("indeed", Some(true)),
    ("why not", Some(true)),
    ("you bet", Some(true)),
    ("exactly", Some(true)),
    ("sounds good", Some(true)),
    ("go ahead", Some(true)),
    ("no problem", Some(true)),
    ("no", Some(false)),
    ("nope", Some(false)),
    ("nah", Some(false)),
    ("naw", Some(false)),
    ("not really", Some(false)),
    ("not at all", Some(false)),
    ("not yet", Some(false)),
    ("not right now", Some(false)),
    ("not interested", Some(false)),
    ("of course not", Some(false)),
    ("absolutely not", Some(false)),
    ("definitely not", Some(false)),
    ("certainly not", Some(false)),
    ("dont", Some(false)),
    ("i dont", Some(false)),
    ("we dont", Some(false)),
    ("i do not", Some(false)),
    ("we do not", Some(false)),
    ("im not", Some(false)),
    ("were not", Some(false)),
    ("i am not", Some(false)),
    ("we are not", Some(false)),
    ("i havent", Some(false)),
    ("we havent", Some(false)),
    ("i have not", Some(false)),
    ("we have not", Some(false)),
    ("i didnt", Some(false)),
    ("we didnt", Some(false)),
    ("it isnt", Some(false)),
    ("its not", Some(false)),
    ("it is not", Some(false)),
    ("i dont think so", Some(false)),
    ("negative", Some(false)),
    ("never", Some(false)),
    ("maybe", None),
    ("perhaps", None),
    ("possibly", None),
    ("probably", None),
    ("not sure", None),
    ("im not sure", None),
    ("i am not sure", None),
    ("i dont know", None),
    ("i do not know", None),
    ("dont know", None),
    ("dunno", None),
    ("no idea", None),
    ("i have no idea", None),
    ("depends", None),
    ("kind of", None),
    ("sort of", None),
    ("kinda", None),
    ("sorta", None),
    ("i guess", None),
    ("what", None),
    ("huh", None),
    ("pardon", None),
    ("who", None),
    ("why", None),
];

/// Lowercased words: punctuation dropped except inside numbers ("3:30", "1,200", "2.5", "12/5"),
/// apostrophes dropped ("don't" -> "dont", "o'clock" -> "oclock"), and "p.m.", "p m", "3pm" made
/// "pm" words (likewise am) so the parsers see one spelling.
fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.to_lowercase().chars().collect();
    let digit = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(|c| c.is_ascii_digit())
    };
    let mut raw = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let in_number = matches!(c, ':' | '.' | ',' | '/')
            && digit(i.checked_sub(1))
            && digit(i.checked_add(1));
        if c.is_alphanumeric() || in_number {
            cur.push(c);
        } else if c != '\'' && c != '’' && !cur.is_empty() {
            raw.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        raw.push(cur);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.into_iter().peekable();
    while let Some(w) = it.next() {
        let joined = match (w.as_str(), it.peek().map(String::as_str)) {
            ("a" | "p", Some("m")) => Some(format!("{w}m")),
            ("o", Some("clock")) => Some("oclock".to_string()),
            // The ear writes "afternoon" as two words when the caller pauses in it.
            ("after", Some("noon")) => Some("afternoon".to_string()),
            _ => None,
        };
        if let Some(j) = joined {
            it.next();
            out.push(j);
            continue;
        }
        let split = ["am", "pm"].into_iter().find_map(|half| {
            let num = w.strip_suffix(half)?;
            let numeric = num.starts_with(|c: char| c.is_ascii_digit())
                && num
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ':' || c == '.');
            numeric.then(|| (num.to_string(), half))
        });
        match split {
            Some((num, half)) => {
                out.push(num);
                out.push(half.to_string());
            }
            None => out.push(w),
        }
    }
    out
}
