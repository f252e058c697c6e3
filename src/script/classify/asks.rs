//! Turns about the conversation itself rather than the question: "What was that?" (say it
//! again) and "Hold on, let me find my bill" (wait). Both are rules: a tiny model reads "one
//! second" as an answer of 1, and "What was that?" as a question for an advisor.

use super::normalize;
use super::phrases::REPEAT;

/// Requests for time, longest first so that "hold on a second" is taken whole. The thinking
/// ones ("let me think") count too: a turn that ended on them and nothing more means the caller
/// is still looking for the answer.
const HOLDS: &[&str] = &[
    "can you hold on a second",
    "can you hold on",
    "could you hold on",
    "can you hold",
    "could you hold",
    "can you wait",
    "could you wait",
    "hold on a second",
    "hold on a sec",
    "hold on a minute",
    "hold on a moment",
    "hang on a second",
    "hang on a sec",
    "hang on a minute",
    "give me a second",
    "give me a sec",
    "give me a moment",
    "give me a minute",
    "wait a second",
    "wait a sec",
    "wait a minute",
    "wait a moment",
    "just a second",
    "just a sec",
    "just a moment",
    "just a minute",
    "one second",
    "one sec",
    "one moment",
    "one minute",
    "1 second",
    "1 sec",
    "1 moment",
    "1 minute",
    "hold please",
    "hold on",
    "hang on",
    "let me think",
    "let me see",
    "let me check",
    "let me look",
    "let me find",
    "let me get",
    "let me grab",
];

/// "Let me think about it" is an answer (not now), not a request to wait.
const NOT_HOLDS: &[&str] = &["think about", "think it over"];

/// A whole turn that only asks us to repeat or checks the line ("Sorry, what was that?"): a
/// run of [`REPEAT`] phrases, the longest taken at each word ("what was that", not "what").
pub(super) fn is_repeat(t: &str) -> bool {
    let words: Vec<&str> = t.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let longest = REPEAT
            .iter()
            .map(|p| normalize(p))
            .filter(|p| {
                let pw: Vec<&str> = p.split_whitespace().collect();
                !pw.is_empty() && words[i..].starts_with(&pw)
            })
            .map(|p| p.split_whitespace().count())
            .max();
        match longest {
            Some(n) => i += n,
            None if matches!(words[i], "um" | "uh" | "oh" | "please") => i += 1,
            None => return false,
        }
    }
    !words.is_empty()
}

/// The turn without its requests for time, as said (punctuation kept for the parsers), or
/// `None` when it has none: "One second, someone is at the door." -> "someone is at the door."
pub(super) fn without_holds(text: &str) -> Option<String> {
    let t = normalize(text);
    if NOT_HOLDS
        .iter()
        .any(|p| format!(" {t} ").contains(&format!(" {p} ")))
    {
        return None;
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let plain: Vec<String> = words.iter().map(|w| normalize(w)).collect();
    let mut kept = Vec::new();
    let mut held = false;
    let mut i = 0;
    'outer: while i < words.len() {
        for h in HOLDS {
            let hw: Vec<&str> = h.split_whitespace().collect();
            if plain.len() >= i + hw.len() && plain[i..i + hw.len()].iter().eq(hw.iter()) {
                held = true;
                i += hw.len();
                continue 'outer;
            }
        }
        kept.push(words[i]);
        i += 1;
    }
    held.then(|| kept.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_time_are_taken_out_of_the_turn() {
        let cases = [
            ("Hold on.", Some("")),
            ("Hold on, let me find my bill.", Some("my bill.")),
            (
                "One second, someone is at the door.",
                Some("someone is at the door."),
            ),
            ("Can you hold on a second?", Some("")),
            (
                "Just a sec... it's about two hundred.",
                Some("it's about two hundred."),
            ),
            ("1 second.", Some("")),
            ("Yes, we own it.", None),
            ("Let me think about it.", None),
            ("I own a second home.", None),
        ];
        for (said, rest) in cases {
            assert_eq!(without_holds(said).as_deref(), rest, "{said}");
        }
    }

    #[test]
    fn requests_to_repeat_are_whole_turns() {
        for t in [
            "Hello?",
            "Sorry, what was that?",
            "What did you say?",
            "Can you say that again, please?",
            "I didn't catch that.",
            "You're breaking up.",
            "Sorry?",
        ] {
            assert!(is_repeat(&normalize(t)), "{t}");
        }
        for t in [
            "What was that about solar?",
            "Hello, yes, go ahead.",
            "Sorry, I rent.",
            "What is this?",
        ] {
            assert!(!is_repeat(&normalize(t)), "{t}");
        }
    }
}
