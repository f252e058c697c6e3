//! Piper text to speech on ONNX Runtime (piper-rs + ort, runtime-loaded `libonnxruntime.so`).
//!
//! ONNX Runtime is loaded from a shared library at run time (`ort` feature `load-dynamic`), so the
//! build downloads nothing and operators choose the runtime (CPU or CUDA build) by file.
//! piper-rs's own phonemizer drops punctuation, which flattens questions and removes pauses:
//! we phonemize each clause with espeak-ng ourselves and put its closing punctuation back before
//! handing phonemes to Piper.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use futures::future::BoxFuture;
use futures::FutureExt;
use piper_rs::{ModelConfig, Piper};
use tokio_util::sync::CancellationToken;

use super::pool::{Pool, QueueLimits, Worker};
use super::{require_file, EngineError, EngineHealth, SpeechAudio, TextToSpeech};

/// Settings for the TTS engine.
#[derive(Debug, Clone)]
pub struct PiperConfig {
    pub model_path: PathBuf,
    /// The voice's `.onnx.json`; defaults to the model path + `.json`.
    pub config_path: PathBuf,
    pub onnxruntime_path: PathBuf,
    /// Folder that contains `espeak-ng-data/`.
    pub espeak_data_dir: Option<PathBuf>,
    pub threads: usize,
    pub workers: usize,
    /// Speaking rate: Piper's length scale (1.0 = the voice's default, < 1 faster).
    pub length_scale: Option<f32>,
    pub queue: QueueLimits,
    /// Run the voice on ONNX Runtime's CUDA execution provider. It needs a CUDA build of
    /// `libonnxruntime.so` (the `onnxruntime-gpu` wheel's) with its provider libraries beside
    /// it and a GPU; without them the voice runs on the CPU, and the log says why.
    pub gpu: bool,
}

struct Job {
    clause: String,
    cancel: CancellationToken,
    reply: tokio::sync::oneshot::Sender<Result<SpeechAudio, EngineError>>,
}

/// Handle to the TTS worker threads.
#[derive(Clone)]
pub struct PiperEngine {
    pool: Pool<Job>,
    sample_rate: u32,
    provider: Arc<OnceLock<&'static str>>,
}

fn load_err(reason: impl ToString) -> EngineError {
    EngineError::Load {
        engine: "piper",
        reason: reason.to_string(),
    }
}

/// ONNX Runtime can be initialised once per process.
fn init_onnxruntime(path: &std::path::Path) -> Result<(), EngineError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        ort::init_from(path)
            .map(|builder| {
                builder.with_name("telemarketer").commit();
            })
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))
    })
    .clone()
    .map_err(load_err)
}

/// espeak-ng keeps global state: phonemization is serialised across TTS workers.
static ESPEAK: Mutex<()> = Mutex::new(());

impl PiperEngine {
    pub fn load(config: &PiperConfig) -> Result<Self, EngineError> {
        require_file("tts", &config.model_path)?;
        require_file("tts config", &config.config_path)?;
        require_file("onnxruntime", &config.onnxruntime_path)?;
        if let Some(dir) = &config.espeak_data_dir {
            if !dir.join("espeak-ng-data").is_dir() {
                return Err(load_err(format!(
                    "{} does not contain espeak-ng-data/ (install espeak-ng-data or set tts.espeak_data_dir)",
                    dir.display()
                )));
            }
            std::env::set_var("PIPER_ESPEAKNG_DATA_DIRECTORY", dir);
        }
        init_onnxruntime(&config.onnxruntime_path)?;
        let voice_json = std::fs::read_to_string(&config.config_path).map_err(load_err)?;
        let voice: ModelConfig = serde_json::from_str(&voice_json)
            .map_err(|e| load_err(format!("bad voice config: {e}")))?;
        let sample_rate = voice.audio.sample_rate;
        let length_scale = config.length_scale;
        let (model_path, threads) = (config.model_path.clone(), config.threads.max(1));
        let (gpu, provider) = (config.gpu, Arc::new(OnceLock::new()));
        let used = provider.clone();
        let pool = Pool::start(
            "tts",
            config.workers,
            config.queue,
            Worker {
                // A session per worker (ONNX Runtime sessions are not shared across threads here).
                init: move |_| {
                    let voice: ModelConfig = serde_json::from_str(&voice_json)
                        .map_err(|e| load_err(format!("bad voice config: {e}")))?;
                    let voice_name = voice.espeak.voice.clone();
                    let (session, name) = session(&model_path, threads, gpu)?;
                    let _ = used.set(name);
                    let mut piper = Piper::from_session(session, voice);
                    // Warm up: the first inference allocates; keep that off the first call.
                    synthesize_clause(&mut piper, &voice_name, "Hello.", length_scale)
                        .map_err(|e| load_err(format!("warm-up synthesis failed: {e}")))?;
                    Ok((piper, voice_name))
                },
                run: move |(piper, voice_name): &mut (Piper, String), job: Job| {
                    if job.cancel.is_cancelled() {
                        let _ = job.reply.send(Err(EngineError::Cancelled));
                        return;
                    }
                    let started = Instant::now();
                    let result = synthesize_clause(piper, voice_name, &job.clause, length_scale)
                        .map(|(samples, sample_rate)| SpeechAudio {
                            samples,
                            sample_rate,
                            elapsed: started.elapsed(),
                        });
                    let _ = job.reply.send(result);
                },
                refuse: |job: Job, e| {
                    let _ = job.reply.send(Err(e));
                },
            },
        )?;
        Ok(Self {
            pool,
            sample_rate,
            provider,
        })
    }

