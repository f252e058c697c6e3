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

#[cfg(test)]
mod tests;

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

/// Words that do not make an answer about something else ("three works for me" is still just
/// "three"); see the bare-hour rule in the module doc.
const SOFT: &[&str] = &[
    "uh", "um", "er", "erm", "hmm", "mm", "ah", "oh", "well", "so", "ok", "okay", "yeah", "yes",
    "yep", "sure", "maybe", "about", "around", "like", "say", "how", "please", "works", "work",
    "would", "be", "good", "great", "fine", "perfect", "is", "that", "thats", "lets", "do", "me",
    "call", "then", "i", "guess", "think", "at", "on", "the", "in", "for", "a", "an", "oclock",
    "its", "it", "any", "time", "best", "could", "can", "you", "we", "just", "actually", "should",
    "will", "thanks", "alright",
];

/// Hedges between a cue and its number ("at about 3", "in like 20 minutes").
const HEDGES: &[&str] = &[
    "uh", "um", "er", "erm", "about", "like", "maybe", "say", "just",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Morning,
    Lunch,
    Afternoon,
    Evening,
    Night,
}

impl Part {
    fn word(w: &str) -> Option<Part> {
        Some(match w {
            "morning" | "mornings" => Part::Morning,
            "lunch" | "lunchtime" => Part::Lunch,
            "afternoon" | "afternoons" => Part::Afternoon,
            "evening" | "evenings" => Part::Evening,
            "night" => Part::Night,
            _ => return None,
        })
    }

