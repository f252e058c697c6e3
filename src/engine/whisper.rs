//! Whisper speech to text (whisper.cpp through whisper-rs).
//!
//! One `WhisperContext` (the weights) is shared by all workers; each worker thread owns a
//! `WhisperState` (the scratch buffers), as whisper.cpp intends. Utterances are transcribed whole,
//! in no-timestamps single-segment mode: whisper pads every input to a 30 s window anyway, and
//! timestamp mode changes words on short clips.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

mod choose;

pub use choose::pick;

use super::pool::{Pool, QueueLimits, Worker};
use super::{require_file, EngineError, EngineHealth, SpeechToText, Transcript, TurnHints};

/// Settings for the STT engine.
#[derive(Debug, Clone)]
pub struct WhisperConfig {
    pub model_path: PathBuf,
    pub threads: usize,
    pub workers: usize,
    /// Encoder context in frames of 20 ms (1500 = 30 s). 0 = sized to each utterance
    /// ([`effective_audio_ctx`]); a fixed value trades accuracy for speed.
    pub audio_ctx: u32,
    /// Beam width of the decoder; 0 or 1 = greedy. Usual with bigger models; with tiny.en on the
    /// caller corpus it fixed some words and lost as many ("around ninety dollars" heard, "no
    /// one here by that name" lost), for ~0.1 s more decoder time a turn on 2 cores.
    pub beam: u32,
    pub use_gpu: bool,
    pub queue: QueueLimits,
}

struct Job {
    audio: Vec<f32>,
    hints: TurnHints,
    reply: tokio::sync::oneshot::Sender<Result<Transcript, EngineError>>,
}

/// Handle to the whisper worker threads. Cloning is cheap; threads stop when all handles drop.
#[derive(Clone)]
pub struct WhisperEngine {
    pool: Pool<Job>,
}

impl WhisperEngine {
    /// Loads the model and starts the workers. Blocks: call before accepting calls.
    pub fn load(config: &WhisperConfig) -> Result<Self, EngineError> {
        require_file("whisper", &config.model_path)?;
        whisper_rs::install_logging_hooks();
        let mut params = WhisperContextParameters::default();
        params.use_gpu(config.use_gpu);
        let path = config.model_path.to_string_lossy().to_string();
        let ctx =
            WhisperContext::new_with_params(&path, params).map_err(|e| EngineError::Load {
                engine: "whisper",
                reason: e.to_string(),
            })?;
        let ctx = Arc::new(ctx);
        let settings = Settings {
            threads: config.threads.max(1),
            audio_ctx: config.audio_ctx,
            beam: config.beam,
        };
        let guard = LoopGuard {
            eot: ctx.token_eot(),
            vocab: ctx.n_vocab().max(0) as usize,
        };
        let weights = ctx.clone();
        let pool = Pool::start(
            "stt",
            config.workers,
            config.queue,
            Worker {
                // One state (scratch buffers) per worker over the shared weights; the closure
                // keeps the context alive as long as the states that borrow it.
                init: move |_| {
                    ctx.create_state().map_err(|e| EngineError::Load {
                        engine: "whisper",
                        reason: e.to_string(),
                    })
                },
                run: move |state: &mut whisper_rs::WhisperState, job: Job| {
                    if job.hints.cancel.is_cancelled() {
                        let _ = job.reply.send(Err(EngineError::Cancelled));
                        return;
                    }
                    let started = Instant::now();
                    let result = super::on_short_lived_thread(|| {
                        run(&weights, state, &job.audio, settings, &job.hints, &guard)
                    })
                    .map(|(text, confidence)| Transcript {
                        text,
                        elapsed: started.elapsed(),
                        confidence,
                    });
                    let _ = job.reply.send(result);
                },
                refuse: |job: Job, e| {
                    let _ = job.reply.send(Err(e));
                },
            },
        )?;
        Ok(Self { pool })
    }

    /// Makes the next transcription panic (fault drills and tests).
    pub fn panic_next_job(&self) {
        self.pool.panic_next_job();
    }

    /// Path check used by `--check` style commands.
    pub fn model_exists(path: &Path) -> bool {
        path.is_file()
    }
}

