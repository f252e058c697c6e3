use chrono::TimeZone;

use super::*;

fn w(s: &str) -> Vec<String> {
    words(s)
}

fn timing(label: &str, dead_air_ms: u64) -> TurnTiming {
    TurnTiming {
        turn: 0,
        label: label.into(),
        end_ms: 1000,
        latency_ms: Some(dead_air_ms),
        over_line: false,
        dead_air_ms,
    }
}

const DISCLOSURE: &str = "I am an automated AI assistant, and this call may be recorded.";

#[test]
fn words_are_normalised_like_a_transcript() {
    assert_eq!(
        w("I'm an automated A.I. assistant."),
        ["i", "am", "an", "automated", "ai", "assistant"]
    );
    assert_eq!(
        w("Wednesday, December 2nd at 3 p.m."),
        ["wednesday", "december", "2", "at", "3", "pm"]
    );
    assert_eq!(w("three p.m., fifteen-minute"), ["3", "pm", "15", "minute"]);
    assert_eq!(w("About $200, okay?"), ["about", "200", "ok"]);
    assert_eq!(w("Don’t"), ["do", "not"]);
}

#[test]
fn phrases_are_heard_with_a_missing_or_misspelt_word() {
    let heard = w("Hi, this is Novah calling from Sunrise Solar. I am an automated assistant and this call may be recorded. Is now a good time?");
    let (n, best) = occurrences(&w(DISCLOSURE), &heard);
    assert_eq!(n, 1, "{best}");
    assert!(best > 0.8 && best < 1.0, "{best}");
    assert_eq!(
        occurrences(&w("this is Nova calling from Sunrise Solar"), &heard).0,
        1
    );
    // Half a phrase is not the phrase.
    let cut = w("Hi, this is Nova. I am an automated");
    assert_eq!(occurrences(&w(DISCLOSURE), &cut).0, 0);
    // Words must come in order, close together.
    let scattered = w("recorded call this may be an automated assistant");
    assert_eq!(occurrences(&w(DISCLOSURE), &scattered).0, 0);
}

#[test]
fn a_question_asked_again_counts_twice() {
    let q = "Roughly how much is your electricity bill each month?";
    let once = w(&format!("{q} It is free. Anyway, how much is it?"));
    let twice = w(&format!("{q} The consultation is free. {q}"));
    assert_eq!(occurrences(&w(q), &once).0, 1);
    assert_eq!(occurrences(&w(q), &twice).0, 2);
    assert_eq!(Phrase::parse("2x Roughly how much").times, 2);
    assert_eq!(
        Phrase::parse("2x Roughly how much").text,
        "Roughly how much"
    );
    assert_eq!(Phrase::parse("Fix the 2x4 now").times, 1);
}

fn expect() -> Expect {
    Expect {
        outcome: Some("callback".into()),
        vars: BTreeMap::from([
            (
                "callback_time".to_string(),
                Want::new("callback_time", "tomorrow 15:00").unwrap(),
            ),
            (
                "monthly_bill".to_string(),
                Want::new("monthly_bill", "200").unwrap(),
            ),
        ]),
        heard: vec![
            Phrase::parse(DISCLOSURE),
            Phrase::parse("we will call you back {callback_time}"),
        ],
        not_heard: vec![Phrase::parse("Sorry, I did not catch that")],
        max_dead_air: Duration::from_secs(3),
    }
}

fn now() -> DateTime<Tz> {
    chrono_tz::America::Los_Angeles
        .with_ymd_and_hms(2026, 12, 2, 10, 5, 0)
        .unwrap()
}

#[test]
fn a_call_that_did_everything_passes() {
    let vars = BTreeMap::from([
        ("callback_time".into(), "2026-12-03T15:00:00-08:00".into()),
        ("monthly_bill".into(), "200.0".into()),
    ]);
    let transcript = format!(
        "{DISCLOSURE} No problem. Thank you, we will call you back Thursday, December 3rd at 3 p.m. Goodbye."
    );
    let timings = [timing("Yes.", 900), timing("Tomorrow at three.", 2500)];
    let v = judge(
        &expect(),
        &Observed {
            outcome: Some("callback"),
            vars: &vars,
            transcript: &transcript,
            timings: &timings,
            now: now(),
        },
    );
    assert!(v.passed(), "{:?}", v.failures);
    assert_eq!((v.heard_ok, v.heard_total), (3, 3));
    assert_eq!((v.vars_ok, v.vars_total), (2, 2));
    assert_eq!(v.worst_dead_air, Some((2500, "Tomorrow at three.".into())));
}

