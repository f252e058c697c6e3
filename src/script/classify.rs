//! Turning a caller's words into one of the node's intents plus the node's typed variables.
//!
//! Two layers, because the law cannot depend on a 135M-parameter model. Rules first, in this
//! order: opt-out, wrong person, decline ("not interested", "no thanks", "I'm good"), call me
//! later, the robot question by its key words, requests to repeat ("Hello?", "What?"). Then
//! requests for time ("hold on", "one second") are taken out of the turn ([`asks`]) and the
//! rest is read on: the longest example phrase of the node's intents and the FAQs together,
//! then typed answers read by [`super::slots`] (a time, a number, a leading yes/no picks the
//! intent that needs it); a turn that asked for time and holds no answer is `hold`; then
//! questions: an FAQ by a near match, else `unknown_question`; a question never reaches the
//! model and is never captured. Last, near matches of the node's examples. Only then the LLM,
//! under a GBNF grammar that admits `{"intent": <label>, <each variable>: <typed value or
//! null>}` where the labels are the node's intents, the FAQ ids, `call_later` and `unclear`
//! ("when no label fits say unclear"). Irreversible intents (opt-out, wrong person, decline)
//! are rules only: a tiny model must not be able to end a call by mistake. An FAQ label from
//! the model counts only when the answer shares a word with that FAQ's examples (else
//! `unclear`): small models pick question labels for plain statements.
//!
//! Values are read by the parsers, never copied from words: a time is captured only when it
//! parses inside the calling window (stored by [`store_time`]), a number when one was said;
//! what the model returns for a variable is re-checked the same way.

use std::collections::BTreeMap;

use chrono::DateTime;
use chrono_tz::Tz;

use super::format::{intents, Node, Script, VarType, CALLBACK_NODE};
use super::machine::{number, Rejection};
use super::slots::{parse_number, parse_time, parse_yes_no, speak_clock, store_time, TimeError};
use crate::leads::window::CallingWindow;
use crate::model::{ChatMessage, Outcome};

mod ahead;
mod asks;
mod phrases;
use ahead::{ahead, time_elsewhere, times_for};
use asks::{is_repeat, without_holds};
use phrases::*;

/// The classifier's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub intent: String,
    /// The node's variables that were read (stored forms).
    pub captured: BTreeMap<String, String>,
    /// The node's variables that could not be used, and why.
    pub rejected: BTreeMap<String, Rejection>,
    /// `rule`, `llm`, or `ear` (not read: the recogniser was unsure and the rules could not).
    pub by: &'static str,
}

impl Classified {
    fn rule(intent: &str) -> Self {
        Self {
            intent: intent.to_string(),
            captured: BTreeMap::new(),
            rejected: BTreeMap::new(),
            by: "rule",
        }
    }

    /// Words the recogniser was unsure of and the rules could not read: `unclear`.
    pub fn unsure() -> Self {
        Self {
            by: "ear",
            ..Self::rule(intents::UNCLEAR)
        }
    }
}

/// Lowercased words, apostrophes dropped ("don't" -> "dont"), other punctuation a space.
pub fn normalize(text: &str) -> String {
    let lower = text.to_lowercase();
    let cleaned: String = lower
        .chars()
        .filter(|c| *c != '\'' && *c != '’')
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A day, a part of the day or a.m./p.m.: the answer names a time.
fn says_when(text: &str) -> bool {
    const WHEN: &[&str] = &[
        "today",
        "tonight",
        "tomorrow",
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
        "oclock",
        "pm",
        "a m",
        "p m",
        "half past",
        "next week",
        "hour",
        "hours",
        "minutes",
    ];
    let t = normalize(text);
    // "am" only after a number ("10 am"): "I am" names no time.
    let words: Vec<&str> = t.split(' ').collect();
    let am = words
        .windows(2)
        .any(|w| w[1] == "am" && w[0].chars().all(|c| c.is_ascii_digit()));
    am || WHEN.iter().any(|w| contains_phrase(&t, w))
}

fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    let phrase = normalize(phrase);
    !phrase.is_empty() && format!(" {haystack} ").contains(&format!(" {phrase} "))
}