/// whisper.cpp's abort callback: the job's token, checked between graph computations.
unsafe extern "C" fn cancelled(token: *mut std::ffi::c_void) -> bool {
    // SAFETY: `run` passes a pointer to a token that outlives `state.full`.
    unsafe { (*(token as *const CancellationToken)).is_cancelled() }
}

/// What the logits filter needs to end a looping decode: the end-of-text token and how many
/// logits there are.
struct LoopGuard {
    eot: whisper_rs::WhisperTokenId,
    vocab: usize,
}

/// whisper.cpp's logits filter: once the text decoded so far loops ([`loops`]), only the
/// end-of-text token is left to choose. A short turn padded with silence often decodes as
/// "Sure. Sure. Sure. ..." up to the token cap; each copy costs a decoder pass the caller
/// waits through, and the copies are dropped by [`clean_transcript`] anyway.
unsafe extern "C" fn stop_loops(
    _ctx: *mut whisper_rs::WhisperSysContext,
    _state: *mut whisper_rs::WhisperSysState,
    tokens: *const whisper_rs::WhisperTokenData,
    n_tokens: std::ffi::c_int,
    logits: *mut f32,
    guard: *mut std::ffi::c_void,
) {
    if tokens.is_null() || logits.is_null() || guard.is_null() || n_tokens < 3 {
        return;
    }
    // SAFETY: whisper.cpp passes its current sequence (`n_tokens` entries) and the logits of
    // the whole vocabulary; `guard` is the `LoopGuard` that `run` borrows for the decode.
    let (tokens, guard) = unsafe {
        (
            std::slice::from_raw_parts(tokens, n_tokens as usize),
            &*(guard as *const LoopGuard),
        )
    };
    let ids: Vec<whisper_rs::WhisperTokenId> = tokens.iter().map(|t| t.id).collect();
    if !loops(&ids) || guard.eot < 0 || guard.eot as usize >= guard.vocab {
        return;
    }
    // SAFETY: as above, `logits` holds `vocab` floats.
    let logits = unsafe { std::slice::from_raw_parts_mut(logits, guard.vocab) };
    for (id, logit) in logits.iter_mut().enumerate() {
        if id != guard.eot as usize {
            *logit = f32::NEG_INFINITY;
        }
    }
}

/// The decoded tokens end in a loop: the same block of tokens three times in a row ("Sure.
/// Sure. Sure." as `[" Sure", ".", " Sure", ".", " Sure", "."]`). Twice is not enough: people
/// repeat themselves ("I, I don't know", "I think, I think it's fine") and go on.
pub fn loops(ids: &[i32]) -> bool {
    let n = ids.len();
    (1..=n / 3).any(|k| {
        let (a, b, c) = (
            &ids[n - 3 * k..n - 2 * k],
            &ids[n - 2 * k..n - k],
            &ids[n - k..],
        );
        a == b && b == c
    })
}

/// How every utterance is decoded (from [`WhisperConfig`]).
#[derive(Clone, Copy)]
struct Settings {
    threads: usize,
    audio_ctx: u32,
    beam: u32,
}

