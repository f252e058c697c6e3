//! Turning a caller's words into one of the node's intents plus the node's variables.
//!
//! Two layers, because the law cannot depend on a 135M-parameter model: deterministic rules
//! first (opt-out phrases, the script's own example phrases), then the LLM with a GBNF grammar
//! that only admits `{"intent": <one of the labels>, <each variable>: <typed value or null>}`,
//! so even a tiny model always produces something parseable. Anything else is `unclear`.

use std::collections::BTreeMap;

use super::format::{Script, VarType};
use crate::model::ChatMessage;

/// The classifier's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub intent: String,
    pub captured: BTreeMap<String, String>,
    /// `rule` or `llm`.
    pub by: &'static str,
}

/// Phrases that always mean "stop calling me" (FCC: honour any reasonable opt-out request).
const OPT_OUT: &[&str] = &[
    "stop calling",
    "take me off",
    "remove me",
    "remove my number",
    "do not call",
    "don't call",
    "dont call",
    "put me on your do not call",
    "unsubscribe",
    "never call",
    "stop it",
    "stop",
];
const ROBOT: &[&str] = &[
    "are you a robot",
    "are you a real person",
    "is this a robot",
    "am i talking to a machine",
    "are you human",
    "is this a recording",
    "are you ai",
    "are you an ai",
];
const WHO: &[&str] = &[
    "who is this",
    "who are you",
    "who's calling",
    "who is calling",
    "what company",
];
const LATER: &[&str] = &[
    "call me later",
    "call me back",
    "call back later",
    "not a good time",
    "i'm busy right now",
    "busy right now",
    "call another time",
];
const WRONG: &[&str] = &[
    "wrong number",
    "wrong person",
    "no one by that name",
    "doesn't live here",
    "does not live here",
];

fn normalize(text: &str) -> String {
    let lower = text.to_lowercase().replace('’', "'");
    let cleaned: String = lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    let h = format!(" {haystack} ");
    h.contains(&format!(" {} ", normalize(phrase)))
}

/// Deterministic classification: global phrases, then the node's example phrases (whole-phrase
/// matches, longest first). `None` leaves it to the LLM.
pub fn by_rules(script: &Script, node: &str, text: &str) -> Option<String> {
    let t = normalize(text);
    if t.is_empty() {
        return Some("unclear".into());
    }
    // "stop" alone is an opt-out, "don't stop" is not a thing callers say on sales calls.
    for (intent, phrases) in [
        ("opt_out", OPT_OUT),
        ("wrong_person", WRONG),
        ("are_you_a_robot", ROBOT),
        ("who_is_this", WHO),
        ("call_later", LATER),
    ] {
        if phrases.iter().any(|p| contains_phrase(&t, p)) {
            return Some(intent.into());
        }
    }
    let node = script.nodes.get(node)?;
    let mut best: Option<(usize, &str)> = None;
    for intent in &node.intents {
        for ex in &intent.examples {
            let ex = normalize(ex);
            if !ex.is_empty()
                && (t == ex || contains_phrase(&t, &ex))
                && best.is_none_or(|(len, _)| ex.len() > len)
            {
                best = Some((ex.len(), &intent.name));
            }
        }
    }
    if let Some((_, name)) = best {
        return Some(name.to_string());
    }
    // A number at a node that asks for one ("about $200 a month") is the answer: the intent
    // whose examples are numbers, when exactly one intent has such examples.
    let asks_number = node.capture.values().any(|t| matches!(t, VarType::Number));
    if asks_number && has_number(&t) {
        let numeric: Vec<&str> = node
            .intents
            .iter()
            .filter(|i| i.examples.iter().any(|e| has_number(&normalize(e))))
            .map(|i| i.name.as_str())
            .collect();
        if let [only] = numeric[..] {
            return Some(only.to_string());
        }
    }
    // Likewise a time where one is asked for ("tomorrow at ten", "Friday morning", "at 10").
    let asks_text = node.capture.values().any(|t| matches!(t, VarType::String));
    if asks_text && has_time(&t) {
        let timely: Vec<&str> = node
            .intents
            .iter()
            .filter(|i| i.examples.iter().any(|e| has_time(&normalize(e))))
            .map(|i| i.name.as_str())
            .collect();
        if let [only] = timely[..] {
            return Some(only.to_string());
        }
    }
    // Near matches: most content words of an example appear in the answer
    // ("we own the house" ~ "Yes, we own our house").
    let words: Vec<&str> = t
        .split_whitespace()
        .filter(|w| !STOP_WORDS.contains(w))
        .collect();
    let mut best: Option<(f32, &str)> = None;
    for intent in &node.intents {
        for ex in &intent.examples {
            let ex = normalize(ex);
            let content: Vec<&str> = ex
                .split_whitespace()
                .filter(|w| !STOP_WORDS.contains(w))
                .collect();
            if content.is_empty() {
                continue;
            }
            let hits = content.iter().filter(|w| words.contains(w)).count();
            let score = hits as f32 / content.len() as f32;
            if hits >= 1 && score >= 0.6 && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, &intent.name));
            }
        }
    }
    best.map(|(_, name)| name.to_string())
}