fn any_phrase(t: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| contains_phrase(t, p))
}

/// "Stop calling me" and its variants, by rule alone (an opt-out said over the goodbye is
/// honoured after the call's script has ended).
pub fn is_opt_out(text: &str) -> bool {
    says_opt_out(&normalize(text))
}

fn says_opt_out(t: &str) -> bool {
    any_phrase(t, OPT_OUT) || negates_calling_again(t)
}

/// A negation, then "call(ed) this number again" a few words on: "Don't ever call this number
/// again", and what a small ear leaves of it ("No time we're called this humber again": it
/// drops a word's first "n"). Without a negation it is a request ("call this number again
/// tomorrow"). Opt-outs lean this way on purpose: a missed one breaks the law, a false one
/// loses a lead.
fn negates_calling_again(t: &str) -> bool {
    let words: Vec<&str> = t.split_whitespace().collect();
    words.windows(4).enumerate().any(|(i, w)| {
        matches!(w[0], "call" | "called" | "calling" | "ring" | "dial")
            && matches!(w[1], "this" | "my" | "that")
            && matches!(w[2], "number" | "humber" | "umber" | "phone")
            && w[3] == "again"
            && words[i.saturating_sub(4)..i]
                .iter()
                .any(|b| matches!(*b, "no" | "not" | "never" | "dont"))
    })
}

/// "Not interested" and its variants; a plain "no" is not one (it stays the node's answer).
pub fn is_decline(t: &str) -> bool {
    if any_phrase(t, DECLINE) || negates_interest(t) {
        return true;
    }
    let rest: Vec<&str> = t
        .split_whitespace()
        .filter(|w| !DECLINE_FILLER.contains(w))
        .collect();
    let whole = t.split_whitespace().collect::<Vec<_>>();
    DECLINE_WHOLE.iter().any(|p| {
        let p = normalize(p);
        let words: Vec<&str> = p.split_whitespace().collect();
        // The phrase is the whole answer once filler around it is dropped.
        let without = words.iter().filter(|w| !DECLINE_FILLER.contains(w)).count();
        let at = whole.windows(words.len()).any(|w| w == words.as_slice());
        at && rest.len() == without
    })
}

/// "Not" (or "never") a few words before "interested": "not at all interested", "not really
/// that interested", and what a small ear leaves of "not interested" ("I did not be
/// interested"). "Not only interested" is no decline.
fn negates_interest(t: &str) -> bool {
    let words: Vec<&str> = t.split_whitespace().collect();
    words.iter().enumerate().any(|(i, w)| {
        let before = &words[i.saturating_sub(4)..i];
        *w == "interested"
            && before
                .iter()
                .rposition(|b| matches!(*b, "not" | "never"))
                .is_some_and(|n| !before[n..].contains(&"only"))
    })
}

/// A short question that opens with "who" ("Hello? Who is this?", heard as "who is me" or
/// "who's that"): on a call we placed it asks who is calling, however Whisper spelt the rest.
/// A longer one ("who is going to install the panels") is left to the examples.
fn asks_who(t: &str) -> bool {
    let words: Vec<&str> = t
        .split_whitespace()
        .skip_while(|w| OPENERS.contains(w))
        .collect();
    matches!(words.first(), Some(&("who" | "whos"))) && words.len() <= 4
}

/// A question: ends with "?" or starts (after openers) like one ("how about Friday" and "what
/// about Friday" are proposals, not questions).
pub fn is_question(raw: &str, t: &str) -> bool {
    let words: Vec<&str> = t
        .split_whitespace()
        .skip_while(|w| OPENERS.contains(w))
        .collect();
    let Some(first) = words.first() else {
        return raw.trim_end().ends_with('?');
    };
    if matches!(words.get(1), Some(&"about")) && matches!(*first, "how" | "what") {
        return false;
    }
    raw.trim_end().ends_with('?') || WH.contains(first) || (AUX.contains(first) && words.len() >= 3)
}

