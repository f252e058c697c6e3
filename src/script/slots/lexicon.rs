//! Single words: numbers (digits and spelled), clock times, ordinals, months, weekdays.

use super::*;

/// Digits with grouping commas and decimals, "k" for thousands, ordinal and plural endings
/// ignored ("1,200", "2.5k", "5th", "90s").
pub(super) fn numeric(w: &str) -> Option<f64> {
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
pub(super) fn hm(w: &str) -> Option<(u32, u32)> {
    let (h, m) = w.split_once(':').or_else(|| w.split_once('.'))?;
    let (h, m) = (digits(h)?, digits(m).filter(|_| m.len() == 2)?);
    (h <= 23 && m <= 59).then_some((h, m))
}

/// Short digit strings only: longer ones are not hours, days or years.
pub(super) fn digits(w: &str) -> Option<u32> {
    (!w.is_empty() && w.len() <= 4 && w.bytes().all(|b| b.is_ascii_digit()))
        .then(|| w.parse().ok())
        .flatten()
}

/// "zero" to "nineteen".
pub(super) fn unit(w: &str) -> Option<u32> {
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
pub(super) fn tens(w: &str) -> Option<u32> {
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    TENS.iter()
        .position(|t| *t == w)
        .and_then(|p| u32::try_from(p).ok())
        .map(|p| p * 10 + 20)
}

/// "first" to "nineteenth", "twentieth", "thirtieth".
pub(super) fn ordinal_word(w: &str) -> Option<u32> {
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

pub(super) fn month(w: &str) -> Option<u32> {
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

pub(super) fn weekday(w: &str) -> Option<Weekday> {
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