    /// Where the voice runs: "cuda" or "cpu".
    pub fn provider(&self) -> &'static str {
        self.provider.get().copied().unwrap_or("cpu")
    }

    /// Makes the next synthesis panic (fault drills and tests).
    pub fn panic_next_job(&self) {
        self.pool.panic_next_job();
    }
}

/// A session on the CUDA execution provider when asked for and available, else on the CPU.
fn session(
    model: &std::path::Path,
    threads: usize,
    gpu: bool,
) -> Result<(ort::session::Session, &'static str), EngineError> {
    let build = |cuda: bool| {
        let mut b = ort::session::Session::builder()?
            .with_intra_threads(threads)?
            .with_inter_threads(1)?;
        if cuda {
            use ort::ep::ExecutionProvider;
            ort::ep::CUDA::default()
                .register(&mut b)
                .map_err(|e| ort::Error::new(format!("cannot use the CUDA provider: {e}")))?;
        }
        b.commit_from_file(model)
    };
    if gpu {
        match build(true) {
            Ok(s) => return Ok((s, "cuda")),
            Err(e) => tracing::warn!(
                error = %e,
                "tts.gpu: ONNX Runtime cannot run the voice on CUDA (a CUDA build of \
                 libonnxruntime.so with its provider libraries, and a GPU, are needed); \
                 the voice runs on the CPU"
            ),
        }
    }
    Ok((build(false).map_err(load_err)?, "cpu"))
}

fn synthesize_clause(
    piper: &mut Piper,
    voice: &str,
    clause: &str,
    length_scale: Option<f32>,
) -> Result<(Vec<f32>, u32), EngineError> {
    let phonemes = phonemize(voice, clause)?;
    if phonemes.trim().is_empty() {
        return Ok((Vec::new(), 0));
    }
    piper
        .create(&phonemes, true, None, length_scale, None, None)
        .map_err(|e| EngineError::Inference {
            engine: "piper",
            reason: e.to_string(),
        })
}

/// espeak-ng phonemes for one clause, with its final punctuation kept (Piper voices have ids
/// for `.,?!;:` and use them for pauses and intonation).
fn phonemize(voice: &str, clause: &str) -> Result<String, EngineError> {
    let _guard = ESPEAK.lock().unwrap_or_else(|p| p.into_inner());
    let sentences =
        espeak_rs::text_to_phonemes(clause, voice, None).map_err(|e| EngineError::Inference {
            engine: "piper",
            reason: format!("phonemization: {e}"),
        })?;
    let mut phonemes = sentences.join(" ");
    let trimmed = phonemes.trim_end();
    let ends_with_punct = trimmed.ends_with(['.', ',', '?', '!', ';', ':']);
    if !ends_with_punct {
        if let Some(p) = clause
            .trim_end()
            .chars()
            .last()
            .filter(|c| ".,?!;:".contains(*c))
        {
            phonemes = format!("{trimmed}{p}");
        }
    }
    Ok(phonemes)
}

impl TextToSpeech for PiperEngine {
    fn synthesize(
        &self,
        clause: String,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<SpeechAudio, EngineError>> {
        let pool = self.pool.clone();
        async move {
            pool.ask(|reply| Job {
                clause,
                cancel,
                reply,
            })
            .await
        }
        .boxed()
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn health(&self) -> EngineHealth {
        self.pool.health()
    }
}