/// The example phrase (of the node's intents and of the FAQs) the answer is or contains, the
/// longest winning (the node's on a tie): "okay, what is it" is the node's yes, not the
/// "what is it about" question.
fn by_examples(script: &Script, node: &Node, t: &str) -> Option<String> {
    let labelled = node
        .intents
        .iter()
        .map(|i| (&i.name, &i.examples))
        .chain(script.faqs.iter().map(|f| (&f.id, &f.examples)));
    let mut best: Option<(usize, &String)> = None;
    for (label, examples) in labelled {
        for ex in examples {
            let ex = normalize(ex);
            if contains_phrase(t, &ex) && best.is_none_or(|(len, _)| ex.len() > len) {
                best = Some((ex.len(), label));
            }
        }
    }
    best.map(|(_, l)| l.clone())
}

/// Content words of an example found in the answer: the best label whose example has at least
/// two content words, at least 60% of them present ("we own the house" ~ "yes, we own our
/// house"). Only when both are negated or neither is: "now is a good time" shares three of
/// four words with "now is not a good time", and means the opposite.
fn near<'a>(
    t: &str,
    labelled: impl Iterator<Item = (&'a String, &'a Vec<String>)>,
) -> Option<String> {
    let words: Vec<&str> = t
        .split_whitespace()
        .filter(|w| !STOP_WORDS.contains(w))
        .collect();
    let mut best: Option<(f32, &String)> = None;
    for (label, examples) in labelled {
        for ex in examples {
            let ex = normalize(ex);
            let content: Vec<&str> = ex
                .split_whitespace()
                .filter(|w| !STOP_WORDS.contains(w))
                .collect();
            if content.len() < 2 && !(content.len() == 1 && words.len() == 1) {
                continue;
            }
            if negated(&ex) != negated(t) {
                continue;
            }
            let hits = content.iter().filter(|w| words.contains(w)).count();
            let score = hits as f32 / content.len() as f32;
            if hits >= 1 && score >= 0.6 && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, label));
            }
        }
    }
    best.map(|(_, l)| l.clone())
}

