//! Tools for script writers and engineers on the test bed: `simulate` (one rehearsed call with a
//! transcript and what the caller heard) and `loadtest` (N calls at once).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use telemarketer::app::{AppBuilder, Engines};
use telemarketer::engine::{SpeechToText, TextToSpeech};
use telemarketer::rehearsal::table::{agreement_line, paths_line};
use telemarketer::testbed::measure::{self, ServerFigure};
use telemarketer::testbed::sim::{self, CallerStep, SimCall};

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Caller lines in order: a path to a WAV file, or text spoken by the project's TTS.
    lines: Vec<String>,
    /// Media WebSocket of a running server (e.g. ws://127.0.0.1:8080/twilio/media) instead of
    /// an in-process one. The call is registered with TELEMARKETER_API_TOKEN (its transcript is
    /// read back with it) and the upgrade signed with TWILIO_AUTH_TOKEN, from the environment.
    #[arg(long)]
    url: Option<String>,
    /// Where to write the stereo recording.
    #[arg(long, default_value = "simulated-call.wav")]
    record: PathBuf,
    /// Talk over the agent: from the second line on, the caller speaks this many ms after the
    /// agent starts answering instead of waiting for it to finish (barge-in rehearsal).
    #[arg(long)]
    barge_in_after_ms: Option<u64>,
}

#[derive(clap::Args)]
pub struct LoadtestArgs {
    /// Concurrent calls.
    #[arg(long, default_value_t = 2)]
    calls: usize,
    /// Caller turns per call.
    #[arg(long, default_value_t = 2)]
    turns: usize,
    /// A caller line (repeat for each turn, in order; cycled when `--turns` is larger): text
    /// spoken by the project's TTS or a WAV file. Default: three lines for the open
    /// conversation. With a script configured, give lines that follow it.
    #[arg(long = "line")]
    lines: Vec<String>,
}

/// Lines for the open conversation: every answer is generated.
const OPEN_LINES: [&str; 3] = [
    "Sure, tell me more about the solar panels.",
    "My electricity bill is about two hundred dollars a month.",
    "How long does the installation take?",
];

/// A caller line: a WAV file's audio, or text spoken by the project's TTS; 8 kHz PCM out.
pub async fn caller_audio(line: &str, tts: &dyn TextToSpeech) -> anyhow::Result<Vec<i16>> {
    let (samples, rate) = if line.to_ascii_lowercase().ends_with(".wav") {
        let mut reader =
            hound::WavReader::open(line).with_context(|| format!("cannot read {line}"))?;
        let spec = reader.spec();
        let raw: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Int => reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 / (1u64 << (spec.bits_per_sample - 1)) as f32))
                .collect::<Result<_, _>>()?,
            hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        };
        // Down-mix to mono: the phone line is mono.
        let ch = spec.channels.max(1) as usize;
        let mono = raw
            .chunks(ch)
            .map(|f| f.iter().sum::<f32>() / ch as f32)
            .collect();
        (mono, spec.sample_rate)
    } else {
        let audio = tts.synthesize(line.to_string(), Default::default()).await?;
        (audio.samples, audio.sample_rate)
    };
    Ok(telemarketer::audio::to_phone_pcm(&samples, rate)?)
}