    /// When we call for it and when it is over, in minutes after midnight.
    fn span(self) -> (u32, u32) {
        match self {
            Part::Morning => (10 * 60, 12 * 60),
            Part::Lunch => (12 * 60, 14 * 60),
            Part::Afternoon => (14 * 60, 17 * 60),
            Part::Evening => (18 * 60, 21 * 60),
            Part::Night => (19 * 60, 24 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    This,
    Next,
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayRef {
    /// Days from today; `Offset(0)` is an explicit "today".
    Offset(i64),
    Weekday(Weekday, Which),
    NextWeek,
    Date {
        month: u32,
        day: u32,
        year: Option<i32>,
    },
    /// "The 5th": a day of this month or the next.
    MonthDay(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meridiem {
    Am,
    Pm,
    /// 24-hour, noon or midnight: the hour is final.
    Fixed,
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    h: u32,
    m: u32,
    meridiem: Meridiem,
}

impl Clock {
    /// Minutes after midnight (up to 24:59 for "12:30 at night"), reading the hour by the part
    /// of the day named, else by business hours.
    fn minutes(self, hint: Option<Part>) -> u32 {
        let h = match (self.meridiem, hint) {
            (Meridiem::Fixed, _) => self.h,
            (Meridiem::Am, _) | (Meridiem::Unknown, Some(Part::Morning)) => self.h % 12,
            (Meridiem::Unknown, Some(Part::Night)) if self.h == 12 => 24,
            (Meridiem::Pm, _)
            | (Meridiem::Unknown, Some(Part::Afternoon | Part::Evening | Part::Night)) => {
                self.h % 12 + 12
            }
            (Meridiem::Unknown, _) if (1..=7).contains(&self.h) => self.h + 12,
            (Meridiem::Unknown, _) => self.h,
        };
        h * 60 + self.m
    }
}

#[derive(Debug, Clone, Copy)]
enum Rel {
    In {
        minutes: i64,
        approx: bool,
    },
    /// "Later (today)".
    Later,
}

enum Dur {
    Minutes(i64, bool),
    Days(i64),
}

/// What an answer names; each the first of its kind.
#[derive(Debug, Default)]
struct Found {
    day: Option<DayRef>,
    part: Option<Part>,
    clock: Option<Clock>,
    rel: Option<Rel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Free,
    Day,
    Part,
    Clock,
    Rel,
}

/// Words being read, each tagged once by what consumed it so numbers are not read twice ("the
/// 5th at 2": 5 is the date, 2 the hour).
struct Scan<'a> {
    w: &'a [String],
    tags: Vec<Tag>,
}

fn scan(w: &[String]) -> Found {
    let mut s = Scan::new(w);
    let mut found = Found::default();
    let mut days = Vec::new();
    // Durations first: "in two hours" must not read "two" as a clock.
    for i in 0..w.len() {
        let Some((d, end)) = s.duration(i).filter(|(_, end)| s.free(i, *end)) else {
            continue;
        };
        match d {
            Dur::Minutes(minutes, approx) => {
                found.rel.get_or_insert(Rel::In { minutes, approx });
                s.mark(i, end, Tag::Rel);
            }
            Dur::Days(n) => {
                days.push(DayRef::Offset(n));
                s.mark(i, end, Tag::Day);
            }
        }
    }
    for i in 0..w.len() {
        if !s.free(i, i + 1) {
            continue;
        }
        if let Some((d, part, end)) = s.day(i).filter(|(_, _, end)| s.free(i, *end)) {
            s.mark(i, end, Tag::Day);
            // "Not today": a refused day is no answer.
            if i.checked_sub(1).is_some_and(|j| s.at(j) == "not") {
                continue;
            }
            days.push(d);
            if let Some(p) = part {
                found.part.get_or_insert(p);
            }
        } else if let Some(p) = Part::word(s.at(i)) {
            found.part.get_or_insert(p);
            s.mark(i, i + 1, Tag::Part);
        } else if s.at(i) == "later"
            && matches!(s.next_hard(i + 1).map(|j| s.at(j)), None | Some("today"))
        {
            found.rel.get_or_insert(Rel::Later);
            s.mark(i, i + 1, Tag::Rel);
        }
    }
    let mut strong = None;
    let mut weak = Vec::new();
    for i in 0..w.len() {
        let Some((c, sure, end)) = s.clock(i).filter(|(_, _, end)| s.free(i, *end)) else {
            continue;
        };
        s.mark(i, end, Tag::Clock);
        if sure {
            strong.get_or_insert(c);
        } else {
            weak.push((i, end, c));
        }
    }
    let short = s
        .tags
        .iter()
        .zip(w)
        .all(|(t, w)| *t != Tag::Free || SOFT.contains(&w.as_str()));
    found.clock = strong.or_else(|| {
        weak.iter()
            .find(|(i, end, _)| short || s.cued(*i) || s.beside_day(*i, *end))
            .map(|(_, _, c)| *c)
    });
    // A date beats a weekday beats the rest; "Thursday next week" is next week's Thursday.
    let next_week = days.contains(&DayRef::NextWeek);
    found.day = days
        .iter()
        .find(|d| matches!(d, DayRef::Date { .. } | DayRef::MonthDay(_)))
        .or_else(|| days.iter().find(|d| matches!(d, DayRef::Weekday(..))))
        .or(days.first())
        .map(|d| match *d {
            DayRef::Weekday(wd, Which::This) if next_week => DayRef::Weekday(wd, Which::Next),
            d => d,
        });
    found
}

impl<'a> Scan<'a> {
    fn new(w: &'a [String]) -> Self {
        Scan {
            w,
            tags: vec![Tag::Free; w.len()],
        }
    }

    /// The word at `i`, or "" past the end, so lookahead never needs a bounds check.
    fn at(&self, i: usize) -> &'a str {
        self.w.get(i).map_or("", String::as_str)
    }

    fn free(&self, from: usize, to: usize) -> bool {
        (from..to).all(|i| self.tags.get(i) == Some(&Tag::Free))
    }

    fn mark(&mut self, from: usize, to: usize, tag: Tag) {
        for t in self.tags.iter_mut().take(to).skip(from) {
            *t = tag;
        }
    }

    fn next_hard(&self, from: usize) -> Option<usize> {
        (from..self.w.len()).find(|&j| !SOFT.contains(&self.at(j)))
    }

    /// "at 3", "around 10", "at about 3", "between 2 and 4".
    fn cued(&self, i: usize) -> bool {
        let before = (0..i).rev().find(|&j| !HEDGES.contains(&self.at(j)));
        before.is_some_and(|j| matches!(self.at(j), "at" | "around" | "between"))
    }

    /// "Friday 10", "3 tomorrow", "10 in the morning".
    fn beside_day(&self, i: usize, end: usize) -> bool {
        let before = (0..i).rev().find(|&j| !SOFT.contains(&self.at(j)));
        [before, self.next_hard(end)]
            .into_iter()
            .flatten()
            .any(|j| matches!(self.tags.get(j), Some(Tag::Day | Tag::Part)))
    }

    /// 0..=99 in words: "five", "fifteen", "forty five".
    fn spoken(&self, i: usize) -> Option<(u32, usize)> {
        let w = self.at(i);
        if let Some(t) = tens(w) {
            return Some(match unit(self.at(i + 1)).filter(|u| (1..=9).contains(u)) {
                Some(u) => (t + u, i + 2),
                None => (t, i + 1),
            });
        }
        unit(w).map(|u| (u, i + 1))
    }

    /// A whole number in digits or words.
    fn count(&self, i: usize) -> Option<(u32, usize)> {
        digits(self.at(i))
            .map(|n| (n, i + 1))
            .or_else(|| self.spoken(i))
    }

    fn and_a_half(&self, i: usize) -> bool {
        self.at(i) == "and" && self.at(i + 1) == "a" && self.at(i + 2) == "half"
    }

    /// "in two hours", "an hour and a half from now", "in 3 days", "2 hours ago".
    fn duration(&self, i: usize) -> Option<(Dur, usize)> {
        let lead = self.at(i) == "in";
        let mut j = if lead { i + 1 } else { i };
        while HEDGES.contains(&self.at(j)) {
            j += 1;
        }
        let (mut halves, approx, k) = self.quantity(j)?;
        j = k;
        if self.and_a_half(j) {
            halves += 1;
            j += 3;
        }
        let (per, days) = match self.at(j) {
            "minute" | "minutes" | "min" | "mins" => (1, false),
            "hour" | "hours" | "hr" | "hrs" => (60, false),
            "day" | "days" => (1, true),
            "week" | "weeks" => (7, true),
            _ => return None,
        };
        j += 1;
        if self.and_a_half(j) {
            halves += 1;
            j += 3;
        }
        let sign = if self.at(j) == "from" && self.at(j + 1) == "now" {
            j += 2;
            1
        } else if self.at(j) == "ago" {
            j += 1;
            -1
        } else if lead {
            1
        } else {
            return None;
        };
        let d = if days {
            Dur::Days(sign * (halves / 2) * per)
        } else {
            Dur::Minutes(sign * halves * per / 2, approx)
        };
        Some((d, j))
    }

    /// How many, in halves (so "half an" and "and a half" stay whole), and whether it is rough.
    fn quantity(&self, i: usize) -> Option<(i64, bool, usize)> {
        let (w, next) = (self.at(i), self.at(i + 1));
        let of = |k: usize| if self.at(k) == "of" { k + 1 } else { k };
        match w {
            "half" if matches!(next, "a" | "an") => Some((1, false, i + 2)),
            "a" | "an" if matches!(next, "couple" | "few") => self.quantity(i + 1),
            "couple" => Some((4, true, of(i + 1))),
            "few" => Some((6, true, of(i + 1))),
            "a" | "an" => Some((2, false, i + 1)),
            _ => {
                let decimal = (!w.is_empty()
                    && w.len() <= 8
                    && w.chars().all(|c| c.is_ascii_digit() || c == '.'))
                .then(|| w.parse::<f64>().ok())
                .flatten();
                match decimal {
                    Some(x) => Some(((x * 2.0).round() as i64, false, i + 1)),
                    None => self.spoken(i).map(|(n, k)| (i64::from(n) * 2, false, k)),
                }
            }
        }
    }

    /// A day, with the part of the day some day words carry ("tonight", "this morning").
    fn day(&self, i: usize) -> Option<(DayRef, Option<Part>, usize)> {
        let w = self.at(i);
        let one = |d| Some((d, None, i + 1));
        match w {
            "today" => return one(DayRef::Offset(0)),
            "tonight" => return Some((DayRef::Offset(0), Some(Part::Night), i + 1)),
            "tomorrow" => return one(DayRef::Offset(1)),
            "yesterday" => return one(DayRef::Offset(-1)),
            "day" if self.at(i + 1) == "after" && self.at(i + 2) == "tomorrow" => {
                return Some((DayRef::Offset(2), None, i + 3))
            }
            "weekend" => return one(DayRef::Weekday(Weekday::Sat, Which::This)),
            "this" | "coming" | "next" | "last" => return self.relative_day(i),
            _ => {}
        }
        if let Some(wd) = weekday(w) {
            return one(DayRef::Weekday(wd, Which::This));
        }
        self.date(i).map(|(d, end)| (d, None, end))
    }

    /// "this Friday", "this coming Friday", "next Friday", "last Friday", "next week",
    /// "this morning", "last night".
    fn relative_day(&self, i: usize) -> Option<(DayRef, Option<Part>, usize)> {
        let which = match self.at(i) {
            "next" => Which::Next,
            "last" => Which::Last,
            _ => Which::This,
        };
        let j = if self.at(i) == "this" && self.at(i + 1) == "coming" {
            i + 2
        } else {
            i + 1
        };
        let w = self.at(j);
        let day = match (which, w, Part::word(w), weekday(w)) {
            (_, _, _, Some(wd)) => DayRef::Weekday(wd, which),
            (_, "weekend", _, _) => DayRef::Weekday(Weekday::Sat, which),
            (Which::Next, "week", _, _) => DayRef::NextWeek,
            (Which::Last, "week", _, _) => DayRef::Offset(-7),
            (Which::Last, "night", _, _) => {
                return Some((DayRef::Offset(-1), Some(Part::Night), j + 1))
            }
            (Which::This, _, Some(p), _) => return Some((DayRef::Offset(0), Some(p), j + 1)),
            _ => return None,
        };
        Some((day, None, j + 1))
    }

    /// "December 5", "December the 5th", "5th of December", "5 December", "the 5th", "12/5".
    fn date(&self, i: usize) -> Option<(DayRef, usize)> {
        let w = self.at(i);
        let with_year = |month, day, j: usize| {
            let year = digits(self.at(j)).filter(|y| (2000..=2100).contains(y));
            let d = DayRef::Date {
                month,
                day,
                year: year.and_then(|y| i32::try_from(y).ok()),
            };
            Some((d, if year.is_some() { j + 1 } else { j }))
        };
        if let Some(month) = month(w) {
            let j = if self.at(i + 1) == "the" {
                i + 2
            } else {
                i + 1
            };
            let (day, j) = self.ordinal(j).or_else(|| self.count(j))?;
            return if (1..=31).contains(&day) {
                with_year(month, day, j)
            } else {
                None
            };
        }
        if w.contains('/') {
            let parts: Vec<&str> = w.split('/').collect();
            let (month, day, year) = match parts.as_slice() {
                [m, d] => (digits(m)?, digits(d)?, None),
                [m, d, y] => (digits(m)?, digits(d)?, Some(digits(y)?)),
                _ => return None,
            };
            let year = year.map(|y| if y < 100 { 2000 + y } else { y });
            let valid = (1..=12).contains(&month) && (1..=31).contains(&day);
            let year = year.and_then(|y| i32::try_from(y).ok());
            return valid.then_some((DayRef::Date { month, day, year }, i + 1));
        }
        let the = w == "the";
        let j = if the { i + 1 } else { i };
        if let Some((day, k)) = self.ordinal(j) {
            let of = if self.at(k) == "of" { k + 1 } else { k };
            if let Some(month) = month(self.at(of)) {
                return with_year(month, day, of + 1);
            }
            // "second" alone is more often "wait a second" than a date.
            let in_digits = self.at(j).starts_with(|c: char| c.is_ascii_digit());
            return (the || in_digits).then_some((DayRef::MonthDay(day), k));
        }
        let day = digits(w).filter(|d| (1..=31).contains(d))?;
        let month = month(self.at(i + 1))?;
        with_year(month, day, i + 2)
    }

    /// "5th", "fifth", "twenty fifth" (1..=31).
    fn ordinal(&self, j: usize) -> Option<(u32, usize)> {
        let w = self.at(j);
        let in_digits = ["st", "nd", "rd", "th"]
            .into_iter()
            .find_map(|s| w.strip_suffix(s))
            .and_then(digits);
        if let Some(d) = in_digits {
            return (1..=31).contains(&d).then_some((d, j + 1));
        }
        if let Some(t) = tens(w).filter(|t| *t <= 30) {
            if let Some(u) = ordinal_word(self.at(j + 1)).filter(|u| *u <= 9) {
                return Some((t + u, j + 2));
            }
        }
        ordinal_word(w).map(|d| (d, j + 1))
    }

    /// A clock time and whether it is certainly one (minutes, am/pm, o'clock, noon) rather than
    /// a bare hour.
    fn clock(&self, i: usize) -> Option<(Clock, bool, usize)> {
        let fixed = |h| Clock {
            h,
            m: 0,
            meridiem: Meridiem::Fixed,
        };
        match self.at(i) {
            "noon" | "midday" => return Some((fixed(12), true, i + 1)),
            "midnight" => return Some((fixed(24), true, i + 1)),
            _ => {}
        }
        if let Some((h, m, j)) = self.past_or_to(i) {
            return Some(self.suffix(h, m, true, j));
        }
        let w = self.at(i);
        if let Some((h, m)) = hm(w) {
            return Some(self.suffix(h, m, true, i + 1));
        }
        let h = digits(w)
            .filter(|h| (1..=23).contains(h))
            .or_else(|| unit(w).filter(|h| (1..=12).contains(h)))?;
        Some(match self.minutes(i + 1) {
            Some((m, j)) => self.suffix(h, m, true, j),
            None => self.suffix(h, 0, false, i + 1),
        })
    }

    /// "o'clock" and a.m./p.m. after a clock time.
    fn suffix(&self, h: u32, m: u32, sure: bool, mut j: usize) -> (Clock, bool, usize) {
        let oclock = self.at(j) == "oclock";
        if oclock {
            j += 1;
        }
        let half = match self.at(j) {
            "am" => Some(Meridiem::Am),
            "pm" => Some(Meridiem::Pm),
            _ => None,
        };
        if half.is_some() {
            j += 1;
        }
        let meridiem = if h == 0 || h > 12 {
            Meridiem::Fixed
        } else {
            half.unwrap_or(Meridiem::Unknown)
        };
        (
            Clock { h, m, meridiem },
            sure || oclock || half.is_some(),
            j,
        )
    }

    /// Spoken minutes after an hour: "thirty", "forty five", "oh five", "15".
    fn minutes(&self, j: usize) -> Option<(u32, usize)> {
        let w = self.at(j);
        if matches!(w, "oh" | "o") {
            return unit(self.at(j + 1))
                .filter(|u| (1..=9).contains(u))
                .map(|u| (u, j + 2));
        }
        if w.len() == 2 {
            if let Some(m) = digits(w).filter(|m| *m <= 59) {
                return Some((m, j + 1));
            }
        }
        if tens(w).is_some_and(|t| t <= 50) {
            return self.spoken(j);
        }
        unit(w).filter(|u| *u >= 10).map(|u| (u, j + 1))
    }

    /// "half past two", "quarter to five", "ten after three": (hour, minutes, end).
    fn past_or_to(&self, i: usize) -> Option<(u32, u32, usize)> {
        let (mins, mut j) = match self.at(i) {
            "quarter" => (15, i + 1),
            "half" => (30, i + 1),
            _ => self.count(i).filter(|(n, _)| (1..=30).contains(n))?,
        };
        if matches!(self.at(j), "minute" | "minutes" | "min" | "mins") {
            j += 1;
        }
        let after = match self.at(j) {
            "past" | "after" => true,
            "to" | "till" | "til" | "of" if matches!(mins, 5 | 10 | 15 | 20 | 25) => false,
            _ => return None,
        };
        let (h, k) = self.count(j + 1).filter(|(h, _)| (1..=12).contains(h))?;
        Some(if after {
            (h, mins, k)
        } else {
            (if h == 1 { 12 } else { h - 1 }, 60 - mins, k)
        })
    }

    /// A number starting at `i` for [`parse_number`].
    fn number(&self, i: usize) -> Option<f64> {
        let w = self.at(i);
        if let Some(x) = numeric(w) {
            let scale = match self.at(i + 1) {
                "hundred" => 100.0,
                "thousand" | "grand" | "k" => 1000.0,
                "million" => 1_000_000.0,
                _ => 1.0,
            };
            return Some(x * scale);
        }
        self.spoken_number(i)
    }

    /// Numbers in words, including the way prices are said: "two hundred and fifty",
    /// "one fifty" (150), "one oh five" (105), "twelve hundred", "a couple hundred".
    fn spoken_number(&self, i: usize) -> Option<f64> {
        #[derive(PartialEq)]
        enum Last {
            Start,
            /// A complete 1-99 ending in a unit or teen ("five", "twenty five").
            Small,
            /// Tens waiting for a unit ("twenty", or "one fifty" / "one oh").
            Tens,
            Hundred,
            Scale,
            And,
        }
        let (mut total, mut group, mut last) = (0.0, 0.0, Last::Start);
        let scale_next =
            |k: usize| matches!(self.at(k), "hundred" | "thousand" | "grand" | "million");
        // "a couple hundred": the count is "couple".
        let mut k = if self.at(i) == "a" && self.at(i + 1) == "couple" {
            i + 1
        } else {
            i
        };
        loop {
            let w = self.at(k);
            let after_scale = matches!(last, Last::Start | Last::Hundred | Last::Scale | Last::And);
            let pairs = matches!(last, Last::Small | Last::Tens) && group < 100.0;
            if let Some(v) = unit(w).map(f64::from) {
                if after_scale || (last == Last::Tens && (1.0..10.0).contains(&v)) {
                    group += v;
                } else if pairs && v >= 10.0 {
                    group = group * 100.0 + v;
                } else {
                    break;
                }
                last = Last::Small;
            } else if let Some(v) = tens(w).map(f64::from) {
                if after_scale {
                    group += v;
                } else if pairs {
                    group = group * 100.0 + v;
                } else {
                    break;
                }
                last = Last::Tens;
            } else if w == "oh"
                && pairs
                && unit(self.at(k + 1)).is_some_and(|u| (1..=9).contains(&u))
            {
                group *= 100.0;
                last = Last::Tens;
            } else if matches!(w, "a" | "an") && last == Last::Start && scale_next(k + 1) {
                group = 1.0;
                last = Last::Small;
            } else if w == "couple" && last == Last::Start {
                let of = usize::from(self.at(k + 1) == "of");
                if !scale_next(k + 1 + of) {
                    break;
                }
                k += of;
                group = 2.0;
                last = Last::Small;
            } else if w == "hundred" && pairs {
                group *= 100.0;
                last = Last::Hundred;
            } else if let Some(s) = match w {
                "thousand" | "grand" => Some(1000.0),
                "million" => Some(1_000_000.0),
                _ => None,
            }
            .filter(|_| matches!(last, Last::Small | Last::Tens | Last::Hundred) && group > 0.0)
            {
                total += group * s;
                group = 0.0;
                last = Last::Scale;
            } else if w == "and"
                && matches!(last, Last::Hundred | Last::Scale)
                && (unit(self.at(k + 1)).is_some() || tens(self.at(k + 1)).is_some())
            {
                last = Last::And;
            } else {
                break;
            }
            k += 1;
        }
        (last != Last::Start).then_some(total + group)
    }
}

/// Digits with grouping commas and decimals, "k" for thousands, ordinal and plural endings
/// ignored ("1,200", "2.5k", "5th", "90s").
fn numeric(w: &str) -> Option<f64> {
    let (body, scale) = match w.strip_suffix('k') {
        Some(b) => (b, 1000.0),
        None => (w, 1.0),
    };
    let body = body.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let ok = body.starts_with(|c: char| c.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',');
    if !ok {
        return None;
    }
    let clean: String = body.chars().filter(|&c| c != ',').collect();
    clean
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(|x| x * scale)
}

/// "3:30", "15:00", "3.30" as (hour, minute).
fn hm(w: &str) -> Option<(u32, u32)> {
    let (h, m) = w.split_once(':').or_else(|| w.split_once('.'))?;
    let (h, m) = (digits(h)?, digits(m).filter(|_| m.len() == 2)?);
    (h <= 23 && m <= 59).then_some((h, m))
}

/// Short digit strings only: longer ones are not hours, days or years.
fn digits(w: &str) -> Option<u32> {
    (!w.is_empty() && w.len() <= 4 && w.bytes().all(|b| b.is_ascii_digit()))
        .then(|| w.parse().ok())
        .flatten()
}

/// "zero" to "nineteen".
fn unit(w: &str) -> Option<u32> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    UNITS
        .iter()
        .position(|u| *u == w)
        .and_then(|p| u32::try_from(p).ok())
}

/// "twenty" to "ninety".
fn tens(w: &str) -> Option<u32> {
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    TENS.iter()
        .position(|t| *t == w)
        .and_then(|p| u32::try_from(p).ok())
        .map(|p| p * 10 + 20)
}

/// "first" to "nineteenth", "twentieth", "thirtieth".
fn ordinal_word(w: &str) -> Option<u32> {
    const ORDINALS: [&str; 19] = [
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
    ];
    match w {
        "twentieth" => Some(20),
        "thirtieth" => Some(30),
        _ => ORDINALS
            .iter()
            .position(|o| *o == w)
            .and_then(|p| u32::try_from(p + 1).ok()),
    }
}

fn month(w: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    MONTHS
        .iter()
        .position(|m| *m == w)
        .and_then(|p| u32::try_from(p + 1).ok())
}

fn weekday(w: &str) -> Option<Weekday> {
    let w = w.strip_suffix('s').unwrap_or(w);
    Some(match w {
        "monday" => Weekday::Mon,
        "tuesday" => Weekday::Tue,
        "wednesday" => Weekday::Wed,
        "thursday" => Weekday::Thu,
        "friday" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        "sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// What time of that day to use.
#[derive(Debug, Clone, Copy)]
enum When {
    Clock(u32),
    Part(Part),
    Day,
}

/// The instant an answer names, before the past/window checks; `None` if it names none.
fn resolve(f: &Found, now: DateTime<Tz>, window: &CallingWindow) -> Option<SlotTime> {
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
fn day_date(d: DayRef, today: NaiveDate) -> Option<(NaiveDate, Option<u64>)> {
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
fn on_day(
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
fn day_anchor(window: &CallingWindow) -> u32 {
    let ten = NaiveTime::from_hms_opt(10, 0, 0).unwrap_or(NaiveTime::MIN);
    if window.start <= ten && ten < window.end {
        return 10 * 60;
    }
    let s = window.start.num_seconds_from_midnight();
    s.div_ceil(60)
}

/// `minutes` after `now`, rounded up to the next :00 or :30.
fn half_hour_after(now: DateTime<Tz>, minutes: i64) -> Option<DateTime<Tz>> {
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
fn local_of(t: DateTime<Tz>) -> Option<NaiveDateTime> {
    t.naive_utc().checked_add_offset(t.offset().fix())
}

/// Longest DST/offset gap to walk through (Samoa skipped a whole day in 2011).
const MAX_GAP_MINUTES: u32 = 26 * 60;

/// `naive` wall time in `tz`: in a DST gap, the first instant after it; when it occurs twice,
/// the first occurrence still after `now` (else the first).
fn localize(tz: Tz, naive: NaiveDateTime, now: DateTime<Tz>) -> Option<DateTime<Tz>> {
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
fn suggest(at: DateTime<Tz>, now: DateTime<Tz>, window: &CallingWindow) -> Option<DateTime<Tz>> {
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
