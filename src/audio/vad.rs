//! Voice activity: a per-frame speech detector (WebRTC VAD) and the [`Endpointer`], the
//! hysteresis that turns noisy per-frame decisions into utterances.
//!
//! Speech starts only after `min_speech_ms` of speech (a click is not a turn); a turn ends after
//! `end_silence_ms` of silence; a short pause in between keeps one utterance. `pre_roll_ms` of
//! audio before the start is kept because VADs trigger a little late and Whisper needs the onset.
//! Time is counted in samples so the same input always gives the same events.

use super::{AudioError, FRAME_SAMPLES, TWILIO_RATE};

/// Classifies one frame of 8 kHz audio.
pub trait SpeechDetector: Send {
    fn is_speech(&mut self, frame: &[i16]) -> Result<bool, AudioError>;
}

/// WebRTC's GMM voice activity detector at 8 kHz.
pub struct WebRtcVad {
    inner: webrtc_vad::Vad,
}

// SAFETY: `webrtc_vad::Vad` owns a heap `Fvad` through a raw pointer, which makes it !Send. The
// pointer is owned exclusively by this value, never aliased or shared, and libfvad has no thread
// affinity, so moving the whole value to another thread is sound. It is not Sync.
unsafe impl Send for WebRtcVad {}

impl WebRtcVad {
    /// `aggressiveness` 0 (flags most as speech) to 3 (strictest).
    pub fn new(aggressiveness: u8) -> Result<Self, AudioError> {
        use webrtc_vad::VadMode;
        let mode = match aggressiveness {
            0 => VadMode::Quality,
            1 => VadMode::LowBitrate,
            2 => VadMode::Aggressive,
            3 => VadMode::VeryAggressive,
            n => return Err(AudioError::Aggressiveness(n)),
        };
        Ok(Self {
            inner: webrtc_vad::Vad::new_with_rate_and_mode(webrtc_vad::SampleRate::Rate8kHz, mode),
        })
    }
}

impl SpeechDetector for WebRtcVad {
    fn is_speech(&mut self, frame: &[i16]) -> Result<bool, AudioError> {
        if !matches!(frame.len(), 80 | 160 | 240) {
            return Err(AudioError::FrameLength(frame.len()));
        }
        self.inner
            .is_voice_segment(frame)
            .map_err(|_| AudioError::FrameLength(frame.len()))
    }
}

/// Frame loudness in dBFS (digital silence is -100).
pub fn frame_dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return -100.0;
    }
    let mean_sq = frame.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / frame.len() as f64;
    if mean_sq <= 0.0 {
        -100.0
    } else {
        (10.0 * (mean_sq / (32768.0f64 * 32768.0)).log10()) as f32
    }
}

/// A loudness threshold detector: deterministic, for tests and energy checks.
pub struct EnergyDetector {
    pub threshold_dbfs: f32,
}

impl SpeechDetector for EnergyDetector {
    fn is_speech(&mut self, frame: &[i16]) -> Result<bool, AudioError> {
        Ok(frame_dbfs(frame) > self.threshold_dbfs)
    }
}

/// Endpointing settings.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub frame_samples: usize,
    pub sample_rate: u32,
    /// Speech needed before a turn starts.
    pub min_speech_ms: u32,
    /// Silence that ends a turn.
    pub end_silence_ms: u32,
    /// Audio kept from before the detected start.
    pub pre_roll_ms: u32,
    /// A turn longer than this is cut (a caller who never pauses, or a TV in the room).
    pub max_utterance_ms: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            frame_samples: FRAME_SAMPLES,
            sample_rate: TWILIO_RATE,
            min_speech_ms: 60,
            end_silence_ms: 500,
            pre_roll_ms: 200,
            max_utterance_ms: 15_000,
        }
    }
}

/// What the endpointer saw.
#[derive(Debug, Clone, PartialEq)]
pub enum VadEvent {
    /// A turn started; `at_sample` is its first speech sample.
    SpeechStarted { at_sample: u64 },
    /// The first silent frame after speech: a chance to run STT speculatively.
    SilenceStarted {
        at_sample: u64,
        audio_so_far: Vec<i16>,
    },
    /// Speech came back before the turn ended.
    SpeechResumed { at_sample: u64 },
    /// The turn ended. `end_sample` is just past the last speech frame; `audio` runs from the
    /// pre-roll to the endpoint.
    UtteranceEnded {
        start_sample: u64,
        end_sample: u64,
        audio: Vec<i16>,
    },
}

