//! The barge-in matrix: a caller talks over each phase of the agent's reply (the disclosure,
//! a fixed line early and late, the LLM still generating, a clause still being synthesised, a
//! generated line playing, streamed or prepared while the caller answered, the goodbye) on a real loopback WebSocket with a faithful Twilio
//! emulation. Whatever the phase, the agent answers what the caller said (here the built-in
//! "who is this" question: its answer, then the node's question again) within the dead-air
//! bound, the disclosure and the goodbye are heard in full, and the call goes on to its end
//! (the opt-out key, honoured at once).
//!
//! The engines are fakes with knobs, because the phase must be hit on purpose: the LLM can wait
//! before its first token, the voice can be slow on one clause. The caller's "words" are voiced
//! signal whose length says what was said ([`LengthStt`]), so speculative transcription and a
//! turn's parts all read the same.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use futures::FutureExt;
use telemarketer::app::AppBuilder;
use telemarketer::engine::{
    EngineError, GenerateRequest, LanguageModel, LlmEvent, SpeechAudio, SpeechToText, StopReason,
    TextToSpeech, Transcript,
};
use telemarketer::model::{CallRecord, Outcome, Speaker};
use telemarketer::testbed::sim::{run_call, CallerStep, SimReport};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const OPENING: &str = "Hi, this is Ann from Acme Solar.";
const DISCLOSURE: &str = "I am an automated assistant.";
const ASK: &str = "Would you like to hear how much solar could save on your bill?";
const PITCH_LINE: &str = "Solar panels on a home like yours usually cut the monthly electricity bill by about a third within the first few years.";
const BOOK: &str = "Shall I book you a free consultation?";
const WHO_ANSWER: &str = "This is Ann, an automated assistant calling from Acme Solar.";
const OPT_OUT_LINE: &str = "You will not be called again.";

fn script() -> String {
    format!(
        r#"
[script]
name = "Barge-in matrix"
persona = "Ann"
company = "Acme Solar"
callback_number = "+1 555 010 0200"
opening = "{OPENING}"
disclosure = "{DISCLOSURE}"
start = "ask"
opt_out_digit = "9"

[globals]
opt_out = "{OPT_OUT_LINE}"

[[node]]
id = "ask"
goal = "Find out whether they want to hear about solar."
say = "{ASK}"
  [[node.intent]]
  name = "yes"
  examples = ["yes", "sure"]
  next = "pitch"
  [[node.intent]]
  name = "no"
  examples = ["no"]
  next = "end_no"

[[node]]
id = "pitch"
goal = "Offer a consultation."
generate = "In one sentence, say how solar saves money."
say = "{BOOK}"
  [[node.intent]]
  name = "yes"
  examples = ["yes", "book it"]
  next = "end_yes"
  [[node.intent]]
  name = "no"
  examples = ["no"]
  next = "end_no"

[[node]]
id = "end_yes"
say = "Great, an advisor will call you. Goodbye."
end = "interested"

[[node]]
id = "end_no"
say = "Understood, thank you for your time. Goodbye."
end = "not_interested"
"#
    )
}

/// Milliseconds of fake speech per character (see [`MatrixTts`]).
const MS_PER_CHAR: u64 = 60;

fn spoken_ms(text: &str) -> u64 {
    text.len() as u64 * MS_PER_CHAR
}

/// The caller's words, by how long they speak (voiced signal of these lengths).
const YES_MS: u32 = 500;
const WHO_MS: u32 = 1200;
const DECLINE_MS: u32 = 2200;

/// Reads the length of voiced audio (16 kHz) as words: short "yes", medium "who is this",
/// long a decline. Robust to how the session splits and re-transcribes a turn.
struct LengthStt;

impl SpeechToText for LengthStt {
    fn transcribe(&self, audio: Vec<f32>) -> BoxFuture<'static, Result<Transcript, EngineError>> {
        let voiced_ms = audio.iter().filter(|s| s.abs() > 0.002).count() as u64 / 16;
        let text = match voiced_ms {
            0..=100 => "",
            101..=850 => "yes",
            851..=1700 => "who is this",
            _ => "no thanks, I am not interested",
        };
        async move {
            Ok(Transcript {
                text: text.to_string(),
                elapsed: Duration::from_millis(5),
                confidence: 1.0,
            })
        }
        .boxed()
    }
}

/// Streams [`PITCH_LINE`] word by word after `first_token_delay`.
struct MatrixLlm {
    first_token_delay: Duration,
}

