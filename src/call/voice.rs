//! The agent's voice: TTS with a cache for the lines a script says again and again.
//!
//! A script's fixed lines (the opening and disclosure, each node's question, the FAQ answers,
//! the goodbyes) are the same on every call, so they are synthesised once, when the script
//! loads ([`Voice::warm`]), and every later use costs nothing; lines rendered with a call's
//! variables are cached after their first use. Generated lines never enter the cache (they are
//! one-offs that would push the fixed lines out). The cache holds the TTS output (voice rate,
//! f32): resampling to 8 kHz stays in the call's own stateful resampler, so clause boundaries
//! stay click-free. Bounded by total samples, least recently used out first.
//!
//! Each utterance's first clause loses its leading silence: the caller hears the agent as soon
//! as its first frame arrives, and the server's latency figures match what the caller hears.
//!
//! A fixed line is rendered once and then played to every caller until the process ends, and
//! Piper samples each rendering: some are heard worse than others. Whisper tiny on the phone
//! line heard "Sure, take your time." as "You're taking your time." in 3 renderings of 16, and
//! one run's cached bill question lost "Roughly" for every caller. With a proofing ear
//! ([`Voice::with_proof`]) warming caches each fixed line's first rendering at once, then,
//! only while no call is up ([`Voice::on_call`]), carries each through the phone line (8 kHz
//! mu-law) to the ear and renders it again where words were missed, up to `takes` in all,
//! keeping the first heard word for word, else the one heard best: the disclosure every
//! caller gets is one that is heard.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::{EngineError, SpeechAudio, SpeechToText, TextToSpeech};
use crate::script::classify::normalize;

/// About 90 MB of f32 audio: every fixed line of a few dozen scripts.
const MAX_SAMPLES: usize = 24_000_000;
/// Silence kept before the first sound, so the onset is not clipped.
const ONSET_KEEP_MS: u32 = 30;
/// Samples quieter than this (about -46 dBFS) count as silence.
const SILENCE: f32 = 0.005;

struct Entry {
    audio: Arc<SpeechAudio>,
    used: u64,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    samples: usize,
    clock: u64,
}

/// Shared by every call; cheap to clone.
#[derive(Clone)]
pub struct Voice {
    tts: Arc<dyn TextToSpeech>,
    cache: Arc<Mutex<Cache>>,
    /// When a call last asked for speech: warming waits until calls have been quiet a while.
    last_live: Arc<Mutex<Option<std::time::Instant>>>,
    /// The ear that picks each fixed line's rendering, and how many it may try.
    proof: Option<(Arc<dyn SpeechToText>, usize)>,
    /// Calls up now ([`Voice::on_call`]): proofing waits until there are none.
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

/// Held by a call while it is up (see [`Voice::on_call`]).
pub struct OnCall(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for OnCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Warming synthesises a clause only after calls asked for none this long: the voice is one
/// worker, and a call's clause must not queue behind the warm-up.
const WARM_AFTER_QUIET: Duration = Duration::from_millis(1500);

/// Whether a clause's audio may be kept for the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Fixed,
    Generated,
}

impl Voice {
    pub fn new(tts: Arc<dyn TextToSpeech>) -> Self {
        Self {
            tts,
            cache: Arc::default(),
            last_live: Arc::default(),
            proof: None,
            calls: Arc::default(),
        }
    }

    /// A call is up until the guard drops: the ear and the voice are its, proofing waits.
    pub fn on_call(&self) -> OnCall {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        OnCall(self.calls.clone())
    }

    /// Warming tries up to `takes` renderings of each fixed line and keeps the first `ear`
    /// hears word for word on the phone line, else the one it hears best (`takes` 1: off).
    pub fn with_proof(mut self, ear: Arc<dyn SpeechToText>, takes: usize) -> Self {
        self.proof = (takes > 1).then_some((ear, takes));
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, clause: &str) -> Option<Arc<SpeechAudio>> {
        let mut c = self.lock();
        c.clock += 1;
        let clock = c.clock;
        let e = c.entries.get_mut(clause)?;
        e.used = clock;
        Some(e.audio.clone())
    }

    fn keep(&self, clause: &str, audio: Arc<SpeechAudio>) {
        let mut c = self.lock();
        let size = audio.samples.len();
        if size > MAX_SAMPLES / 4 {
            return;
        }
        while c.samples + size > MAX_SAMPLES {
            let Some(oldest) = c
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = c.entries.remove(&oldest) {
                c.samples -= e.audio.samples.len();
            }
        }
        c.clock += 1;
        let used = c.clock;
        if let Some(old) = c.entries.insert(clause.to_string(), Entry { audio, used }) {
            c.samples -= old.audio.samples.len();
        }
        c.samples += size;
    }