/// Words too common to tell intents apart.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "i", "it", "is", "it's", "we", "my", "to", "of", "and", "about", "around",
    "so", "well", "um", "uh", "oh", "just", "that", "this", "be",
];

/// Labels the model may choose: the node's intents, the harmless side questions and
/// `unclear`. Irreversible ones (opt-out, wrong person) come from the rules only: a tiny model
/// must not be able to end a call by mistake.
pub fn llm_labels(script: &Script, node: &str) -> Vec<String> {
    let mut labels: Vec<String> = script
        .nodes
        .get(node)
        .map(|n| n.intents.iter().map(|i| i.name.clone()).collect())
        .unwrap_or_default();
    labels.extend(["are_you_a_robot", "who_is_this", "call_later", "unclear"].map(String::from));
    labels
}

/// GBNF for the node: a JSON object with the intent label and every variable (typed or null).
pub fn grammar(script: &Script, node: &str) -> String {
    let labels: Vec<String> = llm_labels(script, node)
        .iter()
        .map(|l| format!("\"\\\"{l}\\\"\""))
        .collect();
    let mut root = String::from("root ::= \"{\\\"intent\\\": \" intent");
    let mut rules = vec![format!("intent ::= {}", labels.join(" | "))];
    if let Some(n) = script.nodes.get(node) {
        for (name, ty) in &n.capture {
            let rule = match ty {
                VarType::Bool => "bool",
                VarType::Number => "num",
                VarType::String => "str",
            };
            root.push_str(&format!(" \", \\\"{name}\\\": \" {rule}"));
        }
    }
    root.push_str(" \"}\"");
    rules.push("bool ::= \"true\" | \"false\" | \"null\"".into());
    rules.push("num ::= [0-9] [0-9]? [0-9]? [0-9]? [0-9]? | \"null\"".into());
    rules.push("str ::= \"\\\"\" [a-zA-Z0-9 ,.:'-]+ \"\\\"\" | \"null\"".into());
    format!("{root}\n{}\n", rules.join("\n"))
}

