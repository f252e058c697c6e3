//! What a simulated caller sounds like: a voice of their own, mumbling, a noisy line.
//!
//! Callers speak with espeak-ng, not with the agent's Piper voice: a test that judges a call by
//! transcribing it must be able to tell the two apart, and a product tuned on its own voice
//! would learn nothing about people. Voices and speeds vary per caller (`en-us+m3` at 190 words
//! a minute is a fast talker). Piper ([`Voice::Tts`]) stays as the fallback where espeak-ng is
//! not installed. Everything comes out as the phone line carries it: 8 kHz i16.

use std::time::Duration;

/// Words per minute when a persona names a voice but no speed.
pub const DEFAULT_WPM: u32 = 150;

/// Who speaks a caller's lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Voice {
    /// The emulator's configured TTS (Piper in the product).
    Tts,
    /// espeak-ng with this voice (`en-us`, `en-us+m3`, `en-gb+f2`) and speed.
    Espeak { name: String, wpm: u32 },
}

impl Voice {
    /// `piper` (or `tts`) is the configured TTS; anything else an espeak-ng voice.
    pub fn named(name: &str, wpm: Option<u32>) -> Self {
        match name.trim() {
            "piper" | "tts" => Self::Tts,
            v => Self::Espeak {
                name: v.to_string(),
                wpm: wpm.unwrap_or(DEFAULT_WPM),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("espeak-ng is not installed (apt-get install espeak-ng)")]
    NotInstalled,
    #[error("espeak-ng failed on {text:?}: {reason}")]
    Failed { text: String, reason: String },
}

/// Speaks `text` with espeak-ng at 8 kHz. Blocking (runs a process and reads a file).
pub fn espeak(text: &str, name: &str, wpm: u32) -> Result<Vec<i16>, VoiceError> {
    use std::io::Write;
    let failed = |reason: String| VoiceError::Failed {
        text: text.to_string(),
        reason,
    };
    let wav = std::env::temp_dir().join(format!("caller-{}.wav", uuid::Uuid::new_v4().simple()));
    // The text goes in on stdin: a line starting with "-" must not read as an option.
    let child = std::process::Command::new("espeak-ng")
        .args(["-v", name, "-s", &wpm.to_string(), "--stdin", "-w"])
        .arg(&wav)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(VoiceError::NotInstalled),
        Err(e) => return Err(failed(e.to_string())),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    let read = || -> Result<Vec<i16>, String> {
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        let mut reader = hound::WavReader::open(&wav).map_err(|e| e.to_string())?;
        let rate = reader.spec().sample_rate;
        let samples: Vec<f32> = reader
            .samples::<i16>()
            .map(|s| s.map(|s| s as f32 / 32768.0))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        crate::audio::to_phone_pcm(&samples, rate).map_err(|e| e.to_string())
    };
    let pcm = read();
    let _ = std::fs::remove_file(&wav);
    pcm.map_err(failed)
}

/// A small deterministic generator (xorshift64*): the same call sounds the same every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    /// Uniform in [-1, 1).
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (x as f32 / (1u64 << 23) as f32) - 1.0
    }
}

fn amplitude(dbfs: f32) -> f32 {
    10f32.powf(dbfs / 20.0) * 32767.0
}

/// Quiet unintelligible speech: voiced babble (a wandering pitch, vowel-like harmonics that
/// change every syllable, a syllable-rate envelope) at about -32 dBFS. A VAD may call it
/// speech; no recogniser should find words in it.
pub fn mumble(length: Duration) -> Vec<i16> {
    let n = (length.as_millis() * 8) as usize;
    let mut rng = Rng::new(0x6d75_6d62_6c65);
    let syllable = 8 * 170;
    let mut weights = [0f32; 12];
    let mut pitch = 130.0f32;
    let mut phase = 0f32;
    let peak = amplitude(-26.0);
    (0..n)
        .map(|i| {
            if i % syllable == 0 {
                for w in weights.iter_mut() {
                    *w = 0.3 + 0.7 * rng.next().abs();
                }
                pitch = (pitch + 25.0 * rng.next()).clamp(100.0, 190.0);
            }
            let k = (i % syllable) as f32 / syllable as f32;
            let env = (std::f32::consts::PI * k).sin().powi(2);
            phase += 2.0 * std::f32::consts::PI * pitch / 8000.0;
            let voiced: f32 = weights
                .iter()
                .enumerate()
                .map(|(h, w)| w * ((h + 1) as f32 * phase).sin() / (h + 1) as f32)
                .sum();
            (voiced * env * peak * 0.6) as i16
        })
        .collect()
}

/// Continuous line noise (hiss) mixed under everything a caller sends.
pub struct LineNoise {
    rng: Rng,
    /// Peak of the uniform noise for the wanted RMS (uniform RMS = peak / sqrt 3).
    peak: f32,
}

impl LineNoise {
    pub fn new(dbfs: f32) -> Self {
        Self {
            rng: Rng::new(0x006e_6f69_7365),
            peak: amplitude(dbfs) * 3f32.sqrt(),
        }
    }

    pub fn mix_into(&mut self, frame: &mut [i16]) {
        for s in frame.iter_mut() {
            let n = (self.rng.next() * self.peak) as i32;
            *s = (*s as i32 + n).clamp(i16::MIN as i32, i16::MAX as i32) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::vad::frame_dbfs;

    #[test]
    fn noise_sits_at_its_level_and_mumble_is_quiet_but_voiced() {
        let mut noise = LineNoise::new(-40.0);
        let mut frame = vec![0i16; 8000];
        noise.mix_into(&mut frame);
        let db = frame_dbfs(&frame);
        assert!((db + 40.0).abs() < 1.0, "{db}");

        let m = mumble(Duration::from_secs(2));
        assert_eq!(m.len(), 16_000);
        let db = frame_dbfs(&m);
        assert!((-40.0..-26.0).contains(&db), "{db}");
        // Syllables: loud middles, near-silent edges.
        assert!(frame_dbfs(&m[600..760]) > frame_dbfs(&m[0..80]) + 20.0);
        assert_eq!(m, mumble(Duration::from_secs(2)), "deterministic");
    }

    #[test]
    fn voices_by_name() {
        assert_eq!(Voice::named("piper", None), Voice::Tts);
        assert_eq!(
            Voice::named("en-us+m3", Some(190)),
            Voice::Espeak {
                name: "en-us+m3".into(),
                wpm: 190
            }
        );
        assert_eq!(
            Voice::named("en-gb", None),
            Voice::Espeak {
                name: "en-gb".into(),
                wpm: DEFAULT_WPM
            }
        );
    }

    #[test]
    fn espeak_speaks_at_phone_rate_when_installed() {
        match espeak("Hello there, this is a test.", "en-us", 150) {
            Err(VoiceError::NotInstalled) => eprintln!("espeak-ng not installed: skipped"),
            Err(e) => panic!("{e}"),
            Ok(pcm) => {
                let secs = pcm.len() as f32 / 8000.0;
                assert!((1.0..4.0).contains(&secs), "{secs} s");
                let slow = espeak("Hello there, this is a test.", "en-us", 100).unwrap();
                assert!(
                    slow.len() > pcm.len() * 5 / 4,
                    "a slower speaker takes longer"
                );
            }
        }
    }
}