/// Hysteresis over per-frame speech decisions.
pub struct Endpointer {
    config: EndpointConfig,
    samples_seen: u64,
    /// Recent audio while idle (pre-roll), or the whole utterance while in speech.
    buffer: Vec<i16>,
    /// Consecutive speech samples while idle (start candidate).
    candidate: u64,
    in_speech: bool,
    start_sample: u64,
    /// Just past the last speech frame.
    last_speech_end: u64,
    silence: u64,
    speech_samples: u64,
}

impl Endpointer {
    pub fn new(config: EndpointConfig) -> Self {
        Self {
            config,
            samples_seen: 0,
            buffer: Vec::new(),
            candidate: 0,
            in_speech: false,
            start_sample: 0,
            last_speech_end: 0,
            silence: 0,
            speech_samples: 0,
        }
    }

    fn ms_to_samples(&self, ms: u32) -> u64 {
        ms as u64 * self.config.sample_rate as u64 / 1000
    }

    /// Changes the silence that ends a turn (the turn detector adapts it to the transcript).
    pub fn set_end_silence_ms(&mut self, ms: u32) {
        self.config.end_silence_ms = ms;
    }

    pub fn is_in_speech(&self) -> bool {
        self.in_speech
    }

    /// Speech heard in the current turn, in ms (for a minimum barge-in length).
    pub fn speech_ms(&self) -> u32 {
        (self.speech_samples * 1000 / self.config.sample_rate as u64) as u32
    }

    pub fn samples_seen(&self) -> u64 {
        self.samples_seen
    }

    pub fn reset(&mut self) {
        let config = self.config.clone();
        let seen = self.samples_seen;
        *self = Self::new(config);
        self.samples_seen = seen;
    }

