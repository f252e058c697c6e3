//! The script's state machine: `step(script, state, event) -> (state, actions)`, no I/O.
//!
//! Events are what happened on the call (a classified caller turn, silence, a key, the clock);
//! actions are what the call must do (say, generate a line, capture a variable, record
//! do-not-call, hang up with an outcome). The compliance rules live here, where no model can
//! skip them: the opening and AI disclosure come first and are not interruptible, an opt-out at
//! any point (words or key) ends the call at once with do-not-call, silence re-prompts then
//! hangs up, and a maximum duration ends the call politely.

use std::collections::BTreeMap;

use super::format::{Script, VarType};

/// What happened on the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The media stream started.
    Started,
    /// A caller turn, classified into one of [`Script::intent_names`], with the values the
    /// classifier extracted for the node's variables.
    Utterance {
        intent: String,
        text: String,
        captured: BTreeMap<String, String>,
    },
    /// No caller speech for the script's re-prompt time.
    Silence,
    Dtmf(char),
    /// Seconds since the call started (checked against the maximum duration).
    Elapsed(u32),
    /// The caller hung up.
    HangUp,
}

/// What the call must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Say {
        text: String,
        interruptible: bool,
    },
    /// Let the LLM phrase one line, within the node's goal and the script's persona.
    Generate {
        instruction: String,
        goal: String,
    },
    Capture {
        name: String,
        value: String,
    },
    MarkDoNotCall,
    HangUp {
        outcome: String,
    },
}

/// Where a call is in its script.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallState {
    pub node: String,
    pub vars: BTreeMap<String, String>,
    pub silence_reprompts: u32,
    pub unclear_reprompts: u32,
    /// Set when the call is over (no action follows).
    pub outcome: Option<String>,
    pub started: bool,
}

/// Re-asks after this many unclear turns in a row before giving up.
const MAX_UNCLEAR: u32 = 2;

/// Normalises a captured value to its declared type; `None` if it does not fit.
pub fn coerce(ty: VarType, raw: &str) -> Option<String> {
    let t = raw.trim();
    match ty {
        VarType::String => (!t.is_empty()).then(|| t.to_string()),
        VarType::Bool => match t.to_lowercase().as_str() {
            "true" | "yes" | "y" => Some("true".into()),
            "false" | "no" | "n" => Some("false".into()),
            _ => None,
        },
        VarType::Number => {
            let digits: String = t
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            digits.parse::<f64>().ok().map(|n| {
                if n.fract() == 0.0 {
                    format!("{}", n as i64)
                } else {
                    format!("{n}")
                }
            })
        }
    }
}

