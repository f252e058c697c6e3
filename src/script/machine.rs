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
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn script() -> Script {
        Script::from_toml(
            "solar.toml",
            include_str!("../../scripts/campaigns/solar.toml"),
        )
        .unwrap()
    }

    fn utter(intent: &str, captured: &[(&str, &str)]) -> Event {
        Event::Utterance {
            intent: intent.into(),
            text: String::new(),
            captured: captured
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Runs events from the start; returns the final state, all actions and the nodes visited.
    fn run(events: &[Event]) -> (CallState, Vec<Action>, Vec<String>) {
        let script = script();
        let mut state = CallState::default();
        let mut all = Vec::new();
        let mut visited = Vec::new();
        for e in std::iter::once(&Event::Started).chain(events) {
            let (next, actions) = step(&script, &state, e);
            if next.node != state.node {
                visited.push(next.node.clone());
            }
            state = next;
            all.extend(actions);
        }
        (state, all, visited)
    }

    fn said(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Say { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn disclosure_comes_first_and_cannot_be_interrupted() {
        let (_, actions, _) = run(&[]);
        match &actions[0] {
            Action::Say {
                text,
                interruptible,
            } => {
                assert!(text.starts_with(
                    "Hi, this is Nova calling from Sunrise Solar. I am an automated AI assistant"
                ));
                assert!(!interruptible);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            said(&actions)[1],
            "Is now a good time for a quick question about your electricity bill?"
        );
    }

    #[test]
    fn interested_caller_books_a_consultation() {
        let (state, actions, visited) = run(&[
            utter("yes", &[]),
            utter("amount", &[("monthly_bill", "about 180 dollars")]),
            utter("yes", &[("owns_home", "yes")]),
            utter("yes", &[("interested", "yes")]),
            utter("time", &[("callback_time", "tomorrow at ten")]),
        ]);
        assert_eq!(
            visited,
            [
                "intro",
                "bill",
                "homeowner",
                "pitch",
                "book_time",
                "end_interested"
            ]
        );
        assert_eq!(state.outcome.as_deref(), Some("interested"));
        assert_eq!(state.vars["monthly_bill"], "180");
        assert_eq!(state.vars["owns_home"], "true");
        assert_eq!(state.vars["callback_time"], "tomorrow at ten");
        assert!(actions.contains(&Action::Generate {
            instruction: "In one short sentence, say how solar panels could lower a monthly bill of about 180 dollars.".into(),
            goal: "Offer a free, no-obligation consultation.".into(),
        }));
        assert!(said(&actions)
            .last()
            .unwrap()
            .starts_with("Perfect, you are booked for tomorrow at ten."));
        assert_eq!(
            actions.last(),
            Some(&Action::HangUp {
                outcome: "interested".into()
            })
        );
    }

    #[test]
    fn opt_out_mid_pitch_and_by_key() {
        for opt_out in [utter("opt_out", &[]), Event::Dtmf('9')] {
            let (state, actions, _) = run(&[
                utter("yes", &[]),
                utter("amount", &[("monthly_bill", "100")]),
                utter("yes", &[]),
                opt_out,
            ]);
            assert_eq!(state.outcome.as_deref(), Some("do_not_call"));
            let n = actions.len();
            assert_eq!(actions[n - 3], Action::MarkDoNotCall);
            assert!(
                matches!(&actions[n - 2], Action::Say { text, interruptible: false } if text.contains("removed your number"))
            );
            assert_eq!(
                actions[n - 1],
                Action::HangUp {
                    outcome: "do_not_call".into()
                }
            );
        }
        // Other keys change nothing; nothing happens after the end.
        let (state, actions, _) = run(&[Event::Dtmf('1')]);
        assert!(state.outcome.is_none() && actions.len() == 2);
        let (state, actions, _) = run(&[utter("opt_out", &[]), utter("yes", &[])]);
        assert_eq!(state.outcome.as_deref(), Some("do_not_call"));
        assert!(!matches!(actions.last(), Some(Action::Say { .. })));
    }

    #[test]
    fn side_questions_are_answered_and_the_question_repeated() {
        let (state, actions, _) = run(&[
            utter("yes", &[]),
            utter("are_you_a_robot", &[]),
            utter("who_is_this", &[]),
        ]);
        assert_eq!(state.node, "bill");
        let lines = said(&actions);
        assert_eq!(
            lines[lines.len() - 4],
            "Yes, I am an automated AI assistant calling for Sunrise Solar."
        );
        assert_eq!(
            lines[lines.len() - 3],
            "Roughly how much is your electricity bill each month?"
        );
        assert!(lines[lines.len() - 2].contains("+1 555 010 0200"));
    }

    #[test]
    fn call_later_wrong_person_not_interested_and_not_eligible() {
        let (s, _, v) = run(&[
            utter("call_later", &[]),
            utter("time", &[("callback_time", "next Monday")]),
        ]);
        assert_eq!(
            (s.outcome.as_deref(), v.last().map(String::as_str)),
            (Some("callback"), Some("end_callback"))
        );
        assert_eq!(s.vars["callback_time"], "next Monday");
        let (s, _, _) = run(&[utter("no", &[]), utter("never", &[])]);
        assert_eq!(s.outcome.as_deref(), Some("not_interested"));
        let (s, _, _) = run(&[utter("wrong_person", &[])]);
        assert_eq!(s.outcome.as_deref(), Some("wrong_person"));
        let (s, _, v) = run(&[
            utter("yes", &[]),
            utter("dont_know", &[]),
            utter("no", &[("owns_home", "no")]),
        ]);
        assert_eq!(
            (s.outcome.as_deref(), v.last().map(String::as_str)),
            (Some("not_interested"), Some("end_not_eligible"))
        );
        let (s, _, v) = run(&[
            utter("yes", &[]),
            utter("amount", &[]),
            utter("yes", &[]),
            utter("no", &[]),
        ]);
        assert_eq!(
            (s.outcome.as_deref(), v.last().map(String::as_str)),
            (Some("not_interested"), Some("end_not_interested"))
        );
    }

    #[test]
    fn silence_and_unclear_reprompt_then_hang_up() {
        let (s, actions, _) = run(&[Event::Silence, Event::Silence]);
        assert!(s.outcome.is_none());
        assert_eq!(
            said(&actions)
                .iter()
                .filter(|l| *l == "Are you still there?")
                .count(),
            2
        );
        let (s, _, _) = run(&[Event::Silence, Event::Silence, Event::Silence]);
        assert_eq!(s.outcome.as_deref(), Some("no_answer"));
        let (s, _, _) = run(&[utter("unclear", &[]), utter("banana", &[])]);
        assert!(s.outcome.is_none() && s.node == "intro");
        let (s, _, _) = run(&[
            utter("unclear", &[]),
            utter("unclear", &[]),
            utter("unclear", &[]),
        ]);
        assert_eq!(s.outcome.as_deref(), Some("no_answer"));
        // A clear answer resets the count.
        let (s, _, _) = run(&[
            utter("unclear", &[]),
            utter("unclear", &[]),
            utter("yes", &[]),
            utter("unclear", &[]),
        ]);
        assert!(s.outcome.is_none() && s.node == "bill");
    }

    #[test]
    fn maximum_duration_ends_politely() {
        let (s, actions, _) = run(&[Event::Elapsed(100), Event::Elapsed(300)]);
        assert_eq!(s.outcome.as_deref(), Some("max_duration"));
        assert!(matches!(
            &actions[actions.len() - 2],
            Action::Say {
                interruptible: false,
                ..
            }
        ));
    }

    #[test]
    fn every_node_and_global_is_covered_by_the_golden_paths() {
        let script = script();
        let mut visited: BTreeSet<String> = BTreeSet::new();
        for events in [
            vec![
                utter("yes", &[]),
                utter("amount", &[]),
                utter("yes", &[]),
                utter("yes", &[]),
                utter("time", &[]),
            ],
            vec![utter("no", &[]), utter("time", &[])],
            vec![utter("no", &[]), utter("never", &[])],
            vec![utter("yes", &[]), utter("dont_know", &[]), utter("no", &[])],
        ] {
            visited.extend(run(&events).2);
        }
        let all: BTreeSet<String> = script.nodes.keys().cloned().collect();
        assert_eq!(visited, all);
    }

    #[test]
    fn values_are_coerced_to_their_types() {
        assert_eq!(
            coerce(VarType::Number, "about $1,200 a month"),
            Some("1200".into())
        );
        assert_eq!(coerce(VarType::Number, "no idea"), None);
        assert_eq!(coerce(VarType::Bool, "Yes"), Some("true".into()));
        assert_eq!(coerce(VarType::Bool, "maybe"), None);
        assert_eq!(coerce(VarType::String, "  "), None);
    }

    #[test]
    fn invalid_scripts_report_every_problem_with_its_key() {
        let bad = r#"
[script]
name = "x"
persona = "P"
company = "C"
callback_number = "1"
opening = "Hi."
disclosure = "This is a sales call."
start = "nowhere"
opt_out_digit = "99"

[[node]]
id = "a"
say = "Hello?"
capture = { budget = "money" }
  [[node.intent]]
  name = "opt_out"
  examples = ["x"]
  next = "b"

[[node]]
id = "a"
end = "great"
"#;
        let err = Script::from_toml("bad.toml", bad).unwrap_err();
        let text = err.to_string();
        for needle in [
            "bad.toml",
            "script.disclosure",
            "script.opt_out_digit",
            "script.start",
            "duplicate node id",
            "intent[0].name",
            "intent[0].next",
            "capture.budget",
            "unknown outcome \"great\"",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
        let syntax = Script::from_toml("s.toml", "[script]\nname = \"x\"\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            syntax.contains("s.toml") && syntax.contains("line"),
            "{syntax}"
        );
    }
}
