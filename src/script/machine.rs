//! The script's state machine: `step(script, state, event) -> (state, actions)`, no I/O.
//!
//! Events are what happened on the call (a classified caller turn, silence, a key, the clock);
//! actions are what the call must do (say, generate a line, capture a variable, record
//! do-not-call, hang up with an outcome). The compliance rules live here, where no model can
//! skip them: the opening and AI disclosure come first and are not interruptible, an opt-out at
//! any point (words or key) ends the call at once with do-not-call, a decline ends it politely
//! (never as a callback), silence re-prompts then hangs up, and a maximum duration ends the call.
//!
//! Questions never move the call: an FAQ is answered (or an unknown question deferred to an
//! advisor) and the node's question asked again. Nor do requests about the conversation: "what
//! was that?" gets the question again, "hold on" a short yes and a longer quiet wait
//! ([`silence_seconds`]: the agent's silence clock asks the machine, so the rule is tested
//! here). An intent that `needs` a variable is taken only when the value parsed; otherwise the
//! node asks again with its `retry` line, and after [`MAX_TRIES`] unusable answers the call
//! moves on to the node's `fallback` (default: the intent's `next`) without the value.
//!
//! A transfer node hands the call to a person: in business hours ([`Desk::Open`]) it says its
//! handoff line and emits [`Action::Transfer`] with the advisor's summary; the call's agent
//! then reports [`Event::Transferred`] (the call is the advisor's) or
//! [`Event::TransferFailed`] (the caller is told and the call goes to the node's fallback).
//! Out of hours the caller hears when advisors are available and goes to the fallback at once.
//! The clock stays outside: the runner sets [`CallState::desk`] before each step.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use super::format::{intents, Intent, Node, Script, VarType, CALLBACK_NODE};
use super::slots::{parse_number, speak_clock, stored_time};
use crate::model::Outcome;

/// What happened on the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The media stream started.
    Started,
    /// A caller turn, classified into one of [`Script::intent_names`], with the values the
    /// classifier read for the node's variables (stored forms) and why needed ones could not be.
    Utterance {
        intent: String,
        text: String,
        captured: BTreeMap<String, String>,
        rejected: BTreeMap<String, Rejection>,
    },
    /// No caller speech for the script's re-prompt time.
    Silence,
    Dtmf(char),
    /// Seconds since the call started (checked against the maximum duration).
    Elapsed(u32),
    /// The caller hung up.
    HangUp,
    /// The transfer was placed: the call is the advisor's now.
    Transferred,
    /// The transfer could not be placed: the caller stays with us, at the fallback.
    TransferFailed,
}

/// Why an answer was not captured; the retry line says so.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// Nothing of the variable's type in the answer.
    Unreadable,
    /// The time named has passed.
    Past,
    /// The time named is outside calling hours; `hours` says when we may call ("between 8
    /// a.m. and 9 p.m.").
    OutsideWindow { hours: String },
}

/// What the call must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Say {
        text: String,
        interruptible: bool,
    },
    /// Let the LLM phrase a line of at most `sentences` sentences, within the node's goal and
    /// the script's persona.
    Generate {
        instruction: String,
        goal: String,
        sentences: usize,
    },
    /// A variable (its stored form: a time as RFC 3339 plus precision marker).
    Capture {
        name: String,
        value: String,
    },
    MarkDoNotCall,
    HangUp {
        outcome: Outcome,
    },
    /// Hand the call to a person (after the handoff line is heard): `summary` for the
    /// advisor's whisper, `no_answer` for the caller if nobody picks up.
    Transfer {
        summary: String,
        no_answer: String,
    },
}

/// Whether a person can take the call now.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Desk {
    /// The campaign takes no transfers.
    #[default]
    Unstaffed,
    Open,
    /// Out of business hours; `hours` says when advisors are there ("between 9 a.m. and
    /// 5 p.m.").
    Closed {
        hours: String,
    },
}

/// Business hours `[start, end)` in the advisors' zone, Monday to Friday unless `weekends`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeskHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub tz: Tz,
    pub weekends: bool,
}

