use super::*;
use crate::testbed::emulator::CallerLine;
use crate::testbed::voice::Voice;

const FILE: &str = r#"
[suite]
script = "../campaigns/solar.toml"

[defaults]
voice = "en-us"
wpm = 150
patience_ms = 1200
heard = ["I am an automated AI assistant"]
not_heard = ["Sorry, I did not catch that"]

[[caller]]
name = "pause-mid-turn"
about = "a pause in the middle of a turn"
lines = ["Yes, but I am busy.", "[silence 1.2s]", "Call me back tomorrow at three p.m."]
outcome = "callback"
vars = { callback_time = "tomorrow 15:00", monthly_bill = "200" }
heard = ["2x we will call you back {callback_time}"]

[[caller]]
name = "fast-talker"
wpm = 190
noise_db = -40
timezone = "America/New_York"
lines = ["[over 300ms]", "Hello?"]
default_heard = false
max_dead_air_s = 4.5
"#;

#[test]
fn callers_inherit_the_defaults() {
    let c = Corpus::from_toml("corpus/solar.toml", FILE, Some(Path::new("corpus"))).unwrap();
    assert_eq!(
        c.script,
        Some(PathBuf::from("corpus/../campaigns/solar.toml"))
    );
    assert_eq!(c.callers.len(), 2);
    let pause = &c.callers[0];
    assert_eq!(pause.group, "solar");
    assert_eq!(pause.timezone, DEFAULT_TIMEZONE);
    let Persona::Human { lines } = &pause.persona else {
        panic!("{:?}", pause.persona)
    };
    assert_eq!(
        lines[0],
        CallerLine::Voice(Voice::Espeak {
            name: "en-us".into(),
            wpm: 150
        })
    );
    assert_eq!(lines[1], CallerLine::Patience(Duration::from_millis(1200)));
    assert_eq!(lines[3], CallerLine::Silence(Duration::from_millis(1200)));
    let e = &pause.expect;
    assert_eq!(e.outcome.as_deref(), Some("callback"));
    assert!(matches!(e.vars["callback_time"], Want::Time(..)));
    assert_eq!(e.vars["monthly_bill"], Want::Value("200".into()));
    // The defaults' phrase first, then the caller's own.
    assert_eq!(e.heard.len(), 2);
    assert_eq!(e.heard[1].times, 2);
    assert_eq!(e.not_heard.len(), 1);
    assert_eq!(e.max_dead_air, DEFAULT_MAX_DEAD_AIR);

    let fast = &c.callers[1];
    let Persona::Human { lines } = &fast.persona else {
        panic!()
    };
    assert!(matches!(
        &lines[0],
        CallerLine::Voice(Voice::Espeak { wpm: 190, .. })
    ));
    assert_eq!(lines[1], CallerLine::Noise(Some(-40.0)));
    assert_eq!(fast.timezone, "America/New_York");
    assert!(fast.expect.heard.is_empty() && fast.expect.not_heard.is_empty());
    assert_eq!(fast.expect.max_dead_air, Duration::from_millis(4500));

    let only = c.clone().only(&["fast-talker".into()]).unwrap();
    assert_eq!(only.callers.len(), 1);
    assert!(c.only(&["nobody".into()]).unwrap_err().contains("nobody"));
}

#[test]
fn mistakes_name_the_caller() {
    let bad = |body: &str| {
        Corpus::from_toml("c.toml", &format!("[[caller]]\nname = \"x\"\n{body}"), None)
            .unwrap_err()
            .to_string()
    };
    assert!(bad("outcome = \"happy\"").contains("caller \"x\": outcome \"happy\" is none of"));
    assert!(bad("vars = { callback_time = \"soon\" }").contains("time \"soon\""));
    assert!(bad("lines = [\"[dance]\"]").contains("unknown action"));
    assert!(bad("timezone = \"Mars/Olympus\"").contains("unknown time zone"));
    assert!(bad("colour = \"red\"").contains("colour"));
    let twice = "[[caller]]\nname = \"a\"\n[[caller]]\nname = \"a\"\n";
    assert!(Corpus::from_toml("c.toml", twice, None)
        .unwrap_err()
        .to_string()
        .contains("named twice"));
    assert!(Corpus::from_toml("c.toml", "[[caller]]\nname = \"a b\"", None).is_err());
}

/// The shipped corpus parses, is big enough and covers every behaviour the issue lists.
#[test]
fn the_shipped_corpus_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/corpus");
    let c = Corpus::load(&dir).unwrap();
    assert!(c.callers.len() >= 40, "{} callers", c.callers.len());
    assert!(c.callers.iter().all(|k| k.expect.outcome.is_some()));
    let script = c.script.as_ref().expect("the corpus names its script");
    assert!(script.is_file(), "{}", script.display());
    let outcomes: BTreeSet<&str> = c
        .callers
        .iter()
        .filter_map(|k| k.expect.outcome.as_deref())
        .collect();
    for o in [
        "interested",
        "not_interested",
        "callback",
        "do_not_call",
        "wrong_person",
        "no_answer",
        "caller_hung_up",
    ] {
        assert!(outcomes.contains(o), "no caller expects {o}");
    }
    let count = |f: &dyn Fn(&Caller) -> bool| c.callers.iter().filter(|k| f(k)).count();
    let lines = |k: &Caller| match &k.persona {
        Persona::Human { lines } => lines.clone(),
        _ => Vec::new(),
    };
    let has = |k: &Caller, p: &dyn Fn(&CallerLine) -> bool| lines(k).iter().any(p);
    assert!(count(&|k| k.expect.outcome.as_deref() == Some("do_not_call")) >= 10);
    assert!(
        count(&|k| k.expect.vars.contains_key("callback_time")
            && k.expect.outcome.as_deref() == Some("callback"))
            >= 10
    );
    assert!(count(&|k| has(k, &|l| matches!(l, CallerLine::Over(_)))) >= 8);
    for (what, p) in [
        (
            "mumble",
            &(|l: &CallerLine| matches!(l, CallerLine::Mumble(_))) as &dyn Fn(&CallerLine) -> bool,
        ),
        ("noise", &|l| matches!(l, CallerLine::Noise(Some(_)))),
        ("hang up mid-line", &|l| {
            matches!(l, CallerLine::HangUpAfter(_))
        }),
        ("raw frame", &|l| matches!(l, CallerLine::Raw(_))),
        ("binary frame", &|l| matches!(l, CallerLine::Binary)),
        ("key 9", &|l| *l == CallerLine::Key('9')),
        (
            "long silence",
            &|l| matches!(l, CallerLine::Silence(d) if d.as_secs() >= 12),
        ),
    ] {
        assert!(count(&|k| has(k, p)) >= 1, "no caller does {what}");
    }
}