    /// Feeds one frame and its speech decision.
    pub fn push(&mut self, frame: &[i16], is_speech: bool) -> Vec<VadEvent> {
        let n = frame.len() as u64;
        let frame_start = self.samples_seen;
        self.samples_seen += n;
        let mut events = Vec::new();
        self.buffer.extend_from_slice(frame);

        if !self.in_speech {
            self.candidate = if is_speech { self.candidate + n } else { 0 };
            let pre_roll = self.ms_to_samples(self.config.pre_roll_ms) as usize;
            if self.candidate >= self.ms_to_samples(self.config.min_speech_ms).max(1) {
                self.in_speech = true;
                self.start_sample = self.samples_seen - self.candidate;
                self.last_speech_end = self.samples_seen;
                self.speech_samples = self.candidate;
                self.silence = 0;
                let keep = (self.candidate as usize + pre_roll).min(self.buffer.len());
                self.buffer.drain(..self.buffer.len() - keep);
                events.push(VadEvent::SpeechStarted {
                    at_sample: self.start_sample,
                });
            } else {
                // Idle: keep only the pre-roll plus the current candidate.
                let keep = (pre_roll + self.candidate as usize).min(self.buffer.len());
                self.buffer.drain(..self.buffer.len() - keep);
            }
            return events;
        }

        if is_speech {
            if self.silence > 0 {
                events.push(VadEvent::SpeechResumed {
                    at_sample: frame_start,
                });
            }
            self.silence = 0;
            self.speech_samples += n;
            self.last_speech_end = self.samples_seen;
        } else {
            if self.silence == 0 {
                events.push(VadEvent::SilenceStarted {
                    at_sample: frame_start,
                    audio_so_far: self.buffer[..self.buffer.len() - frame.len()].to_vec(),
                });
            }
            self.silence += n;
        }
        let too_long = self.samples_seen - self.start_sample
            >= self.ms_to_samples(self.config.max_utterance_ms);
        if self.silence >= self.ms_to_samples(self.config.end_silence_ms) || too_long {
            events.push(VadEvent::UtteranceEnded {
                start_sample: self.start_sample,
                end_sample: self.last_speech_end,
                audio: std::mem::take(&mut self.buffer),
            });
            self.in_speech = false;
            self.candidate = 0;
            self.silence = 0;
            self.speech_samples = 0;
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ep: &mut Endpointer, pattern: &[(bool, u32)]) -> Vec<(u64, VadEvent)> {
        let mut out = Vec::new();
        for &(speech, frames) in pattern {
            for _ in 0..frames {
                let frame = vec![if speech { 1000 } else { 0 }; FRAME_SAMPLES];
                for e in ep.push(&frame, speech) {
                    out.push((ep.samples_seen(), e));
                }
            }
        }
        out
    }

    fn cfg() -> EndpointConfig {
        EndpointConfig {
            min_speech_ms: 60,
            end_silence_ms: 500,
            pre_roll_ms: 200,
            ..Default::default()
        }
    }

    #[test]
    fn a_blip_shorter_than_min_speech_is_ignored() {
        let mut ep = Endpointer::new(cfg());
        let events = run(&mut ep, &[(false, 10), (true, 2), (false, 40)]);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn speech_then_silence_ends_exactly_at_the_endpoint() {
        let mut ep = Endpointer::new(cfg());
        let events = run(&mut ep, &[(false, 20), (true, 50), (false, 30)]);
        // Speech starts at frame 20 (sample 3200), confirmed after 3 frames (60 ms).
        assert_eq!(
            events[0],
            (3200 + 480, VadEvent::SpeechStarted { at_sample: 3200 })
        );
        assert!(matches!(
            events[1].1,
            VadEvent::SilenceStarted {
                at_sample: 11200,
                ..
            }
        ));
        // 500 ms = 25 silent frames after the last speech sample (11200).
        let (at, ended) = &events[2];
        assert_eq!(*at, 11200 + 25 * 160);
        match ended {
            VadEvent::UtteranceEnded {
                start_sample,
                end_sample,
                audio,
            } => {
                assert_eq!(*start_sample, 3200);
                assert_eq!(*end_sample, 11200);
                // pre-roll (200 ms) + 1 s of speech + 500 ms of silence
                assert_eq!(audio.len(), 1600 + 8000 + 4000);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(events.len(), 3);
    }

    #[test]
    fn a_short_pause_keeps_one_utterance() {
        let mut ep = Endpointer::new(cfg());
        let events = run(&mut ep, &[(true, 20), (false, 10), (true, 20), (false, 30)]);
        let kinds: Vec<&str> = events
            .iter()
            .map(|(_, e)| match e {
                VadEvent::SpeechStarted { .. } => "start",
                VadEvent::SilenceStarted { .. } => "silence",
                VadEvent::SpeechResumed { .. } => "resume",
                VadEvent::UtteranceEnded { .. } => "end",
            })
            .collect();
        assert_eq!(kinds, vec!["start", "silence", "resume", "silence", "end"]);
    }

    #[test]
    fn max_utterance_forces_an_end_and_endpoint_is_adjustable() {
        let mut ep = Endpointer::new(EndpointConfig {
            max_utterance_ms: 1000,
            ..cfg()
        });
        let events = run(&mut ep, &[(true, 60)]);
        assert!(events
            .iter()
            .any(|(at, e)| matches!(e, VadEvent::UtteranceEnded { .. }) && *at == 50 * 160));
        let mut ep = Endpointer::new(cfg());
        ep.set_end_silence_ms(200);
        let events = run(&mut ep, &[(true, 10), (false, 10)]);
        assert!(events
            .iter()
            .any(|(at, e)| matches!(e, VadEvent::UtteranceEnded { .. }) && *at == 20 * 160));
        assert_eq!(ep.speech_ms(), 0);
    }

    #[test]
    fn webrtc_vad_hears_voice_not_silence_and_rejects_bad_frames() {
        let mut vad = WebRtcVad::new(2).unwrap();
        let silence = vec![0i16; 160];
        assert!(!vad.is_speech(&silence).unwrap());
        let mut voiced = 0;
        for f in 0..50 {
            let frame: Vec<i16> = (0..160)
                .map(|i| {
                    let t = (f * 160 + i) as f32 / 8000.0;
                    let env = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
                    let s: f32 = (1..8)
                        .map(|h| {
                            (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32
                        })
                        .sum();
                    (s * env * 6000.0) as i16
                })
                .collect();
            if vad.is_speech(&frame).unwrap() {
                voiced += 1;
            }
        }
        assert!(voiced > 35, "{voiced}/50 voiced frames detected");
        assert!(matches!(
            vad.is_speech(&[0; 100]),
            Err(AudioError::FrameLength(100))
        ));
        assert!(WebRtcVad::new(4).is_err());
        assert!(frame_dbfs(&silence) <= -100.0);
        let mut e = EnergyDetector {
            threshold_dbfs: -40.0,
        };
        assert!(!e.is_speech(&silence).unwrap());
    }
}