impl DeskHours {
    /// Open or closed at `now`.
    pub fn at(&self, now: DateTime<Utc>) -> Desk {
        let local = now.with_timezone(&self.tz);
        let weekday = !matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
        let t = local.time();
        if (weekday || self.weekends) && self.start <= t && t < self.end {
            return Desk::Open;
        }
        let days = if self.weekends {
            ""
        } else {
            ", Monday to Friday"
        };
        Desk::Closed {
            hours: format!(
                "between {} and {}{days}",
                speak_clock(self.start),
                speak_clock(self.end)
            ),
        }
    }
}

/// Where a call is in its script.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallState {
    pub node: String,
    /// Lead columns from the start, then captured answers (stored forms).
    pub vars: BTreeMap<String, String>,
    /// The lead's zone: times in lines are spoken in it.
    pub tz: Tz,
    pub silence_reprompts: u32,
    pub unclear_reprompts: u32,
    /// Requests to repeat in a row ("What?"): a line this bad ends the call after a few.
    pub repeats: u32,
    /// The caller asked us to hold on: the silence before a re-prompt is `hold_seconds`.
    pub holding: bool,
    /// Answers at this node that lacked a needed value.
    pub tries: u32,
    /// Set when the call is over (no action follows).
    pub outcome: Option<Outcome>,
    pub started: bool,
    /// The caller asked for this call: the callback greeting follows the disclosure.
    pub callback: bool,
    /// The person rang us: the inbound greeting and entry node.
    pub inbound: bool,
    /// Whether a transfer node can hand the call to a person now (set by the runner).
    pub desk: Desk,
}

/// The goodbye when the caller cannot be understood, or cannot understand us.
const BAD_LINE: &str = "I am sorry, this is not a good line. I will try another time. Goodbye.";
/// Re-asks after this many unclear turns (or requests to repeat) in a row before giving up.
const MAX_UNCLEAR: u32 = 2;
/// Unusable answers to a question that needs a value before the call moves on.
pub const MAX_TRIES: u32 = 2;

/// Checks a captured value against its type and normalises it; `None` if it does not fit.
pub fn coerce(ty: VarType, raw: &str) -> Option<String> {
    let t = raw.trim();
    match ty {
        VarType::String => (!t.is_empty()).then(|| t.to_string()),
        VarType::Bool => match t.to_lowercase().as_str() {
            "true" | "yes" | "y" => Some("true".into()),
            "false" | "no" | "n" => Some("false".into()),
            _ => None,
        },
        VarType::Number => parse_number(t).map(number),
        VarType::Time => stored_time(t, Tz::UTC).map(|_| t.to_string()),
    }
}

/// How a number is stored: whole numbers without a fraction.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Advances the call by one event.
pub fn step(script: &Script, state: &CallState, event: &Event) -> (CallState, Vec<Action>) {
    let mut s = state.clone();
    let mut out = Out {
        script,
        actions: Vec::new(),
    };
    if s.outcome.is_some() {
        return (s, out.actions);
    }
    match event {
        Event::Started => {
            if !s.started {
                s.started = true;
                let (opening, entry) = if s.inbound {
                    (&script.inbound_opening, &script.inbound_start)
                } else {
                    (&script.opening, &script.start)
                };
                let opening = format!("{opening} {}", script.disclosure);
                out.say(&s, opening.trim(), false);
                if s.callback && !s.inbound {
                    out.say(&s, &script.callback_greeting, true);
                }
                enter(&mut out, &mut s, entry);
            }
        }
        Event::HangUp => s.outcome = Some(Outcome::CallerHungUp),
        Event::Transferred => s.outcome = Some(Outcome::Transferred),
        Event::TransferFailed => {
            let node = script.nodes.get(&s.node);
            if let Some(fallback) = node
                .filter(|n| n.transfer.is_some())
                .and_then(|n| n.fallback.clone())
            {
                out.say(&s, &script.globals.transfer_failed, true);
                enter(&mut out, &mut s, &fallback);
            }
        }
        Event::Dtmf(d) if script.opt_out_digit == Some(*d) => opt_out(&mut out, &mut s),
        Event::Dtmf(_) => {}
        Event::Elapsed(secs) if *secs >= script.max_call_seconds => {
            out.say(&s, &script.globals.max_duration, false);
            end(&mut out, &mut s, Outcome::MaxDuration);
        }
        Event::Elapsed(_) => {}
        Event::Silence => {
            s.holding = false;
            s.silence_reprompts += 1;
            if s.silence_reprompts > script.max_silence_reprompts {
                out.say(&s, "I will let you go. Goodbye.", false);
                end(&mut out, &mut s, Outcome::NoAnswer);
            } else {
                out.say(&s, &script.globals.silence, true);
                out.actions.extend(reask(script, &s));
            }
        }
        Event::Utterance {
            intent,
            captured,
            rejected,
            ..
        } => {
            s.silence_reprompts = 0;
            s.holding = false;
            if intent != intents::REPEAT {
                s.repeats = 0;
            }
            utterance(&mut out, &mut s, intent, captured, rejected);
        }
    }
    (s, out.actions)
}

