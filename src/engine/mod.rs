//! The three model engines behind small traits, so conversation logic can be tested with fakes
//! while the product and the end-to-end tests use the real ones.
//!
//! Every real engine is an actor: its model is loaded once, it runs on named OS threads (never on
//! the async runtime, whose workers must stay free to pace 20 ms audio frames), and it is fed by a
//! channel of jobs that carry their own reply channel and cancel token. Blocking inference on a
//! tokio worker would stall every call's audio; `spawn_blocking` would re-create per-thread model
//! state; hence dedicated threads.
//!
//! - [`whisper`]: speech to text (whisper.cpp via whisper-rs), one state per worker thread.
//! - [`llama`]: streaming chat completion (llama.cpp via llama-cpp-2), KV cache kept per
//!   conversation, every live conversation decoded in one batch.
//! - [`piper`]: text to speech (Piper on ONNX Runtime), one clause per job.

pub mod llama;
pub mod piper;
pub mod pool;
pub mod whisper;

pub use pool::{EngineHealth, QueueLimits};

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::ChatMessage;

/// Errors from loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{role} model file not found at {path}: run `scripts/fetch_models.sh` (or `--profile test`) or set the path in the config")]
    ModelMissing { role: &'static str, path: PathBuf },
    #[error("failed to load the {engine} model: {reason}")]
    Load {
        engine: &'static str,
        reason: String,
    },
    #[error("{engine} inference failed: {reason}")]
    Inference {
        engine: &'static str,
        reason: String,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("the {0} engine has stopped")]
    Stopped(&'static str),
    /// The queue was full, or the job waited past its deadline (load shed).
    #[error("the {0} engine is overloaded")]
    Overloaded(&'static str),
    /// The worker running the job panicked (and was rebuilt).
    #[error("the {0} engine failed on this job; its worker was restarted")]
    Crashed(&'static str),
}

/// Checks a model file exists before a native loader gets it: the loaders' own errors
/// (or asserts) say little about what an operator should do.
pub fn require_file(role: &'static str, path: &Path) -> Result<(), EngineError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(EngineError::ModelMissing {
            role,
            path: path.to_path_buf(),
        })
    }
}

/// What the caller said, with how long recognition took.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub text: String,
    pub elapsed: Duration,
    /// How sure the recogniser was of `text`: the geometric mean of its words' token
    /// probabilities, 0-1 (1 where the engine does not say). Misheard lines score low
    /// ("Not interested." heard as "That's interested." at 0.35), see `[turn] min_confidence`.
    pub confidence: f32,
}

/// Speech to text: one whole utterance in (16 kHz mono f32), its text out.
/// What a call knows that helps recognise a caller's turn.
#[derive(Debug, Clone, Default)]
pub struct TurnHints {
    /// Once fired, the job is skipped if still queued and stopped if running
    /// ([`EngineError::Cancelled`]): a speculative transcript the caller made stale by speaking
    /// on must not delay the next one.
    pub cancel: CancellationToken,
    /// What the agent just said (its question): the words the answer likely uses.
    pub prompt: Option<String>,
    /// Answers the question expects ("About 150 dollars. Around 90."): they prime the
    /// recogniser's spelling of numbers and times. Unlike `prompt`, a transcript that repeats
    /// them is not taken for an echo: a caller may well say an example word for word.
    pub expect: Option<String>,
    /// Answers worth a second listen, as sentences ("Not interested.", "Who is this?"): when
    /// the free transcript's confidence is under `doubt_below`, one the audio explains as
    /// well, and better than the others, replaces it ([`whisper::pick`]). Answers that carry no
    /// value: choosing "About 150 dollars." would put a number in the caller's mouth.
    pub choices: Vec<String>,
    pub doubt_below: f32,
}

pub trait SpeechToText: Send + Sync {
    fn transcribe(
        &self,
        audio_16k: Vec<f32>,
    ) -> BoxFuture<'static, Result<Transcript, EngineError>>;
    /// A caller's turn: as [`SpeechToText::transcribe`], steered by what the call knows.
    fn transcribe_turn(
        &self,
        audio_16k: Vec<f32>,
        hints: TurnHints,
    ) -> BoxFuture<'static, Result<Transcript, EngineError>> {
        let _ = hints;
        self.transcribe(audio_16k)
    }
    /// Workers, queue and faults (for `/health` and `/metrics`).
    fn health(&self) -> EngineHealth {
        EngineHealth::inline()
    }
}

/// A request for one assistant reply.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// Keys the KV cache: turns of one conversation reuse the evaluated prefix.
    pub conversation_id: String,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    /// Optional GBNF grammar constraining the output (classification, JSON).
    pub grammar: Option<String>,
    /// Checked before every token: barge-in or hang-up stops generation at once.
    pub cancel: CancellationToken,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    EndOfTurn,
    MaxTokens,
    Cancelled,
}

/// Streamed output of [`LanguageModel::generate`].
#[derive(Debug)]
pub enum LlmEvent {
    /// A piece of text (one or more tokens, always valid UTF-8).
    Token(String),
    Done {
        /// Prompt tokens actually evaluated this turn (the rest came from the KV cache).
        prompt_evaluated: usize,
        prompt_cached: usize,
        generated: usize,
        stop: StopReason,
    },
    Error(EngineError),
}

/// Streaming chat completion.
pub trait LanguageModel: Send + Sync {
    fn generate(&self, request: GenerateRequest) -> mpsc::Receiver<LlmEvent>;
    /// Frees the conversation's KV cache slot (call ended); its cache may serve the next
    /// conversation's identical prompt prefix (the system prompt), nothing more.
    fn end_conversation(&self, conversation_id: &str);
    /// Workers, queue and faults (for `/health` and `/metrics`).
    fn health(&self) -> EngineHealth {
        EngineHealth::inline()
    }
}

/// Synthesised audio for one clause.
#[derive(Debug, Clone)]
pub struct SpeechAudio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    pub elapsed: Duration,
}

/// Text to speech, one clause per call so the first clause can play while the LLM goes on.
pub trait TextToSpeech: Send + Sync {
    fn synthesize(
        &self,
        clause: String,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<SpeechAudio, EngineError>>;
    fn sample_rate(&self) -> u32;
    /// Workers, queue and faults (for `/health` and `/metrics`).
    fn health(&self) -> EngineHealth {
        EngineHealth::inline()
    }
}

/// Runs one job's ggml work on a thread that ends with it, and returns its result.
///
/// ggml is built with OpenMP: it parallelises each graph with `omp parallel` and syncs its
/// threads at `omp barrier` a few hundred times per token. libgomp keeps a thread pool per
/// calling thread until that thread exits, and once the process holds more pool threads than
/// CPUs (Whisper's and the LLM's at 2 threads each on 2 cores) it stops spinning at barriers and
/// sleeps in the kernel instead, for every pool: the LLM then made ~250-370 context switches per
/// token instead of 1 and lost a sixth to a third of its speed. Whisper runs a job every few
/// seconds, so its pool ending with each job (one thread start, ~0.1 ms) leaves the LLM's
/// barriers alone.
pub(crate) fn on_short_lived_thread<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(work)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