pub async fn simulate(config_path: Option<&Path>, args: SimulateArgs) -> anyhow::Result<()> {
    let SimulateArgs {
        mut lines,
        url,
        record,
        barge_in_after_ms,
    } = args;
    // Rehearsals run the shipped example campaign unless the config names a script.
    let mut raw = super::raw_config(config_path)?;
    raw.conversation
        .script
        .get_or_insert_with(|| "example".into());
    let mut config = raw
        .validate(telemarketer::config::Secrets::from_env())
        .context("invalid configuration")?;
    if url.is_none() {
        own_tokens(&mut config);
    }
    if lines.is_empty() {
        lines = [
            "Yes, go ahead.",
            "About two hundred dollars a month.",
            "Yes, we own the house.",
            "Sure, book it.",
            "Tomorrow at ten works.",
        ]
        .map(String::from)
        .to_vec();
    }
    // In-process server (all engines), or only the caller's voice and ears for a remote one.
    let (url, registry, tts, stt): (String, _, Arc<dyn TextToSpeech>, Arc<dyn SpeechToText>) =
        match url {
            Some(url) => {
                let tts = telemarketer::engine::piper::PiperEngine::load(&config.tts)?;
                let stt = telemarketer::engine::whisper::WhisperEngine::load(&config.stt)?;
                (url, None, Arc::new(tts), Arc::new(stt))
            }
            None => {
                let engines = Engines::load(&config).context("cannot load the models")?;
                let local = AppBuilder::new(config.clone(), &engines)
                    .in_memory()
                    .spawn_local()
                    .await?;
                (
                    local.media_url(),
                    Some(local.state.registry.clone()),
                    Arc::new(engines.tts.clone()),
                    Arc::new(engines.stt.clone()),
                )
            }
        };

    let wait = CallerStep::WaitForAgent {
        quiet: Duration::from_millis(800),
        max: Duration::from_secs(30),
    };
    let mut steps = vec![wait.clone()];
    for (i, line) in lines.iter().enumerate() {
        steps.push(CallerStep::Say(caller_audio(line, tts.as_ref()).await?));
        let interrupt_next = i + 1 < lines.len() && barge_in_after_ms.is_some();
        steps.push(match barge_in_after_ms.filter(|_| interrupt_next) {
            // Wait until the agent's answer is heard and has played this long, then speak
            // over it (a fixed wait from the caller's own words would miss a short answer).
            Some(ms) => CallerStep::Over {
                after: Duration::from_millis(ms),
                max: Duration::from_secs(30),
            },
            None => wait.clone(),
        });
    }
    let call = caller(&config);
    println!("calling {url} as {} ...", call.call_sid);
    let report = sim::run_call(&url, &call, steps).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    report.write_stereo_wav(&record)?;

    println!("\n== transcript ({}) ==", call.call_sid);
    let record_json = match &registry {
        Some(r) => r
            .get(&call.call_sid)
            .map(serde_json::to_value)
            .transpose()?,
        None => remote_record(&url, &call.call_sid).await,
    };
    match &record_json {
        Some(rec) => {
            print_turns(rec);
            println!(
                "outcome: {} variables: {}",
                rec["outcome"], rec["variables"]
            );
            print_latency_summary(rec);
        }
        None => println!("(no transcript: set TELEMARKETER_API_TOKEN to read it from the server)"),
    }
    println!("\n== what the caller heard (whisper on the 8 kHz line) ==");
    for heard in &report.heard {
        let pcm = telemarketer::audio::i16_to_f32(&heard.samples);
        let wide = telemarketer::audio::resample::resample_all(&pcm, 8000, 16000)?;
        let text = stt.transcribe(wide).await?.text;
        println!("[{:>6} ms] {text}", heard.start_ms);
    }
    println!(
        "\nend of caller speech -> agent audio heard on the line (ms): {:?}\nagent frames {}, late frames {}, short gaps {}, recording {}",
        report.response_latencies_ms(),
        report.frames_received,
        report.late_frames,
        report.underruns,
        record.display()
    );
    Ok(())
}

fn print_turns(record: &serde_json::Value) {
    let Some(turns) = record["turns"].as_array() else {
        return;
    };
    for t in turns {
        println!(
            "[{:>6} ms] {:<6} {}",
            t["at_ms"],
            t["speaker"].as_str().unwrap_or("?"),
            t["text"].as_str().unwrap_or("")
        );
        if let Some(l) = t.get("latency") {
            let f = |k: &str| {
                l[k].as_f64()
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_else(|| "-".into())
            };
            println!(
                "           endpointing {} | stt {} | llm first token {} | first clause {} | tts first audio {} | first frame {} | voice-to-voice {} ms",
                f("endpointing_ms"), f("stt_ms"), f("llm_first_token_ms"), f("llm_first_clause_ms"),
                f("tts_first_audio_ms"), f("first_frame_ms"), f("voice_to_voice_ms")
            );
        }
    }
}

/// CPU seconds used by this process so far (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory in MiB, from /proc.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

