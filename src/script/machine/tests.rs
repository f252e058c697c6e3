use super::*;
use std::collections::BTreeSet;

fn script() -> Script {
    Script::from_toml("solar.toml", crate::script::EXAMPLE_SCRIPT).unwrap()
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