fn run(
    ctx: &WhisperContext,
    state: &mut whisper_rs::WhisperState,
    audio: &[f32],
    settings: Settings,
    hints: &TurnHints,
    guard: &LoopGuard,
) -> Result<(String, f32), EngineError> {
    let cancel = &hints.cancel;
    // Whisper hallucinates words ("you", "Thank you.") on silence: an utterance with no energy
    // above -50 dBFS holds no speech, and is not worth a second of compute either.
    let peak = audio.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    if peak < 0.003 {
        return Ok((String::new(), 1.0));
    }
    // whisper.cpp rejects inputs under 100 ms; pad short blips with silence instead of failing.
    let mut padded;
    let audio = if audio.len() < 16_000 / 2 {
        padded = audio.to_vec();
        padded.resize(16_000 / 2, 0.0);
        &padded[..]
    } else {
        audio
    };
    let strategy = match settings.beam {
        0 | 1 => SamplingStrategy::Greedy { best_of: 1 },
        n => SamplingStrategy::BeamSearch {
            beam_size: n as i32,
            patience: -1.0,
        },
    };
    let mut params = FullParams::new(strategy);
    params.set_n_threads(settings.threads as i32);
    params.set_language(Some("en"));
    params.set_translate(false);
    params.set_no_context(true);
    params.set_no_timestamps(true);
    params.set_single_segment(true);
    params.set_print_special(false);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_timestamps(false);
    params.set_suppress_blank(true);
    // No temperature fallback: whisper.cpp would re-decode up to five times when it doubts a
    // result, turning a 0.2 s utterance into 3 s. A phone turn is short; cap its tokens too.
    params.set_temperature_inc(0.0);
    params.set_max_tokens(max_tokens(audio.len()) as i32);
    params.set_audio_ctx(effective_audio_ctx(settings.audio_ctx, audio.len()) as i32);
    // The agent's question, then the expected answers. Other orders were tried on the corpus:
    // with the node's answers last Whisper tiny hears "No." in a mumble, with an opt-out line
    // among the examples it hears an FAQ ("What is this?") in one.
    let prompt = [&hints.prompt, &hints.expect]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    if !prompt.is_empty() {
        params.set_initial_prompt(&prompt);
    }
    // SAFETY: the callbacks only read the token and the guard, which live until this function
    // returns, after `full` (the only user of the pointers) has.
    unsafe {
        params.set_abort_callback(Some(cancelled));
        params.set_abort_callback_user_data(cancel as *const CancellationToken as *mut _);
        params.set_filter_logits_callback(Some(stop_loops));
        params.set_filter_logits_callback_user_data(guard as *const LoopGuard as *mut _);
    }
    let result = state.full(params, audio);
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    result.map_err(|e| EngineError::Inference {
        engine: "whisper",
        reason: e.to_string(),
    })?;
    let mut text = String::new();
    let (mut probabilities, mut ids) = (Vec::new(), Vec::new());
    for segment in state.as_iter() {
        if let Ok(s) = segment.to_str_lossy() {
            text.push_str(&s);
        }
        for i in 0..segment.n_tokens() {
            // Special tokens (end of text, timestamps: every id from `eot` up) say nothing
            // about the words.
            if let Some(token) = segment.get_token(i).filter(|t| t.token_id() < guard.eot) {
                probabilities.push(token.token_probability());
                ids.push(token.token_id());
            }
        }
    }
    let text = clean_transcript(&text);
    let confidence = confidence(&probabilities);
    if let Some(prompt) = &hints.prompt {
        if echoes_prompt(&text, prompt) {
            return Ok((String::new(), 1.0));
        }
    }
    if confidence < hints.doubt_below && !hints.choices.is_empty() && !text.is_empty() {
        // A second listen that fails leaves the free transcript: it was only a second opinion.
        match choose::second_listen(ctx, state, &prompt, &ids, &hints.choices, settings.threads) {
            Ok(Some((choice, score))) => {
                tracing::debug!(heard = %text, confidence, %choice, score, "heard again");
                return Ok((choice, score));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "second listen failed"),
        }
    }
    Ok((text, confidence))
}

/// The geometric mean of token probabilities (1 for none): one unsure word in a short line
/// pulls it down, as it should ("That's interested.": 0.30, 0.31, 0.32, 0.48 -> 0.35).
pub fn confidence(probabilities: &[f32]) -> f32 {
    if probabilities.is_empty() {
        return 1.0;
    }
    let mean_log = probabilities
        .iter()
        .map(|p| f64::from(p.clamp(1e-6, 1.0)).ln())
        .sum::<f64>()
        / probabilities.len() as f64;
    mean_log.exp() as f32
}

/// The encoder window for an utterance. Whisper pads everything to 30 s (1500 frames of 20 ms);
/// a phone turn is a few seconds, so by default (`0` = auto) the window is sized to the audio plus
/// a margin: roughly halves STT time for short turns without cutting long ones.
pub fn effective_audio_ctx(configured: u32, samples_16k: usize) -> u32 {
    if configured > 0 {
        return configured.min(1500);
    }
    let frames = (samples_16k as u64 * 50).div_ceil(16_000) as u32;
    (frames + 128).clamp(384, 1500)
}

/// The decoder's token limit for an utterance: a fast talker says about 4 words (5-6 tokens) a
/// second, so more than that is the greedy decoder looping ("works works works ..."), each token
/// of it costing time the caller waits through. A margin for short clips; 96 at most.
pub fn max_tokens(samples_16k: usize) -> u32 {
    (12 + samples_16k as u64 * 6 / 16_000).min(96) as u32
}

