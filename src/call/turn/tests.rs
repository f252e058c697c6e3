use super::*;

fn cfg() -> EndpointRules {
    EndpointRules {
        min_silence_ms: 500,
        default_silence_ms: 800,
        max_silence_ms: 3000,
    }
}

#[test]
fn complete_answers_end_early_trailing_ones_wait() {
    let c = cfg();
    assert_eq!(c.decide(300, Some("Yes, that works.")), TurnDecision::Wait);
    assert_eq!(
        c.decide(500, Some("Yes, that works.")),
        TurnDecision::EndTurn
    );
    assert_eq!(
        c.decide(800, Some("I was thinking about it and")),
        TurnDecision::Wait
    );
    assert_eq!(c.decide(2000, Some("Well, um...")), TurnDecision::Wait);
    assert_eq!(c.decide(3000, Some("so")), TurnDecision::EndTurn);
    assert_eq!(c.decide(700, Some("tomorrow at ten")), TurnDecision::Wait);
    assert_eq!(
        c.decide(800, Some("tomorrow at ten")),
        TurnDecision::EndTurn
    );
    assert_eq!(
        c.decide(2500, None),
        TurnDecision::Wait,
        "the reply needs the transcript"
    );
    assert_eq!(c.decide(3000, None), TurnDecision::EndTurn);
    assert_eq!(classify_ending(" ... "), Ending::Empty);
}

#[test]
fn a_caller_who_thinks_aloud_is_waited_for() {
    let c = cfg();
    for t in ["Hmm, let me think.", "Let me see", "One second..."] {
        assert_eq!(classify_ending(t), Ending::Trailing, "{t:?}");
        assert_eq!(c.decide(2900, Some(t)), TurnDecision::Wait, "{t:?}");
    }
    // Asked to wait, we say so at once (the script's hold line), not after 3 s of quiet.
    for t in ["Hold on.", "One second, someone is at the door."] {
        assert_eq!(classify_ending(t), Ending::Complete, "{t:?}");
        assert_eq!(c.decide(600, Some(t)), TurnDecision::EndTurn, "{t:?}");
    }
    // The phrase must end the turn: an answer after it is complete.
    for t in [
        "Hold on, it is about two hundred.",
        "Let me see, about two hundred.",
        "See you.",
    ] {
        assert_ne!(classify_ending(t), Ending::Trailing, "{t:?}");
    }
}

#[test]
fn backchannels_are_recognised() {
    let b = crate::config::default_backchannels();
    for t in ["Uh-huh.", "yeah", "Okay, right.", "Mm-hmm", "", "  .  "] {
        assert!(is_backchannel(t, &b), "{t:?}");
    }
    for t in [
        "No, stop.",
        "Yeah, but how much does it cost?",
        "Take me off your list",
        "wait",
    ] {
        assert!(!is_backchannel(t, &b), "{t:?}");
    }
}

#[test]
fn echo_guard_distrusts_onsets_and_quiet_copies() {
    let mut g = EchoGuard::new(100, 12.0);
    g.record_outbound(1000, 1500, -20.0);
    g.record_outbound(1500, 3000, -20.0);
    assert!(!g.is_probable_echo(900, -25.0), "nothing playing yet");
    assert!(
        g.is_probable_echo(1050, -10.0),
        "onset: even loud input is suspect"
    );
    assert!(
        g.is_probable_echo(2000, -40.0),
        "quiet copy of what we play"
    );
    assert!(
        !g.is_probable_echo(2000, -22.0),
        "as loud as our audio: a person"
    );
    assert!(!g.is_probable_echo(3100, -40.0), "playback over");
    g.cut(2200);
    assert!(
        !g.is_probable_echo(2400, -40.0),
        "cleared audio does not echo"
    );
}
