use super::*;

fn say(text: &str, ms: usize) -> Line {
    Line::Say {
        pcm: Arc::new(vec![1000; ms * 8]),
        text: text.into(),
    }
}

/// Steps as short names, to compare shapes.
fn shape(steps: &[CallerStep]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            CallerStep::Say(pcm) => format!("say {}ms", pcm.len() / 8),
            CallerStep::Silence(d) => format!("silence {}ms", d.as_millis()),
            CallerStep::WaitForAgent { quiet, .. } => format!("wait {}ms", quiet.as_millis()),
            CallerStep::Over { after, .. } => format!("over {}ms", after.as_millis()),
            CallerStep::Dtmf(k) => format!("key {k}"),
            CallerStep::SendRaw(t) => format!("raw {t}"),
            CallerStep::SendBinary(_) => "binary".into(),
            CallerStep::Noise(n) => format!("noise {n:?}"),
            CallerStep::Turn(t) => format!("turn {t}"),
        })
        .collect()
}

#[test]
fn lines_become_turns_waits_and_barge_ins() {
    let ms = Duration::from_millis;
    let lines = vec![
        Line::Noise(Some(-40.0)),
        Line::Patience(ms(1200)),
        Line::Over(ms(300)),
        say("Hello?", 500),
        say("Yes, but I am busy.", 900),
        Line::Silence(ms(1200)),
        say("Call me tomorrow.", 800),
        Line::Raw("{bad".into()),
        Line::Binary,
        Line::Key('5'),
        Line::Silence(ms(500)),
        say("About two hundred.", 700),
        Line::Silence(ms(12_000)),
        say("Hello?", 500),
    ];
    assert_eq!(
        shape(&human_steps(&lines)),
        [
            "noise Some(-40.0)",
            "over 300ms",
            "turn Hello?",
            "say 500ms",
            "wait 1200ms",
            "turn Yes, but I am busy.",
            "say 900ms",
            // A short pause: the next line continues the same turn.
            "silence 1200ms",
            "say 800ms",
            "raw {bad",
            "binary",
            "wait 1200ms",
            "turn [key 5]",
            "key 5",
            // After a key, the line is a new turn, said without waiting.
            "silence 500ms",
            "turn About two hundred.",
            "say 700ms",
            // A long silence ends the turn.
            "silence 12000ms",
            "turn Hello?",
            "say 500ms",
            "wait 1200ms",
        ]
    );
}

#[test]
fn hanging_up_mid_line_cuts_it_and_ends_the_steps() {
    let ms = Duration::from_millis;
    let lines = vec![
        say("Yes.", 400),
        Line::HangUpAfter(ms(800)),
        say("About two hundred dollars a month.", 2000),
        say("Never said.", 500),
    ];
    assert_eq!(
        shape(&human_steps(&lines)),
        [
            "wait 800ms",
            "turn Yes.",
            "say 400ms",
            "wait 800ms",
            "turn About two hundred dollars a month.",
            "say 800ms",
        ]
    );
    // With nothing left to say it hangs up after that long.
    let alone = human_steps(&[Line::HangUpAfter(ms(2000))]);
    assert_eq!(shape(&alone), ["silence 2000ms"]);
    assert_eq!(
        shape(&human_steps(&[Line::HangUp, say("x", 100)])),
        Vec::<String>::new()
    );
}