    /// One clause's audio: from the cache, or synthesised (and kept if `line` is fixed).
    /// `first`: the utterance's first clause, whose leading silence is cut.
    pub async fn clause(
        &self,
        clause: &str,
        line: Line,
        first: bool,
        cancel: &CancellationToken,
    ) -> Result<SpeechAudio, EngineError> {
        let audio = match self.cached(clause) {
            Some(a) => SpeechAudio {
                samples: a.samples.clone(),
                sample_rate: a.sample_rate,
                elapsed: Duration::ZERO,
            },
            None => {
                *self.last_live.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(std::time::Instant::now());
                let audio = self
                    .tts
                    .synthesize(clause.to_string(), cancel.clone())
                    .await?;
                if line == Line::Fixed {
                    self.keep(clause, Arc::new(audio.clone()));
                }
                audio
            }
        };
        Ok(if first { trim_onset(audio) } else { audio })
    }

    /// Synthesises lines ahead of the calls that will say them (in the background: a warm-up
    /// failure only means a slower first call). Returns how many clauses were new. Every line's
    /// first rendering is cached at once; with a proofing ear they are then heard one by one,
    /// and re-rendered where the ear missed words, only while no call is up.
    pub async fn warm(&self, clauses: Vec<String>) -> usize {
        let mut new = Vec::new();
        for clause in clauses {
            if self.cached(&clause).is_some() {
                continue;
            }
            self.quiet().await;
            match self
                .tts
                .synthesize(clause.clone(), CancellationToken::new())
                .await
            {
                Ok(audio) => {
                    self.keep(&clause, Arc::new(audio));
                    new.push(clause);
                }
                Err(e) => tracing::warn!(error = %e, "warming the speech cache failed"),
            }
        }
        if let Some((ear, takes)) = &self.proof {
            for clause in &new {
                self.proofread(ear.as_ref(), *takes, clause).await;
            }
        }
        new.len()
    }

    /// Waits until calls have asked for no speech for [`WARM_AFTER_QUIET`].
    async fn quiet(&self) {
        loop {
            let last = *self.last_live.lock().unwrap_or_else(|p| p.into_inner());
            match last.map(|t| t.elapsed()) {
                Some(quiet) if quiet < WARM_AFTER_QUIET => {
                    tokio::time::sleep(WARM_AFTER_QUIET - quiet).await
                }
                _ => return,
            }
        }
    }

    /// Waits until no call is up (and the voice is quiet): proofing is the ear's and the
    /// voice's spare time, never a caller's turn.
    async fn idle(&self) {
        loop {
            self.quiet().await;
            if self.calls.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(WARM_AFTER_QUIET).await;
        }
    }

    /// Hears the cached rendering of a fixed line on the phone line; where words are missed,
    /// renders it again (up to `takes` in all) and keeps the first heard word for word, else
    /// the one with the fewest missed. A failing ear or voice leaves the best so far: it was
    /// only a check.
    async fn proofread(&self, ear: &dyn SpeechToText, takes: usize, clause: &str) {
        let Some(first) = self.cached(clause) else {
            return;
        };
        let mut best = first.clone();
        let mut fewest = usize::MAX;
        for n in 1..=takes {
            self.idle().await;
            let audio = if n == 1 {
                best.clone()
            } else {
                match self
                    .tts
                    .synthesize(clause.to_string(), CancellationToken::new())
                    .await
                {
                    Ok(audio) => Arc::new(audio),
                    Err(e) => {
                        tracing::warn!(error = %e, "proofing a fixed line failed");
                        break;
                    }
                }
            };
            self.idle().await;
            let missed = match on_the_line(ear, &audio).await {
                Ok(heard) => missed_words(clause, &heard),
                Err(e) => {
                    tracing::warn!(error = %e, "proofing a fixed line failed");
                    break;
                }
            };
            tracing::debug!(%clause, take = n, missed, "fixed line proofed");
            if missed < fewest {
                (fewest, best) = (missed, audio);
            }
            if missed == 0 {
                break;
            }
        }
        if !Arc::ptr_eq(&best, &first) {
            self.keep(clause, best);
        }
    }

