//! The model stages with the installed model set (`models/`, e.g. the tiny test set):
//! STT per utterance length, LLM time to first token and tokens/s with a cached system prompt,
//! TTS first-clause time and real-time factor, and a whole turn over loopback (end of caller
//! speech -> first agent frame), reported as p50/p95.
//!
//! `cargo bench --bench models`. Without models it says so and measures nothing.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use telemarketer::app::{AppBuilder, Engines};
use telemarketer::config::{RawConfig, Secrets};
use telemarketer::engine::{GenerateRequest, LanguageModel, LlmEvent, SpeechToText, TextToSpeech};
use telemarketer::model::ChatMessage;
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

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn models(c: &mut Criterion) {
    let Some(dir) = models_dir() else { return };
    // A short greeting: every measured turn starts a call and waits for it.
    let toml = format!(
        "[models]\ndir = {:?}\n[conversation]\ngreeting = \"Hi, this is Nova, an AI assistant from Sunrise Solar.\"",
        dir.display().to_string()
    );
    let config = RawConfig::from_toml(&toml)
        .unwrap()
        .validate(Secrets {
            api_token: Some(BENCH_TOKEN.into()),
            twilio_auth_token: Some(BENCH_TOKEN.into()),
            ..Default::default()
        })
        .unwrap();
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
                rt.block_on(async { while rx.recv().await.is_some() {} });
            }
            total
        })
    });
    group.finish();
    // Tokens per second over a longer generation.
    let mut rates = Vec::new();
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
                    LlmEvent::Done { generated: g, .. } => generated = g,
                    LlmEvent::Error(e) => panic!("{e}"),
                }
            }
        });
        if let Some(f) = first {
            rates.push(generated.saturating_sub(1) as f64 / f.elapsed().as_secs_f64().max(1e-6));
        }
        let _ = started;
    }
    eprintln!("llm/tokens_per_second: p50 {:.0}", pct(rates, 50.0));

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

    // A whole turn over loopback, in real time.
    let (addr, registry, caller) = rt.block_on(async {
        let local = AppBuilder::new(config.clone(), &engines)
            .in_memory()
            .spawn_local()
            .await
            .unwrap();
        let (addr, registry) = (local.addr, local.state.registry.clone());
        let line = engines
            .tts
            .synthesize(
                "Sure, tell me more about the solar panels.".into(),
                CancellationToken::new(),
            )
            .await
            .unwrap();
        let narrow =
            telemarketer::audio::resample::resample_all(&line.samples, line.sample_rate, 8000)
                .unwrap();
        (addr, registry, telemarketer::audio::f32_to_i16(&narrow))
    });
    let mut v2v = Vec::new();
    let mut group = c.benchmark_group("turn");
    group.sample_size(10);
    // Each iteration is a real-time call (seconds of wall time for ~1 s measured): one call
    // per sample, not criterion's growing iteration counts.
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("end_of_speech_to_first_frame", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let call = SimCall::random().with_tokens(BENCH_TOKEN, BENCH_TOKEN);
                let wait = |quiet| CallerStep::WaitForAgent {
                    quiet: Duration::from_millis(quiet),
                    max: Duration::from_secs(30),
                };
                let steps = vec![wait(600), CallerStep::Say(caller.clone()), wait(300)];
                rt.block_on(run_call(&format!("ws://{addr}/twilio/media"), &call, steps))
                    .unwrap();
                std::thread::sleep(Duration::from_millis(200));
                let ms = registry
                    .get(&call.call_sid)
                    .and_then(|r| {
                        r.turns
                            .iter()
                            .rev()
                            .find_map(|t| t.latency.as_ref().and_then(|l| l.voice_to_voice_ms))
                    })
                    .unwrap_or(f64::NAN);
                v2v.push(ms);
                total += Duration::from_secs_f64(ms / 1000.0);
            }
            total
        })
    });
    group.finish();
    let v2v: Vec<f64> = v2v.into_iter().filter(|v| v.is_finite()).collect();
    if !v2v.is_empty() {
        eprintln!(
            "turn/end_of_speech_to_first_frame over {} turns: p50 {:.0} ms, p95 {:.0} ms",
            v2v.len(),
            pct(v2v.clone(), 50.0),
            pct(v2v, 95.0)
        );
    }
}

criterion_group!(benches, models);
criterion_main!(benches);
