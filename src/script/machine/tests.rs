use super::*;
use crate::script::format::Script;
use chrono_tz::America::New_York;
use std::collections::BTreeSet;

fn script() -> Script {
    Script::from_toml("solar.toml", crate::script::EXAMPLE_SCRIPT).unwrap()
}

/// Thursday 2026-12-03 10:00 in New York, as stored.
const TOMORROW_TEN: &str = "2026-12-03T10:00:00-05:00";

fn utter(intent: &str, captured: &[(&str, &str)]) -> Event {
    Event::Utterance {
        intent: intent.into(),
        text: String::new(),
        captured: captured
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        rejected: BTreeMap::new(),
    }
}

fn rejected(intent: &str, var: &str, why: Rejection) -> Event {
    Event::Utterance {
        intent: intent.into(),
        text: String::new(),
        captured: BTreeMap::new(),
        rejected: BTreeMap::from([(var.to_string(), why)]),
    }
}

/// Runs events from the start on `script`; the final state, all actions and the nodes visited.
fn run_on(script: &Script, events: &[Event]) -> (CallState, Vec<Action>, Vec<String>) {
    run_at(script, Desk::Open, events)
}

/// [`run_on`] with the advisors' desk as given and the lead named Alex Rivera.
fn run_at(script: &Script, desk: Desk, events: &[Event]) -> (CallState, Vec<Action>, Vec<String>) {
    let mut state = CallState {
        tz: New_York,
        desk,
        vars: BTreeMap::from([("name".to_string(), "Alex Rivera".to_string())]),
        ..CallState::default()
    };
    let mut all = Vec::new();
    let mut visited = Vec::new();
    for e in std::iter::once(&Event::Started).chain(events) {
        let (next, actions) = step(script, &state, e);
        if next.node != state.node {
            visited.push(next.node.clone());
        }
        state = next;
        all.extend(actions);
    }
    (state, all, visited)
}

