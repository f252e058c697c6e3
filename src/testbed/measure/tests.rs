use super::*;

/// A played track from (start_ms, end_ms, loud) pieces on the tick clock: frame `i` is tick
/// `i + 1`, so a piece from tick a to tick b (inclusive) fills frames a/20-1 ..= b/20-1.
fn track(total_ms: u64, loud: &[(u64, u64)]) -> Vec<i16> {
    let frames = (total_ms / 20) as usize;
    let mut t = vec![0i16; frames * FRAME_SAMPLES];
    for &(a, b) in loud {
        for tick in (a / 20)..=(b / 20) {
            let i = (tick - 1) as usize;
            for s in &mut t[i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES] {
                *s = 3000;
            }
        }
    }
    t
}

fn span(label: &str, start_ms: u64, end_ms: u64) -> TurnSpan {
    TurnSpan {
        label: label.into(),
        start_ms,
        end_ms,
    }
}

#[test]
fn loudness_ignores_padding_and_mulaw_residue() {
    assert!(!is_loud(&[0; 160]));
    // The smallest mu-law codes decode to a few units: still silence.
    assert!(!is_loud(&[8, -8, 16, 0].repeat(40)));
    assert!(is_loud(&[2000; 160]));
    // A quiet syllable (-40 dBFS) counts.
    assert!(is_loud(&[330; 160]));
}

#[test]
fn latency_is_end_of_caller_audio_to_first_audible_frame() {
    // Caller speaks 1000-2000; agent silent padding until 2600, then speech 2600-4000.
    let t = track(6000, &[(200, 900), (2600, 4000)]);
    let timings = turn_timings(&[span("Yes.", 1000, 2000)], &t);
    assert_eq!(timings.len(), 1);
    assert_eq!(timings[0].latency_ms, Some(600));
    assert_eq!(timings[0].dead_air_ms, 600);
    assert_eq!(timings[0].label, "Yes.");
}

#[test]
fn dead_air_takes_the_worst_gap_inside_the_answer_but_not_after_it() {
    // Answer starts 300 ms after the turn, stops for 1.5 s ("Great." ... generated line), goes
    // on; then the caller thinks for 5 s before the next turn (their silence, not dead air).
    let t = track(20_000, &[(2300, 2800), (4300, 6000)]);
    let turns = [span("a", 1000, 2000), span("b", 11_000, 12_000)];
    let timings = turn_timings(&turns, &t);
    assert_eq!(timings[0].latency_ms, Some(300));
    assert_eq!(timings[0].dead_air_ms, 1480);
    // Nothing came after "b" until the end of the call: the whole wait is dead air.
    assert_eq!(timings[1].latency_ms, None);
    assert_eq!(timings[1].dead_air_ms, 8000);
}

#[test]
fn talking_over_the_agent_is_no_wait() {
    // The agent's line runs on (not interruptible) past the caller's barge-in.
    let t = track(6000, &[(100, 5000)]);
    let timings = turn_timings(&[span("Hello?", 300, 1200)], &t);
    assert_eq!(timings[0].latency_ms, None);
    assert!(timings[0].over_line);
    assert_eq!(timings[0].dead_air_ms, 0);
}

#[test]
fn a_line_that_goes_on_is_no_answer_but_its_pauses_are_dead_air() {
    // The disclosure plays 0-8000 with a 400 ms pause between clauses; the caller speaks over
    // it, ending at 2000 in the middle of a clause, and at 5020, inside the pause.
    let t = track(12_000, &[(20, 4900), (5300, 8000), (9000, 10_000)]);
    let turns = [span("a", 1000, 2000), span("b", 4000, 5020)];
    let timings = turn_timings(&turns, &t);
    assert!(timings[0].over_line && timings[1].over_line, "{timings:?}");
    assert_eq!(timings[0].latency_ms, None);
    // Turn b's window holds the rest of the line and the answer after it (1000 ms of quiet).
    assert_eq!(timings[1].dead_air_ms, 980);
    // A reply after a real quiet is timed, however long the line before the turn was.
    let turns = [span("c", 8100, 8400)];
    let timings = turn_timings(&turns, &t);
    assert!(!timings[0].over_line);
    assert_eq!(timings[0].latency_ms, Some(600));
    // Quiet of up to 600 ms does not separate lines (Piper's pauses between clauses); more does.
    let at = |reply_ms| {
        turn_timings(
            &[span("d", 7000, 8300)],
            &track(10_000, &[(20, 8000), (reply_ms, 9000)]),
        )
    };
    assert!(at(8600)[0].over_line);
    assert_eq!(at(8620)[0].latency_ms, Some(320));
}

