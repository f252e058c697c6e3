use super::*;

fn script() -> Script {
    Script::from_toml("solar.toml", crate::script::EXAMPLE_SCRIPT).unwrap()
}

#[test]
fn rules_catch_compliance_phrases_and_examples() {
    let s = script();
    assert_eq!(
        by_rules(&s, "pitch", "Please take me off your list!").as_deref(),
        Some("opt_out")
    );
    assert_eq!(by_rules(&s, "intro", "Stop.").as_deref(), Some("opt_out"));
    assert_eq!(
        by_rules(&s, "intro", "Wait, are you a robot?").as_deref(),
        Some("are_you_a_robot")
    );
    assert_eq!(
        by_rules(&s, "intro", "Sorry, wrong number.").as_deref(),
        Some("wrong_person")
    );
    assert_eq!(
        by_rules(&s, "intro", "Can you call me back later?").as_deref(),
        Some("call_later")
    );
    assert_eq!(by_rules(&s, "intro", "Sure.").as_deref(), Some("yes"));
    assert_eq!(
        by_rules(&s, "homeowner", "No, I rent.").as_deref(),
        Some("no")
    );
    assert_eq!(
        by_rules(&s, "bill", "Hmm, it varies a lot by season").as_deref(),
        None
    );
    assert_eq!(by_rules(&s, "bill", "").as_deref(), Some("unclear"));
    // A number where one is asked for, however it is written.
    assert_eq!(
        by_rules(&s, "bill", "about $200 a month.").as_deref(),
        Some("amount")
    );
    assert_eq!(
        by_rules(&s, "bill", "Hmm, maybe three hundred?").as_deref(),
        Some("amount")
    );
    // A time where one is asked for, even half misheard.
    assert_eq!(
        by_rules(&s, "book_time", "Amaro at 10 works.").as_deref(),
        Some("time")
    );
    assert_eq!(
        by_rules(&s, "callback", "Maybe Friday morning?").as_deref(),
        Some("time")
    );
    // A number elsewhere does not answer the node.
    assert_eq!(by_rules(&s, "homeowner", "We have 2 kids").as_deref(), None);
}

#[test]
fn grammar_lists_labels_and_typed_variables() {
    let g = grammar(&script(), "bill");
    assert!(g.contains("\"\\\"amount\\\"\""), "{g}");
    assert!(
        g.contains("\"\\\"unclear\\\"\"") && !g.contains("opt_out"),
        "{g}"
    );
    assert!(g.contains("\\\"monthly_bill\\\": \" num"), "{g}");
}

#[test]
fn parsing_never_fails_and_rejects_foreign_labels() {
    let s = script();
    let c = parse(&s, "bill", r#"{"intent": "amount", "monthly_bill": 150}"#);
    assert_eq!(
        (c.intent.as_str(), c.captured["monthly_bill"].as_str()),
        ("amount", "150")
    );
    assert_eq!(parse(&s, "bill", r#"{"intent": "yes"}"#).intent, "unclear");
    assert_eq!(
        parse(&s, "bill", r#"{"intent": "opt_out"}"#).intent,
        "unclear",
        "rules only"
    );
    assert_eq!(parse(&s, "bill", "garbage").intent, "unclear");
    assert!(
        parse(&s, "bill", r#"{"intent": "amount", "monthly_bill": null}"#)
            .captured
            .is_empty()
    );
}

#[test]
fn rule_extraction_reads_numbers_and_answers() {
    let s = script();
    assert_eq!(
        extract_by_rules(&s, "bill", "amount", "About $180 a month.")["monthly_bill"],
        "180"
    );
    assert_eq!(
        extract_by_rules(&s, "bill", "amount", "around two hundred and fifty")["monthly_bill"],
        "250"
    );
    assert_eq!(
        extract_by_rules(&s, "homeowner", "yes", "Yes we do")["owns_home"],
        "true"
    );
    assert_eq!(
        extract_by_rules(&s, "book_time", "time", "Tuesday at 3pm.")["callback_time"],
        "Tuesday at 3pm"
    );
}
