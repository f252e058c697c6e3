//! Judging one call of the corpus by what the caller experienced: the outcome and variables the
//! appliance stored, the words the caller heard (Whisper's transcript of the audio played to
//! them) and the dead air they sat through. Pure: the rehearsal gathers the observations.
//!
//! Heard checks are fuzzy on purpose, because the ear is a small Whisper model on phone audio:
//! words are normalised (case, punctuation, "A.I." = "ai", "three" = "3", "2nd" = "2", "I'm" =
//! "i am"), a word matches a near-spelling ("Nova" / "Novah", "own" / "on"; never "not" / "no"),
//! and a phrase is heard when at
//! least 80% of its words occur in order within a stretch not much longer than the phrase.
//! `"2x <phrase>"` asks for (or forbids) at least two occurrences: a question asked again.

pub mod when;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::DateTime;
use chrono_tz::Tz;

use super::measure::TurnTiming;

/// A phrase the caller must (or must not) have heard, and how many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub text: String,
    pub times: usize,
}

impl Phrase {
    /// `"2x Roughly how much"` -> twice; anything else once.
    pub fn parse(text: &str) -> Self {
        let t = text.trim();
        if let Some((n, rest)) = t.split_once("x ") {
            if let Ok(times) = n.parse::<usize>() {
                if times >= 1 {
                    return Self {
                        text: rest.trim().to_string(),
                        times,
                    };
                }
            }
        }
        Self {
            text: t.to_string(),
            times: 1,
        }
    }
}

/// An expected variable: a time (`*_time` names; the text as written, parsed) or a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    Time(String, when::When),
    Value(String),
}

impl Want {
    /// A variable's expectation: names ending in `_time` hold a [`when`] expression.
    pub fn new(name: &str, value: &str) -> Result<Self, String> {
        if name.ends_with("_time") {
            Ok(Self::Time(value.to_string(), when::parse(value)?))
        } else {
            Ok(Self::Value(value.to_string()))
        }
    }
}

/// What a caller must experience.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// The stored outcome (`interested`, `do_not_call`, ...).
    pub outcome: Option<String>,
    pub vars: BTreeMap<String, Want>,
    /// `{callback_time}` in a phrase is the expected time as the agent reads it back.
    pub heard: Vec<Phrase>,
    pub not_heard: Vec<Phrase>,
    pub max_dead_air: Duration,
}

/// What was observed of one call.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub outcome: Option<&'a str>,
    pub vars: &'a BTreeMap<String, String>,
    /// Whisper's transcript of everything the caller heard.
    pub transcript: &'a str,
    pub timings: &'a [TurnTiming],
    /// When the call started on the rehearsal clock, in the lead's zone.
    pub now: DateTime<Tz>,
}

/// The judgement of one call.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Why it failed, one reason each; empty means PASS.
    pub failures: Vec<String>,
    /// Heard checks (must and must-not) that held, of all.
    pub heard_ok: usize,
    pub heard_total: usize,
    /// Variables as expected, of all expected.
    pub vars_ok: usize,
    pub vars_total: usize,
    /// The worst dead air and the turn it followed.
    pub worst_dead_air: Option<(u64, String)>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Judges one call against its expectations.