/// Deterministic classification (see the module doc for the order). `None` leaves it to the
/// LLM. `now` (in the lead's zone) and `window` resolve times.
pub fn by_rules(
    script: &Script,
    node: &str,
    text: &str,
    now: DateTime<Tz>,
    window: &CallingWindow,
) -> Option<Classified> {
    let t = normalize(text);
    if t.is_empty() {
        return Some(Classified::rule(intents::UNCLEAR));
    }
    if says_opt_out(&t) {
        return Some(Classified::rule(intents::OPT_OUT));
    }
    if any_phrase(&t, WRONG_PERSON) {
        return Some(Classified::rule(intents::WRONG_PERSON));
    }
    if is_decline(&t) {
        // A node that routes declines itself (an intent with a decline among its examples and
        // a not-interested end next: the pitch's "no") takes the decline as that answer, so its
        // variable is captured ("interested" = false); anywhere else the global decline ends
        // the call politely.
        let own = script.nodes.get(node).and_then(|n| {
            n.intents
                .iter()
                .find(|i| {
                    i.examples.iter().any(|e| is_decline(&normalize(e)))
                        && script
                            .nodes
                            .get(&i.next)
                            .is_some_and(|e| e.end == Some(Outcome::NotInterested))
                })
                .map(|i| with_values(n, &i.name, text, now, window, "rule"))
        });
        return Some(own.unwrap_or_else(|| Classified::rule(intents::DECLINE)));
    }
    let n = script.nodes.get(node)?;
    if any_phrase(&t, CALL_LATER) {
        // "Call me back tomorrow at ten": at a node that asks for a time it is that answer;
        // elsewhere the callback node takes the time at once.
        let here = by_slots(n, text, now, window).filter(|c| c.rejected.is_empty());
        if let Some(c) = here {
            return Some(c);
        }
        // A bare "later" names no time: the callback node asks for one.
        let named: Vec<&str> = text
            .split_whitespace()
            .filter(|w| normalize(w) != "later")
            .collect();
        let mut c = Classified::rule(intents::CALL_LATER);
        c.captured = times_for(script, CALLBACK_NODE, &named.join(" "), now, window);
        return Some(c);
    }
    if any_phrase(&t, ROBOT) && script.faq("are_you_a_robot").is_some() {
        return Some(Classified::rule("are_you_a_robot"));
    }
    if asks_who(&t) && script.faq("who_is_this").is_some() {
        return Some(Classified::rule("who_is_this"));
    }
    if is_repeat(&t) {
        return Some(Classified::rule(intents::REPEAT));
    }
    // "Hold on, let me find my bill": the rest is read as any turn (it may hold the answer:
    // "one second... about two hundred", never the "one"); with no answer in it, or only the
    // request, the caller asked us to wait.
    let rest = without_holds(text);
    let held = rest.is_some();
    let (text, t) = match &rest {
        Some(r) => (r.as_str(), normalize(r)),
        None => (text, t),
    };
    if n.open {
        return Some(match by_examples_faq_only(script, &t) {
            Some(id) => Classified::rule(&id),
            None if held && !is_question(text, &t) => Classified::rule(intents::HOLD),
            None => Classified::rule(intents::OPEN),
        });
    }
    if let Some(label) = by_examples(script, n, &t) {
        return Some(ahead(
            script,
            n,
            with_values(n, &label, text, now, window, "rule"),
            text,
            now,
            window,
        ));
    }
    if let Some(c) = by_slots(n, text, now, window) {
        return Some(c);
    }
    if let Some(c) = time_elsewhere(script, n, text, now, window) {
        return Some(c);
    }
    let asks = is_question(text, &t);
    if held && !asks {
        return Some(Classified::rule(intents::HOLD));
    }
    if asks {
        let faq = near(&t, script.faqs.iter().map(|f| (&f.id, &f.examples)));
        return Some(Classified::rule(
            faq.as_deref().unwrap_or(intents::UNKNOWN_QUESTION),
        ));
    }
    let label = near(&t, n.intents.iter().map(|i| (&i.name, &i.examples)))?;
    Some(ahead(
        script,
        n,
        with_values(n, &label, text, now, window, "rule"),
        text,
        now,
        window,
    ))
}

/// At an open node only the FAQs' own phrases count (the model answers everything else).
fn by_examples_faq_only(script: &Script, t: &str) -> Option<String> {
    let mut best: Option<(usize, &String)> = None;
    for f in &script.faqs {
        for ex in &f.examples {
            let ex = normalize(ex);
            if contains_phrase(t, &ex) && best.is_none_or(|(len, _)| ex.len() > len) {
                best = Some((ex.len(), &f.id));
            }
        }
    }
    best.map(|(_, id)| id.clone())
}

/// A typed answer where the node asks for one: a time (also one that is past or outside the
/// window: the caller named a time, the retry says why it cannot be used), a number, or a
/// leading yes/no, picks the intent that needs the variable (else the one intent whose
/// examples are of that type, or the intent named `yes`/`no`).
fn by_slots(n: &Node, text: &str, now: DateTime<Tz>, window: &CallingWindow) -> Option<Classified> {
    for (var, ty) in &n.capture {
        let intent = match ty {
            VarType::Time => match parse_time(text, now, window) {
                Err(TimeError::NoTime) => None,
                _ => typed_intent(n, var, |ex| {
                    !matches!(parse_time(ex, now, window), Err(TimeError::NoTime))
                }),
            },
            // "Tomorrow at three" says when, not how much.
            VarType::Number if says_when(text) => None,
            VarType::Number => parse_number(text)
                .and_then(|_| typed_intent(n, var, |ex| parse_number(ex).is_some())),
            VarType::Bool => leading_yes_no(text).and_then(|yes| {
                let name = if yes { "yes" } else { "no" };
                n.intents
                    .iter()
                    .find(|i| i.name == name)
                    .map(|i| i.name.clone())
            }),
            VarType::String => None,
        };
        if let Some(intent) = intent {
            return Some(with_values(n, &intent, text, now, window, "rule"));
        }
    }
    None
}

