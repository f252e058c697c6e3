use super::*;
use chrono::TimeZone;
use chrono_tz::America::New_York;

fn script() -> Script {
    Script::from_toml("solar.toml", crate::script::EXAMPLE_SCRIPT).unwrap()
}

/// Wednesday 2026-12-02 09:30 in New York.
fn now() -> DateTime<Tz> {
    New_York.with_ymd_and_hms(2026, 12, 2, 9, 30, 0).unwrap()
}

const QUESTIONS: &[&str] = &[
    "intro",
    "bill",
    "homeowner",
    "pitch",
    "book_time",
    "callback",
];

fn rules(s: &Script, node: &str, text: &str) -> Option<Classified> {
    by_rules(s, node, text, now(), &CallingWindow::legal())
}

fn intent(s: &Script, node: &str, text: &str) -> Option<String> {
    rules(s, node, text).map(|c| c.intent)
}

#[test]
fn the_misrouted_answers_go_where_they_belong() {
    let s = script();
    for (node, text, want) in [
        (
            "bill",
            "Am I talking to a real person or a robot?",
            "are_you_a_robot",
        ),
        (
            "intro",
            "Am I talking to a real person or a robot?",
            "are_you_a_robot",
        ),
        ("homeowner", "Are you a bot?", "are_you_a_robot"),
        ("intro", "No thanks, I am not interested.", "decline"),
        ("callback", "No, really, I am not interested.", "decline"),
        ("intro", "Hi, who is this?", "who_is_this"),
        // Whisper's ear on espeak's "Hello? Who is this?".
        ("intro", "hello, who is me.", "who_is_this"),
        ("bill", "Who's that?", "who_is_this"),
        ("book_time", "How much does it cost?", "cost"),
        ("callback", "How much does it cost?", "cost"),
    ] {
        let c = rules(&s, node, text).unwrap_or_else(|| panic!("{node}: {text}"));
        assert_eq!((c.intent.as_str(), c.by), (want, "rule"), "{node}: {text}");
        assert!(c.captured.is_empty(), "{node}: {text}: {c:?}");
    }
    // A typed time is captured as a time, never as the words.
    let c = rules(&s, "book_time", "Tomorrow at 10 works.").unwrap();
    assert_eq!(c.intent, "time");
    assert_eq!(c.captured["callback_time"], "2026-12-03T10:00:00-05:00");
}

#[test]
fn ten_ways_to_opt_out_at_every_node() {
    let s = script();
    for text in [
        "Stop calling me.",
        "Please take me off your list!",
        "Remove my number.",
        "Put me on your do not call list.",
        "Don't call me again.",
        "Never call this number again.",
        "Stop.",
        "Unsubscribe.",
        "Lose my number, please.",
        "I want to opt out of these calls.",
        // "Unsubscribe" as Whisper tiny spells and hears it.
        "I want to un-subscribe from these calls.",
        "I want to subscribe from me called.",
    ] {
        for node in QUESTIONS {
            assert_eq!(
                intent(&s, node, text).as_deref(),
                Some("opt_out"),
                "{node}: {text}"
            );
        }
    }
}

#[test]
fn declines_at_every_node_and_a_plain_no_stays_the_nodes() {
    let s = script();
    for text in [
        "No thanks, I am not interested.",
        "No, really, I am not interested.",
        "We're not interested.",
        "I'm good, thanks.",
        "Not for me.",
        "Nah, I'll pass.",
        "I'm not really interested.",
        "No thank you.",
        "Honestly, I'm good.",
        "I am not at all interested.",
        // "Not interested" as Whisper tiny heard it.
        "I did not be interested.",
    ] {
        for node in QUESTIONS {
            let c = rules(&s, node, text).unwrap();
            if *node == "pitch" {
                // The pitch routes declines itself: its "no" (to the not-interested end),
                // with the answer captured.
                assert_eq!(c.intent, "no", "{node}: {text}");
                assert_eq!(
                    c.captured.get("interested").map(String::as_str),
                    Some("false"),
                    "{text}"
                );
            } else {
                assert_eq!(c.intent, "decline", "{node}: {text}");
                assert!(c.captured.is_empty(), "{node}: {text}: {:?}", c.captured);
            }
        }
    }
    assert_eq!(intent(&s, "intro", "No.").as_deref(), Some("no"));
    assert_eq!(
        intent(&s, "homeowner", "No, I rent.").as_deref(),
        Some("no")
    );
    assert_eq!(intent(&s, "pitch", "No.").as_deref(), Some("no"));
    assert_ne!(
        intent(&s, "pitch", "Yeah, I'm good with that.").as_deref(),
        Some("decline")
    );
    for text in ["I'd be interested.", "Not only interested, I want it now."] {
        assert_ne!(
            intent(&s, "pitch", text).as_deref(),
            Some("decline"),
            "{text}"
        );
    }
}