fn run(events: &[Event]) -> (CallState, Vec<Action>, Vec<String>) {
    run_on(&script(), events)
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

/// The events that reach each question of the example script.
fn paths() -> Vec<(&'static str, Vec<Event>)> {
    vec![
        ("intro", vec![]),
        ("bill", vec![utter("yes", &[])]),
        (
            "homeowner",
            vec![
                utter("yes", &[]),
                utter("amount", &[("monthly_bill", "180")]),
            ],
        ),
        (
            "pitch",
            vec![
                utter("yes", &[]),
                utter("amount", &[("monthly_bill", "180")]),
                utter("yes", &[("owns_home", "true")]),
            ],
        ),
        (
            "book_time",
            vec![
                utter("yes", &[]),
                utter("amount", &[("monthly_bill", "180")]),
                utter("yes", &[("owns_home", "true")]),
                utter("yes", &[("interested", "true")]),
            ],
        ),
        ("callback", vec![utter("no", &[])]),
        ("transfer", to_pitch_then(&[utter("advisor", &[])])),
        (
            "advisor_later",
            to_pitch_then(&[utter("advisor", &[]), Event::TransferFailed]),
        ),
    ]
}

/// The events to the pitch (bill 180, owns the home), then `more`.
fn to_pitch_then(more: &[Event]) -> Vec<Event> {
    let mut events = vec![
        utter("yes", &[]),
        utter("amount", &[("monthly_bill", "180")]),
        utter("yes", &[("owns_home", "true")]),
    ];
    events.extend_from_slice(more);
    events
}

#[test]
fn the_paths_reach_every_question() {
    let s = script();
    let questions: BTreeSet<&str> = s
        .nodes
        .values()
        .filter(|n| n.end.is_none())
        .map(|n| n.id.as_str())
        .collect();
    let mut reached: BTreeSet<&str> = paths().iter().map(|(n, _)| *n).collect();
    // Where an inbound call starts (its own test below).
    reached.insert(s.inbound_start.as_str());
    assert_eq!(questions, reached);
    for (node, events) in paths() {
        assert_eq!(run(&events).0.node, node);
    }
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
fn interested_caller_books_a_consultation_spoken_as_a_time() {
    let (state, actions, visited) = run(&[
        utter("yes", &[]),
        utter("amount", &[("monthly_bill", "180")]),
        utter("yes", &[("owns_home", "true")]),
        utter("yes", &[("interested", "true")]),
        utter("time", &[("callback_time", TOMORROW_TEN)]),
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
    assert_eq!(state.outcome, Some(Outcome::Interested));
    assert_eq!(state.vars["monthly_bill"], "180");
    assert_eq!(state.vars["owns_home"], "true");
    assert_eq!(state.vars["callback_time"], TOMORROW_TEN);
    assert!(actions.contains(&Action::Capture {
        name: "callback_time".into(),
        value: TOMORROW_TEN.into()
    }));
    assert!(actions.contains(&Action::Generate {
            instruction: "In one short sentence, say how solar panels could lower a monthly bill of about 180 dollars.".into(),
            goal: "Offer a free, no-obligation consultation.".into(),
            sentences: 1,
        }));
    assert!(
        said(&actions)
            .last()
            .unwrap()
            .starts_with("Perfect, you are booked for Thursday, December 3 at 10 a.m. An advisor"),
        "{:?}",
        said(&actions)
    );
    assert_eq!(
        actions.last(),
        Some(&Action::HangUp {
            outcome: Outcome::Interested
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
        assert_eq!(state.outcome, Some(Outcome::DoNotCall));
        let n = actions.len();
        assert_eq!(actions[n - 3], Action::MarkDoNotCall);
        assert!(
            matches!(&actions[n - 2], Action::Say { text, interruptible: false } if text.contains("removed your number"))
        );
        assert_eq!(
            actions[n - 1],
            Action::HangUp {
                outcome: Outcome::DoNotCall
            }
        );
    }
    // Other keys change nothing; nothing happens after the end.
    let (state, actions, _) = run(&[Event::Dtmf('1')]);
    assert!(state.outcome.is_none() && actions.len() == 2);
    let (state, actions, _) = run(&[utter("opt_out", &[]), utter("yes", &[])]);
    assert_eq!(state.outcome, Some(Outcome::DoNotCall));
    assert!(!matches!(actions.last(), Some(Action::Say { .. })));
    // The dead-air guard's question again: none once the call is over (a corpus caller heard
    // "Is now a good time ...?" after the opt-out's goodbye).
    assert_eq!(state.node, "intro");
    assert!(reask(&script(), &state).is_empty());
    let (state, _, _) = run(&[]);
    assert_eq!(
        reask(&script(), &state).len(),
        1,
        "before the end: the question"
    );
}

#[test]
fn a_decline_at_every_node_ends_politely_never_as_a_callback() {
    for (node, mut events) in paths() {
        events.push(utter("decline", &[]));
        let (state, actions, _) = run(&events);
        assert_eq!(state.outcome, Some(Outcome::NotInterested), "{node}");
        let n = actions.len();
        assert_eq!(
            actions[n - 2],
            Action::Say {
                text: "Understood, thank you for your time. Goodbye.".into(),
                interruptible: false
            },
            "{node}"
        );
        assert_eq!(
            actions[n - 1],
            Action::HangUp {
                outcome: Outcome::NotInterested
            }
        );
    }
}

#[test]
fn a_question_at_every_node_is_answered_and_the_node_asks_again() {
    let s = script();
    let mut ids: Vec<String> = s.faqs.iter().map(|f| f.id.clone()).collect();
    ids.push("unknown_question".into());
    assert!(
        ids.contains(&"cost".to_string()) && ids.len() == 6,
        "{ids:?}"
    );
    for (node, events) in paths() {
        let question = s.nodes[node].say.clone().unwrap();
        for id in &ids {
            let mut e = events.clone();
            e.push(utter(id, &[("callback_time", TOMORROW_TEN)]));
            let (state, actions, _) = run(&e);
            let before = run(&events).0;
            assert_eq!(state.node, node, "{id} at {node}");
            assert!(state.outcome.is_none(), "{id} at {node}");
            assert_eq!(state.vars, before.vars, "{id} at {node}: nothing captured");
            let lines = said(&actions);
            let answer = match s.faq(id) {
                Some(f) => s.render(&f.answer, &state.vars, New_York),
                None => s.globals.unknown_question.clone(),
            };
            assert_eq!(lines[lines.len() - 2], answer, "{id} at {node}");
            assert_eq!(lines[lines.len() - 1], question, "{id} at {node}");
            assert!(actions.iter().rev().take(2).all(|a| matches!(
                a,
                Action::Say {
                    interruptible: true,
                    ..
                }
            )));
        }
    }
    // The robot answer says automated AI, never "yes".
    let (_, actions, _) = run(&[utter("are_you_a_robot", &[])]);
    let lines = said(&actions);
    assert_eq!(
        lines[lines.len() - 2],
        "I am an automated AI assistant calling for Sunrise Solar, not a person."
    );
}

#[test]
fn a_needed_time_that_did_not_parse_is_asked_again_then_the_call_moves_on() {
    let book = paths().remove(4).1;
    // Unreadable: the node's retry line; nothing captured.
    let mut e = book.clone();
    e.push(rejected("time", "callback_time", Rejection::Unreadable));
    let (state, actions, _) = run(&e);
    assert_eq!(state.node, "book_time");
    assert!(!state.vars.contains_key("callback_time"));
    assert_eq!(
        said(&actions).last().unwrap(),
        "What day and time would work, for example tomorrow at 10 a.m.?"
    );
    // Outside calling hours: say when we can call, then the retry line.
    let mut e = book.clone();
    e.push(rejected(
        "time",
        "callback_time",
        Rejection::OutsideWindow {
            hours: "between 8 a.m. and 9 p.m.".into(),
        },
    ));
    let lines = said(&run(&e).1);
    assert_eq!(
        lines[lines.len() - 2..],
        [
            "We can call between 8 a.m. and 9 p.m.".to_string(),
            "What day and time would work, for example tomorrow at 10 a.m.?".to_string()
        ]
    );
    // Past, then a good answer: captured, the tries were not exhausted.
    let mut e = book.clone();
    e.push(rejected("time", "callback_time", Rejection::Past));
    e.push(utter("time", &[("callback_time", TOMORROW_TEN)]));
    let (state, actions, _) = run(&e);
    assert!(said(&actions).contains(&"That time has already passed.".to_string()));
    assert_eq!(state.outcome, Some(Outcome::Interested));
    assert_eq!(state.vars["callback_time"], TOMORROW_TEN);
    // Two unusable answers: the fallback, still interested, never "booked for ."
    let mut e = book.clone();
    e.push(rejected("time", "callback_time", Rejection::Unreadable));
    e.push(utter("time", &[("callback_time", "whenever")]));
    let (state, actions, visited) = run(&e);
    assert_eq!(visited.last().unwrap(), "end_interested_no_time");
    assert_eq!(state.outcome, Some(Outcome::Interested));
    assert!(!state.vars.contains_key("callback_time"));
    assert!(!said(&actions).iter().any(|l| l.contains("booked for")));
    // At the callback node likewise; a FAQ in between neither counts nor resets the tries.
    let mut e = paths().remove(5).1;
    e.push(rejected("time", "callback_time", Rejection::Unreadable));
    e.push(utter("cost", &[]));
    e.push(rejected("time", "callback_time", Rejection::Unreadable));
    let (state, _, visited) = run(&e);
    assert_eq!(visited.last().unwrap(), "end_callback_no_time");
    assert_eq!(state.outcome, Some(Outcome::Callback));
}

#[test]
fn without_a_retry_line_the_unclear_line_and_the_question() {
    let toml = crate::script::EXAMPLE_SCRIPT.replace(
        "retry = \"What day and time would work, for example tomorrow at 10 a.m.?\"\n",
        "",
    );
    let s = Script::from_toml("solar.toml", &toml).unwrap();
    let mut e = paths().remove(4).1;
    e.push(rejected("time", "callback_time", Rejection::Unreadable));
    let lines = said(&run_on(&s, &e).1);
    assert_eq!(
        lines[lines.len() - 2..],
        [
            "Sorry, I did not catch that. Could you say it again?".to_string(),
            "Great. What day and time works best for a fifteen minute call?".to_string()
        ]
    );
}

#[test]
fn call_later_goes_to_the_callback_node_or_takes_the_time_at_once() {
    let (s, _, v) = run(&[
        utter("call_later", &[]),
        utter("time", &[("callback_time", TOMORROW_TEN)]),
    ]);
    assert_eq!(v, ["intro", "callback", "end_callback"]);
    assert_eq!(s.outcome, Some(Outcome::Callback));
    // "Call me back tomorrow at ten" at the intro.
    let (s, actions, v) = run(&[utter("call_later", &[("callback_time", TOMORROW_TEN)])]);
    assert_eq!(v.last().unwrap(), "end_callback");
    assert_eq!(s.vars["callback_time"], TOMORROW_TEN);
    assert_eq!(
        said(&actions).last().unwrap(),
        "Thank you, we will call you back on Thursday, December 3 at 10 a.m. Goodbye."
    );
    // "No, try me tomorrow at ten" at the intro: the callback node's question is answered.
    let (s, actions, v) = run(&[utter("no", &[("callback_time", TOMORROW_TEN)])]);
    assert_eq!(v, ["intro", "end_callback"]);
    assert_eq!(s.vars["callback_time"], TOMORROW_TEN);
    assert!(!said(&actions).iter().any(|l| l.contains("When would be")));
    // At the callback node without a time: a polite end.
    let (s, _, _) = run(&[utter("no", &[]), utter("call_later", &[])]);
    assert_eq!(s.outcome, Some(Outcome::Callback));
}

#[test]
fn wrong_person_not_interested_and_not_eligible() {
    let (s, _, _) = run(&[utter("no", &[]), utter("never", &[])]);
    assert_eq!(s.outcome, Some(Outcome::NotInterested));
    let (s, _, _) = run(&[utter("wrong_person", &[])]);
    assert_eq!(s.outcome, Some(Outcome::WrongPerson));
    let (s, _, v) = run(&[
        utter("yes", &[]),
        utter("dont_know", &[]),
        utter("no", &[("owns_home", "false")]),
    ]);
    assert_eq!(
        (s.outcome, v.last().map(String::as_str)),
        (Some(Outcome::NotInterested), Some("end_not_eligible"))
    );
    assert_eq!(s.vars["owns_home"], "false");
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
    assert_eq!(s.outcome, Some(Outcome::NoAnswer));
    let (s, _, _) = run(&[utter("unclear", &[]), utter("banana", &[])]);
    assert!(s.outcome.is_none() && s.node == "intro");
    let (s, _, _) = run(&[
        utter("unclear", &[]),
        utter("unclear", &[]),
        utter("unclear", &[]),
    ]);
    assert_eq!(s.outcome, Some(Outcome::NoAnswer));
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
    assert_eq!(s.outcome, Some(Outcome::MaxDuration));
    assert!(matches!(
        &actions[actions.len() - 2],
        Action::Say {
            interruptible: false,
            ..
        }
    ));
}

#[test]
fn every_node_is_covered_by_the_golden_paths() {
    let script = script();
    // The inbound entry node (an inbound call starts there; see its own test).
    let mut visited: BTreeSet<String> = BTreeSet::from([script.inbound_start.clone()]);
    let time = || utter("time", &[("callback_time", TOMORROW_TEN)]);
    let miss = || utter("time", &[]);
    let book = paths().remove(4).1;
    for events in [
        [book.clone(), vec![time()]].concat(),
        [book, vec![miss(), miss()]].concat(),
        vec![utter("no", &[]), time()],
        vec![utter("no", &[]), miss(), miss()],
        vec![utter("no", &[]), utter("never", &[])],
        vec![utter("yes", &[]), utter("dont_know", &[]), utter("no", &[])],
        to_pitch_then(&[utter("advisor", &[]), Event::TransferFailed, time()]),
    ] {
        visited.extend(run(&events).2);
    }
    let all: BTreeSet<String> = script.nodes.keys().cloned().collect();
    assert_eq!(visited, all);
}

/// The open conversation (no script), as `[conversation]` makes it.
fn open_script() -> Script {
    Script::open_conversation(&crate::script::format::OpenConversation {
        greeting: "Hi, this is Sam, an automated AI assistant.".into(),
        system_prompt: "You are Sam.".into(),
        opt_out_digit: Some('9'),
        opt_out_message: "Removed. Goodbye.".into(),
        max_reply_sentences: 2,
    })
    .unwrap()
}

#[test]
fn an_open_node_replies_to_every_turn_and_keeps_the_rules() {
    let s = open_script();
    let (state, actions, _) = run_on(&s, &[utter("open", &[]), utter("open", &[])]);
    assert_eq!(
        actions[0],
        Action::Say {
            text: "Hi, this is Sam, an automated AI assistant.".into(),
            interruptible: false
        }
    );
    let generated: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a, Action::Generate { sentences: 2, .. }))
        .collect();
    assert_eq!(generated.len(), 2, "{actions:?}");
    assert!(state.outcome.is_none() && state.node == "conversation");
    let (state, actions, _) = run_on(&s, &[utter("are_you_a_robot", &[])]);
    assert_eq!(
        said(&actions).last().unwrap(),
        "I am an automated AI assistant, not a person."
    );
    assert!(state.outcome.is_none());
    for (end, outcome) in [
        (utter("decline", &[]), Outcome::NotInterested),
        (utter("opt_out", &[]), Outcome::DoNotCall),
        (Event::Dtmf('9'), Outcome::DoNotCall),
        (utter("call_later", &[]), Outcome::Callback),
        (Event::Elapsed(300), Outcome::MaxDuration),
    ] {
        assert_eq!(run_on(&s, &[end]).0.outcome, Some(outcome));
    }
    let (state, _, _) = run_on(&s, &[Event::Silence, Event::Silence, Event::Silence]);
    assert_eq!(state.outcome, Some(Outcome::NoAnswer));
}

#[test]
fn values_are_checked_against_their_types() {
    assert_eq!(
        coerce(VarType::Number, "about $1,200 a month"),
        Some("1200".into())
    );
    assert_eq!(coerce(VarType::Number, "no idea"), None);
    assert_eq!(coerce(VarType::Bool, "Yes"), Some("true".into()));
    assert_eq!(coerce(VarType::Bool, "maybe"), None);
    assert_eq!(coerce(VarType::String, "  "), None);
    assert_eq!(
        coerce(VarType::Time, TOMORROW_TEN),
        Some(TOMORROW_TEN.into())
    );
    assert_eq!(coerce(VarType::Time, "tomorrow at ten"), None);
    // A raw time never reaches a line: not captured, the intent asks again.
    let mut e = paths().remove(4).1;
    e.push(utter("time", &[("callback_time", "Tomorrow at 10 works")]));
    let (state, actions, _) = run(&e);
    assert_eq!(state.node, "book_time");
    assert!(!said(&actions).iter().any(|l| l.contains("10 works")));
}

/// A callback call: the disclosure first, then the callback greeting, then the start node; a
/// question an earlier call answered is skipped (the bill), the next one is asked.
#[test]
fn a_callback_opens_with_its_greeting_after_the_disclosure_and_skips_known_answers() {
    let script = script();
    let state = CallState {
        tz: New_York,
        callback: true,
        vars: BTreeMap::from([("monthly_bill".to_string(), "200".to_string())]),
        ..CallState::default()
    };
    let (state, actions) = step(&script, &state, &Event::Started);
    let lines = said(&actions);
    assert!(lines[0].contains("automated AI assistant"), "{lines:?}");
    assert_eq!(
        lines[1],
        "You asked us to call back today about solar for your home."
    );
    assert_eq!(state.node, "intro");
    let (state, actions) = step(&script, &state, &utter("yes", &[]));
    assert_eq!(state.node, "homeowner");
    assert_eq!(said(&actions), ["And do you own your home?"]);
    // Not a callback, nothing known: no greeting, the bill is asked.
    let (_, actions, visited) = run(&[utter("yes", &[])]);
    assert!(!said(&actions)
        .iter()
        .any(|l| l.contains("asked us to call")));
    assert_eq!(visited, ["intro", "bill"]);
}

/// Nodes that skip to each other stop after one round instead of looping.
#[test]
fn skips_that_loop_stop() {
    let text = crate::script::EXAMPLE_SCRIPT.replace(
        "capture = { owns_home = \"bool\" }",
        "capture = { owns_home = \"bool\" }\nskip_if_known = \"bill\"",
    );
    let script = Script::from_toml("loop.toml", &text).unwrap();
    let state = CallState {
        tz: New_York,
        vars: BTreeMap::from([
            ("monthly_bill".to_string(), "200".to_string()),
            ("owns_home".to_string(), "true".to_string()),
        ]),
        ..CallState::default()
    };
    let (state, _) = step(&script, &state, &Event::Started);
    let (state, actions) = step(&script, &state, &utter("yes", &[]));
    assert!(["bill", "homeowner"].contains(&state.node.as_str()));
    assert_eq!(said(&actions).len(), 1, "{actions:?}");
}

const NO_ANSWER: &str = "I am sorry, nobody is free right now. An advisor will call you back from +1 555 010 0200. Thank you, goodbye.";

#[test]
fn transfer_in_hours_says_the_handoff_then_hands_over() {
    let (state, actions, visited) = run(&to_pitch_then(&[utter("advisor", &[])]));
    assert_eq!(visited.last().map(String::as_str), Some("transfer"));
    let n = actions.len();
    assert_eq!(
        actions[n - 2..],
        [
            Action::Say {
                text: "I will connect you with an advisor now, one moment.".into(),
                interruptible: false,
            },
            Action::Transfer {
                summary: "Solar lead Alex Rivera: owns the home, pays about 180 dollars a month, and wants to talk now.".into(),
                no_answer: NO_ANSWER.into(),
            },
        ]
    );
    // Not over until the agent says the transfer went through.
    assert_eq!(state.outcome, None);
    let (done, actions) = step(&script(), &state, &Event::Transferred);
    assert_eq!(done.outcome, Some(Outcome::Transferred));
    assert!(actions.is_empty());
    // Nothing after: the call is the advisor's.
    assert!(step(&script(), &done, &Event::Silence).1.is_empty());
}

#[test]
fn transfer_that_fails_goes_to_the_fallback() {
    let (state, actions, visited) = run(&to_pitch_then(&[
        utter("advisor", &[]),
        Event::TransferFailed,
        utter("time", &[("callback_time", TOMORROW_TEN)]),
    ]));
    assert_eq!(
        visited[visited.len() - 3..],
        ["transfer", "advisor_later", "end_interested"]
    );
    let lines = said(&actions);
    let i = lines
        .iter()
        .position(|l| l == "I am sorry, I cannot reach an advisor just now.")
        .expect("the failure is said");
    assert_eq!(
        lines[i + 1],
        "Can one of our advisors call you back? What day and time works best?"
    );
    assert_eq!(state.outcome, Some(Outcome::Interested));
    assert_eq!(state.vars["callback_time"], TOMORROW_TEN);
}

#[test]
fn transfer_out_of_hours_says_when_and_falls_back() {
    let hours = DeskHours {
        start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
        tz: New_York,
        weekends: false,
    };
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
    };
    // Thursday 2026-12-03 in New York.
    assert_eq!(hours.at(at("2026-12-03T09:00:00-05:00")), Desk::Open);
    assert_eq!(hours.at(at("2026-12-03T16:59:59-05:00")), Desk::Open);
    let closed = Desk::Closed {
        hours: "between 9 a.m. and 5 p.m., Monday to Friday".into(),
    };
    assert_eq!(hours.at(at("2026-12-03T17:00:00-05:00")), closed);
    assert_eq!(hours.at(at("2026-12-03T08:59:00-05:00")), closed);
    // Saturday mid-morning: closed, unless weekends are staffed.
    assert_eq!(hours.at(at("2026-12-05T10:00:00-05:00")), closed);
    let every_day = DeskHours {
        weekends: true,
        end: NaiveTime::from_hms_opt(17, 30, 0).unwrap(),
        ..hours
    };
    assert_eq!(every_day.at(at("2026-12-05T10:00:00-05:00")), Desk::Open);
    assert_eq!(
        every_day.at(at("2026-12-05T18:00:00-05:00")),
        Desk::Closed {
            hours: "between 9 a.m. and 5:30 p.m.".into()
        }
    );

    let (state, actions, visited) =
        run_at(&script(), closed, &to_pitch_then(&[utter("advisor", &[])]));
    assert_eq!(visited.last().map(String::as_str), Some("advisor_later"));
    assert!(!actions.iter().any(|a| matches!(a, Action::Transfer { .. })));
    let lines = said(&actions);
    assert_eq!(
        lines[lines.len() - 2..],
        [
            "Our advisors are available between 9 a.m. and 5 p.m., Monday to Friday, so nobody can take your call right now.",
            "Can one of our advisors call you back? What day and time works best?",
        ]
    );
    assert_eq!(state.outcome, None);
    // A campaign without transfers: the failure line, and the same fallback.
    let (_, actions, visited) = run_at(
        &script(),
        Desk::Unstaffed,
        &to_pitch_then(&[utter("advisor", &[])]),
    );
    assert_eq!(visited.last().map(String::as_str), Some("advisor_later"));
    assert!(said(&actions).contains(&"I am sorry, I cannot reach an advisor just now.".to_string()));
}

#[test]
fn transfer_nodes_are_validated() {
    let bad = crate::script::EXAMPLE_SCRIPT.replace("fallback = \"advisor_later\"\n", "");
    let err = Script::from_toml("bad.toml", &bad).unwrap_err().to_string();
    assert!(err.contains("a transfer node needs `fallback`"), "{err}");
}

/// A call the person placed: the inbound greeting, the disclosure, the inbound entry node; a
/// known lead's answers still skip their questions.
#[test]
fn an_inbound_call_opens_with_its_own_greeting_and_entry_node() {
    let script = script();
    let state = CallState {
        tz: New_York,
        inbound: true,
        // A lead who asked for a callback and rings first: no "you asked us to call back".
        callback: true,
        vars: BTreeMap::from([("monthly_bill".to_string(), "200".to_string())]),
        ..CallState::default()
    };
    let (state, actions) = step(&script, &state, &Event::Started);
    let lines = said(&actions);
    assert!(
        lines[0].starts_with(
            "Thanks for calling Sunrise Solar, this is Nova. I am an automated AI assistant"
        ),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "Are you calling about a free solar consultation for your home?"
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(state.node, "inbound");
    let (state, actions) = step(&script, &state, &utter("yes", &[]));
    assert_eq!(state.node, "homeowner");
    assert_eq!(said(&actions), ["And do you own your home?"]);
}

#[test]
fn the_generated_line_an_answer_leads_to_is_known_while_the_caller_answers() {
    let s = script();
    // Nothing generated follows the intro or the bill question.
    let (at_intro, _, _) = run(&[]);
    assert_eq!(upcoming_lines(&s, &at_intro), []);
    let (at_bill, _, _) = run(&[utter("yes", &[])]);
    assert_eq!(upcoming_lines(&s, &at_bill), []);
    // At the homeowner question the pitch's line is rendered with the bill already known, and
    // it is the line the machine asks for once the caller says yes.
    let (at_homeowner, _, _) = run(&[
        utter("yes", &[]),
        utter("amount", &[("monthly_bill", "180")]),
    ]);
    assert_eq!(at_homeowner.node, "homeowner");
    let upcoming = upcoming_lines(&s, &at_homeowner);
    let (_, after_yes) = step(&s, &at_homeowner, &utter("yes", &[("owns_home", "true")]));
    let generated: Vec<Action> = after_yes
        .into_iter()
        .filter(|a| matches!(a, Action::Generate { .. }))
        .collect();
    assert_eq!(upcoming, generated);
    assert_eq!(upcoming.len(), 1);
    // A renter ends the call: nothing generated on that branch, and the state is untouched.
    assert_eq!(at_homeowner.node, "homeowner");
}

#[test]
fn hold_on_is_answered_then_waited_for_longer() {
    let sc = script();
    let bill = "Roughly how much is your electricity bill each month?";
    let (s, actions, _) = run(&[utter("yes", &[]), utter("hold", &[])]);
    assert_eq!((s.node.as_str(), s.holding), ("bill", true));
    assert_eq!(
        said(&actions).last().unwrap(),
        "Sure, take your time. I will be right here."
    );
    assert_eq!(silence_seconds(&sc, &s), 30);
    // The hold runs out: are you there, and the question; the usual re-prompt time again.
    let (after, again) = step(&sc, &s, &Event::Silence);
    assert_eq!(said(&again), ["Are you still there?", bill]);
    assert_eq!(silence_seconds(&sc, &after), 6);
    // They come back with the answer: taken as any.
    let (back, _) = step(&sc, &s, &utter("amount", &[("monthly_bill", "200")]));
    assert_eq!((back.node.as_str(), back.holding), ("homeowner", false));
    let hold = "[script]\nhold_seconds = 45\n";
    let longer = Script::from_toml(
        "s.toml",
        &crate::script::EXAMPLE_SCRIPT.replacen("[script]\n", hold, 1),
    );
    assert_eq!(silence_seconds(&longer.unwrap(), &s), 45);
}

#[test]
fn a_request_to_repeat_gets_the_question_again_and_a_bad_line_ends() {
    let bill = "Roughly how much is your electricity bill each month?";
    let (s, actions, _) = run(&[utter("yes", &[]), utter("repeat", &[])]);
    let lines = said(&actions);
    assert_eq!(lines[lines.len() - 2..], [bill, bill]);
    assert_eq!((s.node.as_str(), s.unclear_reprompts), ("bill", 0));
    let repeat = || utter("repeat", &[]);
    let (s, actions, _) = run(&[repeat(), repeat(), repeat()]);
    assert_eq!(s.outcome, Some(Outcome::NoAnswer));
    assert!(said(&actions).last().unwrap().contains("not a good line"));
    let (s, _, _) = run(&[repeat(), repeat(), utter("yes", &[]), repeat(), repeat()]);
    assert!(s.outcome.is_none() && s.node == "bill");
    // No fixed question to repeat (an open node's reply is the model's): the unclear line.
    let open = open_script();
    let (_, actions, _) = run_on(&open, &[repeat()]);
    assert_eq!(said(&actions).last(), Some(&open.globals.unclear));
}
