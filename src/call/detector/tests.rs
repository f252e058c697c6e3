use super::*;

const FRAME: usize = 160; // 20 ms at 8 kHz

/// Drives a detector frame by frame and keeps every command with the frame it came on.
struct Line {
    d: TurnDetector,
    frame: u64,
    log: Vec<(u64, Command)>,
}

impl Line {
    fn new() -> Self {
        Self {
            d: TurnDetector::new(DetectorConfig::default()),
            frame: 0,
            log: Vec::new(),
        }
    }

    /// `ms` of caller speech (or silence), with or without agent audio playing.
    fn run(&mut self, ms: u32, voiced: bool, agent: bool) -> Vec<Command> {
        self.run_at(ms, 0, voiced, agent)
    }

    /// As [`Line::run`], the frames at a constant `level` (sample value).
    fn run_at(&mut self, ms: u32, level: i16, voiced: bool, agent: bool) -> Vec<Command> {
        let mut out = Vec::new();
        for _ in 0..ms / 20 {
            let cmds = self.d.frame(&[level; FRAME], voiced, agent);
            self.frame += 1;
            for c in cmds {
                self.log.push((self.frame, c.clone()));
                out.push(c);
            }
        }
        out
    }

    fn speak(&mut self, ms: u32) -> Vec<Command> {
        self.run(ms, true, false)
    }

    fn quiet(&mut self, ms: u32) -> Vec<Command> {
        self.run(ms, false, false)
    }