    pub fn sample_rate(&self) -> u32 {
        self.tts.sample_rate()
    }

    /// Clauses cached now (for `/metrics` and tests).
    pub fn cached_clauses(&self) -> usize {
        self.lock().entries.len()
    }
}

/// What the ear hears of a rendering on the phone line: 8 kHz, mu-law, back to Whisper's rate.
async fn on_the_line(ear: &dyn SpeechToText, audio: &SpeechAudio) -> Result<String, EngineError> {
    use crate::audio::{i16_to_f32, mulaw, resample, to_phone_pcm, STT_RATE, TWILIO_RATE};
    let failed = |e: crate::audio::AudioError| EngineError::Inference {
        engine: "voice",
        reason: e.to_string(),
    };
    let phone = mulaw::decode(&mulaw::encode(
        &to_phone_pcm(&audio.samples, audio.sample_rate).map_err(failed)?,
    ));
    let wide =
        resample::resample_all(&i16_to_f32(&phone), TWILIO_RATE, STT_RATE).map_err(failed)?;
    Ok(ear.transcribe(wide).await?.text)
}

/// Words of `said` the ear did not hear (normalised as the rules read callers: case and
/// punctuation aside; a word heard once counts once).
fn missed_words(said: &str, heard: &str) -> usize {
    let heard = normalize(heard);
    let mut heard: Vec<&str> = heard.split_whitespace().collect();
    normalize(said)
        .split_whitespace()
        .filter(|w| match heard.iter().position(|h| h == w) {
            Some(i) => {
                heard.swap_remove(i);
                false
            }
            None => true,
        })
        .count()
}

/// Drops leading silence, keeping a few milliseconds before the first sound.
fn trim_onset(mut audio: SpeechAudio) -> SpeechAudio {
    let keep = (audio.sample_rate * ONSET_KEEP_MS / 1000) as usize;
    if let Some(first) = audio.samples.iter().position(|s| s.abs() > SILENCE) {
        let cut = first.saturating_sub(keep);
        audio.samples.drain(..cut);
    }
    audio
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Transcript;
    use futures::future::BoxFuture;
    use futures::FutureExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// 100 ms of silence, then 200 ms of tone; counts its calls.
    struct Counting(AtomicUsize);

    impl TextToSpeech for Counting {
        fn synthesize(
            &self,
            _clause: String,
            _cancel: CancellationToken,
        ) -> BoxFuture<'static, Result<SpeechAudio, EngineError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let mut samples = vec![0.0; 1000];
            samples.extend((0..2000).map(|i| (i as f32 * 0.1).cos() * 0.5));
            async move {
                Ok(SpeechAudio {
                    samples,
                    sample_rate: 10_000,
                    elapsed: Duration::from_millis(50),
                })
            }
            .boxed()
        }
        fn sample_rate(&self) -> u32 {
            10_000
        }
    }

    #[tokio::test]
    async fn fixed_lines_are_synthesised_once_and_first_clauses_start_at_once() {
        let tts = Arc::new(Counting(AtomicUsize::new(0)));
        let voice = Voice::new(tts.clone());
        let none = CancellationToken::new();
        assert_eq!(voice.warm(vec!["Hello.".into(), "Hello.".into()]).await, 1);
        let a = voice
            .clause("Hello.", Line::Fixed, true, &none)
            .await
            .unwrap();
        assert_eq!(tts.0.load(Ordering::SeqCst), 1, "served from the cache");
        assert_eq!(a.elapsed, Duration::ZERO);
        // 30 ms (300 samples) of the 100 ms of leading silence are kept.
        assert_eq!(a.samples.len(), 3000 - 700);
        let b = voice
            .clause("Hello.", Line::Fixed, false, &none)
            .await
            .unwrap();
        assert_eq!(b.samples.len(), 3000, "later clauses keep their pauses");
        voice
            .clause("A one-off.", Line::Generated, false, &none)
            .await
            .unwrap();
        voice
            .clause("A one-off.", Line::Generated, false, &none)
            .await
            .unwrap();
        assert_eq!(
            tts.0.load(Ordering::SeqCst),
            3,
            "generated lines are not kept"
        );
        assert_eq!(voice.cached_clauses(), 1);
    }

    /// Each rendering one sample longer than the last, so a test can tell which was kept.
    struct Takes(AtomicUsize);