#[test]
fn the_next_turn_closes_the_window() {
    // The agent answers turn a only after turn b started: a got no answer in its window.
    let t = track(10_000, &[(6000, 7000)]);
    let turns = [span("a", 1000, 2000), span("b", 4000, 5000)];
    let timings = turn_timings(&turns, &t);
    assert_eq!(timings[0].latency_ms, None);
    assert_eq!(timings[0].dead_air_ms, 2000);
    assert_eq!(timings[1].latency_ms, Some(1000));
}

#[test]
fn segments_split_on_pauses_and_length() {
    let t = track(
        30_000,
        &[(1000, 3000), (3200, 4000), (6000, 8000), (8020, 8040)],
    );
    let segs = speech_segments(&t, 500, 20_000);
    assert_eq!(segs.len(), 2, "{segs:?}");
    // 100 ms of context before the first audible frame (tick 1000 = frame 49).
    assert_eq!(segs[0].start, (980 - 100) * 8);
    assert_eq!(segs[0].end, (4000 + 100) * 8);
    let long = speech_segments(&track(30_000, &[(20, 25_000)]), 500, 10_000);
    assert_eq!(long.len(), 3, "{long:?}");
    // A click is not a line.
    assert!(speech_segments(&track(5000, &[(1000, 1060)]), 500, 10_000).is_empty());
}

#[test]
fn percentiles_by_nearest_rank() {
    assert_eq!(percentile(&[], 50.0), None);
    assert_eq!(percentile(&[700], 95.0), Some(700));
    let v: Vec<u64> = (1..=20).map(|i| i * 100).collect();
    assert_eq!(percentile(&v, 50.0), Some(1000));
    assert_eq!(percentile(&v, 95.0), Some(1900));
    assert_eq!(percentile(&v, 100.0), Some(2000));
}

#[test]
fn server_figures_pair_with_the_caller_turn_they_answer() {
    let timing = |turn, end_ms, latency_ms| TurnTiming {
        turn,
        label: format!("t{turn}"),
        end_ms,
        latency_ms,
        over_line: false,
        dead_air_ms: latency_ms.unwrap_or(0),
    };
    let timings = [
        timing(0, 3000, Some(800)),
        timing(1, 9000, Some(1200)),
        // no answer: nothing to compare
        timing(2, 15000, None),
        // answered, but the server ended this turn 600 ms early (a pause): unpaired
        timing(3, 20000, Some(700)),
    ];
    let fig = |speech_end_ms, voice_to_voice_ms| ServerFigure {
        speech_end_ms,
        voice_to_voice_ms,
        path: Some(TurnPath::Rule),
    };
    let server = [
        fig(8500, 1500.0), // 500 ms off turn 1: outside the window
        fig(3060, 770.0),
        fig(8880, 1290.0),
        fig(15000, 900.0),
        fig(19400, 1300.0),
    ];
    let paired = agreement(&timings, &server);
    assert_eq!(
        paired,
        vec![
            Agreement {
                turn: 0,
                ear_ms: 800,
                server_ms: 770.0,
                path: Some(TurnPath::Rule)
            },
            Agreement {
                turn: 1,
                ear_ms: 1200,
                server_ms: 1290.0,
                path: Some(TurnPath::Rule)
            },
        ]
    );
    assert_eq!(paired[0].diff_ms(), -30.0);
    assert!(agreement(&timings, &[]).is_empty());
}

#[test]
fn a_reply_started_inside_a_turn_is_an_early_answer() {
    // Turn 0 (1000-5000) has a pause the agent took for its end: a reply starts at 3000.
    // Turn 1 (8000-9000) talks over a line that began before it (no onset inside it), and its
    // clause gap (500 ms) is no new reply. Turn 2 (12_000-13_000) is answered after its end.
    let t = track(
        16_000,
        &[(3000, 3400), (7000, 8200), (8700, 9500), (13_600, 14_000)],
    );
    let turns = [
        span("long", 1000, 5000),
        span("over", 8000, 9000),
        span("plain", 12_000, 13_000),
    ];
    assert_eq!(early_answers(&turns, &t), [0]);
    // A reply just after the end is not early; one 20 ms before it is.
    let t = track(4000, &[(2020, 2400)]);
    assert!(early_answers(&[span("a", 1000, 2000)], &t).is_empty());
    let t = track(4000, &[(1980, 2400)]);
    assert_eq!(early_answers(&[span("a", 1000, 2000)], &t), [0]);
}