    fn last_attempt(&self) -> u64 {
        self.log
            .iter()
            .rev()
            .find_map(|(_, c)| match c {
                Command::Transcribe { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .expect("a transcription was asked for")
    }

    fn heard(&mut self, text: &str) -> Vec<Command> {
        let attempt = self.last_attempt();
        let out = self.d.transcript(attempt, Some((text, 0.9)), 300.0);
        for c in &out {
            self.log.push((self.frame, c.clone()));
        }
        out
    }
}

fn ended(cmds: &[Command]) -> Option<&TurnEnd> {
    cmds.iter().find_map(|c| match c {
        Command::TurnEnded(t) => Some(t),
        _ => None,
    })
}

#[test]
fn speculative_stt_starts_120_ms_into_a_pause_and_a_complete_answer_ends_at_500_ms() {
    let mut l = Line::new();
    assert!(l
        .speak(1000)
        .iter()
        .all(|c| matches!(c, Command::BargeIn { .. })));
    assert!(l.quiet(100).is_empty(), "too early for STT");
    let cmds = l.quiet(40);
    let Some(Command::Transcribe { attempt: 1, audio }) = cmds.first() else {
        panic!("{cmds:?}")
    };
    // Pre-roll (200 ms, only 0 ms of it exists before the first frame) + 1 s of speech.
    assert_eq!(audio.len(), 8000);
    assert!(l.heard("Yes, that works.").is_empty(), "140 ms of silence");
    // 500 ms after the pause began: the frame that completes it ends the turn.
    assert!(l.quiet(340).is_empty());
    let cmds = l.quiet(20);
    let t = ended(&cmds).expect("turn over at 500 ms");
    assert_eq!(t.text, "Yes, that works.");
    assert_eq!(
        t.confidence, 0.9,
        "the ear's confidence travels with the words"
    );
    assert_eq!((t.start_sample, t.end_sample), (0, 8000));
    assert_eq!(t.endpointing_ms, 500.0);
    assert_eq!((t.id, t.continues, t.stt_failed), (1, None, false));
}

#[test]
fn a_trailing_word_waits_for_the_maximum_and_going_on_drops_the_stale_transcript() {
    let mut l = Line::new();
    l.speak(600);
    l.quiet(140);
    l.heard("I was thinking about it and");
    assert!(ended(&l.quiet(2000)).is_none(), "trailing 'and' waits");
    // The caller goes on: the transcript of the first part is stale.
    let stale = l.last_attempt();
    l.speak(400);
    assert!(l.d.transcript(stale, Some(("old", 0.9)), 1.0).is_empty());
    l.quiet(140);
    assert_ne!(l.last_attempt(), stale);
    l.heard("I was thinking about it and yes, go ahead.");
    let cmds = l.quiet(500);
    assert_eq!(
        ended(&cmds).map(|t| t.text.as_str()),
        Some("I was thinking about it and yes, go ahead.")
    );
}

#[test]
fn barge_in_fires_once_after_200_ms_of_speech_over_the_agent() {
    let mut l = Line::new();
    l.run(1000, false, true);
    let cmds = l.run(400, true, true);
    let barge: Vec<_> = l
        .log
        .iter()
        .filter(|(_, c)| matches!(c, Command::BargeIn { .. }))
        .collect();
    assert_eq!(barge.len(), 1, "{cmds:?}");
    // Speech starts on the 3rd voiced frame (60 ms within the 120 ms window) dated back to the
    // first; 200 ms of speech is reached 10 frames after the first voiced frame.
    let (frame, Command::BargeIn { reaction_ms }) = barge[0] else {
        unreachable!()
    };
    assert_eq!(*frame, 50 + 10);
    assert_eq!(*reaction_ms, 200.0);
    l.quiet(140);
    l.heard("Wait, who is this?");
    let t = l.quiet(500);
    let t = ended(&t).unwrap();
    assert!(t.over_agent && t.barged_in);
}

#[test]
fn going_on_before_hearing_the_answer_continues_the_turn() {
    let mut l = Line::new();
    l.speak(1500);
    l.quiet(140);
    l.heard("Yes, that sounds interesting, but I am busy.");
    let first = ended(&l.quiet(500)).cloned().unwrap();
    // The agent starts answering 300 ms later; the caller goes on after 200 ms of it.
    l.quiet(300);
    l.run(200, false, true);
    let cmds = l.run(300, true, true);
    assert!(
        cmds.contains(&Command::Continued { id: first.id }),
        "{cmds:?}"
    );
    l.speak(1500);
    l.quiet(140);
    // Both parts go to Whisper as one utterance, the pause between them capped at 1 s.
    let sent: Vec<usize> = l
        .log
        .iter()
        .filter_map(|(_, c)| match c {
            Command::Transcribe { audio, .. } => Some(audio.len()),
            _ => None,
        })
        .collect();
    let (first_len, whole_len) = (sent[0], sent[sent.len() - 1]);
    let part_len = whole_len - first_len - 8000;
    assert!((1800 * 8..=2000 * 8).contains(&part_len), "{sent:?}");
    l.heard(
        "Yes, that sounds interesting, but I am busy. Can you call me back tomorrow at three p.m.?",
    );
    let t = ended(&l.quiet(500)).cloned().unwrap();
    assert_eq!(t.continues, Some(1));
    assert_eq!(t.id, 2);
    assert_eq!(
        t.text,
        "Yes, that sounds interesting, but I am busy. Can you call me back tomorrow at three p.m.?"
    );
    assert_eq!(t.part, "Can you call me back tomorrow at three p.m.?");
    assert_eq!(t.start_sample, first.start_sample);
}

#[test]
fn an_answer_heard_or_finished_makes_the_next_words_a_new_turn() {
    // Heard for 1 s: a barge-in, not a continuation.
    let mut l = Line::new();
    l.speak(800);
    l.quiet(140);
    l.heard("Yes.");
    ended(&l.quiet(500)).unwrap();
    l.run(1000, false, true);
    let cmds = l.run(400, true, true);
    assert!(!cmds.iter().any(|c| matches!(c, Command::Continued { .. })));
    // Heard for 500 ms when the caller started: a barge-in, though the answer plays on over
    // their first words until the barge-in is decided.
    let mut l = Line::new();
    l.speak(800);
    l.quiet(140);
    l.heard("Yes.");
    ended(&l.quiet(500)).unwrap();
    l.run(500, false, true);
    let cmds = l.run(400, true, true);
    assert!(cmds.iter().any(|c| matches!(c, Command::BargeIn { .. })));
    assert!(!cmds.iter().any(|c| matches!(c, Command::Continued { .. })));
    // A short answer that finished: the caller's next words are a new turn.
    let mut l = Line::new();
    l.speak(800);
    l.quiet(140);
    l.heard("Yes.");
    ended(&l.quiet(500)).unwrap();
    l.run(400, false, true);
    l.quiet(200);
    let cmds = l.speak(400);
    assert!(!cmds.iter().any(|c| matches!(c, Command::Continued { .. })));
    // Too late: 3 s after the turn ended, with no answer at all.
    let mut l = Line::new();
    l.speak(800);
    l.quiet(140);
    l.heard("Yes.");
    ended(&l.quiet(500)).unwrap();
    l.quiet(3000);
    let cmds = l.speak(400);
    assert!(!cmds.iter().any(|c| matches!(c, Command::Continued { .. })));
}

#[test]
fn a_failed_transcription_ends_the_turn_flagged() {
    let mut l = Line::new();
    l.speak(600);
    l.quiet(140);
    let attempt = l.last_attempt();
    l.d.transcript(attempt, None, 0.0);
    let t = ended(&l.quiet(500)).cloned().unwrap();
    assert!(t.stt_failed);
    assert_eq!(t.text, "");
}

#[test]
fn a_caller_who_never_pauses_is_cut_at_the_maximum() {
    let mut l = Line::new();
    let cmds = l.speak(15_100);
    let Some(Command::Transcribe { audio, .. }) = cmds
        .iter()
        .find(|c| matches!(c, Command::Transcribe { .. }))
    else {
        panic!("forced STT at the maximum")
    };
    assert_eq!(audio.len(), 15_000 * 8);
    l.heard("and so on and so on");
    let t = ended(&l.log.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>())
        .cloned()
        .expect("forced end, whatever the transcript says");
    assert_eq!(t.text, "and so on and so on");
}

#[test]
fn words_cut_off_by_the_hang_up_are_transcribed_and_end_the_turn() {
    let mut l = Line::new();
    l.speak(1500);
    // The caller hangs up mid-word: the audio so far is transcribed at once.
    let cmds = l.d.stream_ended();
    let Some(Command::Transcribe { attempt, audio }) = cmds.first() else {
        panic!("{cmds:?}");
    };
    assert_eq!(audio.len(), 1500 * 8, "the whole utterance");
    assert!(!l.d.is_idle());
    let out =
        l.d.transcript(*attempt, Some(("Stop calling me", 0.9)), 300.0);
    let turn = ended(&out).expect("the turn ends with its transcript");
    assert_eq!(turn.text, "Stop calling me");
    assert_eq!((turn.start_sample, turn.end_sample), (0, 1500 * 8));
    assert!(l.d.is_idle());
}

#[test]
fn a_hang_up_during_the_pause_waits_for_the_speculative_transcript() {
    let mut l = Line::new();
    l.speak(1000);
    l.quiet(200); // speculative STT started at 120 ms
    let attempt = l.last_attempt();
    assert!(l.d.stream_ended().is_empty(), "nothing new to transcribe");
    let out =
        l.d.transcript(attempt, Some(("Take me off your list and", 0.9)), 300.0);
    // A trailing "and" would wait 3 s on a live line; the line is gone, so it ends now.
    assert_eq!(ended(&out).map(|t| t.id), Some(1));
    assert!(l.d.is_idle());
}

#[test]
fn a_hang_up_early_in_a_pause_transcribes_what_was_said() {
    let mut l = Line::new();
    l.speak(800);
    assert!(l.quiet(60).is_empty(), "too early for speculative STT");
    let cmds = l.d.stream_ended();
    assert!(
        matches!(cmds.as_slice(), [Command::Transcribe { audio, .. }] if audio.len() >= 800 * 8),
        "{cmds:?}"
    );
}

#[test]
fn a_hang_up_with_no_turn_in_progress_does_nothing() {
    let mut l = Line::new();
    l.speak(600);
    l.quiet(200);
    l.heard("Yes.");
    l.quiet(400);
    assert!(l
        .log
        .iter()
        .any(|(_, c)| matches!(c, Command::TurnEnded(_))));
    assert!(l.d.is_idle());
    assert!(l.d.stream_ended().is_empty());
    // A click is not a turn.
    l.speak(20);
    assert!(l.d.stream_ended().is_empty());
}

#[test]
fn a_continued_turn_is_transcribed_whole_and_its_part_is_what_follows() {
    assert_eq!(after("Hello? Who is this?", "Hello?"), "Who is this?");
    assert_eq!(after("hello, who is this", "Hello?"), "who is this");
    // Whisper heard the first part differently with the second after it: all of it is new.
    assert_eq!(after("Hi, who is this?", "Hello?"), "Hi, who is this?");
    assert_eq!(after("Hello?", "Hello? Hello?"), "Hello?");
    // Gap capped at 1 s; the whole fits Whisper's window by dropping the earliest audio.
    assert_eq!(joined(&[1; 800], 400, vec![2; 800]).len(), 2000);
    assert_eq!(
        joined(&[1; 800], 20_000, vec![2; 800]).len(),
        800 + 8000 + 800
    );
    let long = joined(&vec![1; 15 * 8000], 8000, vec![2; 15 * 8000]);
    assert_eq!(long.len(), MAX_JOINED);
    assert_eq!((long[0], long[long.len() - 1]), (1, 2));
}

#[test]
fn latency_starts_where_the_caller_is_last_heard_not_at_the_vads_hangover() {
    // 600 ms loud (-21 dBFS), then 200 ms the VAD still calls speech at -56 dBFS (a breath,
    // the hangover), then silence: the turn's VAD end is 800 ms, the last audible frame 600 ms.
    let mut l = Line::new();
    l.run_at(600, 3000, true, false);
    l.run_at(200, 50, true, false);
    l.quiet(140);
    l.heard("Yes, that works.");
    l.quiet(340);
    let cmds = l.quiet(20);
    let t = ended(&cmds).expect("turn over 500 ms into the pause");
    assert_eq!(t.end_sample, 6400);
    assert_eq!(t.audible_end_sample, 4800);
    assert_eq!(t.endpointing_ms, 700.0);

    // On a noisy line every frame is audible: the VAD's end stands.
    let mut l = Line::new();
    l.run_at(800, 3000, true, false);
    l.run_at(140, 300, false, false);
    l.heard("Yes, that works.");
    l.run_at(340, 300, false, false);
    let cmds = l.run_at(20, 300, false, false);
    let t = ended(&cmds).expect("turn over 500 ms into the pause");
    assert_eq!((t.end_sample, t.audible_end_sample), (6400, 6400));
    assert_eq!(t.endpointing_ms, 500.0);
}

#[test]
fn words_heard_in_a_pause_await_the_end_of_the_turn_until_it_ends() {
    let mut l = Line::new();
    l.speak(1000);
    l.quiet(140);
    let attempt = l.last_attempt();
    assert_eq!(l.d.awaits_end(attempt), None, "no transcript yet");
    l.heard("I was thinking about it and");
    assert_eq!(l.d.awaits_end(attempt), Some("I was thinking about it and"));
    assert_eq!(l.d.awaits_end(attempt + 1), None, "another attempt's words");
    // The caller goes on: those words are stale.
    l.speak(400);
    assert_eq!(l.d.awaits_end(attempt), None);
    l.quiet(140);
    let attempt = l.last_attempt();
    l.heard("Yes, go ahead.");
    assert_eq!(l.d.awaits_end(attempt), Some("Yes, go ahead."));
    assert!(ended(&l.quiet(500)).is_some());
    assert_eq!(l.d.awaits_end(attempt), None, "the turn ended");
}