pub async fn loadtest(config_path: Option<&Path>, args: LoadtestArgs) -> anyhow::Result<()> {
    let LoadtestArgs {
        calls,
        turns,
        lines,
    } = args;
    let mut config = super::config(config_path)?;
    own_tokens(&mut config);
    // The test is what N calls at once do: the admission limit must not refuse some of them.
    if config.max_calls < calls {
        println!(
            "server.max_calls raised from {} to {calls} for this test",
            config.max_calls
        );
        config.max_calls = calls;
    }
    let engines = Engines::load(&config).context("cannot load the models")?;
    let local = AppBuilder::new(config.clone(), &engines)
        .in_memory()
        .spawn_local()
        .await?;
    let registry = local.state.registry.clone();
    let addr = local.addr;
    let lines: Vec<String> = if lines.is_empty() {
        OPEN_LINES.iter().map(|l| l.to_string()).collect()
    } else {
        lines
    };
    let mut audio = Vec::new();
    for line in lines.iter().cycle().take(turns.max(1)) {
        audio.push(caller_audio(line, &engines.tts).await?);
    }
    let (cpu0, rss0, started) = (cpu_seconds(), rss_mib(), std::time::Instant::now());
    let llm0 = engines.llm.totals();
    let mut handles = Vec::new();
    for i in 0..calls.max(1) {
        let audio = audio.clone();
        let url = format!("ws://{addr}/twilio/media");
        let call = caller(&config);
        handles.push(tokio::spawn(async move {
            // Stagger starts a little, as a dialer's pacing would.
            tokio::time::sleep(Duration::from_millis(150 * i as u64)).await;
            let wait = CallerStep::WaitForAgent {
                quiet: Duration::from_millis(800),
                max: Duration::from_secs(60),
            };
            let mut steps = vec![wait.clone()];
            for a in audio {
                steps.push(CallerStep::Say(a));
                steps.push(wait.clone());
            }
            let report = sim::run_call(&url, &call, steps).await;
            (call, report)
        }));
    }
    let mut v2v = Vec::new();
    // Server stages of every turn: endpointing, stt, llm first token, tts first audio, first frame.
    let mut stages: [Vec<f64>; 5] = Default::default();
    let mut line = Vec::new();
    let mut paired = Vec::new();
    let (mut frames, mut underruns, mut late, mut odd) = (0u64, 0u64, 0u64, 0u64);
    for h in handles {
        let (call, report) = h.await?;
        let report = report?;
        frames += report.frames_received;
        underruns += report.underruns;
        late += report.late_frames;
        odd += report.odd_frames;
        let timings = report.turn_timings();
        line.extend(
            timings
                .iter()
                .filter_map(|t| t.latency_ms)
                .map(|v| v as f64),
        );
        if let Some(r) = registry.get(&call.call_sid) {
            let server: Vec<ServerFigure> = r
                .turns
                .iter()
                .filter_map(|t| {
                    let l = t.latency.as_ref()?;
                    v2v.extend(l.voice_to_voice_ms);
                    stages[0].push(l.endpointing_ms);
                    stages[1].push(l.stt_ms);
                    stages[2].extend(l.llm_first_token_ms);
                    stages[3].extend(l.tts_first_audio_ms);
                    stages[4].extend(l.first_frame_ms);
                    Some(ServerFigure {
                        speech_end_ms: l.speech_end_ms?,
                        voice_to_voice_ms: l.voice_to_voice_ms?,
                        path: l.path,
                    })
                })
                .collect();
            paired.extend(measure::agreement(&timings, &server));
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let p = |v: &Vec<f64>, q: f64| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            f64::NAN
        } else {
            percentile(&v, q)
        }
    };
    println!("calls {calls}, turns per call {turns}, wall {wall:.1} s");
    println!(
        "end of speech -> audio heard (caller): p50 {:.0} ms, p95 {:.0} ms (n={})",
        p(&line, 50.0),
        p(&line, 95.0),
        line.len()
    );
    println!(
        "end of speech -> first audible frame (server): p50 {:.0} ms, p95 {:.0} ms (n={})",
        p(&v2v, 50.0),
        p(&v2v, 95.0),
        v2v.len()
    );
    println!("{}", agreement_line(&paired, line.len()));
    let names = [
        "endpointing",
        "stt",
        "llm first token",
        "tts first audio",
        "first frame",
    ];
    let stage_line: Vec<String> = names
        .iter()
        .zip(&stages)
        .map(|(name, v)| {
            // A stage no turn went through (a fixed line has no LLM token).
            if v.is_empty() {
                format!("{name} -")
            } else {
                format!("{name} {:.0}/{:.0}", p(v, 50.0), p(v, 95.0))
            }
        })
        .collect();
    println!("server stages p50/p95 ms: {}", stage_line.join(", "));
    let llm = engines.llm.totals().since(&llm0);
    println!(
        "llm ({}): {} tokens generated, {} prompt tokens evaluated, {:.0} tokens/s while busy \
         ({:.1} s busy); first token p50 {:.0} ms, p95 {:.0} ms (n={})",
        if config.llm.batching {
            "batched"
        } else {
            "unbatched"
        },
        llm.generated,
        llm.prompt_evaluated,
        llm.tokens_per_s(),
        llm.busy.as_secs_f64(),
        p(&stages[2], 50.0),
        p(&stages[2], 95.0),
        stages[2].len()
    );
    println!("{}", paths_line(&paired));
    println!(
        "agent frames {frames}; late frames (buffer ran dry mid-clause: pacing) {late}; \
         short gaps between stretches (any cause) {underruns}; malformed {odd}"
    );
    println!(
        "cpu {:.1} s total = {:.2} cores over the run, {:.1} cpu-s per call; rss {:.0} MiB ({:+.0} MiB during the run)",
        cpu,
        cpu / wall,
        cpu / calls.max(1) as f64,
        rss_mib(),
        rss_mib() - rss0
    );
    Ok(())
}