/// Whisper, prompted with the agent's question, sometimes "hears" the prompt itself in noise or a
/// mumble: four or more words that all come, in order, from the prompt are not the caller's.
pub fn echoes_prompt(transcript: &str, prompt: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .map(|w| {
                w.chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect::<String>()
                    .to_lowercase()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (said, asked) = (words(transcript), words(prompt));
    said.len() >= 4 && asked.windows(said.len()).any(|w| w == said.as_slice())
}

/// Removes whisper's non-speech annotations (`[BLANK_AUDIO]`, `(music)`, `*laughs*`, `>>`) and
/// decoder loops, and collapses whitespace, so silence and noise become an empty transcript.
pub fn clean_transcript(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut closer: Option<char> = None;
    for c in raw.chars() {
        match closer {
            Some(end) if c == end => closer = None,
            Some(_) => {}
            None => match c {
                '[' => closer = Some(']'),
                '(' => closer = Some(')'),
                '*' => closer = Some('*'),
                _ => out.push(c),
            },
        }
    }
    // `>>` is whisper's speaker-turn marker, not words.
    let words: Vec<&str> = out
        .split_whitespace()
        .filter(|w| !w.chars().all(|c| c == '>'))
        .map(cut_thousands_loop)
        .collect();
    let joined = collapse_repeats(&collapse_word_loops(&words).join(" "));
    // A lone punctuation mark is not speech.
    if joined.chars().all(|c| !c.is_alphanumeric()) {
        String::new()
    } else {
        joined
    }
}

/// The loop inside a number: "two hundred and fifty" written "250,000,000,000,000,000,...".
/// Three or more groups of ",000" (a billion) are not a phone answer; the leading group is
/// what was said.
fn cut_thousands_loop(word: &str) -> &str {
    let digits = word.trim_start_matches('$');
    let lead = digits.find(',').unwrap_or(digits.len());
    let groups = &digits[lead..];
    let looped = (1..=3).contains(&lead)
        && digits[..lead].chars().all(|c| c.is_ascii_digit())
        && groups
            .trim_end_matches(['.', ',', '?', '!'])
            .strip_prefix(",000,000,000")
            .is_some_and(|rest| rest.split(',').all(|g| g.is_empty() || g == "000"));
    if looped {
        &word[..word.len() - groups.len()]
    } else {
        word
    }
}

/// The same loop inside a sentence: one to three words repeated four times or more in a row
/// ("works works works works", "at ten at ten at ten at ten") are said once. People repeat a
/// word twice ("no, no"), hardly ever four times.
fn collapse_word_loops<'a>(words: &[&'a str]) -> Vec<&'a str> {
    let key = |w: &str| {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .collect::<String>()
            .to_lowercase()
    };
    let keys: Vec<String> = words.iter().map(|w| key(w)).collect();
    let mut out = Vec::new();
    let mut i = 0;
    'outer: while i < words.len() {
        for n in 1..=3 {
            let mut runs = 1;
            while i + (runs + 1) * n <= words.len()
                && keys[i + runs * n..i + (runs + 1) * n] == keys[i..i + n]
            {
                runs += 1;
            }
            if runs >= 4 {
                out.extend_from_slice(&words[i..i + n]);
                i += runs * n;
                continue 'outer;
            }
        }
        out.push(words[i]);
        i += 1;
    }
    out
}