#[test]
fn questions_at_every_node_are_answered_never_captured() {
    let s = script();
    for (text, want) in [
        ("How much does it cost?", "cost"),
        ("Is it expensive?", "cost"),
        (
            "Am I talking to a real person or a robot?",
            "are_you_a_robot",
        ),
        ("Is this a recording?", "are_you_a_robot"),
        ("Hi, who is this?", "who_is_this"),
        ("What is this about?", "what_is_this_about"),
        ("Where did you get my number?", "how_did_you_get_my_number"),
        ("Do you install batteries too?", "unknown_question"),
        ("Who is going to install the panels?", "unknown_question"),
        ("Why is the sky blue?", "unknown_question"),
        ("What kind of panels do you use", "unknown_question"),
    ] {
        for node in QUESTIONS {
            let c = rules(&s, node, text).unwrap_or_else(|| panic!("{node}: {text}"));
            assert_eq!(c.intent, want, "{node}: {text}");
            assert!(c.captured.is_empty(), "{node}: {text}");
        }
    }
}

#[test]
fn ten_callback_times_are_captured_as_times() {
    let s = script();
    for (text, want) in [
        ("Tomorrow at ten.", "2026-12-03T10:00:00-05:00"),
        ("Friday morning.", "2026-12-04T10:00:00-05:00~"),
        (
            "Call me back tomorrow at 3 p.m.",
            "2026-12-03T15:00:00-05:00",
        ),
        ("In two hours.", "2026-12-02T11:30:00-05:00"),
        ("Next Monday at 9.", "2026-12-07T09:00:00-05:00"),
        (
            "Thursday afternoon would be better.",
            "2026-12-03T14:00:00-05:00~",
        ),
        ("Maybe around 4:30 today?", "2026-12-02T16:30:00-05:00"),
        ("The 10th at noon.", "2026-12-10T12:00:00-05:00"),
        ("Tonight at 7.", "2026-12-02T19:00:00-05:00"),
        (
            "Um, December 15th at 11 a.m. works.",
            "2026-12-15T11:00:00-05:00",
        ),
    ] {
        let c = rules(&s, "callback", text).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(c.intent, "time", "{text}");
        assert_eq!(c.captured["callback_time"], want, "{text}");
        assert!(c.rejected.is_empty(), "{text}");
    }
}

#[test]
fn times_that_cannot_be_used_say_why() {
    let s = script();
    let c = rules(&s, "book_time", "Tomorrow at 11 at night.").unwrap();
    assert_eq!(c.intent, "time");
    assert!(c.captured.is_empty());
    assert_eq!(
        c.rejected["callback_time"],
        Rejection::OutsideWindow {
            hours: "between 8 a.m. and 9 p.m.".into()
        }
    );
    let c = rules(&s, "callback", "Yesterday at noon.").unwrap();
    assert_eq!(c.rejected["callback_time"], Rejection::Past);
    // "Call me back later" elsewhere: the callback node takes the time at once when named.
    let c = rules(&s, "intro", "Can you call me back tomorrow at ten?").unwrap();
    assert_eq!(c.intent, "call_later");
    assert_eq!(c.captured["callback_time"], "2026-12-03T10:00:00-05:00");
    for text in ["I'm busy right now.", "Can you call me back later?"] {
        let c = rules(&s, "pitch", text).unwrap();
        assert_eq!(
            (c.intent.as_str(), c.captured.len()),
            ("call_later", 0),
            "{text}"
        );
    }
}

