//! Script files (TOML): persona, disclosure, nodes with intents, transitions, typed variables to
//! capture, end nodes with outcomes, answers to the questions callers ask (`[[faq]]`), and the
//! lines for the global intents every call must handle (opt-out, decline, wrong person, ...).
//! Raw serde structs are validated into [`Script`], which cannot be inconsistent (every
//! transition lands on a node, every node is reachable, names are unique, needed variables are
//! captured, the robot answer admits it is automated).
//!
//! Lines are rendered with [`Script::render`]: `{persona}`, `{company}`, `{callback_number}`,
//! the lead's columns and captured variables, each spoken by its type (a time as "Wednesday,
//! December 2 at 3 p.m.", never its stored form). A `{variable}` the call does not know is left
//! out (and the punctuation around it tidied), never spoken as braces; validation warns about
//! names no node captures, since only the lead's columns can fill them.

use std::collections::BTreeMap;
use std::path::Path;

use chrono_tz::Tz;
use serde::Deserialize;

use super::slots::{speak_time, stored_time};
use crate::model::Outcome;

mod builtin;
mod validate;

pub use builtin::{OpenConversation, BUILTIN_FAQS};

/// Every problem found in a script, each with its location.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}", .problems.iter().map(|p| format!("{}: {}", p.key, p.reason)).collect::<Vec<_>>().join("; "))]
pub struct ScriptError {
    pub file: String,
    pub problems: Vec<Problem>,
}

/// One problem: where (a key path like `node[2].intent[0].next`, with the line when known) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    script: RawHeader,
    #[serde(default)]
    globals: RawGlobals,
    #[serde(default, rename = "faq")]
    faqs: Vec<RawFaq>,
    #[serde(default, rename = "node")]
    nodes: Vec<RawNode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    persona: String,
    company: String,
    callback_number: String,
    opening: String,
    disclosure: String,
    start: String,
    #[serde(default)]
    persona_prompt: Option<String>,
    #[serde(default)]
    opt_out_digit: Option<String>,
    #[serde(default)]
    max_call_seconds: Option<u32>,
    #[serde(default)]
    silence_reprompt_seconds: Option<u32>,
    #[serde(default)]
    max_silence_reprompts: Option<u32>,
    /// How long we wait, quiet, after "hold on" before asking whether the caller is there.
    #[serde(default)]
    hold_seconds: Option<u32>,
    #[serde(default)]
    voicemail: Option<String>,
    #[serde(default)]
    callback_greeting: Option<String>,
    /// Said instead of `opening` (before the disclosure) when the person rang us.
    #[serde(default)]
    inbound_opening: Option<String>,
    /// The entry node of a call the person placed (default: `start`).
    #[serde(default)]
    inbound_start: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobals {
    opt_out: Option<String>,
    decline: Option<String>,
    unknown_question: Option<String>,
    /// Alias of `[[faq]] id = "are_you_a_robot"`'s answer (older scripts).
    are_you_a_robot: Option<String>,
    /// Alias of `[[faq]] id = "who_is_this"`'s answer (older scripts).
    who_is_this: Option<String>,
    call_later: Option<String>,
    wrong_person: Option<String>,
    unclear: Option<String>,
    silence: Option<String>,
    hold: Option<String>,
    max_duration: Option<String>,
    transfer_closed: Option<String>,
    transfer_failed: Option<String>,
    transfer_no_answer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaq {
    id: String,
    #[serde(default)]
    examples: Vec<String>,
    answer: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: String,
    #[serde(default)]
    goal: Option<String>,
    #[serde(default)]
    say: Option<String>,
    #[serde(default)]
    generate: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    open: bool,
    #[serde(default)]
    sentences: Option<usize>,
    #[serde(default)]
    retry: Option<String>,
    #[serde(default)]
    fallback: Option<String>,
    #[serde(default)]
    skip_if_known: Option<String>,
    transfer: Option<String>,
    #[serde(default, rename = "intent")]
    intents: Vec<RawIntent>,
    #[serde(default)]
    capture: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: String,
    #[serde(default)]
    examples: Vec<String>,
    next: String,
    #[serde(default)]
    needs: Vec<String>,
}

/// Type of a captured variable: what the caller's answer must parse as to be captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    Bool,
    Number,
    String,
    /// A time in the lead's zone inside the calling window ([`super::slots::parse_time`]),
    /// stored as [`super::slots::store_time`], spoken as [`super::slots::speak_time`].
    Time,
}