/// Whisper's known failure on short clips, worst with the small models: the decoder loops and
/// repeats the last sentence until its token limit ("Stop calling me. Stop calling me. ...").
/// A caller who says the same sentence three or more times in a row is far rarer than the loop,
/// so runs of an identical sentence are cut to one; so is a whole answer said exactly twice.
pub fn collapse_repeats(text: &str) -> String {
    let mut sentences: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        // "3 p. m. Tomorrow": the stop after "p" is an abbreviation's (a lone letter, and
        // the sentence goes on in lower case), the one after "m" ends the sentence.
        let abbreviation = c == '.'
            && text[..i]
                .rsplit(|c: char| !c.is_alphanumeric())
                .next()
                .is_some_and(|w| w.chars().count() == 1 && w.chars().all(char::is_alphabetic))
            && text[i + 1..]
                .trim_start()
                .chars()
                .next()
                .is_some_and(char::is_lowercase);
        if matches!(c, '.' | '!' | '?') && !abbreviation {
            let end = i + c.len_utf8();
            sentences.push(text[start..end].trim());
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        sentences.push(rest);
    }
    let key = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
    };
    let mut out: Vec<&str> = Vec::new();
    let mut looped = false;
    let mut i = 0;
    while i < sentences.len() {
        let mut j = i + 1;
        while j < sentences.len() && key(sentences[j]) == key(sentences[i]) {
            j += 1;
        }
        // Twice can be speech ("No. No. I said no."); three times and more is the loop.
        let keep = if j - i >= 3 { 1 } else { j - i };
        looped |= j - i >= 3;
        out.extend(std::iter::repeat_n(sentences[i], keep));
        i = j;
    }
    // Beam search's own artefact: the whole answer twice ("Around 90 dollars. Around 90
    // dollars."), the longer hypothesis winning. Said once or twice, it means the same.
    let half = out.len() / 2;
    if out.len().is_multiple_of(2)
        && half > 0
        && (0..half).all(|k| key(out[k]) == key(out[half + k]))
    {
        out.truncate(half);
    }
    // The loop ends where the token limit cut it: a half sentence repeating the last one.
    if looped && out.len() >= 2 {
        let last = out[out.len() - 1];
        let unfinished = !last.ends_with(['.', '!', '?']);
        if unfinished && key(out[out.len() - 2]).starts_with(&key(last)) {
            out.pop();
        }
    }
    out.join(" ")
}

impl WhisperEngine {
    fn transcribe_with(
        &self,
        audio: Vec<f32>,
        hints: TurnHints,
    ) -> BoxFuture<'static, Result<Transcript, EngineError>> {
        let pool = self.pool.clone();
        async move {
            pool.ask(|reply| Job {
                audio,
                hints,
                reply,
            })
            .await
        }
        .boxed()
    }
}

impl SpeechToText for WhisperEngine {
    fn transcribe(
        &self,
        audio_16k: Vec<f32>,
    ) -> BoxFuture<'static, Result<Transcript, EngineError>> {
        self.transcribe_with(audio_16k, TurnHints::default())
    }

    fn transcribe_turn(
        &self,
        audio_16k: Vec<f32>,
        hints: TurnHints,
    ) -> BoxFuture<'static, Result<Transcript, EngineError>> {
        self.transcribe_with(audio_16k, hints)
    }

    fn health(&self) -> EngineHealth {
        self.pool.health()
    }
}

#[cfg(test)]
mod tests {
    use super::clean_transcript;

    #[test]
    fn confidence_is_the_geometric_mean_of_the_token_probabilities() {
        use super::confidence;
        assert_eq!(confidence(&[]), 1.0);
        // "That's interested." for "Not interested.", as tiny.en heard it in the corpus.
        let c = confidence(&[0.30, 0.31, 0.32, 0.48]);
        assert!((c - 0.347).abs() < 0.005, "{c}");
        // One unsure word in a short line pulls the whole line under the default 0.5.
        assert!(confidence(&[0.9, 0.9, 0.05]) < 0.5);
        assert!(confidence(&[0.9, 0.8, 0.95]) > 0.5);
        assert!(confidence(&[0.0]) < 1e-5, "a zero is not a NaN");
    }

    #[test]
    fn audio_ctx_follows_the_utterance() {
        use super::effective_audio_ctx;
        assert_eq!(effective_audio_ctx(0, 16_000), 384, "1 s: the floor");
        assert_eq!(effective_audio_ctx(0, 16_000 * 6), 428);
        assert_eq!(effective_audio_ctx(0, 16_000 * 40), 1500, "never past 30 s");
        assert_eq!(effective_audio_ctx(1500, 16_000), 1500, "configured wins");
    }

