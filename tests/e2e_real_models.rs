//! The real models (the tiny test set from `scripts/fetch_models.sh --profile test`): each engine
//! alone, then a whole call over loopback in real time where whisper transcribes what the caller
//! heard, so assertions are about meaning, not bytes. One thread per engine (ggml threads
//! busy-wait on 2 cores); run with `--test-threads=1`.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use telemarketer::app::{AppBuilder, Engines};
use telemarketer::config::{Config, RawConfig};
use telemarketer::engine::{
    GenerateRequest, LanguageModel, LlmEvent, SpeechToText, StopReason, TextToSpeech,
};
use telemarketer::model::ChatMessage;
use telemarketer::testbed::sim::{run_call, CallerStep};
use tokio_util::sync::CancellationToken;

/// Threads of this process, from /proc.
fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn config(extra: &str) -> Config {
    let toml = format!(
        "[models]\ndir = {:?}\n{extra}",
        models_dir().display().to_string()
    );
    RawConfig::from_toml(&toml)
        .unwrap()
        .single_threaded()
        .validate(call_secrets())
        .unwrap()
}

/// Models load once per test binary: loading is the slow part, and the product does it once too.
fn engines() -> &'static Engines {
    static ENGINES: OnceLock<Engines> = OnceLock::new();
    ENGINES.get_or_init(|| Engines::load(&config("")).expect("models load"))
}

/// Phone audio (8 kHz) as whisper takes it (16 kHz floats).
fn wide_16k(pcm: &[i16]) -> Vec<f32> {
    let f = telemarketer::audio::i16_to_f32(pcm);
    telemarketer::audio::resample::resample_all(&f, 8000, 16000).unwrap()
}

async fn transcribe_8k(pcm: &[i16]) -> String {
    engines().stt.transcribe(wide_16k(pcm)).await.unwrap().text
}

fn words(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect()
}

#[tokio::test]
async fn whisper_transcribes_phone_quality_speech_and_ignores_silence() {
    let heard = words(&transcribe_8k(&espeak("Please call me back tomorrow morning.")).await);
    assert!(
        heard.contains("call") && heard.contains("tomorrow"),
        "{heard}"
    );
    let silence = transcribe_8k(&vec![0i16; 8000]).await;
    assert_eq!(silence, "", "silence must not become words");
}

#[tokio::test]
async fn whisper_with_beam_search_hears_the_line_once() {
    let stt = telemarketer::engine::whisper::WhisperEngine::load(&config("[stt]\nbeam = 5").stt)
        .expect("whisper loads");
    let pcm = espeak("Please call me back tomorrow morning.");
    let heard = words(&stt.transcribe(wide_16k(&pcm)).await.unwrap().text);
    assert!(
        heard.contains("call") && heard.matches("tomorrow").count() == 1,
        "{heard}"
    );
}

/// A corpus caller's line as the agent's ear gets it: espeak at 150 words a minute, 8 kHz
/// mu-law, 200 ms of silence before and 700 ms after, steered by the node's question.
async fn heard_at_the_pitch(line: &str, choices: Vec<String>) -> telemarketer::engine::Transcript {
    use telemarketer::audio::mulaw;
    let mut pcm = vec![0i16; 1_600];
    pcm.extend(telemarketer::testbed::voice::espeak(line, "en-us", 150).unwrap());
    pcm.extend(vec![0i16; 5_600]);
    // The node's answers follow its question in the live prompt when choices are offered.
    let question =
        "Would you like to book a free, no-obligation consultation with one of our advisors?";
    let examples = pitch_examples().filter(|_| !choices.is_empty());
    let hints = telemarketer::engine::TurnHints {
        expect: Some(
            [Some(question.to_string()), examples]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        ),
        choices,
        doubt_below: config("").turn.min_confidence,
        ..Default::default()
    };
    let line = mulaw::decode(&mulaw::encode(&pcm));
    engines()
        .stt
        .transcribe_turn(wide_16k(&line), hints)
        .await
        .unwrap()
}