fn utterance(
    out: &mut Out,
    s: &mut CallState,
    intent: &str,
    captured: &BTreeMap<String, String>,
    rejected: &BTreeMap<String, Rejection>,
) {
    let script = out.script;
    let node = script.nodes.get(&s.node);
    match intent {
        intents::OPT_OUT => opt_out(out, s),
        intents::WRONG_PERSON => {
            out.say(s, &script.globals.wrong_person, false);
            end(out, s, Outcome::WrongPerson);
        }
        intents::DECLINE => {
            out.say(s, &script.globals.decline, false);
            end(out, s, Outcome::NotInterested);
        }
        intents::CALL_LATER => call_later(out, s, captured),
        intents::UNKNOWN_QUESTION => {
            out.say(s, &script.globals.unknown_question, true);
            out.actions.extend(reask(script, s));
        }
        // The caller missed our line: the question again, without "I did not catch that" (we
        // did). A node with no fixed question (a generated one) can only ask them to go on.
        intents::REPEAT if s.repeats < MAX_UNCLEAR => {
            s.repeats += 1;
            let again = reask(script, s);
            if again.is_empty() {
                out.say(s, &script.globals.unclear, true);
            }
            out.actions.extend(again);
        }
        intents::REPEAT => {
            out.say(s, BAD_LINE, false);
            end(out, s, Outcome::NoAnswer);
        }
        // Nothing advances and nothing is asked: the wait is what they asked for.
        intents::HOLD => {
            s.holding = true;
            out.say(s, &script.globals.hold, true);
        }
        id if script.faq(id).is_some() => {
            if let Some(faq) = script.faq(id) {
                out.say(s, &faq.answer, true);
            }
            out.actions.extend(reask(script, s));
        }
        intents::OPEN if node.is_some_and(|n| n.open) => {
            if let Some(n) = node {
                s.unclear_reprompts = 0;
                out.generate(s, n);
            }
        }
        name => match node.and_then(|n| n.intents.iter().find(|i| i.name == name)) {
            Some(chosen) => {
                s.unclear_reprompts = 0;
                let missing = chosen.needs.iter().find(|v| {
                    let ty = script.vars.get(*v).copied().unwrap_or(VarType::String);
                    captured.get(*v).and_then(|raw| coerce(ty, raw)).is_none()
                });
                match missing {
                    None => {
                        capture(out, s, captured);
                        enter_answered(out, s, &chosen.next, captured);
                    }
                    Some(var) => {
                        s.tries += 1;
                        if s.tries >= MAX_TRIES {
                            // Move on without the value: the fallback node says what happens.
                            let to = node
                                .and_then(|n| n.fallback.clone())
                                .unwrap_or_else(|| chosen.next.clone());
                            enter(out, s, &to);
                        } else {
                            retry(out, s, rejected.get(var));
                        }
                    }
                }
            }
            None => {
                // "unclear", or anything the classifier should not have produced.
                s.unclear_reprompts += 1;
                if s.unclear_reprompts > MAX_UNCLEAR {
                    out.say(s, BAD_LINE, false);
                    end(out, s, Outcome::NoAnswer);
                } else {
                    out.say(s, &script.globals.unclear, true);
                    out.actions.extend(reask(script, s));
                }
            }
        },
    }
}

/// Actions being collected for one event.
struct Out<'a> {
    script: &'a Script,
    actions: Vec<Action>,
}