#[test]
fn each_failure_says_why() {
    let vars = BTreeMap::from([("callback_time".into(), "tomorrow at three works".into())]);
    let transcript = "Hi, this is Nova. Sorry, I did not catch that. Could you say it again?";
    let timings = [timing("Tomorrow at three.", 4200)];
    let v = judge(
        &expect(),
        &Observed {
            outcome: Some("no_answer"),
            vars: &vars,
            transcript,
            timings: &timings,
            now: now(),
        },
    );
    let all = v.failures.join("\n");
    assert!(
        all.contains("outcome: want callback, got no_answer"),
        "{all}"
    );
    assert!(
        all.contains("callback_time: want tomorrow 15:00, got"),
        "{all}"
    );
    assert!(all.contains("not a normalised time"), "{all}");
    assert!(
        all.contains("monthly_bill: want \"200\", not captured"),
        "{all}"
    );
    assert!(all.contains("not heard: \"I am an automated"), "{all}");
    assert!(
        all.contains("we will call you back Thursday, December 3 at 3 p.m."),
        "{all}"
    );
    assert!(
        all.contains("(must not): \"Sorry, I did not catch that\""),
        "{all}"
    );
    assert!(
        all.contains("dead air 4.2 s after \"Tomorrow at three.\""),
        "{all}"
    );
    assert_eq!(v.heard_ok, 0);

    // A time in the wrong hour names what it was.
    let vars = BTreeMap::from([("callback_time".into(), "2026-12-03T10:00:00-08:00".into())]);
    let v = judge(
        &expect(),
        &Observed {
            outcome: Some("callback"),
            vars: &vars,
            transcript: "",
            timings: &[],
            now: now(),
        },
    );
    assert!(
        v.failures.iter().any(|f| f.contains("got Thu Dec 3 10:00")),
        "{:?}",
        v.failures
    );
}

#[test]
fn values_compare_by_meaning() {
    assert!(same_value("200", "200.0"));
    assert!(same_value("200", "$200"));
    assert!(!same_value("200", "150"));
    assert!(same_value("true", "yes"));
    assert!(!same_value("true", "false"));
    assert!(same_value("Friday", "friday"));
}

#[test]
fn short_words_forgive_a_dropped_letter_but_never_a_negation() {
    // Whisper tiny on the agent's voice: "do you own" -> "be you on".
    let heard = w("Roughly how much is it? And be you on your home.");
    assert_eq!(occurrences(&w("And do you own your home?"), &heard).0, 1);
    assert!(same_word("own", "on") && same_word("the", "thee"));
    assert!(!same_word("not", "no") && !same_word("no", "now") && !same_word("do", "be"));
    assert!(
        !same_word("own", "one"),
        "a changed letter in a short word is another word"
    );
    let said = w("Sorry, I did no catch that");
    assert_eq!(
        occurrences(&w("I did not catch that"), &said).0,
        1,
        "4 of 5 words"
    );
    assert_eq!(occurrences(&w("not interested"), &w("now interested")).0, 0);
}

#[test]
fn a_day_alone_never_passes_for_a_wanted_hour() {
    let want = Want::new("callback_time", "tomorrow 10:00").unwrap();
    // "Tomorrow at ten" heard as "tomorrow": stored at the window's opening hour, day only.
    let r = check_var(&want, Some("2026-12-03T10:00:00-08:00~day"), now());
    assert!(r.unwrap_err().contains("only a day"));
    assert!(check_var(&want, Some("2026-12-03T10:00:00-08:00"), now()).is_ok());
    let day = Want::new("callback_time", "tomorrow").unwrap();
    assert!(check_var(&day, Some("2026-12-03T10:00:00-08:00~day"), now()).is_ok());
}

#[test]
fn words_run_together_or_split_by_the_ear_still_count() {
    let heard = w("Hi, this is Novocalling from Sun Rise Solar. I am an automated AI assistant.");
    assert_eq!(
        occurrences(&w("this is Nova calling from Sunrise Solar"), &heard).0,
        1
    );
    // Running words together does not make up missing ones.
    assert_eq!(
        occurrences(
            &w("Nova calling from Sunrise Solar today"),
            &w("Novocalling")
        )
        .0,
        0
    );
}