#[tokio::test]
async fn whisper_is_unsure_of_what_it_mishears() {
    let gate = config("").turn.min_confidence;
    // Heard right, and sure of it: the LLM may read it.
    let clear = heard_at_the_pitch("Yes, please.", Vec::new()).await;
    assert!(words(&clear.text).contains("yes"), "{clear:?}");
    assert!(clear.confidence >= gate, "{clear:?}");
    // "Not interested." in this voice, which tiny.en hears as "That's interested." (a yes to
    // the tiny LLM): whatever it hears instead, it is not sure of it, so no model guesses.
    let misheard = heard_at_the_pitch("Not interested.", Vec::new()).await;
    let heard_right = words(&misheard.text).starts_with("not interested");
    assert!(heard_right || misheard.confidence < gate, "{misheard:?}");
    eprintln!("{clear:?}\n{misheard:?}");
}

#[tokio::test]
async fn a_doubtful_turn_is_heard_again_against_the_answers_the_node_expects() {
    let script = telemarketer::script::format::Script::from_toml(
        "solar.toml",
        telemarketer::script::EXAMPLE_SCRIPT,
    )
    .unwrap();
    let mut choices = script.nodes["pitch"].answer_choices();
    choices.extend(["Stop calling me.".to_string(), "Who is this?".to_string()]);
    // Free, tiny.en hears "That's interested." and doubts it; listened to again against the
    // pitch's answers, the audio is "Not interested." far more than anything else.
    let heard = heard_at_the_pitch("Not interested.", choices.clone()).await;
    assert_eq!(heard.text, "Not interested.", "{heard:?}");
    // A sure turn is not listened to again: its own words stay.
    let sure = heard_at_the_pitch("Yes, please.", choices.clone()).await;
    assert!(words(&sure.text).contains("please"), "{sure:?}");
    // Words no choice explains stay what the ear heard, however unsure.
    let other = heard_at_the_pitch("My brother handles the house.", choices).await;
    assert!(!choices_contain(&script, &other.text), "{other:?}");
    eprintln!("{heard:?}\n{sure:?}\n{other:?}");
}

fn pitch_examples() -> Option<String> {
    telemarketer::script::format::Script::from_toml(
        "solar.toml",
        telemarketer::script::EXAMPLE_SCRIPT,
    )
    .unwrap()
    .nodes["pitch"]
        .answer_examples(160)
}

fn choices_contain(script: &telemarketer::script::format::Script, text: &str) -> bool {
    script.nodes["pitch"]
        .answer_choices()
        .iter()
        .any(|c| c == text)
        || ["Stop calling me.", "Who is this?"].contains(&text)
}