impl VarType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "bool" => Self::Bool,
            "number" => Self::Number,
            "string" => Self::String,
            "time" => Self::Time,
            _ => return None,
        })
    }
}

/// Names of the intents every node listens for (recognised by rules; see `classify`).
pub mod intents {
    /// "Stop calling me" (words or the opt-out key): do-not-call at once.
    pub const OPT_OUT: &str = "opt_out";
    pub const WRONG_PERSON: &str = "wrong_person";
    /// "Not interested": a polite end, never a callback.
    pub const DECLINE: &str = "decline";
    pub const CALL_LATER: &str = "call_later";
    /// A question no FAQ answers.
    pub const UNKNOWN_QUESTION: &str = "unknown_question";
    pub const UNCLEAR: &str = "unclear";
    /// "What was that?", "Hello?": the question again, at once.
    pub const REPEAT: &str = "repeat";
    /// "Hold on", "one second": a short yes, then a longer quiet wait.
    pub const HOLD: &str = "hold";
    /// A caller turn at an open node that is no global intent: the model replies.
    pub const OPEN: &str = "open";
    /// Names scripts cannot give their own intents or FAQs.
    pub const RESERVED: &[&str] = &[
        OPT_OUT,
        WRONG_PERSON,
        DECLINE,
        CALL_LATER,
        UNKNOWN_QUESTION,
        UNCLEAR,
        REPEAT,
        HOLD,
        OPEN,
    ];
}

/// The node `call_later` leads to when the script has one.
pub const CALLBACK_NODE: &str = "callback";

#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub name: String,
    pub examples: Vec<String>,
    pub next: String,
    /// Variables that must parse for this intent to be taken; otherwise the node asks again.
    pub needs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub goal: String,
    /// Fixed line(s) spoken on entering the node; also its question, re-asked after a side
    /// question, silence or an unusable answer.
    pub say: Option<String>,
    /// Instruction for a generated line (the LLM phrases it within the node's goal): on entering
    /// a scripted node, on every caller turn at an open node.
    pub generate: Option<String>,
    /// End node: the call ends with this outcome after `say`.
    pub end: Option<Outcome>,
    /// Open node: no intents; every turn that is no global intent gets a generated reply.
    pub open: bool,
    /// Sentences a generated line may have.
    pub sentences: usize,
    /// Said when a needed variable did not parse (default: the unclear line and `say`).
    pub retry: Option<String>,
    /// Where the call goes when a needed variable still does not parse after the last try
    /// (default: the chosen intent's `next`). At a transfer node: where the call goes when no
    /// person can take it.
    pub fallback: Option<String>,
    /// When every variable this node captures is already known (an earlier call's answer, a
    /// lead column), the question is not asked: the call goes on to this node.
    pub skip_if_known: Option<String>,
    /// Transfer node: the one-line summary the advisor hears before the caller is bridged
    /// (rendered with the call's variables). Entering it says `say` (the handoff line) and
    /// hands the call to the campaign's transfer number, in business hours; otherwise the call
    /// goes to `fallback`.
    pub transfer: Option<String>,
    pub intents: Vec<Intent>,
    pub capture: BTreeMap<String, VarType>,
}

impl Node {
    /// What answers to this node's question sound like: its intents' examples as sentences,
    /// the first of every intent before the second of any, within `max_chars`. A recogniser
    /// primed with "About 150 dollars. Tomorrow at ten." writes "two hundred dollars" as "200
    /// dollars" and hears "next Tuesday at 10" as said; with the question alone tiny Whisper
    /// wrote "$200,000" and "next to make 10". None for a node without examples.
    pub fn answer_examples(&self, max_chars: usize) -> Option<String> {
        let lists: Vec<&[String]> = self.intents.iter().map(|i| &i.examples[..]).collect();
        as_sentences(&lists, '.', max_chars)
    }