/// The classification prompt for the node.
pub fn prompt(script: &Script, node: &str, text: &str) -> Vec<ChatMessage> {
    let n = script.nodes.get(node);
    let mut labels = String::new();
    if let Some(n) = n {
        for i in &n.intents {
            labels.push_str(&format!(
                "- {}: like \"{}\"\n",
                i.name,
                i.examples.join("\", \"")
            ));
        }
    }
    labels.push_str("- are_you_a_robot\n- who_is_this\n- call_later\n- unclear: none of these\n");
    let question = n.and_then(|n| n.say.clone()).unwrap_or_default();
    let vars = n
        .map(|n| n.capture.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    vec![
        ChatMessage::new(
            "system",
            format!("You label what a person said on a phone call. Labels:\n{labels}Also extract: {vars}. Answer in JSON."),
        ),
        ChatMessage::new("user", format!("Question: {question}\nAnswer: {text}")),
    ]
}

/// Parses the grammar-constrained output; anything unexpected becomes `unclear`.
pub fn parse(script: &Script, node: &str, output: &str) -> Classified {
    let unclear = || Classified {
        intent: "unclear".into(),
        captured: BTreeMap::new(),
        by: "llm",
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(output.trim()) else {
        return unclear();
    };
    let Some(intent) = value["intent"].as_str() else {
        return unclear();
    };
    if !llm_labels(script, node).iter().any(|n| n == intent) {
        return unclear();
    }
    let mut captured = BTreeMap::new();
    if let Some(n) = script.nodes.get(node) {
        for name in n.capture.keys() {
            let v = &value[name.as_str()];
            let s = match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            };
            if let Some(s) = s {
                captured.insert(name.clone(), s);
            }
        }
    }
    Classified {
        intent: intent.to_string(),
        captured,
        by: "llm",
    }
}

/// Values the rules can read without a model: the first number for numeric variables, the
/// yes/no of the chosen intent for booleans, the whole answer for strings.
pub fn extract_by_rules(
    script: &Script,
    node: &str,
    intent: &str,
    text: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(n) = script.nodes.get(node) else {
        return out;
    };
    for (name, ty) in &n.capture {
        let value = match ty {
            VarType::Number => {
                let words = normalize(text);
                words
                    .split_whitespace()
                    .find(|w| w.chars().any(|c| c.is_ascii_digit()))
                    .map(str::to_string)
                    .or_else(|| spelled_number(&words).map(|n| n.to_string()))
            }
            VarType::Bool => match intent {
                "yes" => Some("true".into()),
                "no" => Some("false".into()),
                _ => None,
            },
            VarType::String => {
                Some(text.trim().trim_end_matches(['.', '!']).to_string()).filter(|s| !s.is_empty())
            }
        };
        if let Some(v) = value {
            out.insert(name.clone(), v);
        }
    }
    out
}

/// Words that make an answer a time: days, parts of the day, clock words, or a number.
fn has_time(words: &str) -> bool {
    const TIME_WORDS: &[&str] = &[
        "today",
        "tomorrow",
        "tonight",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "morning",
        "afternoon",
        "evening",
        "noon",
        "weekend",
        "week",
        "am",
        "pm",
        "oclock",
        "o'clock",
    ];
    has_number(words) || words.split_whitespace().any(|w| TIME_WORDS.contains(&w))
}

/// Digits or a spelled number in normalized text.
fn has_number(words: &str) -> bool {
    words.chars().any(|c| c.is_ascii_digit()) || spelled_number(words).is_some()
}

/// "two hundred" -> 200, "ninety five" -> 95 (enough for bills spoken as words).
fn spelled_number(words: &str) -> Option<u32> {
    let unit = |w: &str| -> Option<u32> {
        Some(match w {
            "one" => 1,
            "two" => 2,
            "three" => 3,
            "four" => 4,
            "five" => 5,
            "six" => 6,
            "seven" => 7,
            "eight" => 8,
            "nine" => 9,
            "ten" => 10,
            "eleven" => 11,
            "twelve" => 12,
            "fifteen" => 15,
            "twenty" => 20,
            "thirty" => 30,
            "forty" => 40,
            "fifty" => 50,
            "sixty" => 60,
            "seventy" => 70,
            "eighty" => 80,
            "ninety" => 90,
            _ => return None,
        })
    };
    let (mut total, mut current, mut seen) = (0u32, 0u32, false);
    for w in words.split_whitespace() {
        if let Some(v) = unit(w) {
            current += v;
            seen = true;
        } else if w == "hundred" && seen {
            current = current.max(1) * 100;
        } else if w == "thousand" && seen {
            total += current.max(1) * 1000;
            current = 0;
        } else if seen && w != "and" {
            break;
        }
    }
    seen.then_some(total + current)
}

#[cfg(test)]
mod tests;