#[tokio::test]
async fn piper_speaks_and_whisper_understands_it() {
    let started = Instant::now();
    let audio = engines()
        .tts
        .synthesize(
            "Thank you for your time, have a great day.".into(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    let secs = audio.samples.len() as f32 / audio.sample_rate as f32;
    assert_eq!(audio.sample_rate, 22050);
    assert!((1.0..6.0).contains(&secs), "{secs} s of audio");
    eprintln!("tts: {secs:.2} s of audio in {:?}", started.elapsed());
    let wide = telemarketer::audio::resample::resample_all(&audio.samples, 22050, 16000).unwrap();
    let heard = words(&engines().stt.transcribe(wide).await.unwrap().text);
    assert!(heard.contains("thank") && heard.contains("time"), "{heard}");
}

#[tokio::test]
async fn piper_asked_for_the_gpu_without_one_falls_back_to_the_cpu_and_speaks() {
    // This machine's libonnxruntime.so is the CPU build: the CUDA provider cannot register.
    let tts = telemarketer::engine::piper::PiperEngine::load(&config("[tts]\ngpu = true").tts)
        .expect("the voice loads on the CPU instead");
    assert_eq!(tts.provider(), "cpu");
    assert_eq!(
        engines().tts.provider(),
        "cpu",
        "a CPU build does not ask for CUDA"
    );
    let audio = tts
        .synthesize("Hello there.".into(), CancellationToken::new())
        .await
        .unwrap();
    assert!(audio.samples.len() > audio.sample_rate as usize / 4);
}

async fn collect(
    mut rx: tokio::sync::mpsc::Receiver<LlmEvent>,
) -> (String, Option<(usize, usize, usize, StopReason)>) {
    let mut text = String::new();
    let mut done = None;
    while let Some(ev) = rx.recv().await {
        match ev {
            LlmEvent::Token(t) => text.push_str(&t),
            LlmEvent::Done {
                prompt_evaluated,
                prompt_cached,
                generated,
                stop,
            } => done = Some((prompt_evaluated, prompt_cached, generated, stop)),
            LlmEvent::Error(e) => panic!("llm error: {e}"),
        }
    }
    (text, done)
}

#[tokio::test]
async fn llama_streams_reuses_the_kv_cache_and_obeys_grammar_and_cancel() {
    let llm = &engines().llm;
    let mut messages = vec![
        ChatMessage::new("system", "You are a polite phone agent for Sunrise Solar."),
        ChatMessage::new("user", "Hello, who is calling?"),
    ];
    let request = |messages: Vec<ChatMessage>, grammar: Option<&str>, cancel: CancellationToken| {
        GenerateRequest {
            conversation_id: "kv-test".into(),
            messages,
            max_tokens: 24,
            grammar: grammar.map(String::from),
            cancel,
        }
    };
    let (first, done) =
        collect(llm.generate(request(messages.clone(), None, CancellationToken::new()))).await;
    let (evaluated1, cached1, generated1, _) = done.unwrap();
    assert!(!first.trim().is_empty() && generated1 > 0);
    // A new conversation evaluates its prompt, apart from the start an ended conversation's
    // cache may share with it (other tests ran on these engines: the start token).
    assert!(cached1 < 4 && evaluated1 > 10, "{evaluated1} {cached1}");

    messages.push(ChatMessage::new("assistant", first.trim()));
    messages.push(ChatMessage::new("user", "Okay, go on."));
    let (_, done) =
        collect(llm.generate(request(messages.clone(), None, CancellationToken::new()))).await;
    let (evaluated2, cached2, _, _) = done.unwrap();
    assert!(
        cached2 >= evaluated1,
        "the whole first prompt is reused: cached {cached2}, first prompt {evaluated1}"
    );
    assert!(
        evaluated2 < 40,
        "only the new turn is evaluated: {evaluated2}"
    );

    // A new conversation with the same system prompt borrows it from another slot's cache.
    let other = GenerateRequest {
        conversation_id: "kv-test-other".into(),
        ..request(messages[..2].to_vec(), None, CancellationToken::new())
    };
    let (_, done) = collect(llm.generate(other)).await;
    let (_, cached3, _, _) = done.unwrap();
    assert!(
        cached3 > 16,
        "system prompt shared across conversations: cached {cached3}"
    );

    // Grammar: even a 135M model answers only with what the grammar allows.
    let gbnf = r#"root ::= "yes" | "no" | "unclear""#;
    let (label, _) = collect(llm.generate(request(
        messages.clone(),
        Some(gbnf),
        CancellationToken::new(),
    )))
    .await;
    assert!(
        ["yes", "no", "unclear"].contains(&label.as_str()),
        "{label}"
    );

    // Cancel: a cancelled request stops at once.
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (text, done) = collect(llm.generate(request(messages, None, cancel))).await;
    assert_eq!(done.unwrap().3, StopReason::Cancelled);
    assert!(text.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_call_with_real_models_in_real_time() {
    let engines = engines();
    let local = start(AppBuilder::new(config(""), engines)).await;
    let (addr, registry) = (local.addr, local.state.registry.clone());
    // Let the server start (axum spawns its shutdown watcher on first poll) before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let threads_before = os_threads();
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let call = sim_call();
    let steps = vec![
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(800),
            max: Duration::from_secs(30),
        },
        CallerStep::Say(espeak("Sure, tell me more about the solar panels.")),
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(1200),
            max: Duration::from_secs(30),
        },
    ];
    let report = run_call(&format!("ws://{addr}/twilio/media"), &call, steps)
        .await
        .unwrap();
    // `stop` ended everything: the call's tasks are gone and no thread was left behind.
    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    for i in 0..100 {
        // At most as many as before: the speech-cache warm-up may have finished meanwhile.
        if alive() <= tasks_before {
            eprintln!("tasks back to {tasks_before} after {} ms", i * 50);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        alive() <= tasks_before,
        "leaked tasks: {} > {tasks_before}",
        alive()
    );
    assert_eq!(os_threads(), threads_before, "leaked threads");
    assert_eq!(registry.get(&call.call_sid).unwrap().status, "completed");

    // What the caller heard, understood by whisper from the 8 kHz line audio.
    assert!(
        report.heard.len() >= 2,
        "greeting and a reply: {} stretches",
        report.heard.len()
    );
    // Everything heard before the caller spoke (a clause not yet synthesised leaves a gap).
    let greeting_audio: Vec<i16> = report
        .heard
        .iter()
        .filter(|h| h.start_ms < report.caller_speech_starts[0])
        .flat_map(|h| h.samples.iter().copied())
        .collect();
    let greeting = words(&transcribe_8k(&greeting_audio).await);
    let keywords = [
        "nova",
        "automated",
        "assistant",
        "sunrise",
        "solar",
        "electricity",
        "bill",
        "calling",
    ];
    let hits = keywords.iter().filter(|k| greeting.contains(*k)).count();
    assert!(hits >= 3, "greeting heard as: {greeting}");
    let end_of_speech = report.caller_speech_ends[0];
    let reply_audio: Vec<i16> = report
        .heard
        .iter()
        .filter(|h| h.start_ms >= end_of_speech)
        .flat_map(|h| h.samples.iter().copied())
        .collect();
    let reply_heard = transcribe_8k(&reply_audio).await;
    assert!(
        reply_heard.split_whitespace().count() >= 2,
        "reply heard as: {reply_heard:?}"
    );
    assert_eq!(report.odd_frames, 0);

    let record = registry.get(&call.call_sid).unwrap();
    let caller_turn = record
        .turns
        .iter()
        .find(|t| t.speaker == telemarketer::model::Speaker::Caller)
        .expect("caller turn");
    let said = words(&caller_turn.text);
    assert!(
        said.contains("solar") || said.contains("panel"),
        "caller transcribed as: {said}"
    );
    let latency = record
        .turns
        .iter()
        .rev()
        .find_map(|t| t.latency.clone())
        .expect("latency recorded");
    eprintln!("greeting heard: {greeting}\ncaller: {}\nreply heard: {reply_heard}\nlatency: {latency:?}\nline latency: {:?} ms", caller_turn.text, report.response_latencies_ms());
    assert!(latency.voice_to_voice_ms.is_some());
}

/// The AI disclosure, talked over from 0.3 s: the caller still hears all of it (Whisper on each
/// clause of the greeting as the caller received it, cut at the clause marks Twilio echoed),
/// nothing clears it, and then the agent answers what the caller asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disclosure_is_heard_in_full_by_a_caller_who_talks_over_it() {
    let local = start(AppBuilder::new(
        config("[conversation]\nscript = \"example\""),
        engines(),
    ))
    .await;
    let call = sim_call();
    let steps = vec![
        CallerStep::Silence(Duration::from_millis(300)),
        // Tiny Whisper hears espeak's "Who is this?" as "we did this"; this line it hears whole
        // or in parts.
        CallerStep::Say(espeak("Hello? Who do you work for?")),
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(1500),
            max: Duration::from_secs(40),
        },
    ];
    let report = run_call(&format!("ws://{}/twilio/media", local.addr), &call, steps)
        .await
        .unwrap();
    let echoed = |mark: &str| {
        report
            .marks_echoed
            .iter()
            .find(|(m, _)| m == mark)
            .map(|(_, at)| *at)
    };
    let end = echoed("s1end").expect("the greeting played to its end");
    assert!(
        report.clears.iter().all(|c| *c >= end),
        "cleared during the disclosure: {:?} (ended {end})",
        report.clears
    );
    // Each clause as heard: from the previous clause's mark to its own.
    let mut heard = String::new();
    let mut from = 0u64;
    for i in 0.. {
        let Some(at) = echoed(&format!("s1c{i}")) else {
            break;
        };
        let clause = &report.agent_track[(from * 8) as usize..(at * 8) as usize];
        heard.push_str(&words(&transcribe_8k(clause).await));
        heard.push(' ');
        from = at;
    }
    eprintln!("disclosure heard: {heard}");
    // The disclosure's own words, each; the whole line as the corpus judge hears it (80 % of
    // its words in order, near spellings count): Whisper tiny once heard "Nova" as "Noah".
    for word in ["automated", "assistant", "recorded", "stop"] {
        assert!(heard.contains(word), "{word:?} not heard in: {heard}");
    }
    let line = "Hi, this is Nova calling from Sunrise Solar. I am an automated AI assistant, and \
                this call may be recorded. To stop these calls at any time, say stop or press 9.";
    let (times, share) = telemarketer::testbed::judge::occurrences(
        &telemarketer::testbed::judge::words(line),
        &telemarketer::testbed::judge::words(&heard),
    );
    assert_eq!(
        times, 1,
        "the greeting heard once in full ({share:.2}): {heard}"
    );
    assert!(
        heard.contains("press") || heard.contains("nine") || heard.contains('9'),
        "the opt-out key not heard in: {heard}"
    );
    let record = local.state.registry.get(&call.call_sid).unwrap();
    let lines: Vec<(telemarketer::model::Speaker, &str, bool)> = record
        .turns
        .iter()
        .map(|t| (t.speaker, t.text.as_str(), t.interrupted))
        .collect();
    assert!(
        lines[0].1.contains("I am an automated AI assistant") && !lines[0].2,
        "{lines:?}"
    );
    let caller = lines
        .iter()
        .position(|l| l.0 == telemarketer::model::Speaker::Caller)
        .expect("the caller's question was heard");
    // Whisper tiny hears the question whole or in parts ("Do you work for a-" once): the words
    // that carry it, then the answer it asks for below.
    let asked = words(lines[caller].1);
    assert!(asked.contains("who") || asked.contains("work"), "{lines:?}");
    // The answer to the question, then the node's question again.
    assert!(
        lines[caller..]
            .iter()
            .any(|l| l.1.starts_with("This is Nova, an automated assistant")),
        "{lines:?}"
    );
}

/// Engine panic mid-call: the Whisper worker panics on the caller's answer. The job fails, the
/// worker is rebuilt, the call goes on (the caller is answered, nothing is left in dead air) and
/// `/health` counts the restart while staying up. The LLM's worker survives the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_panics_mid_call_is_rebuilt_and_the_call_goes_on() {
    let engines = engines();
    let local = start(AppBuilder::new(
        config("[conversation]\nscript = \"example\""),
        engines,
    ))
    .await;
    let health = || async {
        let r = reqwest::get(format!("http://{}/health", local.addr))
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().await.unwrap())
    };
    let (_, before) = health().await;
    let restarts = |h: &serde_json::Value, e: &str| h["engines"][e]["restarts"].as_u64().unwrap();

    // No caller speech before the first answer: the first STT job of the call is for it.
    engines.stt.panic_next_job();
    let call = sim_call();
    let agent = || CallerStep::WaitForAgent {
        quiet: Duration::from_millis(1500),
        max: Duration::from_secs(40),
    };
    let steps = vec![
        agent(),
        CallerStep::Say(espeak("Yes, go ahead.")),
        agent(),
        CallerStep::Say(espeak("Yes, go ahead.")),
        agent(),
    ];
    let report = run_call(&format!("ws://{}/twilio/media", local.addr), &call, steps)
        .await
        .unwrap();
    let (status, after) = health().await;
    eprintln!("health after: {after}");
    assert_eq!(status, 200);
    assert_eq!(after["status"], "ok");
    assert_eq!(restarts(&after, "stt") - restarts(&before, "stt"), 1);
    assert_eq!(after["engines"]["stt"]["alive"], 1);

    let record = local.state.registry.get(&call.call_sid).unwrap();
    let lines: Vec<(telemarketer::model::Speaker, &str)> = record
        .turns
        .iter()
        .map(|t| (t.speaker, t.text.as_str()))
        .collect();
    eprintln!(
        "{lines:#?}\nline latency: {:?} ms",
        report.response_latencies_ms()
    );
    // Each caller turn was answered, by what the caller heard.
    let timings = report.turn_timings();
    assert_eq!(timings.len(), 2, "{timings:?}");
    for t in &timings {
        assert!(
            t.latency_ms.is_some(),
            "a turn left unanswered: {timings:?}"
        );
    }
    let callers = lines
        .iter()
        .filter(|l| l.0 == telemarketer::model::Speaker::Caller)
        .count();
    assert_eq!(callers, 2, "{lines:?}");
    assert!(
        lines.last().unwrap().0 == telemarketer::model::Speaker::Agent,
        "{lines:?}"
    );

    // The LLM: the panicking generation ends its stream without a reply; the next one works.
    // The call's own LLM work (freeing its conversation at the end) must be over before the
    // fault is armed, or that job takes the panic and this one finishes.
    let t0 = Instant::now();
    let mut idle_since: Option<Instant> = None;
    loop {
        let h = engines.llm.health();
        let ended = local
            .state
            .registry
            .get(&call.call_sid)
            .is_some_and(|r| r.status != "in-progress");
        if ended && h.queued == 0 && h.busy_ms == 0 {
            if idle_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_millis(500) {
                break;
            }
        } else {
            idle_since = None;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the LLM never went idle: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engines.llm.panic_next_job();
    let ask = || GenerateRequest {
        conversation_id: "fault".into(),
        messages: vec![ChatMessage::new("user", "Say hello.")],
        max_tokens: 8,
        grammar: None,
        cancel: CancellationToken::new(),
    };
    let mut rx = engines.llm.generate(ask());
    let mut done = false;
    while let Some(ev) = rx.recv().await {
        done |= matches!(ev, LlmEvent::Done { .. });
    }
    assert!(!done, "the panicking job cannot finish");
    let (text, stop) = collect(engines.llm.generate(ask())).await;
    assert!(!text.is_empty() && stop.is_some(), "{text:?} {stop:?}");
    let h = engines.llm.health();
    assert_eq!((h.alive, h.workers), (1, 1));
    engines.llm.end_conversation("fault");
}

/// SIGTERM mid-call to a real `telemarketer serve`: new calls are turned away during the grace,
/// the live call goes on until the grace is over, then says the script's goodbye (heard by the
/// caller, by Whisper) and hangs up; the store has the call and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_call_says_goodbye_and_exits_zero() {
    let dir = tempdir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let db = format!("sqlite://{}", dir.join("calls.db").display());
    let config_path = dir.join("serve.toml");
    std::fs::write(
        &config_path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = {base:?}\nshutdown_grace_s = 2\n\
             [store]\nurl = {db:?}\n[twilio]\nbase_url = \"http://127.0.0.1:9\"\n\
             [models]\ndir = {:?}\n[conversation]\nscript = \"example\"\n\
             [stt]\nthreads = 1\n[llm]\nthreads = 1\n[tts]\nthreads = 1\n",
            models_dir().display().to_string()
        ),
    )
    .unwrap();
    let call = sim_call();
    let log = dir.join("serve.log");
    let mut server = ServerProcess::spawn(
        &config_path,
        &base,
        &log,
        (&call.account_sid, AUTH_TOKEN, API_TOKEN),
    )
    .await;

    // A caller who listens.
    let media = format!("ws://127.0.0.1:{port}/twilio/media");
    let caller = tokio::spawn({
        let call = call.clone();
        async move {
            let steps = vec![CallerStep::Silence(Duration::from_secs(60))];
            run_call(&media, &call, steps).await
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // During the grace a new call is turned away politely.
    let twiml = signed_post(
        format!("127.0.0.1:{port}").parse().unwrap(),
        "/twilio/voice",
        &[
            ("CallSid", "CA0000000000000000000000000000beef"),
            ("AccountSid", call.account_sid.as_str()),
            ("From", "+14155550199"),
            ("To", "+18005550100"),
        ],
    )
    .await;
    assert!(twiml.contains(r#"<Reject reason="busy"/>"#), "{twiml}");

    let report = tokio::time::timeout(Duration::from_secs(50), caller)
        .await
        .expect("the appliance ended the call")
        .unwrap()
        .unwrap();
    let status = server
        .exited(Duration::from_secs(40))
        .await
        .expect("the process exits");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status:?}\n{log_text}");

    let last = report.heard.last().expect("the caller heard the agent");
    let heard = words(&transcribe_8k(&last.samples).await);
    eprintln!("last heard: {heard}");
    // Whisper tiny hears "goodbye" as "bye" now and then, and now and then drops the
    // line's last word ("... more of your time thank you"); the meaning is the closing
    // line, "I do not want to take more of your time. Thank you, goodbye.", so judge by
    // its words.
    assert!(
        heard.contains("more of your time")
            && (heard.contains("bye") || heard.contains("thank you")),
        "{heard}"
    );

    let store = telemarketer::store::Store::connect(&db).await.unwrap();
    let detail = store.call_detail(&call.call_sid).await.unwrap();
    let last_line = &detail.turns.last().expect("the transcript was stored").text;
    assert!(last_line.contains("goodbye"), "{:?}", detail.turns);
    assert_eq!(detail.call.outcome.as_deref(), Some("max_duration"));
}