/// The intent that needs `var`, else the only one with an example of its type.
fn typed_intent(n: &Node, var: &str, of_type: impl Fn(&str) -> bool) -> Option<String> {
    if let Some(i) = n.intents.iter().find(|i| i.needs.iter().any(|v| v == var)) {
        return Some(i.name.clone());
    }
    let typed: Vec<&String> = n
        .intents
        .iter()
        .filter(|i| i.examples.iter().any(|e| of_type(e)))
        .map(|i| &i.name)
        .collect();
    match typed[..] {
        [only] => Some(only.clone()),
        _ => None,
    }
}

/// A yes/no that opens the answer ("yeah, we do", "I do"; not "we have two kids").
fn leading_yes_no(text: &str) -> Option<bool> {
    let v = parse_yes_no(text)?;
    let t = normalize(text);
    let words: Vec<&str> = t.split_whitespace().collect();
    let first = words.first().map(|w| parse_yes_no(w)) == Some(Some(v));
    let pair = words.len() >= 2 && LEADING_PAIRS.contains(&words[..2].join(" ").as_str());
    (first || pair).then_some(v)
}

fn with_values(
    n: &Node,
    intent: &str,
    text: &str,
    now: DateTime<Tz>,
    window: &CallingWindow,
    by: &'static str,
) -> Classified {
    let (captured, rejected) = if n.intents.iter().any(|i| i.name == intent) {
        read(n, intent, text, now, window)
    } else {
        Default::default()
    };
    Classified {
        intent: intent.to_string(),
        captured,
        rejected,
        by,
    }
}

/// Reads the node's variables from the answer: times and numbers by the parsers, booleans from
/// the chosen yes/no intent (else the answer's yes/no), strings as said.
pub fn read(
    n: &Node,
    intent: &str,
    text: &str,
    now: DateTime<Tz>,
    window: &CallingWindow,
) -> (BTreeMap<String, String>, BTreeMap<String, Rejection>) {
    let mut captured = BTreeMap::new();
    let mut rejected = BTreeMap::new();
    for (name, ty) in &n.capture {
        let value = match ty {
            VarType::Time => match parse_time(text, now, window) {
                Ok(t) => Ok(store_time(&t)),
                Err(TimeError::NoTime) => Err(Rejection::Unreadable),
                Err(TimeError::Past) => Err(Rejection::Past),
                Err(TimeError::OutsideWindow { .. }) => Err(Rejection::OutsideWindow {
                    hours: speak_window(window),
                }),
            },
            // "Thursday at 4:30 p.m." says when, not how much: its numbers are no amount
            // ("one fifty" alone stays an amount).
            VarType::Number if says_when(text) => Err(Rejection::Unreadable),
            VarType::Number => parse_number(text).map(number).ok_or(Rejection::Unreadable),
            VarType::Bool => match intent {
                "yes" => Ok("true".into()),
                "no" => Ok("false".into()),
                _ => parse_yes_no(text)
                    .map(|b| b.to_string())
                    .ok_or(Rejection::Unreadable),
            },
            VarType::String => Some(text.trim().trim_end_matches(['.', '!']).to_string())
                .filter(|s| !s.is_empty())
                .ok_or(Rejection::Unreadable),
        };
        match value {
            Ok(v) => {
                captured.insert(name.clone(), v);
            }
            Err(r) => {
                rejected.insert(name.clone(), r);
            }
        }
    }
    (captured, rejected)
}

/// "between 8 a.m. and 9 p.m."
pub fn speak_window(w: &CallingWindow) -> String {
    format!(
        "between {} and {}",
        speak_clock(w.start),
        speak_clock(w.end)
    )
}