impl LanguageModel for MatrixLlm {
    fn generate(&self, request: GenerateRequest) -> mpsc::Receiver<LlmEvent> {
        let (tx, rx) = mpsc::channel(64);
        let delay = self.first_token_delay;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = request.cancel.cancelled() => return,
            }
            let words: Vec<&str> = PITCH_LINE.split_inclusive(' ').collect();
            for w in &words {
                if request.cancel.is_cancelled() {
                    return;
                }
                let _ = tx.send(LlmEvent::Token(w.to_string())).await;
            }
            let _ = tx
                .send(LlmEvent::Done {
                    prompt_evaluated: 1,
                    prompt_cached: 0,
                    generated: words.len(),
                    stop: StopReason::EndOfTurn,
                })
                .await;
        });
        rx
    }

    fn end_conversation(&self, _conversation_id: &str) {}
}

/// A tone, [`MS_PER_CHAR`] per character; `slow` clauses (containing the word) take that long
/// to synthesise.
struct MatrixTts {
    slow: Option<(&'static str, Duration)>,
}

impl TextToSpeech for MatrixTts {
    fn synthesize(
        &self,
        clause: String,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<SpeechAudio, EngineError>> {
        let delay = self
            .slow
            .filter(|(word, _)| clause.contains(word))
            .map(|(_, d)| d);
        async move {
            if let Some(d) = delay {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = cancel.cancelled() => {}
                }
            }
            let n = (clause.len() as u64 * MS_PER_CHAR * 22050 / 1000) as usize;
            let samples = (0..n)
                .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 22050.0).sin())
                .collect();
            Ok(SpeechAudio {
                samples,
                sample_rate: 22050,
                elapsed: Duration::from_millis(1),
            })
        }
        .boxed()
    }

    fn sample_rate(&self) -> u32 {
        22050
    }
}

