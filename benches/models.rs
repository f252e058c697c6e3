//! The model stages with the installed model set (`models/`, e.g. the tiny test set):
//! STT per utterance length, LLM time to first token and tokens/s with a cached system prompt,
//! TTS first-clause time and real-time factor, and a whole turn over loopback (end of caller
//! speech -> first agent frame), reported as p50/p95.
//!
//! `cargo bench --bench models`. Without models it says so and measures nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use telemarketer::app::{AppBuilder, Engines};
use telemarketer::config::{RawConfig, Secrets};
use telemarketer::engine::{GenerateRequest, LanguageModel, LlmEvent, SpeechToText, TextToSpeech};
use telemarketer::model::{ChatMessage, TurnLatency, TurnPath};
use telemarketer::testbed::measure::{self, ServerFigure};
use telemarketer::testbed::sim::{run_call, CallerStep, SimCall};
use tokio_util::sync::CancellationToken;

/// The served app's Twilio auth token and API token: each call registers and signs with it.
const BENCH_TOKEN: &str = "bench-token";

fn models_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("TELEMARKETER_MODELS_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    if dir.join("llm.gguf").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "benches/models: no models in {} (run scripts/fetch_models.sh --profile test); nothing measured",
            dir.display()
        );
        None
    }
}

/// The models in `dir`, one `[conversation]` setting, and the bench's own tokens.
fn bench_config(dir: &std::path::Path, conversation: &str) -> telemarketer::config::Config {
    let toml = format!(
        "[models]\ndir = {:?}\n[conversation]\n{conversation}",
        dir.display().to_string()
    );
    RawConfig::from_toml(&toml)
        .unwrap()
        .validate(Secrets {
            api_token: Some(BENCH_TOKEN.into()),
            twilio_auth_token: Some(BENCH_TOKEN.into()),
            ..Default::default()
        })
        .unwrap()
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn models(c: &mut Criterion) {
    let Some(dir) = models_dir() else { return };
    // A short greeting: every measured turn starts a call and waits for it.
    let config = bench_config(
        &dir,
        "greeting = \"Hi, this is Nova, an AI assistant from Sunrise Solar.\"",
    );
    let t = Instant::now();
    let engines = Engines::load(&config).expect("models load");
    eprintln!("models loaded in {:?}", t.elapsed());
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Speech to synthesise test utterances with (the project's own voice).
    let say = |text: &str| {
        rt.block_on(
            engines
                .tts
                .synthesize(text.into(), CancellationToken::new()),
        )
        .unwrap()
    };
    let mut group = c.benchmark_group("stt");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    for (label, text) in [
        ("1s", "Yes, sounds good."),
        ("3s", "Sure, tell me more about the solar panels and the price."),
        ("6s", "My electricity bill is about two hundred dollars a month, and it goes up every summer when we run the air conditioning."),
    ] {
        let audio = say(text);
        let wide = telemarketer::audio::resample::resample_all(&audio.samples, audio.sample_rate, 16000).unwrap();
        eprintln!("stt/{label}: {:.2} s of speech", wide.len() as f32 / 16000.0);
        group.bench_function(label, |b| {
            b.iter(|| rt.block_on(engines.stt.transcribe(wide.clone())).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("llm");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    let system = ChatMessage::new(
        "system",
        config
            .conversation
            .script
            .persona_prompt
            .clone()
            .unwrap_or_default(),
    );
    let mut turn = 0u64;
    let mut evaluated = Vec::new();
    group.bench_function("first_token_cached_system_prompt", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                turn += 1;
                let request = GenerateRequest {
                    // A fresh conversation per sample, after the first one warmed the cache:
                    // measures the system prompt from the slot's common prefix.
                    conversation_id: "bench".into(),
                    messages: vec![
                        system.clone(),
                        ChatMessage::new(
                            "user",
                            format!("Question number {turn}: what do you sell?"),
                        ),
                    ],
                    max_tokens: 1,
                    grammar: None,
                    cancel: CancellationToken::new(),
                };
                let started = Instant::now();
                let mut rx = engines.llm.generate(request);
                rt.block_on(async {
                    while let Some(ev) = rx.recv().await {
                        if matches!(ev, LlmEvent::Token(_)) {
                            break;
                        }
                    }
                });
                total += started.elapsed();
                rt.block_on(async {
                    while let Some(ev) = rx.recv().await {
                        if let LlmEvent::Done {
                            prompt_evaluated, ..
                        } = ev
                        {
                            evaluated.push(prompt_evaluated as f64);
                        }
                    }
                });
            }
            total
        })
    });
    // The same request again: everything but the last prompt token is cached, so this is one
    // decode and one sample, llama.cpp's `tg` step (compare with 1000 / its tokens/s).
    let same = GenerateRequest {
        conversation_id: "bench-same".into(),
        messages: vec![
            system.clone(),
            ChatMessage::new("user", "What do you sell?"),
        ],
        max_tokens: 1,
        grammar: None,
        cancel: CancellationToken::new(),
    };
    group.bench_function("first_token_whole_prompt_cached", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let request = GenerateRequest {
                    cancel: CancellationToken::new(),
                    ..same.clone()
                };
                let started = Instant::now();
                let mut rx = engines.llm.generate(request);
                rt.block_on(async {
                    while let Some(ev) = rx.recv().await {
                        if matches!(ev, LlmEvent::Token(_)) {
                            break;
                        }
                    }
                });
                total += started.elapsed();
                rt.block_on(async { while rx.recv().await.is_some() {} });
            }
            total
        })
    });
    group.finish();
    evaluated.sort_by(f64::total_cmp);
    if let Some(n) = evaluated.get(evaluated.len() / 2) {
        // llama-bench -p N -n 0 on the same model and threads is the engine-free figure.
        eprintln!("llm/first_token_cached_system_prompt evaluates {n:.0} prompt tokens (median)");
    }
    // Tokens per second over a longer generation.
    let mut rates = Vec::new();
    let mut depth = 0;
    for i in 0..5 {
        let mut rx = engines.llm.generate(GenerateRequest {
            conversation_id: "rate".into(),
            messages: vec![
                system.clone(),
                ChatMessage::new(
                    "user",
                    format!("Tell me a long story about the sun, part {i}."),
                ),
            ],
            max_tokens: 128,
            grammar: None,
            cancel: CancellationToken::new(),
        });
        let (mut first, mut generated) = (None, 0usize);
        let started = Instant::now();
        rt.block_on(async {
            while let Some(ev) = rx.recv().await {
                match ev {
                    LlmEvent::Token(_) => {
                        first.get_or_insert_with(Instant::now);
                    }
                    LlmEvent::Done {
                        generated: g,
                        prompt_evaluated,
                        prompt_cached,
                        ..
                    } => {
                        generated = g;
                        depth = prompt_evaluated + prompt_cached;
                    }
                    LlmEvent::Error(e) => panic!("{e}"),
                }
            }
        });
        if let Some(f) = first {
            rates.push(generated.saturating_sub(1) as f64 / f.elapsed().as_secs_f64().max(1e-6));
        }
        let _ = started;
    }
    // llama-bench -n 128 -d DEPTH on the same model and threads is the engine-free figure.
    eprintln!(
        "llm/tokens_per_second: p50 {:.0} (128 tokens after a prompt of {depth})",
        pct(rates, 50.0)
    );

    let mut group = c.benchmark_group("tts");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    let clause = "Our consultation is completely free of charge.";
    group.bench_function("first_clause", |b| {
        b.iter(|| {
            rt.block_on(
                engines
                    .tts
                    .synthesize(clause.into(), CancellationToken::new()),
            )
            .unwrap()
        })
    });
    group.finish();
    let audio = say(clause);
    let started = Instant::now();
    let again = say(clause);
    let rtf =
        started.elapsed().as_secs_f64() / (again.samples.len() as f64 / again.sample_rate as f64);
    eprintln!(
        "tts/real_time_factor: {rtf:.3} ({:.2} s of audio)",
        audio.samples.len() as f32 / audio.sample_rate as f32
    );

    turns_per_path(&rt, &engines, &dir);
}