#[test]
fn a_time_named_where_none_is_asked_answers_the_question_it_belongs_to() {
    let s = script();
    const TOMORROW_3PM: &str = "2026-12-03T15:00:00-05:00";
    for (node, text, want) in [
        // The intro's "no" leads to the callback question: a callback then.
        ("intro", "Tomorrow at three p.m.", "no"),
        // No intent of these leads to a time: a callback then, never an amount.
        ("bill", "Tomorrow at three p.m.", "call_later"),
        ("homeowner", "Call me tomorrow at 3 p.m.", "call_later"),
        // The pitch's "yes" leads to the booking question: booked then.
        ("pitch", "Tomorrow at three p.m.", "yes"),
        ("pitch", "Yes, tomorrow at three p.m. works.", "yes"),
    ] {
        let c = rules(&s, node, text).unwrap();
        assert_eq!(c.intent, want, "{node}: {text}");
        assert_eq!(
            c.captured.get("callback_time").map(String::as_str),
            Some(TOMORROW_3PM),
            "{node}: {text}"
        );
    }
    assert_eq!(
        rules(&s, "pitch", "Tomorrow at three p.m.")
            .unwrap()
            .captured["interested"],
        "true"
    );
    // A bare yes, a number or a time that cannot be used answers nothing further on.
    for (node, text) in [
        ("pitch", "Yes, sure."),
        ("intro", "Yes, I have two minutes."),
        ("bill", "Tomorrow at 11 at night."),
    ] {
        let c = rules(&s, node, text);
        assert!(
            c.as_ref()
                .is_none_or(|c| !c.captured.contains_key("callback_time")),
            "{node}: {text}: {c:?}"
        );
    }
    // "Thursday at 4:30" or "in two hours" to the bill question is no amount.
    for text in ["Thursday at 4:30 p.m.", "In two hours."] {
        let c = rules(&s, "bill", text).unwrap();
        assert_eq!(c.intent, "call_later", "{text}");
        assert!(c.captured.contains_key("callback_time"), "{text}");
        assert!(!c.captured.contains_key("monthly_bill"), "{text}");
    }
}

#[test]
fn rules_read_examples_numbers_and_yes_no() {
    let s = script();
    assert_eq!(intent(&s, "intro", "Sure.").as_deref(), Some("yes"));
    assert_eq!(
        intent(&s, "intro", "Okay, what is it?").as_deref(),
        Some("yes")
    );
    assert_eq!(intent(&s, "intro", "Hello?").as_deref(), Some("repeat"));
    assert_eq!(intent(&s, "intro", "").as_deref(), Some("unclear"));
    assert_eq!(
        intent(&s, "intro", "Sorry, wrong number.").as_deref(),
        Some("wrong_person")
    );
    assert_eq!(
        intent(&s, "intro", "Can you call me back later?").as_deref(),
        Some("call_later")
    );
    let c = rules(&s, "bill", "about $200 a month.").unwrap();
    assert_eq!(
        (c.intent.as_str(), c.captured["monthly_bill"].as_str()),
        ("amount", "200")
    );
    let c = rules(&s, "bill", "Hmm, maybe three hundred?").unwrap();
    assert_eq!(
        (c.intent.as_str(), c.captured["monthly_bill"].as_str()),
        ("amount", "300")
    );
    let c = rules(&s, "homeowner", "Yeah, we do.").unwrap();
    assert_eq!(
        (c.intent.as_str(), c.captured["owns_home"].as_str()),
        ("yes", "true")
    );
    assert_eq!(intent(&s, "homeowner", "We have 2 kids"), None);
    assert_eq!(intent(&s, "bill", "Hmm, it varies a lot by season"), None);
    // A time where one is asked for, even half misheard.
    assert_eq!(
        intent(&s, "book_time", "Amaro at 10 works.").as_deref(),
        Some("time")
    );
    assert_eq!(
        intent(&s, "callback", "Maybe Friday morning?").as_deref(),
        Some("time")
    );
}

#[test]
fn questions_and_proposals_are_told_apart() {
    for (text, question) in [
        ("How much is it?", true),
        ("what do you sell", true),
        ("Could you tell me more about it", true),
        ("Okay, so why are you calling", true),
        ("How about Friday", false),
        ("Do it.", false),
        ("Sure, book it.", false),
    ] {
        assert_eq!(is_question(text, &normalize(text)), question, "{text}");
    }
}

#[test]
fn grammar_lists_labels_and_typed_variables() {
    let s = script();
    let g = grammar(&s, "bill");
    assert!(g.contains("\"\\\"amount\\\"\""), "{g}");
    assert!(
        g.contains("\"\\\"cost\\\"\"") && g.contains("\"\\\"call_later\\\"\""),
        "{g}"
    );
    assert!(
        g.contains("\"\\\"unclear\\\"\"") && !g.contains("opt_out") && !g.contains("decline"),
        "{g}"
    );
    assert!(g.contains("\\\"monthly_bill\\\": \" num"), "{g}");
    assert!(grammar(&s, "book_time").contains("\\\"callback_time\\\": \" str"));
    let p = prompt(&s, "book_time", "whenever");
    assert!(
        p[0].content.contains("when no label fits say unclear"),
        "{}",
        p[0].content
    );
    assert!(
        p[1].content.contains("What day and time works best"),
        "{}",
        p[1].content
    );
    // Every node's prompt starts with the same labels (a prefix the KV cache keeps): only the
    // node's own labels, its question and the words differ.
    let (a, b) = (&prompt(&s, "intro", "x")[0].content, &p[0].content);
    let shared = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    assert!(
        a[..shared].contains("when no label fits say unclear"),
        "{a}"
    );
    assert!(!a[..shared].contains("- yes:"), "{a}");
}

