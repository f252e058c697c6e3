//! A call's recording while it runs, and its WAV once it ends.
//!
//! Both sides feed one [`StereoRecorder`] through a shared handle: the inbound loop writes the
//! caller's frames where Twilio's `timestamp` puts them, the pacer writes each agent frame where
//! its play clock puts it (when the caller hears it, not when it was generated) and silences
//! what a `clear` dropped at Twilio. So the right channel is what the caller heard, at the time
//! they heard it. The WAV is written once, when the session ends, off the async runtime, to a
//! temporary name then renamed: a reader never sees half a file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::audio::stereo::{Side, StereoRecorder};
use crate::audio::{mulaw, wav, TWILIO_RATE};

/// The longest recording: the longest call a campaign may allow (`time_limit_s` <= 4 h).
pub const MAX_RECORDING: Duration = Duration::from_secs(4 * 3600);

/// How far ahead of our clock Twilio's `timestamp` may run (its clock started a moment before
/// ours). Beyond it a timestamp is not believed: a bogus one could make the recording reserve
/// hours of silence.
const CALLER_LEAD: Duration = Duration::from_secs(1);

/// Where a call's recording is kept: `<dir>/<call_sid>.wav`.
pub fn recording_file(dir: &Path, call_sid: &str) -> PathBuf {
    dir.join(format!("{call_sid}.wav"))
}

/// The recorder of one call, shared by the inbound loop and the pacer. Its lock is held only
/// to copy a frame in, never across an await.
#[derive(Clone)]
pub struct Recording {
    recorder: Arc<Mutex<StereoRecorder>>,
    /// When the stream started: sample 0.
    origin: Instant,
}

impl Recording {
    pub fn new(origin: Instant) -> Self {
        Self {
            recorder: Arc::new(Mutex::new(StereoRecorder::for_seconds(
                MAX_RECORDING.as_secs() as u32,
            ))),
            origin,
        }
    }

    /// Caller audio from a `media` message stamped `timestamp_ms` after the stream started.
    pub fn caller(&self, timestamp_ms: u64, pcm: &[i16]) {
        let latest = (self.origin.elapsed() + CALLER_LEAD).as_millis() as u64;
        let at = timestamp_ms.min(latest) as usize * (TWILIO_RATE as usize / 1000);
        self.lock().write(Side::Caller, at, pcm);
    }

    /// An agent frame (mu-law, as sent) that plays at `play_at`.
    pub fn agent(&self, play_at: Instant, payload: &[u8]) {
        let at = self.sample_at(play_at);
        self.lock().write(Side::Agent, at, &mulaw::decode(payload));
    }

    /// Agent audio from `at` on never played: Twilio dropped it (`clear`), or the call ended.
    pub fn unplayed_from(&self, at: Instant) {
        let at = self.sample_at(at);
        self.lock().silence_from(Side::Agent, at);
    }

    /// Writes the recording to `path` (atomically) and empties this handle. Blocking file I/O
    /// runs on tokio's blocking pool. Nothing recorded: no file, `Ok(false)`.
    pub async fn save(&self, path: PathBuf) -> std::io::Result<bool> {
        let recorder = std::mem::take(&mut *self.lock());
        if recorder.is_empty() {
            return Ok(false);
        }
        if recorder.dropped() > 0 {
            tracing::warn!(
                dropped_samples = recorder.dropped(),
                "recording cut at its limit"
            );
        }
        tokio::task::spawn_blocking(move || write_wav(&path, &recorder))
            .await
            .map_err(std::io::Error::other)??;
        Ok(true)
    }

    /// Samples from the stream's start to `at`, exact for the pacer's 20 ms grid: a frame
    /// `k` frames after another lands exactly `160 k` samples after it.
    fn sample_at(&self, at: Instant) -> usize {
        let ns = at.saturating_duration_since(self.origin).as_nanos();
        (ns * TWILIO_RATE as u128 / 1_000_000_000) as usize
    }

    fn lock(&self) -> MutexGuard<'_, StereoRecorder> {
        self.recorder.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Header, samples, fsync, then rename over the final name; the temporary file is removed if
/// anything fails.
fn write_wav(path: &Path, recorder: &StereoRecorder) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("wav.part");
    let written = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        out.write_all(&wav::header(2, TWILIO_RATE, recorder.len() * 2))?;
        let mut bytes = Vec::new();
        for piece in recorder.interleaved() {
            bytes.clear();
            bytes.extend(piece.iter().flat_map(|s| s.to_le_bytes()));
            out.write_all(&bytes)?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_wav_is_stereo_8k_with_each_side_where_it_played() {
        let origin = Instant::now() - Duration::from_secs(5);
        let rec = Recording::new(origin);
        rec.caller(40, &[1000; 160]);
        // Two agent frames back to back, 100 ms in: mu-law round-trips 0 exactly.
        let frame = mulaw::encode(&[2000; 160]);
        rec.agent(origin + Duration::from_millis(100), &frame);
        rec.agent(origin + Duration::from_millis(120), &frame);
        // A bogus timestamp far ahead is held to our clock (5 s + the lead), not believed.
        rec.caller(3_600_000, &[7; 160]);
        let dir = std::env::temp_dir().join(format!("rec-{}", uuid::Uuid::new_v4()));
        let path = recording_file(&dir, "CA1");
        assert!(rec.save(path.clone()).await.unwrap());
        assert!(!dir.join("CA1.wav.part").exists());
        let mut r = hound::WavReader::open(&path).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        let all: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        let left: Vec<i16> = all.iter().step_by(2).copied().collect();
        let right: Vec<i16> = all.iter().skip(1).step_by(2).copied().collect();
        assert!(left[320..480].iter().all(|s| *s == 1000));
        assert!(left[..320].iter().all(|s| *s == 0));
        let decoded = mulaw::decode(&frame)[0];
        assert!(right[800..1120].iter().all(|s| *s == decoded));
        assert!(right[..800].iter().chain(&right[1120..]).all(|s| *s == 0));
        let held = left.iter().position(|s| *s == 7).unwrap();
        assert!((6000 * 8..6100 * 8).contains(&held), "{held}");
        // Saved once: the handle is empty now.
        assert!(!rec.save(dir.join("again.wav")).await.unwrap());
        assert!(!dir.join("again.wav").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_clear_silences_what_was_sent_but_not_played() {
        let origin = Instant::now();
        let rec = Recording::new(origin);
        let frame = mulaw::encode(&[3000; 160]);
        for k in 0..5u32 {
            rec.agent(origin + Duration::from_millis(20) * k, &frame);
        }
        rec.unplayed_from(origin + Duration::from_millis(50));
        let right = rec.lock().channel(Side::Agent);
        assert!(right[..400].iter().all(|s| *s != 0));
        assert!(right[400..].iter().all(|s| *s == 0));
    }
}
