//! Reading the words: day, part of the day, clock time and relative phrases, each tagged
//! with where it was found, before anything is resolved against a clock.

use super::lexicon::*;
use super::*;

/// Words that do not make an answer about something else ("three works for me" is still just
/// "three"); see the bare-hour rule in the module doc.
pub(super) const SOFT: &[&str] = &[
    "uh", "um", "er", "erm", "hmm", "mm", "ah", "oh", "well", "so", "ok", "okay", "yeah", "yes",
    "yep", "sure", "maybe", "about", "around", "like", "say", "how", "please", "works", "work",
    "would", "be", "good", "great", "fine", "perfect", "is", "that", "thats", "lets", "do", "me",
    "call", "then", "i", "guess", "think", "at", "on", "the", "in", "for", "a", "an", "oclock",
    "its", "it", "any", "time", "best", "could", "can", "you", "we", "just", "actually", "should",
    "will", "thanks", "alright",
];

/// Hedges between a cue and its number ("at about 3", "in like 20 minutes").
pub(super) const HEDGES: &[&str] = &[
    "uh", "um", "er", "erm", "about", "like", "maybe", "say", "just",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Morning,
    Lunch,
    Afternoon,
    Evening,
    Night,
}

impl Part {
    pub(super) fn word(w: &str) -> Option<Part> {
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
    pub(super) fn span(self) -> (u32, u32) {
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
pub(super) enum Which {
    This,
    Next,
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DayRef {
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
pub(super) enum Meridiem {
    Am,
    Pm,
    /// 24-hour, noon or midnight: the hour is final.
    Fixed,
    Unknown,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    pub(super) h: u32,
    pub(super) m: u32,
    pub(super) meridiem: Meridiem,
}

impl Clock {
    /// Minutes after midnight (up to 24:59 for "12:30 at night"), reading the hour by the part
    /// of the day named, else by business hours.
    pub(super) fn minutes(self, hint: Option<Part>) -> u32 {
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
pub(super) enum Rel {
    In {
        minutes: i64,
        approx: bool,
    },
    /// "Later (today)".
    Later,
}

pub(super) enum Dur {
    Minutes(i64, bool),
    Days(i64),
}

/// What an answer names; each the first of its kind.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub(super) day: Option<DayRef>,
    pub(super) part: Option<Part>,
    pub(super) clock: Option<Clock>,
    pub(super) rel: Option<Rel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
    Free,
    Day,
    Part,
    Clock,
    Rel,
}

/// Words being read, each tagged once by what consumed it so numbers are not read twice ("the
/// 5th at 2": 5 is the date, 2 the hour).
pub(super) struct Scan<'a> {
    pub(super) w: &'a [String],
    pub(super) tags: Vec<Tag>,
}

pub(super) fn scan(w: &[String]) -> Found {
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
    pub(super) fn new(w: &'a [String]) -> Self {
        Scan {
            w,
            tags: vec![Tag::Free; w.len()],
        }
    }

    /// The word at `i`, or "" past the end, so lookahead never needs a bounds check.
    pub(super) fn at(&self, i: usize) -> &'a str {
        self.w.get(i).map_or("", String::as_str)
    }

    pub(super) fn free(&self, from: usize, to: usize) -> bool {
        (from..to).all(|i| self.tags.get(i) == Some(&Tag::Free))
    }

    pub(super) fn mark(&mut self, from: usize, to: usize, tag: Tag) {
        for t in self.tags.iter_mut().take(to).skip(from) {
            *t = tag;
        }
    }

    pub(super) fn next_hard(&self, from: usize) -> Option<usize> {
        (from..self.w.len()).find(|&j| !SOFT.contains(&self.at(j)))
    }

    /// "at 3", "around 10", "at about 3", "between 2 and 4".
    pub(super) fn cued(&self, i: usize) -> bool {
        let before = (0..i).rev().find(|&j| !HEDGES.contains(&self.at(j)));
        before.is_some_and(|j| matches!(self.at(j), "at" | "around" | "between"))
    }

    /// "Friday 10", "3 tomorrow", "10 in the morning".
    pub(super) fn beside_day(&self, i: usize, end: usize) -> bool {
        let before = (0..i).rev().find(|&j| !SOFT.contains(&self.at(j)));
        [before, self.next_hard(end)]
            .into_iter()
            .flatten()
            .any(|j| matches!(self.tags.get(j), Some(Tag::Day | Tag::Part)))
    }

    /// 0..=99 in words: "five", "fifteen", "forty five".
    pub(super) fn spoken(&self, i: usize) -> Option<(u32, usize)> {
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
    pub(super) fn count(&self, i: usize) -> Option<(u32, usize)> {
        digits(self.at(i))
            .map(|n| (n, i + 1))
            .or_else(|| self.spoken(i))
    }

    pub(super) fn and_a_half(&self, i: usize) -> bool {
        self.at(i) == "and" && self.at(i + 1) == "a" && self.at(i + 2) == "half"
    }

    /// "in two hours", "an hour and a half from now", "in 3 days", "2 hours ago".
    pub(super) fn duration(&self, i: usize) -> Option<(Dur, usize)> {
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
    pub(super) fn quantity(&self, i: usize) -> Option<(i64, bool, usize)> {
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
    pub(super) fn day(&self, i: usize) -> Option<(DayRef, Option<Part>, usize)> {
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
            // "After tomorrow" alone is the day after too (and what is left of it when the
            // ear mishears "the day": "but then after tomorrow at nine").
            "after" if self.at(i + 1) == "tomorrow" => {
                return Some((DayRef::Offset(2), None, i + 2))
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
    pub(super) fn relative_day(&self, i: usize) -> Option<(DayRef, Option<Part>, usize)> {
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
    pub(super) fn date(&self, i: usize) -> Option<(DayRef, usize)> {
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
    pub(super) fn ordinal(&self, j: usize) -> Option<(u32, usize)> {
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
    pub(super) fn clock(&self, i: usize) -> Option<(Clock, bool, usize)> {
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
    pub(super) fn suffix(&self, h: u32, m: u32, sure: bool, mut j: usize) -> (Clock, bool, usize) {
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
    pub(super) fn minutes(&self, j: usize) -> Option<(u32, usize)> {
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
    pub(super) fn past_or_to(&self, i: usize) -> Option<(u32, u32, usize)> {
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
    pub(super) fn number(&self, i: usize) -> Option<f64> {
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
    pub(super) fn spoken_number(&self, i: usize) -> Option<f64> {
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