pub fn judge(want: &Expect, seen: &Observed) -> Verdict {
    let mut v = Verdict::default();
    if let Some(outcome) = &want.outcome {
        if seen.outcome != Some(outcome.as_str()) {
            v.failures.push(format!(
                "outcome: want {outcome}, got {}",
                seen.outcome.unwrap_or("none")
            ));
        }
    }
    for (name, w) in &want.vars {
        v.vars_total += 1;
        match check_var(w, seen.vars.get(name).map(String::as_str), seen.now) {
            Ok(()) => v.vars_ok += 1,
            Err(why) => v.failures.push(format!("{name}: {why}")),
        }
    }
    let heard = words(seen.transcript);
    let time = want.vars.values().find_map(|w| match w {
        Want::Time(_, t) => Some(when::spoken(t, seen.now)),
        Want::Value(_) => None,
    });
    let render = |p: &Phrase| match &time {
        Some(t) => p.text.replace("{callback_time}", t),
        None => p.text.clone(),
    };
    for p in &want.heard {
        v.heard_total += 1;
        let text = render(p);
        let (n, best) = occurrences(&words(&text), &heard);
        if n >= p.times {
            v.heard_ok += 1;
        } else if p.times > 1 {
            v.failures
                .push(format!("heard {n} of {}x {text:?}", p.times));
        } else {
            v.failures
                .push(format!("not heard: {text:?} (best {:.0}%)", best * 100.0));
        }
    }
    for p in &want.not_heard {
        v.heard_total += 1;
        let text = render(p);
        let (n, _) = occurrences(&words(&text), &heard);
        if n >= p.times {
            let times = if p.times > 1 {
                format!(" {n}x")
            } else {
                String::new()
            };
            v.failures
                .push(format!("heard{times} (must not): {text:?}"));
        } else {
            v.heard_ok += 1;
        }
    }
    v.worst_dead_air = seen
        .timings
        .iter()
        .max_by_key(|t| t.dead_air_ms)
        .map(|t| (t.dead_air_ms, t.label.clone()));
    if let Some((ms, label)) = &v.worst_dead_air {
        if *ms > want.max_dead_air.as_millis() as u64 {
            v.failures.push(format!(
                "dead air {:.1} s after {label:?} (max {:.1} s)",
                *ms as f64 / 1000.0,
                want.max_dead_air.as_secs_f64()
            ));
        }
    }
    v
}

fn check_var(want: &Want, got: Option<&str>, now: DateTime<Tz>) -> Result<(), String> {
    let Some(got) = got else {
        return Err(format!("want {}, not captured", show(want)));
    };
    let ok = match want {
        // A day alone ("tomorrow" when the caller said "tomorrow at ten" and the ear lost the
        // hour) is stored at a placeholder hour: it never matches a wanted clock.
        Want::Time(_, w)
            if got.trim().ends_with("~day")
                && !matches!(
                    w,
                    when::When::On {
                        clock: when::Clock::Any,
                        ..
                    }
                ) =>
        {
            return Err(format!("want {}, got only a day ({got})", show(want)));
        }
        Want::Time(_, w) => match when::stored(got, now.timezone()) {
            Some(t) if when::matches(w, t, now) => true,
            Some(t) => {
                return Err(format!(
                    "want {}, got {}",
                    show(want),
                    t.format("%a %b %-d %H:%M")
                ))
            }
            None => {
                return Err(format!(
                    "want {}, got {got:?} (not a normalised time)",
                    show(want)
                ))
            }
        },
        Want::Value(w) => same_value(w, got),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("want {}, got {got:?}", show(want)))
    }
}

fn show(want: &Want) -> String {
    match want {
        Want::Time(text, _) => text.clone(),
        Want::Value(v) => format!("{v:?}"),
    }
}

/// Numbers by value ("200" = "200.0" = "$200"), yes/no by meaning, text by words.
fn same_value(want: &str, got: &str) -> bool {
    let number = |s: &str| {
        s.trim()
            .trim_start_matches('$')
            .replace(',', "")
            .parse::<f64>()
            .ok()
    };
    if let (Some(a), Some(b)) = (number(want), number(got)) {
        return (a - b).abs() < 1e-6;
    }
    let truth = |s: &str| match s.trim().to_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    };
    if let (Some(a), Some(b)) = (truth(want), truth(got)) {
        return a == b;
    }
    words(want) == words(got)
}

/// Normalised words of a transcript or phrase.
pub fn words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace(['’', '‘'], "'");
    let mut out = Vec::new();
    for raw in lower.split(|c: char| c.is_whitespace() || c == '-' || c == '/') {
        // "a.i." -> "ai", "don't" -> "dont", "$1,200." -> "1200"
        let w: String = raw.chars().filter(|c| c.is_alphanumeric()).collect();
        if w.is_empty() {
            continue;
        }
        let w = ordinal(&w).unwrap_or(w);
        match w.as_str() {
            "im" => out.extend(["i", "am"].map(String::from)),
            "youre" => out.extend(["you", "are"].map(String::from)),
            "dont" => out.extend(["do", "not"].map(String::from)),
            "cant" | "cannot" => out.extend(["can", "not"].map(String::from)),
            "wont" => out.extend(["will", "not"].map(String::from)),
            "ive" => out.extend(["i", "have"].map(String::from)),
            "ill" => out.extend(["i", "will"].map(String::from)),
            "thats" => out.extend(["that", "is"].map(String::from)),
            "whats" => out.extend(["what", "is"].map(String::from)),
            "okay" => out.push("ok".into()),
            _ => out.push(number_word(&w).map(str::to_string).unwrap_or(w)),
        }
    }
    out
}