impl Out<'_> {
    fn say(&mut self, s: &CallState, text: &str, interruptible: bool) {
        self.actions.push(say(self.script, s, text, interruptible));
    }

    fn generate(&mut self, s: &CallState, node: &Node) {
        if let Some(instruction) = &node.generate {
            self.actions.push(Action::Generate {
                instruction: self.script.render(instruction, &s.vars, s.tz),
                goal: node.goal.clone(),
                sentences: node.sentences,
            });
        }
    }
}

fn say(script: &Script, s: &CallState, text: &str, interruptible: bool) -> Action {
    Action::Say {
        text: script.render(text, &s.vars, s.tz),
        interruptible,
    }
}

fn end(out: &mut Out, s: &mut CallState, outcome: Outcome) {
    s.outcome = Some(outcome);
    out.actions.push(Action::HangUp { outcome });
}

fn opt_out(out: &mut Out, s: &mut CallState) {
    out.actions.push(Action::MarkDoNotCall);
    out.say(s, &out.script.globals.opt_out, false);
    end(out, s, Outcome::DoNotCall);
}

/// To the callback node (taking its time answer at once when the caller already named one:
/// "call me back tomorrow at ten"), or a polite end when there is none or we are there.
fn call_later(out: &mut Out, s: &mut CallState, captured: &BTreeMap<String, String>) {
    let script = out.script;
    let Some(callback) = script.nodes.get(CALLBACK_NODE) else {
        out.say(s, "Thank you, we will call you back later. Goodbye.", false);
        return end(out, s, Outcome::Callback);
    };
    match answered(script, callback, captured) {
        Some(_) if s.node != CALLBACK_NODE => enter_answered(out, s, CALLBACK_NODE, captured),
        Some(intent) => {
            capture(out, s, captured);
            enter(out, s, &intent.next);
        }
        None if s.node != CALLBACK_NODE => enter(out, s, CALLBACK_NODE),
        None => {
            out.say(s, "Thank you, we will call you back later. Goodbye.", false);
            end(out, s, Outcome::Callback);
        }
    }
}

/// Asks again for a value that could not be used, saying why when we know.
fn retry(out: &mut Out, s: &CallState, why: Option<&Rejection>) {
    let script = out.script;
    let Some(node) = script.nodes.get(&s.node) else {
        return;
    };
    match why {
        Some(Rejection::OutsideWindow { hours }) => {
            let end = if hours.ends_with('.') { "" } else { "." };
            out.say(s, &format!("We can call {hours}{end}"), true);
        }
        Some(Rejection::Past) => out.say(s, "That time has already passed.", true),
        Some(Rejection::Unreadable) | None if node.retry.is_none() => {
            out.say(s, &script.globals.unclear, true)
        }
        _ => {}
    }
    match &node.retry {
        Some(line) => out.say(s, line, true),
        None => out.actions.extend(reask(script, s)),
    }
}

/// Quiet this long makes a silence re-prompt: the script's re-prompt time, or its longer hold
/// time right after the caller asked us to hold on.
pub fn silence_seconds(script: &Script, s: &CallState) -> u32 {
    if s.holding {
        script.hold_seconds
    } else {
        script.silence_reprompt_seconds
    }
}

/// The current node's question again (after a side question, silence or an unusable answer),
/// as interruptible `Say` actions; nothing at an end, once the call is over (an opt-out ends it
/// at the node it was said at) or at a node without a fixed line.
pub fn reask(script: &Script, s: &CallState) -> Vec<Action> {
    if s.outcome.is_some() {
        return Vec::new();
    }
    script
        .nodes
        .get(&s.node)
        .filter(|n| n.end.is_none())
        .and_then(|n| n.say.as_ref())
        .map(|q| vec![say(script, s, q, true)])
        .unwrap_or_default()
}

/// The generated lines the caller's next answer may lead to (the lines of each intent's next
/// node), rendered with what is known now: worth preparing while the caller listens and
/// answers. A line whose instruction uses a variable that answer captures renders otherwise
/// then, and the prepared one is not used.
pub fn upcoming_lines(script: &Script, s: &CallState) -> Vec<Action> {
    let Some(node) = script.nodes.get(&s.node) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for intent in &node.intents {
        let mut out = Out {
            script,
            actions: Vec::new(),
        };
        enter(&mut out, &mut s.clone(), &intent.next);
        for action in out.actions {
            if matches!(action, Action::Generate { .. }) && !lines.contains(&action) {
                lines.push(action);
            }
        }
    }
    lines
}