    impl TextToSpeech for Takes {
        fn synthesize(
            &self,
            _clause: String,
            _cancel: CancellationToken,
        ) -> BoxFuture<'static, Result<SpeechAudio, EngineError>> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            let samples = (0..8000 + n)
                .map(|i| (i as f32 * 0.1).cos() * 0.5)
                .collect();
            async move {
                Ok(SpeechAudio {
                    samples,
                    sample_rate: 16_000,
                    elapsed: Duration::ZERO,
                })
            }
            .boxed()
        }
        fn sample_rate(&self) -> u32 {
            16_000
        }
    }

    /// Hears the given lines in turn; an error once they run out.
    struct Ear(Mutex<Vec<&'static str>>);

    impl SpeechToText for Ear {
        fn transcribe(
            &self,
            _audio: Vec<f32>,
        ) -> BoxFuture<'static, Result<Transcript, EngineError>> {
            let mut lines = self.0.lock().unwrap();
            let heard = (!lines.is_empty()).then(|| lines.remove(0));
            async move {
                match heard {
                    Some(text) => Ok(Transcript {
                        text: text.to_string(),
                        elapsed: Duration::ZERO,
                        confidence: 1.0,
                    }),
                    None => Err(EngineError::Inference {
                        engine: "ear",
                        reason: "deaf".into(),
                    }),
                }
            }
            .boxed()
        }
    }

    /// Warms "Sure, take your time." with an ear that hears `heard` in turn; returns the
    /// renderings made and which one (1-based) was kept.
    async fn proofed(heard: Vec<&'static str>, takes: usize) -> (usize, usize) {
        let tts = Arc::new(Takes(AtomicUsize::new(0)));
        let voice = Voice::new(tts.clone()).with_proof(Arc::new(Ear(Mutex::new(heard))), takes);
        voice.warm(vec!["Sure, take your time.".into()]).await;
        let kept = voice
            .clause(
                "Sure, take your time.",
                Line::Fixed,
                false,
                &CancellationToken::new(),
            )
            .await
            .unwrap();
        (tts.0.load(Ordering::SeqCst), kept.samples.len() - 8000 + 1)
    }

    #[tokio::test]
    async fn a_fixed_line_is_kept_in_the_first_rendering_the_ear_hears_else_the_best_heard() {
        // Heard word for word on the second take: no third.
        let right = vec!["You're taking your time.", "Sure. Take your time!", "x"];
        assert_eq!(proofed(right, 3).await, (2, 2));
        // Never heard whole: the take with the fewest words missed.
        let never = vec!["Take it.", "Sure, take time.", "Your time."];
        assert_eq!(proofed(never, 3).await, (3, 2));
        // An ear that fails leaves the best rendering heard so far.
        assert_eq!(proofed(vec![], 3).await, (1, 1));
        assert_eq!(proofed(vec!["Take it."], 3).await, (2, 1));
        // One take: no proofing.
        assert_eq!(proofed(vec!["Take it."], 1).await, (1, 1));
    }

    #[tokio::test]
    async fn proofing_waits_until_no_call_is_up() {
        let tts = Arc::new(Takes(AtomicUsize::new(0)));
        let ear = Arc::new(Ear(Mutex::new(vec!["Take it.", "Sure, take your time."])));
        let voice = Voice::new(tts.clone()).with_proof(ear.clone(), 3);
        let call = voice.on_call();
        let warming = tokio::spawn({
            let voice = voice.clone();
            async move { voice.warm(vec!["Sure, take your time.".into()]).await }
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            tts.0.load(Ordering::SeqCst),
            1,
            "the first rendering at once"
        );
        assert_eq!(voice.cached_clauses(), 1);
        assert_eq!(
            ear.0.lock().unwrap().len(),
            2,
            "no proofing during the call"
        );
        drop(call);
        assert_eq!(warming.await.unwrap(), 1);
        assert_eq!(
            tts.0.load(Ordering::SeqCst),
            2,
            "proofed once the call ended"
        );
        assert!(ear.0.lock().unwrap().is_empty());
    }

    #[test]
    fn missed_words_are_the_said_words_not_heard() {
        assert_eq!(
            missed_words("Sure, take your time.", "sure take your time"),
            0
        );
        assert_eq!(
            missed_words("Sure, take your time.", "You're taking your time."),
            2
        );
        assert_eq!(missed_words("No, no.", "No."), 1);
        assert_eq!(missed_words("press 9", "press 9 9"), 0);
        assert_eq!(
            missed_words("a no-obligation call", "a no obligation call"),
            0
        );
    }
}