/// Labels the model may choose: the node's intents, the FAQs, `call_later` and `unclear`.
/// Irreversible ones (opt-out, wrong person, decline) come from the rules only.
pub fn llm_labels(script: &Script, node: &str) -> Vec<String> {
    let mut labels: Vec<String> = script
        .nodes
        .get(node)
        .map(|n| n.intents.iter().map(|i| i.name.clone()).collect())
        .unwrap_or_default();
    labels.extend(script.faqs.iter().map(|f| f.id.clone()));
    labels.push(intents::CALL_LATER.into());
    labels.push(intents::UNCLEAR.into());
    labels
}

/// GBNF for the node: a JSON object with the intent label and every variable (typed or null;
/// a time is a short string the parser then checks).
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
                VarType::String | VarType::Time => "str",
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

/// The classification prompt: the labels with a few examples each (the shared ones first), the
/// node's question, the caller's words.
pub fn prompt(script: &Script, node: &str, text: &str) -> Vec<ChatMessage> {
    let n = script.nodes.get(node);
    let like = |examples: &[String]| {
        let shown: Vec<&str> = examples.iter().take(3).map(String::as_str).collect();
        format!("like \"{}\"", shown.join("\", \""))
    };
    // The labels every node shares first, the node's own after them: the shared part is the
    // same prompt prefix at every node, so it stays in the model's KV cache and a turn
    // evaluates only the node's labels, its question and the caller's words.
    let mut labels = String::new();
    for f in &script.faqs {
        labels.push_str(&format!("- {}: asks {}\n", f.id, like(&f.examples)));
    }
    labels.push_str("- call_later: wants to be called another time\n- unclear: when no label fits say unclear\n");
    if let Some(n) = n {
        for i in &n.intents {
            labels.push_str(&format!("- {}: {}\n", i.name, like(&i.examples)));
        }
    }
    let question = n.and_then(|n| n.say.clone()).unwrap_or_default();
    let vars = n
        .map(|n| n.capture.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    vec![
        ChatMessage::new(
            "system",
            format!("You label what a person said on a phone call. Labels:\n{labels}Also extract: {vars}. Answer in JSON."),
        ),
        ChatMessage::new(
            "user",
            format!("The agent asked: {question}\nThe person said: {text}"),
        ),
    ]
}

/// The model's grammar-constrained answer, checked: a foreign label is `unclear`; variables are
/// read from the caller's words first, the model's values only fill what the parsers did not
/// find and must parse themselves (a time the parser cannot read is not captured).
pub fn from_llm(
    script: &Script,
    node: &str,
    text: &str,
    output: &str,
    now: DateTime<Tz>,
    window: &CallingWindow,
) -> Classified {
    let unclear = || Classified {
        by: "llm",
        ..Classified::rule(intents::UNCLEAR)
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
    let Some(n) = script.nodes.get(node) else {
        return unclear();
    };
    // A tiny model likes to pick a question label for any statement ("it varies by season" ->
    // how did you get my number): an FAQ counts only if the answer shares a word with it.
    if let Some(faq) = script.faq(intent) {
        let said = normalize(text);
        let said: Vec<&str> = said.split_whitespace().collect();
        let grounded = faq.examples.iter().any(|e| {
            normalize(e)
                .split_whitespace()
                .any(|w| !GROUNDING_STOP.contains(&w) && said.contains(&w))
        });
        if !grounded {
            return unclear();
        }
    }
    let mut c = with_values(n, intent, text, now, window, "llm");
    if n.intents.iter().any(|i| i.name == intent) {
        for (name, ty) in &n.capture {
            if c.captured.contains_key(name) {
                continue;
            }
            let v = &value[name.as_str()];
            let filled = match (ty, v) {
                (VarType::Time, serde_json::Value::String(s)) => {
                    parse_time(s, now, window).ok().map(|t| store_time(&t))
                }
                (VarType::Number, serde_json::Value::Number(x)) => x.as_f64().map(number),
                (VarType::Bool, serde_json::Value::Bool(b)) => Some(b.to_string()),
                _ => None,
            };
            if let Some(f) = filled {
                c.rejected.remove(name);
                c.captured.insert(name.clone(), f);
            }
        }
    }
    c
}

#[cfg(test)]
mod tests;