fn capture(out: &mut Out, s: &mut CallState, captured: &BTreeMap<String, String>) {
    let Some(node) = out.script.nodes.get(&s.node) else {
        return;
    };
    for (name, ty) in &node.capture {
        if let Some(value) = captured.get(name).and_then(|raw| coerce(*ty, raw)) {
            s.vars.insert(name.clone(), value.clone());
            out.actions.push(Action::Capture {
                name: name.clone(),
                value,
            });
        }
    }
}

/// The intent of `node` that values already captured answer: one that needs variables and
/// finds them all parsed (the callback node's time in "call me back tomorrow at ten").
fn answered<'a>(
    script: &Script,
    node: &'a Node,
    captured: &BTreeMap<String, String>,
) -> Option<&'a Intent> {
    node.intents.iter().find(|i| {
        !i.needs.is_empty()
            && i.needs.iter().all(|v| {
                let ty = script.vars.get(v).copied().unwrap_or(VarType::String);
                captured.get(v).and_then(|raw| coerce(ty, raw)).is_some()
            })
    })
}

/// Enters `id`, unless the caller's words already answered its question ("yes, tomorrow at
/// ten" to the pitch answers the time question after it too): then its variables are captured
/// and the call goes where that answer leads, without asking what was said.
fn enter_answered(out: &mut Out, s: &mut CallState, id: &str, captured: &BTreeMap<String, String>) {
    let script = out.script;
    match script
        .nodes
        .get(id)
        .and_then(|n| answered(script, n, captured))
    {
        Some(intent) => {
            s.node = id.to_string();
            capture(out, s, captured);
            enter(out, s, &intent.next);
        }
        None => enter(out, s, id),
    }
}

fn enter(out: &mut Out, s: &mut CallState, id: &str) {
    let Some(node) = out.script.nodes.get(id) else {
        return;
    };
    // A question already answered (an earlier call, a lead column) is not asked again; the
    // hop limit guards against nodes that skip to each other.
    let mut node = node;
    for _ in 0..out.script.nodes.len() {
        let known = |v: &String| s.vars.get(v).is_some_and(|x| !x.trim().is_empty());
        match node
            .skip_if_known
            .as_ref()
            .and_then(|to| out.script.nodes.get(to))
        {
            Some(to) if !node.capture.is_empty() && node.capture.keys().all(known) => node = to,
            _ => break,
        }
    }
    let id = node.id.as_str();
    s.node = id.to_string();
    s.silence_reprompts = 0;
    s.tries = 0;
    if let Some(summary) = &node.transfer {
        return transfer(out, s, node, summary);
    }
    if !node.open {
        out.generate(s, node);
    }
    if let Some(line) = &node.say {
        // Goodbyes are not interruptible: the caller must hear how the call ends.
        out.say(s, line, node.end.is_none());
    }
    if let Some(outcome) = node.end {
        end(out, s, outcome);
    }
}

/// A transfer node: the handoff line and the transfer when someone can take the call; else
/// when advisors are there (or that none can be reached) and on to the fallback.
fn transfer(out: &mut Out, s: &mut CallState, node: &Node, summary: &str) {
    let script = out.script;
    let fallback = node.fallback.clone().unwrap_or_default();
    match s.desk.clone() {
        Desk::Open => {
            if let Some(line) = &node.say {
                out.say(s, line, false);
            }
            out.actions.push(Action::Transfer {
                summary: script.render(summary, &s.vars, s.tz),
                no_answer: script.render(&script.globals.transfer_no_answer, &s.vars, s.tz),
            });
        }
        Desk::Closed { hours } => {
            let mut vars = s.vars.clone();
            vars.insert("hours".into(), hours);
            let line = script.render(&script.globals.transfer_closed, &vars, s.tz);
            out.actions.push(Action::Say {
                text: line,
                interruptible: true,
            });
            enter(out, s, &fallback);
        }
        Desk::Unstaffed => {
            out.say(s, &script.globals.transfer_failed, true);
            enter(out, s, &fallback);
        }
    }
}

#[cfg(test)]
mod tests;