/// Advances the call by one event.
pub fn step(script: &Script, state: &CallState, event: &Event) -> (CallState, Vec<Action>) {
    let mut s = state.clone();
    let mut actions = Vec::new();
    if s.outcome.is_some() {
        return (s, actions);
    }
    match event {
        Event::Started => {
            if !s.started {
                s.started = true;
                let opening = format!("{} {}", script.opening, script.disclosure);
                actions.push(Action::Say {
                    text: script.render(&opening, &s.vars),
                    interruptible: false,
                });
                enter(script, &mut s, &script.start, &mut actions);
            }
        }
        Event::HangUp => s.outcome = Some("caller_hung_up".into()),
        Event::Dtmf(d) if script.opt_out_digit == Some(*d) => opt_out(script, &mut s, &mut actions),
        Event::Dtmf(_) => {}
        Event::Elapsed(secs) if *secs >= script.max_call_seconds => {
            say_fixed(
                script,
                &s,
                &script.globals.max_duration,
                false,
                &mut actions,
            );
            end(&mut s, "max_duration", &mut actions);
        }
        Event::Elapsed(_) => {}
        Event::Silence => {
            s.silence_reprompts += 1;
            if s.silence_reprompts > script.max_silence_reprompts {
                say_fixed(
                    script,
                    &s,
                    "I will let you go. Goodbye.",
                    false,
                    &mut actions,
                );
                end(&mut s, "no_answer", &mut actions);
            } else {
                say_fixed(script, &s, &script.globals.silence, true, &mut actions);
                reask(script, &s, &mut actions);
            }
        }
        Event::Utterance {
            intent, captured, ..
        } => {
            s.silence_reprompts = 0;
            match intent.as_str() {
                "opt_out" => opt_out(script, &mut s, &mut actions),
                "wrong_person" => {
                    say_fixed(
                        script,
                        &s,
                        &script.globals.wrong_person,
                        false,
                        &mut actions,
                    );
                    end(&mut s, "wrong_person", &mut actions);
                }
                "are_you_a_robot" | "who_is_this" => {
                    let reply = if intent == "are_you_a_robot" {
                        &script.globals.are_you_a_robot
                    } else {
                        &script.globals.who_is_this
                    };
                    say_fixed(script, &s, reply, true, &mut actions);
                    reask(script, &s, &mut actions);
                }
                "call_later" => {
                    if script.nodes.contains_key("callback") && s.node != "callback" {
                        enter(script, &mut s, "callback", &mut actions);
                    } else {
                        say_fixed(
                            script,
                            &s,
                            "Thank you, we will call you back later. Goodbye.",
                            false,
                            &mut actions,
                        );
                        end(&mut s, "callback", &mut actions);
                    }
                }
                name => {
                    let next = script
                        .nodes
                        .get(&s.node)
                        .and_then(|n| n.intents.iter().find(|i| i.name == name))
                        .map(|i| i.next.clone());
                    match next {
                        Some(next) => {
                            s.unclear_reprompts = 0;
                            capture(script, &mut s, captured, &mut actions);
                            enter(script, &mut s, &next, &mut actions);
                        }
                        None => {
                            // "unclear", or anything the classifier should not have produced.
                            s.unclear_reprompts += 1;
                            if s.unclear_reprompts > MAX_UNCLEAR {
                                say_fixed(script, &s, "I am sorry, this is not a good line. I will try another time. Goodbye.", false, &mut actions);
                                end(&mut s, "no_answer", &mut actions);
                            } else {
                                say_fixed(script, &s, &script.globals.unclear, true, &mut actions);
                                reask(script, &s, &mut actions);
                            }
                        }
                    }
                }
            }
        }
    }
    (s, actions)
}

fn say_fixed(
    script: &Script,
    s: &CallState,
    text: &str,
    interruptible: bool,
    actions: &mut Vec<Action>,
) {
    actions.push(Action::Say {
        text: script.render(text, &s.vars),
        interruptible,
    });
}

fn end(s: &mut CallState, outcome: &str, actions: &mut Vec<Action>) {
    s.outcome = Some(outcome.to_string());
    actions.push(Action::HangUp {
        outcome: outcome.to_string(),
    });
}

fn opt_out(script: &Script, s: &mut CallState, actions: &mut Vec<Action>) {
    actions.push(Action::MarkDoNotCall);
    say_fixed(script, s, &script.globals.opt_out, false, actions);
    end(s, "do_not_call", actions);
}

/// Repeats the current node's question (after a side question or a re-prompt).
fn reask(script: &Script, s: &CallState, actions: &mut Vec<Action>) {
    if let Some(say) = script.nodes.get(&s.node).and_then(|n| n.say.as_ref()) {
        say_fixed(script, s, say, true, actions);
    }
}

fn capture(
    script: &Script,
    s: &mut CallState,
    captured: &BTreeMap<String, String>,
    actions: &mut Vec<Action>,
) {
    let Some(node) = script.nodes.get(&s.node) else {
        return;
    };
    for (name, ty) in &node.capture {
        if let Some(value) = captured.get(name).and_then(|raw| coerce(*ty, raw)) {
            s.vars.insert(name.clone(), value.clone());
            actions.push(Action::Capture {
                name: name.clone(),
                value,
            });
        }
    }
}

fn enter(script: &Script, s: &mut CallState, id: &str, actions: &mut Vec<Action>) {
    let Some(node) = script.nodes.get(id) else {
        return;
    };
    s.node = id.to_string();
    s.silence_reprompts = 0;
    if let Some(instruction) = &node.generate {
        actions.push(Action::Generate {
            instruction: script.render(instruction, &s.vars),
            goal: node.goal.clone(),
        });
    }
    if let Some(say) = &node.say {
        // Goodbyes are not interruptible: the caller must hear how the call ends.
        say_fixed(script, s, say, node.end.is_none(), actions);
    }
    if let Some(outcome) = &node.end {
        end(s, outcome, actions);
    }
}

#[cfg(test)]
mod tests;