    /// The node's answers that carry no value, as sentences: what a turn the ear doubts is
    /// listened to again against (`engine::TurnHints::choices`). An intent that needs a
    /// variable, or an example that names a number, is left out: the ear choosing "About 150
    /// dollars." or "Tomorrow at ten." would put a value in the caller's mouth.
    pub fn answer_choices(&self) -> Vec<String> {
        self.intents
            .iter()
            .filter(|i| i.needs.is_empty())
            .flat_map(|i| &i.examples)
            .filter(|e| super::slots::parse_number(e).is_none())
            .filter_map(|e| as_sentence(e, '.'))
            .collect()
    }
}

impl Script {
    /// How times sound, for a script that captures one: a caller may name a time at any node
    /// (an answer ahead of its question, [`super::classify`]), so the ear is primed with the
    /// shapes of a time wherever the call is, as a speech service's time class would. Whisper
    /// tiny on the phone line hears "The day after tomorrow at nine" as "But they have to
    /// tomorrow have to hide" without them, and as said with them. On 16 time phrasings that
    /// are neither here nor in the corpus (`examples/ear.rs`), the times heard right went from
    /// 5 to 9.
    pub fn time_examples(&self) -> Option<&'static str> {
        self.vars
            .values()
            .any(|t| *t == VarType::Time)
            .then_some(TIME_EXAMPLES)
    }

    /// What the questions callers ask anywhere sound like ("Who is this? Are you a robot?"):
    /// the first example of each FAQ, as [`Node::answer_examples`]. Without them a recogniser
    /// primed with a node's answers hears "Who is this?" as "Okay.".
    pub fn question_examples(&self, max_chars: usize) -> Option<String> {
        let lists: Vec<&[String]> = self
            .faqs
            .iter()
            .map(|f| &f.examples[..f.examples.len().min(1)])
            .collect();
        as_sentences(&lists, '?', max_chars)
    }
}

/// The shapes of a time as Whisper writes them: a weekday with a clock time, "half past", a
/// relative day, an interval. Four, not six: replayed over the 186 caller turns of a corpus
/// run (the same audio, only the prompt changed), six shapes made Whisper tiny hear "Who is
/// this?" as "This is this." and "Around ninety dollars." as "Around $20."; these four hear
/// both and lose none of the other turns ("Tonight around 7." and "Next Wednesday at noon."
/// were dropped).
const TIME_EXAMPLES: &str = "Monday at 9 a.m. Thursday at half past four. \
     The day after tomorrow at 3 p.m. In an hour.";