    #[test]
    fn a_looping_decoder_is_cut_short_and_its_words_said_once() {
        use super::max_tokens;
        assert_eq!(max_tokens(16_000), 18, "1 s");
        assert_eq!(max_tokens(16_000 * 5), 42);
        assert_eq!(max_tokens(16_000 * 30), 96);
        assert_eq!(
            clean_transcript("Tomorrow what ten works. works works works works works"),
            "Tomorrow what ten works."
        );
        assert_eq!(
            clean_transcript("Tomorrow at ten works works works works works works"),
            "Tomorrow at ten works"
        );
        assert_eq!(
            clean_transcript("at ten at ten at ten at ten at ten"),
            "at ten"
        );
        assert_eq!(
            clean_transcript("No, no, no."),
            "No, no, no.",
            "people repeat a little"
        );
        assert_eq!(clean_transcript("very very good"), "very very good");
        assert_eq!(
            clean_transcript("About 250,000,000,000,000,000,000,000,000"),
            "About 250"
        );
        assert_eq!(clean_transcript("$200,000,000,000."), "$200");
        assert_eq!(
            clean_transcript("About $200,000 a month."),
            "About $200,000 a month."
        );
        assert_eq!(
            clean_transcript("1,500,000,000 dollars"),
            "1,500,000,000 dollars"
        );
    }

    #[test]
    fn a_decode_that_repeats_itself_is_a_loop() {
        use super::loops;
        // " Sure" "." three times.
        assert!(loops(&[3, 9, 3, 9, 3, 9]));
        // "Tomorrow at ten works." three times.
        assert!(loops(&[1, 2, 3, 4, 9, 1, 2, 3, 4, 9, 1, 2, 3, 4, 9]));
        assert!(loops(&[5, 7, 7, 7]), "one token three times");
        assert!(!loops(&[3, 9, 3, 9]), "twice: a person may say it twice");
        // "I, I, I" then more: [I] [, I] [, I] is not three whole copies of one block.
        assert!(!loops(&[6, 8, 16, 8, 16]));
        assert!(
            !loops(&[1, 2, 3, 9, 1, 2, 3, 9, 1, 2, 3]),
            "not yet a whole copy"
        );
        assert!(!loops(&[5, 7, 7]), "a word said twice (\"bye bye\")");
        assert!(!loops(&[]) && !loops(&[4]));
    }

    #[test]
    fn the_prompt_heard_back_is_not_the_caller() {
        use super::echoes_prompt;
        let q = "Great. What day and time works best for a fifteen minute call?";
        assert!(echoes_prompt("what day and time works best", q));
        assert!(echoes_prompt("Works best for a fifteen minute call.", q));
        assert!(!echoes_prompt("Tomorrow at ten works.", q), "an answer");
        assert!(!echoes_prompt("a fifteen minute", q), "too short to tell");
        assert!(
            !echoes_prompt("what day works best for you", q),
            "not in order"
        );
    }

    #[test]
    fn blank_and_noise_markers_are_removed() {
        assert_eq!(clean_transcript(" [BLANK_AUDIO]"), "");
        assert_eq!(clean_transcript("(music) "), "");
        assert_eq!(clean_transcript(" *laughs* Hello there."), "Hello there.");
        assert_eq!(
            clean_transcript(" Yes,  I am [inaudible] here"),
            "Yes, I am here"
        );
        assert_eq!(clean_transcript(" ."), "");
        assert_eq!(clean_transcript(">> Tomorrow at 10."), "Tomorrow at 10.");
    }

    #[test]
    fn decoder_loops_collapse_but_speech_stays() {
        use super::collapse_repeats;
        assert_eq!(
            collapse_repeats("Stop calling me. Stop calling me. Stop calling me. Stop calling m"),
            "Stop calling me."
        );
        assert_eq!(collapse_repeats("No. No. I said no."), "No. No. I said no.");
        assert_eq!(
            collapse_repeats("Around 90 dollars. Around 90 dollars."),
            "Around 90 dollars.",
            "the whole answer twice is said once"
        );
        assert_eq!(
            collapse_repeats("Not now. Call me later. Not now. Call me later."),
            "Not now. Call me later."
        );
        assert_eq!(collapse_repeats("No. No."), "No.");
        assert_eq!(collapse_repeats("No. No. No. Never."), "No. Never.");
        assert_eq!(collapse_repeats("Yes, go ahead."), "Yes, go ahead.");
        assert_eq!(
            collapse_repeats(
                "Tomorrow at 3 p. m. Tomorrow at 3 p. m. Tomorrow at 3 p. m. Tomorrow at 3"
            ),
            "Tomorrow at 3 p. m.",
            "a lone letter's full stop is an abbreviation"
        );
        assert_eq!(
            collapse_repeats("Okay. Hello? hello? Hello! Fine"),
            "Okay. Hello? Fine"
        );
    }
}