/// "2nd" -> "2".
fn ordinal(w: &str) -> Option<String> {
    let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &w[digits.len()..];
    (!digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(suffix, "st" | "nd" | "rd" | "th"))
    .then(|| digits.to_string())
}

fn number_word(w: &str) -> Option<&'static str> {
    const SMALL: [&str; 21] = [
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
        "twenty",
    ];
    const DIGITS: [&str; 21] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
        "17", "18", "19", "20",
    ];
    SMALL.iter().position(|s| *s == w).map(|i| DIGITS[i])
}

/// Same word, or a near-spelling of a longer one (one edit, two from eight letters).
fn same_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let n = a.chars().count().min(b.chars().count());
    let allowed = match n {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    };
    if allowed > 0 {
        return edit_distance(a, b) <= allowed;
    }
    // Short words: one letter dropped or added, same first letter ("own" / "on", "the" /
    // "thee"), never a negation ("not" / "no").
    const NEGATIONS: [&str; 3] = ["no", "not", "nor"];
    n >= 2
        && a.chars().count() != b.chars().count()
        && a.chars().next() == b.chars().next()
        && !NEGATIONS.contains(&a)
        && !NEGATIONS.contains(&b)
        && edit_distance(a, b) == 1
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// How often `phrase` occurs in `text` (non-overlapping, each with >= 80% of its words in
/// order within a window of 1.5x its length), and the best share of words found anywhere.
pub fn occurrences(phrase: &[String], text: &[String]) -> (usize, f64) {
    if phrase.is_empty() {
        return (0, 0.0);
    }
    let need = (phrase.len() * 4).div_ceil(5);
    let width = phrase.len() + phrase.len().div_ceil(2);
    let (mut count, mut best, mut i) = (0, 0usize, 0);
    while i < text.len() {
        let window = &text[i..(i + width).min(text.len())];
        let (matched, last) = in_order(phrase, window);
        best = best.max(matched);
        if matched >= need {
            count += 1;
            i += last + 1;
        } else {
            i += 1;
        }
    }
    (count, best as f64 / phrase.len() as f64)
}

/// Longest in-order match of `phrase` in `window` and the window index of its last word.
fn in_order(phrase: &[String], window: &[String]) -> (usize, usize) {
    let (n, m) = (phrase.len(), window.len());
    let mut dp = vec![vec![0usize; m + 1]; n + 1];
    for i in 1..=n {
        for j in 1..=m {
            let mut best = if same_word(&phrase[i - 1], &window[j - 1]) {
                dp[i - 1][j - 1] + 1
            } else {
                dp[i - 1][j].max(dp[i][j - 1])
            };
            // Words the ear ran together ("Nova calling" -> "Novocalling") or split ("Sunrise"
            // -> "sun rise") count as the phrase's words.
            if i >= 2
                && same_word(
                    &format!("{}{}", phrase[i - 2], phrase[i - 1]),
                    &window[j - 1],
                )
            {
                best = best.max(dp[i - 2][j - 1] + 2);
            }
            if j >= 2
                && same_word(
                    &phrase[i - 1],
                    &format!("{}{}", window[j - 2], window[j - 1]),
                )
            {
                best = best.max(dp[i - 1][j - 2] + 1);
            }
            dp[i][j] = best;
        }
    }
    let best = dp[n][m];
    // The first window position where the best is reached: where the match ends.
    let last = (1..=m).find(|&j| dp[n][j] == best).unwrap_or(1) - 1;
    (best, last)
}

#[cfg(test)]
mod tests;
