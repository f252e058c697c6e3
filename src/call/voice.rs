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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::{EngineError, SpeechAudio, TextToSpeech};

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
}

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
        }
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
    /// failure only means a slower first call). Returns how many clauses were new.
    pub async fn warm(&self, clauses: Vec<String>) -> usize {
        let mut new = 0;
        for clause in clauses {
            if self.cached(&clause).is_some() {
                continue;
            }
            match self
                .tts
                .synthesize(clause.clone(), CancellationToken::new())
                .await
            {
                Ok(audio) => {
                    self.keep(&clause, Arc::new(audio));
                    new += 1;
                }
                Err(e) => tracing::warn!(error = %e, "warming the speech cache failed"),
            }
        }
        new
    }

    pub fn sample_rate(&self) -> u32 {
        self.tts.sample_rate()
    }

    /// Clauses cached now (for `/metrics` and tests).
    pub fn cached_clauses(&self) -> usize {
        self.lock().entries.len()
    }
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
}