#[test]
fn the_models_answer_is_checked() {
    let s = script();
    let llm = |node: &str, text: &str, out: &str| {
        from_llm(&s, node, text, out, now(), &CallingWindow::legal())
    };
    let c = llm(
        "bill",
        "it's one fifty",
        r#"{"intent": "amount", "monthly_bill": 999}"#,
    );
    assert_eq!(
        (c.intent.as_str(), c.captured["monthly_bill"].as_str(), c.by),
        ("amount", "150", "llm"),
        "the caller's words win"
    );
    let c = llm(
        "bill",
        "the usual",
        r#"{"intent": "amount", "monthly_bill": 150}"#,
    );
    assert_eq!(c.captured["monthly_bill"], "150");
    assert_eq!(llm("bill", "x", r#"{"intent": "yes"}"#).intent, "unclear");
    assert_eq!(
        llm("bill", "x", r#"{"intent": "opt_out"}"#).intent,
        "unclear"
    );
    assert_eq!(
        llm("bill", "x", r#"{"intent": "decline"}"#).intent,
        "unclear"
    );
    assert_eq!(llm("bill", "x", "garbage").intent, "unclear");
    // An FAQ the answer shares no word with is the model's guess.
    assert_eq!(
        llm("bill", "the price, I guess", r#"{"intent": "cost"}"#).intent,
        "cost"
    );
    assert_eq!(
        llm(
            "bill",
            "it varies by season",
            r#"{"intent": "how_did_you_get_my_number"}"#
        )
        .intent,
        "unclear"
    );
    // A time the parser cannot read is not captured (the node asks again).
    let c = llm(
        "book_time",
        "whenever suits",
        r#"{"intent": "time", "callback_time": "whenever"}"#,
    );
    assert_eq!(c.intent, "time");
    assert!(c.captured.is_empty());
    assert_eq!(c.rejected["callback_time"], Rejection::Unreadable);
    let c = llm(
        "book_time",
        "whatever the advisor likes",
        r#"{"intent": "time", "callback_time": "tomorrow at 10"}"#,
    );
    assert_eq!(c.captured["callback_time"], "2026-12-03T10:00:00-05:00");
    assert!(c.rejected.is_empty());
}

#[test]
fn calling_hours_are_spoken() {
    assert_eq!(
        speak_window(&CallingWindow::legal()),
        "between 8 a.m. and 9 p.m."
    );
    let w = CallingWindow::parse("09:30", "12:00").unwrap();
    assert_eq!(speak_window(&w), "between 9:30 a.m. and noon");
}

#[test]
fn an_open_node_leaves_everything_but_the_globals_to_the_model() {
    let s = Script::open_conversation(&crate::script::format::OpenConversation {
        greeting: "Hi, an AI assistant here.".into(),
        system_prompt: "You help.".into(),
        opt_out_digit: None,
        opt_out_message: "Removed.".into(),
        max_reply_sentences: 2,
    })
    .unwrap();
    let node = s.start.clone();
    for (text, want) in [
        ("What's the weather like?", "open"),
        ("Tell me a joke", "open"),
        ("Are you a robot?", "are_you_a_robot"),
        ("Stop calling me", "opt_out"),
        ("Not interested", "decline"),
        ("Who is this?", "open"),
        ("Hold on, someone is at the door.", "hold"),
        ("Hold on, can you tell me a joke?", "open"),
    ] {
        assert_eq!(intent(&s, &node, text).as_deref(), Some(want), "{text}");
    }
}

#[test]
fn a_time_is_never_read_as_an_amount() {
    let s = script();
    let bill = s.nodes.get("bill").unwrap();
    let amount = |text: &str| {
        read(bill, "amount", text, now(), &CallingWindow::legal())
            .0
            .get("monthly_bill")
            .cloned()
    };
    // The ear lost "not now" at the intro; the callback time then lands at the bill question.
    for text in [
        "Tomorrow at 3 p. m.",
        "Thursday, 430 PM",
        "Monday at half past two.",
    ] {
        assert_eq!(amount(text), None, "{text}");
    }
    for (text, want) in [
        ("About two hundred dollars a month.", "200"),
        ("Around $90.", "90"),
        ("I am paying about 200.", "200"),
        ("Maybe one fifty.", "150"),
        (
            "It depends, but usually around one hundred and fifty dollars.",
            "150",
        ),
    ] {
        assert_eq!(amount(text).as_deref(), Some(want), "{text}");
    }
}

#[test]
fn misheard_opt_outs_and_wrong_numbers_still_count() {
    let s = script();
    for node in QUESTIONS {
        assert_eq!(
            intent(&s, node, "Put me on your device, call list.").as_deref(),
            Some("opt_out")
        );
        assert_eq!(
            intent(&s, node, "There is no one here by name.").as_deref(),
            Some("wrong_person")
        );
        // Tiny Whisper hears Piper's "Please stop calling me." as "start" 4 times in 8.
        assert_eq!(
            intent(&s, node, "Please start calling me.").as_deref(),
            Some("opt_out")
        );
        // ... and espeak's "Don't ever call this number again." so, at the homeowner question.
        assert_eq!(
            intent(&s, node, "No time we're called this humber again.").as_deref(),
            Some("opt_out")
        );
    }
}

#[test]
fn calling_this_number_again_is_an_opt_out_only_after_a_negation() {
    let s = script();
    for (text, opt_out) in [
        ("Don't ever call this number again.", true),
        ("Do not ring this number again!", true),
        ("No, never dial my number again.", true),
        ("Please don't call my phone again.", true),
        ("You can call this number again tomorrow.", false),
        ("Call this number again on Monday.", false),
        // The negation belongs to something said well before.
        (
            "No, I don't think I am free now, but call this number again on Friday.",
            false,
        ),
    ] {
        assert_eq!(is_opt_out(text), opt_out, "{text}");
        if opt_out {
            assert_eq!(
                intent(&s, "bill", text).as_deref(),
                Some("opt_out"),
                "{text}"
            );
        }
    }
}

#[test]
fn asked_to_wait_or_to_repeat_the_node_neither_moves_nor_captures() {
    let s = script();
    for (node, text, want) in [
        ("bill", "Hold on, let me find my bill.", "hold"),
        ("bill", "One second.", "hold"),
        ("homeowner", "One second, someone is at the door.", "hold"),
        ("pitch", "Can you hold on a second?", "hold"),
        ("book_time", "Let me check.", "hold"),
        ("bill", "Sorry, what was that?", "repeat"),
        ("pitch", "What did you say?", "repeat"),
        ("homeowner", "You're breaking up.", "repeat"),
        // A request for time beside an answer or a question: the answer, the question.
        ("homeowner", "Hold on. Yes, we own it.", "yes"),
        ("bill", "Hold on, how much does it cost?", "cost"),
        (
            "bill",
            "Wait a second, do you install batteries?",
            "unknown_question",
        ),
        ("intro", "Hold on, I'm not interested.", "decline"),
    ] {
        let c = rules(&s, node, text).unwrap_or_else(|| panic!("{text}: no rule"));
        assert_eq!(c.intent, want, "{node}: {text}");
        if want == "hold" || want == "repeat" {
            assert!(c.captured.is_empty(), "{text}: {:?}", c.captured);
        }
    }
    // "One second" is no bill of 1; the amount after it is the answer.
    let c = rules(&s, "bill", "Just a sec... it is about two hundred.").unwrap();
    assert_eq!(c.intent, "amount");
    assert_eq!(c.captured["monthly_bill"], "200");
}

#[test]
fn an_example_stands_for_answers_of_its_own_polarity_only() {
    let s = script();
    // The intro's "no" lists "now is not a good time" and "not right now": the same words
    // without the negation are not a no (the LLM, or a leading yes, reads them).
    for text in ["Now is a good time.", "Right now is fine."] {
        assert_ne!(intent(&s, "intro", text).as_deref(), Some("no"), "{text}");
    }
    for text in [
        "Now is not a good time.",
        "It is not a good time right now.",
        "Not right now.",
    ] {
        let c = rules(&s, "intro", text).unwrap_or_else(|| panic!("{text}"));
        assert!(
            ["no", "call_later"].contains(&c.intent.as_str()),
            "{text}: {c:?}"
        );
    }
    // The homeowner's "yes" is "I own it": a negated ownership is not it.
    assert_ne!(
        intent(&s, "homeowner", "I don't own it.").as_deref(),
        Some("yes")
    );
    assert_eq!(
        intent(&s, "homeowner", "We own the house.").as_deref(),
        Some("yes")
    );
    // "No time is good" (never) is negated; "any time is good" is not.
    assert_ne!(
        intent(&s, "callback", "Any time is good.").as_deref(),
        Some("never")
    );
}