/// Examples from several lists as sentences ("Yes. No. Sure."; `stop` ends one that has no
/// mark), round-robin over the lists, whole sentences within `max_chars`.
fn as_sentences(lists: &[&[String]], stop: char, max_chars: usize) -> Option<String> {
    let mut out = String::new();
    let deepest = lists.iter().map(|l| l.len()).max()?;
    for rank in 0..deepest {
        for sentence in lists
            .iter()
            .filter_map(|l| l.get(rank))
            .filter_map(|e| as_sentence(e, stop))
        {
            let sep = usize::from(!out.is_empty());
            if out.len() + sep + sentence.len() > max_chars {
                return (!out.is_empty()).then_some(out);
            }
            if sep == 1 {
                out.push(' ');
            }
            out.push_str(&sentence);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// An example as Whisper writes it: a capital first, `stop` last unless it has a mark
/// ("not interested" -> "Not interested."). `None` for an empty one.
pub fn as_sentence(example: &str, stop: char) -> Option<String> {
    let example = example.trim();
    let first = example.chars().next()?;
    let mut sentence = first.to_uppercase().collect::<String>();
    sentence.push_str(&example[first.len_utf8()..]);
    if !sentence.ends_with(['.', '!', '?']) {
        sentence.push(stop);
    }
    Some(sentence)
}

/// A question callers ask anywhere: answered, then the node's question is asked again.
#[derive(Debug, Clone, PartialEq)]
pub struct Faq {
    pub id: String,
    pub examples: Vec<String>,
    pub answer: String,
}

/// Lines for the intents and events every node handles.
#[derive(Debug, Clone, PartialEq)]
pub struct Globals {
    pub opt_out: String,
    pub decline: String,
    pub unknown_question: String,
    pub call_later: String,
    pub wrong_person: String,
    pub unclear: String,
    pub silence: String,
    /// The answer to "hold on" / "one second": then we wait `hold_seconds`, quiet.
    pub hold: String,
    pub max_duration: String,
    /// Out of business hours, before the transfer node's fallback; `{hours}` says when.
    pub transfer_closed: String,
    /// The transfer could not be placed (no transfer number, Twilio refused): before the
    /// fallback.
    pub transfer_failed: String,
    /// The advisor did not answer: played to the caller (who is no longer on our stream)
    /// before the call ends with a callback offer.
    pub transfer_no_answer: String,
}

/// A validated script.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub name: String,
    pub persona: String,
    pub company: String,
    pub callback_number: String,
    pub opening: String,
    pub disclosure: String,
    pub start: String,
    /// The system message of generated lines (default: a polite phone assistant named
    /// `persona` calling for `company`).
    pub persona_prompt: Option<String>,
    pub opt_out_digit: Option<char>,
    pub max_call_seconds: u32,
    pub silence_reprompt_seconds: u32,
    pub max_silence_reprompts: u32,
    /// The quiet wait after the caller asked us to hold on (instead of the re-prompt time).
    pub hold_seconds: u32,
    /// Left on answering machines; `None`: hang up without a message.
    pub voicemail: Option<String>,
    /// Said right after the disclosure on a call the caller asked for ("You asked us to call
    /// back today about ..."); lines may use the variables earlier calls captured.
    pub callback_greeting: String,
    /// An inbound call's greeting (before the disclosure) and entry node.
    pub inbound_opening: String,
    pub inbound_start: String,
    pub globals: Globals,
    /// The built-in FAQs (answers possibly overridden), then the script's own.
    pub faqs: Vec<Faq>,
    pub nodes: BTreeMap<String, Node>,
    /// Type of every captured variable (one type per name across nodes).
    pub vars: BTreeMap<String, VarType>,
    /// Things that work but may not do what the author meant (unknown `{variables}`).
    pub warnings: Vec<Problem>,
}

impl Script {
    pub fn from_file(path: &Path) -> Result<Self, ScriptError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScriptError {
            file: file.clone(),
            problems: vec![Problem {
                key: "(file)".into(),
                reason: e.to_string(),
            }],
        })?;
        Self::from_toml(&file, &text)
    }

    /// Parses and validates; `file` names the source in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ScriptError> {
        let raw: RawScript = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            ScriptError {
                file: file.to_string(),
                problems: vec![Problem {
                    key: line
                        .map(|l| format!("line {l}"))
                        .unwrap_or_else(|| "(syntax)".into()),
                    reason: e.message().to_string(),
                }],
            }
        })?;
        validate::validate(raw).map_err(|problems| ScriptError {
            file: file.to_string(),
            problems,
        })
    }

    /// Fills `{persona}`, `{company}`, `{callback_number}` and `{variables}` (lead columns,
    /// captured answers spoken by type, in `tz`). Unknown or empty variables are left out.
    pub fn render(&self, text: &str, vars: &BTreeMap<String, String>, tz: Tz) -> String {
        let mut out = String::with_capacity(text.len());
        let mut dropped = false;
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}').filter(|&close| is_name(&after[..close])) {
                Some(close) => {
                    rest = &after[close + 1..];
                    match self.value(&after[..close], vars, tz) {
                        Some(v) => {
                            // "at 3 p.m." ending a sentence: one period, not two.
                            if v.ends_with('.') && rest.starts_with('.') {
                                rest = &rest[1..];
                            }
                            out.push_str(&v);
                        }
                        None => dropped = true,
                    }
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        if dropped {
            tidy(&out)
        } else {
            out
        }
    }

    /// How a variable is said: a time by [`speak_time`], a boolean as yes/no, others as stored.
    pub fn speak(&self, name: &str, value: &str, tz: Tz) -> String {
        match self.vars.get(name) {
            Some(VarType::Time) => stored_time(value, tz)
                .map(|t| speak_time(&t))
                .unwrap_or_else(|| value.to_string()),
            Some(VarType::Bool) => match value {
                "true" => "yes".into(),
                "false" => "no".into(),
                other => other.to_string(),
            },
            _ => value.to_string(),
        }
    }

    fn value(&self, name: &str, vars: &BTreeMap<String, String>, tz: Tz) -> Option<String> {
        let v = match name {
            "persona" => self.persona.clone(),
            "company" => self.company.clone(),
            "callback_number" => self.callback_number.clone(),
            _ => self.speak(name, vars.get(name)?.trim(), tz),
        };
        (!v.trim().is_empty()).then_some(v)
    }

    /// The lines any call may say word for word (no call variables in them), rendered: the
    /// voice synthesises them once when the script loads instead of on a caller's turn.
    pub fn fixed_lines(&self) -> Vec<String> {
        let g = &self.globals;
        let mut lines = vec![
            format!("{} {}", self.opening, self.disclosure),
            format!("{} {}", self.inbound_opening, self.disclosure),
            self.callback_greeting.clone(),
        ];
        for n in self.nodes.values() {
            lines.extend(n.say.iter().chain(&n.retry).cloned());
        }
        lines.extend(self.faqs.iter().map(|f| f.answer.clone()));
        lines.extend(
            [&g.opt_out, &g.decline, &g.unknown_question, &g.call_later]
                .into_iter()
                .chain([&g.wrong_person, &g.unclear, &g.silence, &g.max_duration])
                .chain([&g.hold])
                .chain([&g.transfer_failed])
                .cloned(),
        );
        let own = ["persona", "company", "callback_number"];
        let none = BTreeMap::new();
        let mut out: Vec<String> = lines
            .iter()
            .filter(|l| {
                l.split('{')
                    .skip(1)
                    .filter_map(|p| p.split_once('}').map(|(name, _)| name))
                    .filter(|name| is_name(name))
                    .all(|name| own.contains(&name))
            })
            .map(|l| self.render(l.trim(), &none, chrono_tz::UTC))
            .filter(|l| !l.is_empty())
            .collect();
        // The greeting first (the next call says it first), each line once.
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|l| seen.insert(l.clone()));
        out
    }

    pub fn faq(&self, id: &str) -> Option<&Faq> {
        self.faqs.iter().find(|f| f.id == id)
    }

    /// The intents a caller turn at `node` is classified into: the node's, the global ones,
    /// the FAQs, `unclear` (and `open` at an open node).
    pub fn intent_names(&self, node: &str) -> Vec<String> {
        let n = self.nodes.get(node);
        let mut names: Vec<String> = n
            .map(|n| n.intents.iter().map(|i| i.name.clone()).collect())
            .unwrap_or_default();
        if n.is_some_and(|n| n.open) {
            names.push(intents::OPEN.into());
        }
        names.extend(
            [
                intents::OPT_OUT,
                intents::WRONG_PERSON,
                intents::DECLINE,
                intents::CALL_LATER,
                intents::UNKNOWN_QUESTION,
                intents::REPEAT,
                intents::HOLD,
            ]
            .map(String::from),
        );
        names.extend(self.faqs.iter().map(|f| f.id.clone()));
        names.push(intents::UNCLEAR.into());
        names
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `{names}` a line uses.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}').filter(|&close| is_name(&after[..close])) {
            Some(close) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            None => rest = after,
        }
    }
    out
}

/// After a variable was left out: no double spaces, no space before punctuation, no
/// doubled commas ("Hi {name}, this is" -> "Hi, this is").
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        let starts_punct = word.starts_with([',', '.', '?', '!', ';', ':']);
        if starts_punct && !out.is_empty() {
            if out.ends_with(',') && word.starts_with(',') {
                out.push_str(&word[1..]);
            } else {
                out.push_str(word);
            }
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.replace(",,", ",").replace(",.", ".")
}

/// A line says the caller is talking to an automated system ("AI", "automated", "artificial
/// intelligence", "virtual assistant").
pub fn admits_automation(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.contains(&"ai")
        || words.windows(2).any(|w| w == ["a", "i"])
        || ["automated", "artificial intelligence", "virtual assistant"]
            .iter()
            .any(|p| lower.contains(p))
}

#[cfg(test)]
mod tests;