/// Whole turns over loopback, in real time, through the shipped solar script: calls whose
/// lines take each path (a rule, the model classifying, an FAQ answer, a generated line),
/// timed at the caller's ear (end of its audio -> first audible agent frame) and labelled with
/// the path the server says it took, next to the server's per-stage figures.
fn turns_per_path(rt: &tokio::runtime::Runtime, engines: &Engines, dir: &std::path::Path) {
    const CALLS: usize = 4;
    let config = bench_config(dir, "script = \"example\"");
    let lines = [
        "Yes, go ahead.",                        // intro: a rule reads "yes"
        "How did you get my number?",            // bill: an FAQ answer, then the question again
        "About two hundred dollars a month.",    // bill: a rule reads the number
        "Yes, we own the house.",                // homeowner -> pitch: a generated line first
        "I suppose that could work out for me.", // pitch: no rule fits, the model classifies
        "Tomorrow at ten works.",                // book_time: a rule reads the time
    ];
    let (url, registry, audio) = rt.block_on(async {
        let local = AppBuilder::new(config.clone(), engines)
            .in_memory()
            .spawn_local()
            .await
            .unwrap();
        let mut audio = Vec::new();
        for line in lines {
            let clip = engines
                .tts
                .synthesize(line.into(), CancellationToken::new())
                .await
                .unwrap();
            let narrow =
                telemarketer::audio::resample::resample_all(&clip.samples, clip.sample_rate, 8000)
                    .unwrap();
            audio.push(telemarketer::audio::f32_to_i16(&narrow));
        }
        (local.media_url(), local.state.registry.clone(), audio)
    });
    let mut ear: BTreeMap<TurnPath, Vec<u64>> = BTreeMap::new();
    let mut stages: BTreeMap<TurnPath, Vec<TurnLatency>> = BTreeMap::new();
    let mut paired_all = Vec::new();
    for _ in 0..CALLS {
        let call = SimCall::random().with_tokens(BENCH_TOKEN, BENCH_TOKEN);
        // A person answers once the agent has been quiet 1.2 s (the corpus's patience).
        let wait = CallerStep::WaitForAgent {
            quiet: Duration::from_millis(1200),
            max: Duration::from_secs(30),
        };
        let mut steps = vec![wait.clone()];
        for clip in &audio {
            steps.push(CallerStep::Say(clip.clone()));
            steps.push(wait.clone());
        }
        let report = rt.block_on(run_call(&url, &call, steps)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let Some(record) = registry.get(&call.call_sid) else {
            continue;
        };
        let latencies: Vec<TurnLatency> = record
            .turns
            .iter()
            .filter_map(|t| t.latency.clone())
            .collect();
        let server: Vec<ServerFigure> = latencies
            .iter()
            .filter_map(|l| {
                Some(ServerFigure {
                    speech_end_ms: l.speech_end_ms?,
                    voice_to_voice_ms: l.voice_to_voice_ms?,
                    path: l.path,
                })
            })
            .collect();
        let paired = measure::agreement(&report.turn_timings(), &server);
        for a in &paired {
            if let Some(path) = a.path {
                ear.entry(path).or_default().push(a.ear_ms);
            }
        }
        for l in latencies {
            if let Some(path) = l.path {
                stages.entry(path).or_default().push(l);
            }
        }
        paired_all.extend(paired);
    }
    let ms = |v: Vec<f64>| {
        if v.is_empty() {
            "-".to_string()
        } else {
            format!("{:.0}", pct(v, 50.0))
        }
    };
    eprintln!(
        "\nturn/<path>: caller's ear p50/p95 (n) | server stage medians (ms): endpointing, stt, llm first token, tts first audio, first frame"
    );
    for path in TurnPath::ALL {
        let v: Vec<f64> = ear
            .get(&path)
            .into_iter()
            .flatten()
            .map(|&x| x as f64)
            .collect();
        let s = stages.get(&path).cloned().unwrap_or_default();
        if v.is_empty() && s.is_empty() {
            continue;
        }
        let (p50, p95) = if v.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (pct(v.clone(), 50.0), pct(v.clone(), 95.0))
        };
        let stage = |f: fn(&TurnLatency) -> Option<f64>| ms(s.iter().filter_map(f).collect());
        eprintln!(
            "turn/{:<9} ear p50 {p50:.0} ms, p95 {p95:.0} ms (n={}) | {} {} {} {} {}",
            path.as_str(),
            v.len(),
            stage(|l| Some(l.endpointing_ms)),
            stage(|l| Some(l.stt_ms)),
            stage(|l| l.llm_first_token_ms),
            stage(|l| l.tts_first_audio_ms),
            stage(|l| l.first_frame_ms),
        );
    }
    eprintln!(
        "{}",
        telemarketer::rehearsal::table::agreement_line(&paired_all, paired_all.len())
    );
}

criterion_group!(benches, models);
criterion_main!(benches);
