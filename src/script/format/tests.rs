use super::*;
use chrono_tz::America::{Los_Angeles, New_York};

fn solar() -> Script {
    Script::from_toml("solar.toml", crate::script::EXAMPLE_SCRIPT).unwrap()
}

const HEADER: &str = r#"
[script]
name = "x"
persona = "Pat"
company = "Acme"
callback_number = "1"
opening = "Hi {name}, this is {persona}."
disclosure = "I am an automated assistant."
start = "a"
"#;

#[test]
fn the_example_loads_with_typed_variables_faqs_and_no_warnings() {
    let s = solar();
    assert_eq!(s.vars["callback_time"], VarType::Time);
    assert_eq!(s.vars["monthly_bill"], VarType::Number);
    let ids: Vec<&str> = s.faqs.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "are_you_a_robot",
            "who_is_this",
            "what_is_this_about",
            "how_did_you_get_my_number",
            "cost"
        ]
    );
    assert!(s
        .faq("what_is_this_about")
        .unwrap()
        .answer
        .contains("solar"));
    assert_eq!(
        s.nodes["book_time"].intents[0].needs,
        ["callback_time".to_string()]
    );
    assert_eq!(s.nodes["end_interested"].end, Some(Outcome::Interested));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert!(s.intent_names("bill").contains(&"cost".to_string()));
}

#[test]
fn lines_speak_variables_by_type_and_leave_unknown_ones_out() {
    let s = solar();
    let vars = BTreeMap::from([
        (
            "callback_time".to_string(),
            "2026-12-02T15:00:00-05:00".to_string(),
        ),
        ("monthly_bill".to_string(), "180".to_string()),
    ]);
    assert_eq!(
        s.render(
            "Booked for {callback_time}, bill {monthly_bill}, {company}.",
            &vars,
            New_York
        ),
        "Booked for Wednesday, December 2 at 3 p.m., bill 180, Sunrise Solar."
    );
    // In the lead's zone.
    assert_eq!(
        s.render("{callback_time}", &vars, Los_Angeles),
        "Wednesday, December 2 at noon"
    );
    // A part of the day and a day alone keep their precision.
    let vars = BTreeMap::from([(
        "callback_time".to_string(),
        "2026-12-04T10:00:00-05:00~".to_string(),
    )]);
    assert_eq!(
        s.render("on {callback_time}.", &vars, New_York),
        "on Friday, December 4 in the morning."
    );
    // Unknown or empty: left out, punctuation tidied; braces that are no name stay.
    let none = BTreeMap::from([("name".to_string(), " ".to_string())]);
    assert_eq!(
        s.render("Hi {name}, this is {persona}. {x}", &none, New_York),
        "Hi, this is Nova."
    );
    assert_eq!(
        s.render("A {literal brace} stays", &none, New_York),
        "A {literal brace} stays"
    );
    let sam = BTreeMap::from([("name".to_string(), "Sam".to_string())]);
    assert_eq!(
        s.render("Hi {name}, this is {persona}.", &sam, New_York),
        "Hi Sam, this is Nova."
    );
}

#[test]
fn faqs_override_builtins_by_id_and_the_robot_answer_must_admit_it() {
    let toml = format!(
        "{HEADER}\n[[faq]]\nid = \"are_you_a_robot\"\nanswer = \"I am a virtual assistant.\"\n[[faq]]\nid = \"hours\"\nexamples = [\"when are you open\"]\nanswer = \"Nine to five.\"\n[[node]]\nid = \"a\"\nsay = \"Bye.\"\nend = \"not_interested\"\n"
    );
    let s = Script::from_toml("x.toml", &toml).unwrap();
    let robot = s.faq("are_you_a_robot").unwrap();
    assert_eq!(robot.answer, "I am a virtual assistant.");
    assert!(robot.examples.len() > 3, "built-in examples kept");
    assert_eq!(s.faq("hours").unwrap().answer, "Nine to five.");
    // The old globals keys are aliases.
    let toml = format!(
        "{HEADER}\n[globals]\nwho_is_this = \"Pat from Acme.\"\n[[node]]\nid = \"a\"\nsay = \"Bye.\"\nend = \"callback\"\n"
    );
    let s = Script::from_toml("x.toml", &toml).unwrap();
    assert_eq!(s.faq("who_is_this").unwrap().answer, "Pat from Acme.");
    let toml = format!(
        "{HEADER}\n[globals]\nwho_is_this = \"Pat.\"\n[[faq]]\nid = \"who_is_this\"\nanswer = \"Pat.\"\n[[node]]\nid = \"a\"\nsay = \"Bye.\"\nend = \"callback\"\n"
    );
    let err = Script::from_toml("x.toml", &toml).unwrap_err().to_string();
    assert!(err.contains("globals.who_is_this: also given"), "{err}");
    let toml = format!(
        "{HEADER}\n[globals]\nare_you_a_robot = \"Yes, I am.\"\n[[node]]\nid = \"a\"\nsay = \"Bye.\"\nend = \"callback\"\n"
    );
    let err = Script::from_toml("x.toml", &toml).unwrap_err().to_string();
    assert!(
        err.contains("are_you_a_robot") && err.contains("AI"),
        "{err}"
    );
}

