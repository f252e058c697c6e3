//! Transfers in flight: once the agent hands a call to a person, our media stream is gone and
//! Twilio asks us (signed webhooks) for the whisper the advisor hears and for what the caller
//! hears if nobody answers; both are our TTS's audio, fetched by `<Play>`. A handoff is found by
//! an unguessable token in those URLs and forgotten after [`KEEP`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a handoff's URLs answer: longer than any ring timeout plus the whisper.
pub const KEEP: Duration = Duration::from_secs(15 * 60);

/// One transfer: the call it belongs to and its audio (WAV).
#[derive(Debug, Clone)]
pub struct Handoff {
    pub call_sid: String,
    /// Warm transfers: the advisor's one-line summary.
    pub whisper: Option<Arc<Vec<u8>>>,
    /// The caller's line when nobody answers, as text (the transcript) and audio.
    pub no_answer_line: String,
    pub no_answer: Arc<Vec<u8>>,
    created: Instant,
}

/// The open handoffs, by token; shared by the agents and the webhooks.
#[derive(Clone, Default)]
pub struct Handoffs {
    inner: Arc<Mutex<HashMap<String, Handoff>>>,
}

impl Handoffs {
    /// Keeps a handoff and returns its token (122 random bits, URL-safe).
    pub fn open(
        &self,
        call_sid: &str,
        whisper: Option<Vec<u8>>,
        no_answer_line: &str,
        no_answer: Vec<u8>,
    ) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut map = self.lock();
        map.retain(|_, h| h.created.elapsed() < KEEP);
        map.insert(
            token.clone(),
            Handoff {
                call_sid: call_sid.to_string(),
                whisper: whisper.map(Arc::new),
                no_answer_line: no_answer_line.to_string(),
                no_answer: Arc::new(no_answer),
                created: Instant::now(),
            },
        );
        token
    }

    /// The handoff of `token`, unless unknown or expired.
    pub fn get(&self, token: &str) -> Option<Handoff> {
        self.lock()
            .get(token)
            .filter(|h| h.created.elapsed() < KEEP)
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handoff>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_find_their_handoff_only() {
        let h = Handoffs::default();
        let a = h.open("CA1", Some(vec![1]), "sorry", vec![2]);
        let b = h.open("CA2", None, "sorry", vec![3]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(h.get(&a).unwrap().call_sid, "CA1");
        assert!(h.get(&b).unwrap().whisper.is_none());
        assert!(h.get("nope").is_none());
    }
}