/// An in-process server and its simulated callers share tokens: the environment's, else
/// fresh ones, so calls are registered and signed as on the real path.
fn own_tokens(config: &mut telemarketer::config::Config) {
    let fresh = || uuid::Uuid::new_v4().simple().to_string();
    let secrets = &mut config.secrets;
    secrets.twilio_auth_token.get_or_insert_with(fresh);
    secrets.api_token.get_or_insert_with(fresh);
}

/// A simulated call with the configured account and tokens (a remote server needs them from
/// the environment: TWILIO_AUTH_TOKEN, TELEMARKETER_API_TOKEN).
fn caller(config: &telemarketer::config::Config) -> SimCall {
    let mut call = SimCall::random();
    if let Some(account) = config.account_sid() {
        call.account_sid = account.to_string();
    }
    call.auth_token = config.secrets.twilio_auth_token.clone();
    call.api_token = config.secrets.api_token.clone();
    call
}

/// Nearest-rank percentile of a sorted slice.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// p50/p95 of every stage over the call's turns, and of barge-in reaction times.
fn print_latency_summary(record: &serde_json::Value) {
    let turns = record["turns"].as_array().cloned().unwrap_or_default();
    let stages = [
        ("endpointing", "endpointing_ms"),
        ("stt", "stt_ms"),
        ("llm first token", "llm_first_token_ms"),
        ("llm first clause", "llm_first_clause_ms"),
        ("tts first audio", "tts_first_audio_ms"),
        ("first frame out", "first_frame_ms"),
        ("voice-to-voice", "voice_to_voice_ms"),
    ];
    println!(
        "\n== latency (ms) ==\n{:<18} {:>5} {:>8} {:>8}",
        "stage", "n", "p50", "p95"
    );
    let row = |name: &str, mut v: Vec<f64>| {
        if v.is_empty() {
            return;
        }
        v.sort_by(f64::total_cmp);
        println!(
            "{name:<18} {:>5} {:>8.0} {:>8.0}",
            v.len(),
            percentile(&v, 50.0),
            percentile(&v, 95.0)
        );
    };
    for (name, key) in stages {
        let v = turns
            .iter()
            .filter_map(|t| t["latency"][key].as_f64())
            .collect();
        row(name, v);
    }
    let barge = record["barge_in_reaction_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
        .unwrap_or_default();
    row("barge-in reaction", barge);
}

/// The remote server's record of the call, through the API (token from the environment).
async fn remote_record(media_url: &str, call_sid: &str) -> Option<serde_json::Value> {
    let base = media_url
        .replacen("wss://", "https://", 1)
        .replacen("ws://", "http://", 1)
        .replace("/twilio/media", "");
    let api = telemarketer::client::AdminClient::from_env(&base).ok()?;
    serde_json::to_value(api.call(call_sid).await.ok()?).ok()
}