#[test]
fn unknown_variables_are_warnings_not_errors() {
    let toml = format!(
        "{HEADER}\n[[node]]\nid = \"a\"\nsay = \"Your {{plan}} is ready, {{name}}.\"\nend = \"interested\"\n"
    );
    let s = Script::from_toml("x.toml", &toml).unwrap();
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert_eq!(s.warnings[0].key, "node (a).say");
    assert!(s.warnings[0].reason.contains("{plan}"));
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

[[faq]]
id = "decline"
answer = ""

[[faq]]
id = "hours"
answer = "Nine to five."

[[node]]
id = "a"
say = "Hello?"
capture = { budget = "money", when = "time" }
  [[node.intent]]
  name = "opt_out"
  examples = ["x"]
  next = "b"
  [[node.intent]]
  name = "cost"
  examples = ["x"]
  next = "c"
  needs = ["budget_left"]
  [[node.intent]]
  name = "later"
  examples = ["x"]
  next = "c"
  needs = ["when"]

[[node]]
id = "a"
end = "great"

[[node]]
id = "c"
say = "Booked for {when}."
end = "interested"

[[node]]
id = "d"
open = true
say = "Hi"
  [[node.intent]]
  name = "x"
  examples = ["x"]
  next = "c"

[[node]]
id = "e"
say = "Bye"
capture = { when = "number" }
sentences = 0
fallback = "zzz"
  [[node.intent]]
  name = "x"
  examples = ["x"]
  next = "c"
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
        "faq[0] (decline).id",
        "faq[0] (decline).answer",
        "faq[1] (hours).examples",
        "intent[1].needs: \"budget_left\" is not captured",
        "intent[2].needs: node \"c\" says {when}",
        "node[3] (d).generate",
        "node[3] (d).open",
        "node[4] (e).capture.when: captured with another type",
        "node[4] (e).sentences",
        "node[4] (e).fallback: no node \"zzz\"",
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

#[test]
fn the_open_conversation_must_disclose_and_keeps_the_legal_faq() {
    let ok = OpenConversation {
        greeting: "Hello, I am an AI assistant.".into(),
        system_prompt: "You are helpful.".into(),
        opt_out_digit: None,
        opt_out_message: "Removed.".into(),
        max_reply_sentences: 0,
    };
    let s = Script::open_conversation(&ok).unwrap();
    assert_eq!(s.nodes[&s.start].sentences, 1);
    assert!(s.nodes[&s.start].open);
    assert_eq!(s.persona_prompt.as_deref(), Some("You are helpful."));
    assert_eq!(s.globals.opt_out, "Removed.");
    assert!(s.voicemail.is_none());
    assert!(s.faq("are_you_a_robot").is_some() && s.faqs.len() == 1);
    let bad = OpenConversation {
        greeting: "Hello there.".into(),
        opt_out_message: " ".into(),
        ..ok
    };
    let keys: Vec<String> = Script::open_conversation(&bad)
        .unwrap_err()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(
        keys,
        ["conversation.greeting", "conversation.opt_out_message"]
    );
}

#[test]
fn automation_is_admitted_in_words() {
    assert!(admits_automation("I am an AI assistant"));
    assert!(admits_automation("an automated call"));
    assert!(admits_automation("I'm an A.I."));
    assert!(!admits_automation(
        "This is a sales call about our fair prices."
    ));
}

#[test]
fn fixed_lines_are_rendered_and_skip_call_variables() {
    let s = Script::from_toml("solar.toml", crate::script::EXAMPLE_SCRIPT).unwrap();
    let lines = s.fixed_lines();
    assert!(lines
        .iter()
        .any(|l| l.starts_with("Hi, this is Nova calling from Sunrise Solar. I am an automated")));
    assert!(lines.contains(&"And do you own your home?".to_string()));
    // `{callback_number}` is the script's own: rendered.
    assert!(lines
        .iter()
        .any(|l| l.contains("An advisor will call you from +1 555 010 0200 to find a time")));
    // `{callback_time}` belongs to the call: not a fixed line.
    assert!(!lines.iter().any(|l| l.contains("booked for")));
    assert!(!lines.iter().any(|l| l.contains('{')));
}

#[test]
fn callback_greeting_has_a_default_and_skips_are_checked() {
    assert_eq!(
        solar().callback_greeting,
        "You asked us to call back today about solar for your home."
    );
    assert_eq!(
        solar().nodes["bill"].skip_if_known.as_deref(),
        Some("homeowner")
    );
    let toml = format!(
        "{HEADER}\n[[node]]\nid = \"a\"\nsay = \"Bill?\"\nskip_if_known = \"nowhere\"\n\
         [[node.intent]]\nname = \"x\"\nexamples = [\"x\"]\nnext = \"b\"\n\
         [[node]]\nid = \"b\"\nsay = \"Bye.\"\nend = \"interested\"\n"
    );
    let err = Script::from_toml("x.toml", &toml).unwrap_err().to_string();
    assert!(
        err.contains("node[0] (a).skip_if_known: no other node \"nowhere\""),
        "{err}"
    );
    assert!(err.contains("captures nothing"), "{err}");
    let ok = toml.replace(
        "skip_if_known = \"nowhere\"",
        "capture = { bill = \"number\" }\nskip_if_known = \"b\"",
    );
    let s = Script::from_toml("x.toml", &ok).unwrap();
    assert_eq!(
        s.callback_greeting,
        "You asked us to call you back at this time."
    );
    assert!(s.fixed_lines().contains(&s.callback_greeting));
}

#[test]
fn a_nodes_examples_prime_the_ear_first_of_each_intent_first_within_the_limit() {
    let s = solar();
    assert_eq!(
        s.nodes["bill"].answer_examples(160).as_deref(),
        Some(
            "About 150 dollars. I don't know. Two hundred a month. Not sure. Around 90. \
             My wife pays it."
        )
    );
    assert_eq!(
        s.nodes["intro"].answer_examples(30).as_deref(),
        Some("Yes. No. Sure. Not now."),
        "whole sentences only"
    );
    assert_eq!(s.nodes["bill"].answer_examples(5), None, "none fits");
    let end = s.nodes.values().find(|n| n.end.is_some()).unwrap();
    assert_eq!(
        end.answer_examples(160),
        None,
        "an end node expects nothing"
    );
}

#[test]
fn a_doubtful_turn_is_listened_to_again_against_answers_that_carry_no_value() {
    let s = solar();
    assert_eq!(
        s.nodes["pitch"].answer_choices()[..6],
        [
            "Yes.",
            "Sure, book it.",
            "Sounds good.",
            "No thanks.",
            "Not interested.",
            "No."
        ]
    );
    // The amounts name numbers: only the answers without one.
    assert_eq!(
        s.nodes["bill"].answer_choices(),
        ["I don't know.", "Not sure.", "My wife pays it."]
    );
    // A time is what the callback intent needs: none of its examples is a choice.
    let callback = s.nodes["callback"].answer_choices();
    assert!(
        callback
            .iter()
            .all(|c| !c.contains("ten") && !c.contains("Monday")),
        "{callback:?}"
    );
}

#[test]
fn the_questions_callers_ask_prime_the_ear_one_example_each() {
    let s = solar();
    assert_eq!(
        s.question_examples(100).as_deref(),
        Some(
            "Are you a robot? Who is this? What is this about? How did you get my number? \
             How much does it cost?"
        )
    );
    assert_eq!(
        s.question_examples(40).as_deref(),
        Some("Are you a robot? Who is this?")
    );
}

#[test]
fn a_script_that_captures_a_time_primes_the_ear_with_how_times_sound() {
    let hint = solar()
        .time_examples()
        .expect("solar captures callback_time");
    assert!(
        hint.contains("half past") && hint.contains("a.m."),
        "{hint}"
    );
    let no_time = format!(
        "{HEADER}\n[[node]]\nid = \"a\"\nsay = \"Your bill?\"\ncapture = {{ bill = \"number\" }}\n  [[node.intent]]\n  name = \"amount\"\n  examples = [\"about 90\"]\n  needs = [\"bill\"]\n  next = \"b\"\n[[node]]\nid = \"b\"\nsay = \"Bye.\"\nend = \"not_interested\"\n"
    );
    let s = Script::from_toml("x.toml", &no_time).unwrap();
    assert_eq!(s.time_examples(), None, "no time to hear");
}

#[test]
fn the_hold_wait_is_bounded_and_its_line_has_a_default() {
    let node = "[[node]]\nid = \"a\"\nsay = \"Bye.\"\nend = \"callback\"\n";
    let s = Script::from_toml("x.toml", &format!("{HEADER}\n{node}")).unwrap();
    assert_eq!(s.hold_seconds, 30);
    assert_eq!(
        s.globals.hold,
        "Sure, take your time. I will be right here."
    );
    for bad in [0, 121] {
        let toml = format!("{HEADER}hold_seconds = {bad}\n{node}");
        let err = Script::from_toml("x.toml", &toml).unwrap_err().to_string();
        assert!(
            err.contains("script.hold_seconds: 1 to 120 seconds"),
            "{err}"
        );
    }
    let toml = format!("{HEADER}hold_seconds = 90\n[globals]\nhold = \"Of course.\"\n{node}");
    let s = Script::from_toml("x.toml", &toml).unwrap();
    assert_eq!(
        (s.hold_seconds, s.globals.hold.as_str()),
        (90, "Of course.")
    );
}