/// One cell of the matrix.
struct Case {
    phase: &'static str,
    first_token_delay: Duration,
    slow: Option<(&'static str, Duration)>,
    steps: Vec<CallerStep>,
    /// Index of the `Say` step that interrupts.
    over: usize,
    /// Whether agent audio was playing when the caller started (else the reply was still being
    /// prepared: nothing of it heard yet).
    playing: bool,
    /// The line the caller cut: recorded as interrupted, with a prefix of it as what was heard.
    cut: Option<&'static str>,
    /// The question the agent must ask again after answering (None: the call ends instead).
    reask: Option<&'static str>,
    /// Generated lines prepared while the caller answers (`conversation.prepare_lines`); off
    /// where the cell hits a line being streamed.
    prepare: bool,
}

fn silence(ms: u64) -> CallerStep {
    CallerStep::Silence(Duration::from_millis(ms))
}

fn quiet_for(ms: u64) -> CallerStep {
    CallerStep::WaitForAgent {
        quiet: Duration::from_millis(ms),
        max: Duration::from_secs(30),
    }
}

/// After the interruption: hear the answer out, then press the opt-out key.
fn then_opt_out(mut steps: Vec<CallerStep>) -> Vec<CallerStep> {
    steps.extend([
        quiet_for(900),
        CallerStep::Dtmf('9'),
        quiet_for(900),
        silence(3000),
    ]);
    steps
}

fn cases() -> Vec<Case> {
    let greeting_ms = spoken_ms(OPENING) + spoken_ms(DISCLOSURE);
    let slow = Duration::from_millis(3000);
    let none = Duration::ZERO;
    // "Yes" at the first question, as soon as it has been asked.
    let to_pitch = || vec![quiet_for(700), CallerStep::Say(voiced(YES_MS))];
    // "Yes" (on to the pitch), then "who is this" this long after it.
    let who_after_yes = |ms| {
        let mut steps = to_pitch();
        steps.extend([silence(ms), CallerStep::Say(voiced(WHO_MS))]);
        then_opt_out(steps)
    };
    vec![
        Case {
            phase: "disclosure, from 0.3 s",
            first_token_delay: none,
            slow: None,
            steps: then_opt_out(vec![silence(300), CallerStep::Say(voiced(WHO_MS))]),
            over: 0,
            playing: true,
            cut: None,
            reask: Some(ASK),
            prepare: true,
        },
        Case {
            phase: "fixed line, early",
            first_token_delay: none,
            slow: None,
            steps: then_opt_out(vec![
                silence(greeting_ms + 500),
                CallerStep::Say(voiced(WHO_MS)),
            ]),
            over: 0,
            playing: true,
            cut: Some(ASK),
            reask: Some(ASK),
            prepare: true,
        },
        Case {
            phase: "fixed line, late",
            first_token_delay: none,
            slow: None,
            steps: then_opt_out(vec![
                silence(greeting_ms + spoken_ms(ASK) - 1200),
                CallerStep::Say(voiced(WHO_MS)),
            ]),
            over: 0,
            playing: true,
            cut: Some(ASK),
            reask: Some(ASK),
            prepare: true,
        },
        Case {
            // The caller goes on while the LLM has not said a word: one turn, answered whole.
            phase: "LLM generating",
            first_token_delay: slow,
            slow: None,
            steps: who_after_yes(1200),
            over: 1,
            playing: false,
            cut: None,
            reask: Some(ASK),
            prepare: false,
        },
        Case {
            phase: "clause synthesising",
            first_token_delay: none,
            slow: Some(("Solar panels", slow)),
            steps: who_after_yes(1200),
            over: 1,
            playing: false,
            cut: None,
            reask: Some(ASK),
            prepare: false,
        },
        Case {
            // Well into the generated line: a new turn at the pitch node.
            phase: "generated line playing",
            first_token_delay: none,
            slow: None,
            steps: who_after_yes(2600),
            over: 1,
            playing: true,
            cut: Some(PITCH_LINE),
            reask: Some(BOOK),
            prepare: false,
        },
        Case {
            // The pitch's line was written and voiced while the caller answered the question
            // before it: it plays at once, though the model takes 3 s to its first token (were
            // it streamed now, nothing would be playing when the caller cuts in).
            phase: "prepared line playing",
            first_token_delay: slow,
            slow: None,
            steps: who_after_yes(2600),
            over: 1,
            playing: true,
            cut: Some(PITCH_LINE),
            reask: Some(BOOK),
            prepare: true,
        },
        Case {
            // The goodbye ends the call: it plays in full over the caller, and the call ends.
            phase: "goodbye",
            first_token_delay: none,
            slow: None,
            steps: vec![
                quiet_for(700),
                CallerStep::Say(voiced(DECLINE_MS)),
                silence(1300),
                CallerStep::Say(voiced(WHO_MS)),
                silence(8000),
            ],
            over: 1,
            playing: true,
            cut: None,
            reask: None,
            prepare: true,
        },
    ]
}

fn config(script: &std::path::Path, prepare: bool) -> telemarketer::config::Config {
    test_config(
        &format!(
            "[conversation]\nscript = {:?}\nprepare_lines = {prepare}\n[turn]\nmin_endpoint_ms = 300\nendpoint_silence_ms = 400",
            script.display().to_string()
        ),
        call_secrets(),
    )
}

/// Runs one cell on its own app; returns what the caller got and what the server recorded.
async fn run(case: &Case, script: &std::path::Path) -> (SimReport, CallRecord) {
    let app = AppBuilder::with_engines(
        config(script, case.prepare),
        Arc::new(LengthStt),
        Arc::new(MatrixLlm {
            first_token_delay: case.first_token_delay,
        }),
        Arc::new(MatrixTts { slow: case.slow }),
    );
    let local = start(app).await;
    let call = sim_call();
    let report = run_call(
        &format!("ws://{}/twilio/media", local.addr),
        &call,
        case.steps.clone(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let record = local.state.registry.get(&call.call_sid).unwrap();
    (report, record)
}

fn fully_played(report: &SimReport, speech_id: Option<u64>) -> bool {
    let Some(id) = speech_id else { return false };
    let mark = format!("s{id}end");
    report.marks_echoed.iter().any(|(m, _)| *m == mark)
}

/// Checks one cell; returns its problems.
fn judge(case: &Case, report: &SimReport, record: &CallRecord) -> Vec<String> {
    let mut problems = Vec::new();
    let turns: Vec<String> = record
        .turns
        .iter()
        .map(|t| {
            format!(
                "{:?}{} {:?}",
                t.speaker,
                if t.interrupted { " (cut)" } else { "" },
                t.text
            )
        })
        .collect();
    let agent: Vec<_> = record
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::Agent)
        .collect();
    // The greeting with the disclosure: first, whole, never cut, heard to its end mark.
    let disclosure = agent.iter().find(|t| t.text.contains(DISCLOSURE));
    match disclosure {
        Some(d) if !d.interrupted && fully_played(report, d.speech_id) => {
            let end = report
                .marks_echoed
                .iter()
                .find(|(m, _)| *m == format!("s{}end", d.speech_id.unwrap()))
                .map(|(_, at)| *at)
                .unwrap();
            if let Some(clear) = report.clears.iter().find(|c| **c < end) {
                problems.push(format!(
                    "a clear at {clear} ms, before the disclosure ended"
                ));
            }
        }
        _ => problems.push("the disclosure was not heard in full".into()),
    }
    let Some(&over_end) = report.caller_speech_ends.get(case.over) else {
        return vec![format!("the caller never spoke over the agent: {turns:?}")];
    };
    // The phase was hit: agent audio playing when the caller started, or none yet.
    let over_start = report.caller_speech_starts[case.over];
    let playing = report
        .heard
        .iter()
        .any(|h| h.start_ms <= over_start && h.start_ms + h.samples.len() as u64 / 8 > over_start);
    if playing != case.playing {
        problems.push(format!(
            "agent audio playing when the caller cut in: {playing}"
        ));
    }
    if !case.playing {
        let before = case
            .over
            .checked_sub(1)
            .map(|i| report.caller_speech_ends[i]);
        let heard = report.heard.iter().any(|h| {
            before.is_some_and(|b| h.start_ms + h.samples.len() as u64 / 8 > b)
                && h.start_ms < over_start
        });
        if heard {
            problems.push("the reply was already heard: not its preparation".into());
        }
    }
    if let Some(line) = case.cut {
        let cut = agent.iter().any(|t| {
            t.interrupted
                && !t.text.is_empty()
                && t.text.len() < line.len()
                && line.starts_with(&t.text)
        });
        if !cut {
            problems.push(format!(
                "{line:?} is not recorded as cut where it was heard"
            ));
        }
    }
    // No dead air: agent audio within 3 s of the interruption's end.
    let answer_starts = report
        .heard
        .iter()
        .map(|h| h.start_ms + h.samples.len() as u64 / 8)
        .filter(|end| *end > over_end)
        .count();
    let first_after = report
        .heard
        .iter()
        .filter(|h| h.start_ms + h.samples.len() as u64 / 8 > over_end)
        .map(|h| h.start_ms.max(over_end))
        .min();
    match first_after {
        Some(at) if at - over_end <= 3000 => {}
        other => problems.push(format!(
            "dead air after the interruption: first agent audio at {other:?}, caller ended at {over_end} ({answer_starts} stretches)"
        )),
    }
    match case.reask {
        Some(question) => {
            // The answer to "who is this", heard in full, then the question again, heard.
            let who = agent
                .iter()
                .position(|t| t.text.starts_with(WHO_ANSWER) && !t.interrupted);
            match who {
                Some(i) if fully_played(report, agent[i].speech_id) => {
                    let again = agent[i..]
                        .iter()
                        .any(|t| t.text.contains(question) && fully_played(report, t.speech_id));
                    if !again {
                        problems.push(format!("{question:?} was not asked again"));
                    }
                }
                _ => problems.push("the interruption was not answered".into()),
            }
            let caller_who = record
                .turns
                .iter()
                .any(|t| t.speaker == Speaker::Caller && t.text.contains("who is this"));
            if !caller_who {
                problems.push("the interruption is not in the transcript".into());
            }
            // And the call goes on to the opt-out.
            if record.outcome != Some(Outcome::DoNotCall) {
                problems.push(format!("outcome {:?}, not do_not_call", record.outcome));
            }
            if !agent
                .iter()
                .any(|t| t.text.contains(OPT_OUT_LINE) && fully_played(report, t.speech_id))
            {
                problems.push("the opt-out was not confirmed".into());
            }
        }
        None => {
            let last = agent.last();
            if !last.is_some_and(|t| {
                t.text.contains("Goodbye") && !t.interrupted && fully_played(report, t.speech_id)
            }) {
                problems.push("the goodbye was not heard in full".into());
            }
            if record.outcome != Some(Outcome::NotInterested) {
                problems.push(format!("outcome {:?}, not not_interested", record.outcome));
            }
        }
    }
    if !problems.is_empty() {
        problems.push(format!("transcript: {turns:#?}"));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_answers_an_interruption_in_every_phase_of_a_reply() {
    let dir = tempdir();
    let path = dir.join("matrix.toml");
    std::fs::write(&path, script()).unwrap();
    let cases = cases();
    // The cells are independent calls on their own apps: run them side by side.
    let results = futures::future::join_all(cases.iter().map(|case| run(case, &path))).await;
    let mut failed = Vec::new();
    for (case, (report, record)) in cases.iter().zip(&results) {
        let problems = judge(case, report, record);
        eprintln!(
            "{:<24} clears {:?} caller ends {:?} -> {}",
            case.phase,
            report.clears,
            report.caller_speech_ends,
            if problems.is_empty() { "ok" } else { "FAILED" }
        );
        if !problems.is_empty() {
            failed.push(format!("{}:\n  {}", case.phase, problems.join("\n  ")));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
