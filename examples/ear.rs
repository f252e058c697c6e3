//! The ear alone: how well the STT model hears callers on the phone line, without a call.
//!
//! Each line is spoken by espeak-ng (the corpus's caller voice), carried as the line carries it
//! (8 kHz mu-law), brought to 16 kHz as the session does, framed with 200 ms of silence before
//! and 700 ms after (the VAD's pre-roll and the endpoint), and transcribed with the given
//! prompt. It prints every line not heard word for word and the word error rate.
//!
//! ```sh
//! cargo run --release --example ear                       # every spoken line of the corpus
//! LINES="Monday at nine.|In an hour." PROMPT="When should we call you back?" \
//!     cargo run --release --example ear
//! ```
//! `STT` names another ggml model (default `models/stt.bin`); `VOICE` another espeak voice;
//! `WPM` another speaking speed for `LINES` (default 150); `NOISE` line noise in dBFS (as the
//! corpus's `noise_db`) and `REPS` how many times each line is heard (the noise differs);
//! `CHOICES` answers for a second listen to a doubtful line (`|`-separated sentences, as
//! `[turn] min_confidence`, or `DOUBT`, decides); `BEAM` a decoder beam width (default 0, greedy, as `[stt] beam`); `AUDIO_CTX` the encoder
//! window (default 0, auto, as `[stt] audio_ctx`).
//! Used to choose the ear's prompt: with Whisper tiny.en on these voices about a third of the
//! words are wrong without help, so the prompt carries much of the recognition.

use telemarketer::audio::{i16_to_f32, mulaw, resample};
use telemarketer::engine::whisper::{WhisperConfig, WhisperEngine};
use telemarketer::engine::{SpeechToText, TurnHints};
use telemarketer::testbed::voice;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word-level edit distance.
fn errors(said: &[String], heard: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=heard.len()).collect();
    for (i, s) in said.iter().enumerate() {
        let mut cur = vec![i + 1; heard.len() + 1];
        for (j, h) in heard.iter().enumerate() {
            cur[j + 1] = (prev[j + 1] + 1)
                .min(cur[j] + 1)
                .min(prev[j] + usize::from(s != h));
        }
        prev = cur;
    }
    prev[heard.len()]
}

/// (voice, words per minute, text) of every spoken line in the corpus (no markup, no noise).
fn corpus_lines(voice_override: Option<&str>) -> anyhow::Result<Vec<(String, u32, String)>> {
    let doc: toml::Value = toml::from_str(&std::fs::read_to_string("scripts/corpus/solar.toml")?)?;
    let defaults = &doc["defaults"];
    let default_voice = defaults["voice"].as_str().unwrap_or("en-us");
    let default_wpm = defaults["wpm"].as_integer().unwrap_or(150);
    let mut out = Vec::new();
    for caller in doc["caller"].as_array().into_iter().flatten() {
        if caller.get("noise_db").is_some() {
            continue;
        }
        let voice = voice_override
            .or_else(|| caller.get("voice").and_then(|v| v.as_str()))
            .unwrap_or(default_voice);
        let wpm = caller
            .get("wpm")
            .and_then(|v| v.as_integer())
            .unwrap_or(default_wpm);
        for line in caller["lines"].as_array().into_iter().flatten() {
            let Some(line) = line.as_str().filter(|l| !l.starts_with('[')) else {
                continue;
            };
            out.push((voice.to_string(), wpm as u32, line.to_string()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let voice_override = std::env::var("VOICE").ok();
    let lines = match std::env::var("LINES") {
        Ok(lines) => lines
            .split('|')
            .map(|l| {
                let v = voice_override.as_deref().unwrap_or("en-us");
                let wpm = std::env::var("WPM").ok().and_then(|w| w.parse().ok());
                (
                    v.to_string(),
                    wpm.unwrap_or(voice::DEFAULT_WPM),
                    l.to_string(),
                )
            })
            .collect(),
        Err(_) => corpus_lines(voice_override.as_deref())?,
    };
    let engine = WhisperEngine::load(&WhisperConfig {
        model_path: std::env::var("STT")
            .unwrap_or_else(|_| "models/stt.bin".into())
            .into(),
        threads: 2,
        workers: 1,
        audio_ctx: std::env::var("AUDIO_CTX")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(0),
        beam: std::env::var("BEAM")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(0),
        use_gpu: false,
        queue: Default::default(),
    })?;
    let prompt = std::env::var("PROMPT").ok();
    let choices: Vec<String> = std::env::var("CHOICES")
        .map(|c| c.split('|').map(str::to_string).collect())
        .unwrap_or_default();
    let doubt_below = std::env::var("DOUBT")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.5);
    let (mut wrong_words, mut all_words, mut wrong_lines) = (0, 0, 0);
    let started = std::time::Instant::now();
    let noise_db: Option<f32> = std::env::var("NOISE").ok().and_then(|n| n.parse().ok());
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let lines: Vec<_> = lines
        .iter()
        .flat_map(|l| std::iter::repeat_n(l.clone(), reps))
        .collect();
    let mut noise = noise_db.map(voice::LineNoise::new);
    for (name, wpm, text) in &lines {
        // The pre-roll and the endpoint's silence, then the line as the caller's phone sends
        // it: with line noise under all of it, mu-law encoded.
        let mut pcm = vec![0i16; 1_600];
        pcm.extend(voice::espeak(text, name, *wpm)?);
        pcm.extend(vec![0i16; 5_600]);
        if let Some(noise) = &mut noise {
            noise.mix_into(&mut pcm);
        }
        let pcm = mulaw::decode(&mulaw::encode(&pcm));
        let audio = resample::resample_all(&i16_to_f32(&pcm), 8_000, 16_000)?;
        // As `expect`, not `prompt`: a line that repeats the prompt is not taken for an echo.
        let hints = TurnHints {
            expect: prompt.clone(),
            choices: choices.clone(),
            doubt_below,
            ..Default::default()
        };
        let heard = engine.transcribe_turn(audio, hints).await?;
        let (heard, sure) = (heard.text, heard.confidence);
        let e = errors(&words(text), &words(&heard));
        wrong_words += e;
        all_words += words(text).len();
        if e > 0 {
            wrong_lines += 1;
            println!("{name:>10} {text:?} -> {heard:?} ({sure:.2})");
        }
    }
    println!(
        "word error {:.1} % ({wrong_words} of {all_words} words), {wrong_lines} of {} lines not heard as said, {:.1} s",
        100.0 * wrong_words as f64 / all_words.max(1) as f64,
        lines.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
