//! Voice activity: a per-frame speech detector (WebRTC VAD) and the [`Endpointer`], the
//! hysteresis that turns noisy per-frame decisions into utterances.
//!
//! Speech starts only after `min_speech_ms` of speech within a short window (a click is not a
//! turn, a flickering VAD still is); a turn ends after `end_silence_ms` of silence; a shorter
//! pause keeps one utterance. `pre_roll_ms` of audio before the start is kept because VADs
//! trigger late and Whisper needs the onset. Time is counted in samples, never read from a
//! clock, so the same input always gives the same events.

use std::collections::VecDeque;

use super::{AudioError, FRAME_SAMPLES, TWILIO_RATE};

/// Classifies one 20 ms frame of 8 kHz audio (160 samples) as speech or not.
pub trait SpeechDetector: Send {
    fn is_speech(&mut self, frame: &[i16]) -> Result<bool, AudioError>;
}

/// WebRTC's GMM voice activity detector at 8 kHz: cheap, robust to line noise.
pub struct WebRtcVad {
    inner: webrtc_vad::Vad,
}

// SAFETY: `webrtc_vad::Vad` is !Send only because it holds the raw pointer to its heap-allocated
// `Fvad` state. This wrapper owns that pointer exclusively (the field is private, never cloned,
// aliased or shared) and libfvad keeps no thread-local or global state, so moving the whole
// value to another thread is sound. It is deliberately not Sync: `&mut self` is required to use it.
unsafe impl Send for WebRtcVad {}

impl WebRtcVad {
    /// `aggressiveness` 0 (flags the most as speech) to 3 (strictest); others are an error.
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
    /// Accepts 10, 20 or 30 ms frames (80/160/240 samples); anything else is an error, checked
    /// here because the C library would reject it (and the binding indexes `frame[0]`).
    fn is_speech(&mut self, frame: &[i16]) -> Result<bool, AudioError> {
        if !matches!(frame.len(), 80 | 160 | 240) {
            return Err(AudioError::FrameLength(frame.len()));
        }
        self.inner
            .is_voice_segment(frame)
            .map_err(|_| AudioError::FrameLength(frame.len()))
    }
}

/// A 20 ms frame is audible speech above this level: far above mu-law's silent codes and
/// Piper's pauses, far below the quietest syllable. The server's latency ends at the first
/// audible frame it plays, and the test caller's ear uses the same line, so both agree.
pub const AUDIBLE_DBFS: f32 = -45.0;

/// Frame loudness in dBFS (RMS relative to full scale); empty or digital silence is -100.
pub fn frame_dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return -100.0;
    }
    let mean_sq = frame.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / frame.len() as f64;
    if mean_sq <= 0.0 {
        -100.0
    } else {
        ((10.0 * (mean_sq / (32768.0f64 * 32768.0)).log10()) as f32).max(-100.0)
    }
}

/// Loudness threshold detector: deterministic, for tests and energy checks (echo guard).
pub struct EnergyDetector {
    pub threshold_dbfs: f32,
}

impl SpeechDetector for EnergyDetector {
    fn is_speech(&mut self, frame: &[i16]) -> Result<bool, AudioError> {
        Ok(frame_dbfs(frame) > self.threshold_dbfs)
    }
}

/// How much louder than the line's noise a frame must be to count as the caller's voice.
pub const NOISE_MARGIN_DB: f32 = 6.0;

/// The line's noise floor: the quietest of the last [`NoiseFloor::WINDOW`] frames. Between
/// words and while the caller listens, a noisy line shows its noise; the window is long enough
/// that a caller talking without a break does not lift the floor to their voice.
///
/// On a hissing line (white noise at -30 dBFS) WebRTC's VAD flags noise frames as speech now
/// and then, so a turn never shows the unbroken silence that ends it: the corpus's caller on
/// such a line waited over 3 s for every answer. [`NoiseFloor::gate`] keeps the VAD's verdict
/// only for frames that stand above the noise. A line whose floor is inaudible (below
/// [`AUDIBLE_DBFS`]) is quiet and left to the VAD alone.
#[derive(Debug, Default)]
pub struct NoiseFloor {
    recent: VecDeque<f32>,
}

impl NoiseFloor {
    /// 3 s of 20 ms frames.
    pub const WINDOW: usize = 150;

    /// Records one frame's loudness (dBFS); returns the floor including it.
    pub fn push(&mut self, dbfs: f32) -> f32 {
        if self.recent.len() == Self::WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(dbfs);
        self.floor()
    }

    pub fn floor(&self) -> f32 {
        self.recent.iter().copied().fold(f32::INFINITY, f32::min)
    }

    /// The VAD's verdict on a frame of `dbfs`, kept only where it could be a voice on this line.
    pub fn gate(&mut self, voiced: bool, dbfs: f32) -> bool {
        let floor = self.push(dbfs);
        voiced && (floor < AUDIBLE_DBFS || dbfs >= floor + NOISE_MARGIN_DB)
    }
}

/// Endpointing settings. All times are converted to samples at `sample_rate`.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Samples per frame the caller pushes (informational; `push` accepts any length).
    pub frame_samples: usize,
    pub sample_rate: u32,
    /// Speech needed, within a window of twice this, before a turn starts.
    pub min_speech_ms: u32,
    /// Silence that ends a turn.
    pub end_silence_ms: u32,
    /// Audio kept from before the detected start.
    pub pre_roll_ms: u32,
    /// A turn longer than this is cut (a caller who never pauses, a TV in the room); 0 = no limit.
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

/// What the endpointer saw. Sample numbers count from the first sample ever pushed.
#[derive(Debug, Clone, PartialEq)]
pub enum VadEvent {
    /// A turn started; `at_sample` is its first speech sample (emitted `min_speech_ms` later).
    SpeechStarted { at_sample: u64 },
    /// The first silent frame after speech (once per pause): lets the caller run STT
    /// speculatively. `at_sample` is the frame's first sample; `audio_so_far` runs from the
    /// pre-roll to just before it.
    SilenceStarted {
        at_sample: u64,
        audio_so_far: Vec<i16>,
    },
    /// Speech came back before the endpoint: a speculative transcript is stale.
    SpeechResumed { at_sample: u64 },
    /// The turn ended (silence reached `end_silence_ms`, or `max_utterance_ms` passed).
    /// `end_sample` is exclusive: just past the last speech sample, so `end - start` is the
    /// speech span. `audio` is pre-roll + speech + trailing silence up to the endpoint.
    UtteranceEnded {
        start_sample: u64,
        end_sample: u64,
        audio: Vec<i16>,
    },
}

/// The start window is this many times `min_speech_ms`: 60 ms of speech within 120 ms starts a
/// turn, so a VAD that drops single frames of real speech does not delay it.
const START_WINDOW_FACTOR: u64 = 2;

/// Hysteresis over per-frame speech decisions.
pub struct Endpointer {
    config: EndpointConfig,
    samples_seen: u64,
    /// Idle: recent audio (pre-roll + start window). In speech: the utterance from its pre-roll.
    buffer: Vec<i16>,
    /// Idle only: recent frames as (first sample, length, speech), covering the start window.
    window: VecDeque<(u64, u64, bool)>,
    in_speech: bool,
    start_sample: u64,
    /// Just past the last speech frame.
    last_speech_end: u64,
    /// Trailing silence in the current turn, in samples.
    silence: u64,
    speech_samples: u64,
}

impl Endpointer {
    pub fn new(config: EndpointConfig) -> Self {
        Self {
            config,
            samples_seen: 0,
            buffer: Vec::new(),
            window: VecDeque::new(),
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

    /// Changes the silence that ends a turn (the turn detector adapts it to the transcript);
    /// applies from the next frame, and survives [`Endpointer::reset`].
    pub fn set_end_silence_ms(&mut self, ms: u32) {
        self.config.end_silence_ms = ms;
    }

    pub fn is_in_speech(&self) -> bool {
        self.in_speech
    }

    /// Speech heard in the current turn, in ms, pauses excluded (for a minimum barge-in length).
    pub fn speech_ms(&self) -> u32 {
        let ms = self.speech_samples * 1000 / self.config.sample_rate.max(1) as u64;
        ms.min(u32::MAX as u64) as u32
    }

    /// Samples pushed since creation; not cleared by [`Endpointer::reset`], so event sample
    /// numbers stay on one timeline for the whole call.
    pub fn samples_seen(&self) -> u64 {
        self.samples_seen
    }

    /// Drops the current turn and buffered audio (after a turn was handed on), keeping the
    /// configuration and the sample count.
    pub fn reset(&mut self) {
        let config = self.config.clone();
        let seen = self.samples_seen;
        *self = Self::new(config);
        self.samples_seen = seen;
    }

    /// The stream ended: an utterance in progress ends here, with its audio (a caller who says
    /// "stop calling me" and hangs up is still heard).
    pub fn finish(&mut self) -> Option<VadEvent> {
        if !self.in_speech {
            return None;
        }
        self.in_speech = false;
        self.silence = 0;
        self.speech_samples = 0;
        Some(VadEvent::UtteranceEnded {
            start_sample: self.start_sample,
            end_sample: self.last_speech_end,
            audio: std::mem::take(&mut self.buffer),
        })
    }

    /// Feeds one frame and its speech decision; returns what happened, in order.
    pub fn push(&mut self, frame: &[i16], is_speech: bool) -> Vec<VadEvent> {
        let n = frame.len() as u64;
        if n == 0 {
            return Vec::new();
        }
        let frame_start = self.samples_seen;
        self.samples_seen += n;
        self.buffer.extend_from_slice(frame);
        if self.in_speech {
            self.push_in_speech(frame_start, n, is_speech)
        } else {
            self.push_idle(frame_start, n, is_speech)
        }
    }

    fn push_idle(&mut self, frame_start: u64, n: u64, is_speech: bool) -> Vec<VadEvent> {
        let min_speech = self.ms_to_samples(self.config.min_speech_ms).max(1);
        let window_len = min_speech * START_WINDOW_FACTOR;
        self.window.push_back((frame_start, n, is_speech));
        let mut covered: u64 = self.window.iter().map(|w| w.1).sum();
        while covered > window_len && self.window.len() > 1 {
            if let Some((_, len, _)) = self.window.pop_front() {
                covered -= len;
            }
        }
        let speech: u64 = self.window.iter().filter(|w| w.2).map(|w| w.1).sum();
        let pre_roll = self.ms_to_samples(self.config.pre_roll_ms);
        if speech < min_speech {
            // Keep only what a start in this window could need.
            let keep = (pre_roll + covered).min(self.buffer.len() as u64) as usize;
            self.buffer.drain(..self.buffer.len() - keep);
            return Vec::new();
        }
        let start = self
            .window
            .iter()
            .find(|w| w.2)
            .map_or(frame_start, |w| w.0);
        self.window.clear();
        self.in_speech = true;
        self.start_sample = start;
        self.last_speech_end = self.samples_seen;
        self.speech_samples = speech;
        self.silence = 0;
        let keep = (self.samples_seen - start + pre_roll).min(self.buffer.len() as u64) as usize;
        self.buffer.drain(..self.buffer.len() - keep);
        vec![VadEvent::SpeechStarted { at_sample: start }]
    }

    fn push_in_speech(&mut self, frame_start: u64, n: u64, is_speech: bool) -> Vec<VadEvent> {
        let mut events = Vec::new();
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
                    audio_so_far: self.buffer[..self.buffer.len() - n as usize].to_vec(),
                });
            }
            self.silence += n;
        }
        let max = self.ms_to_samples(self.config.max_utterance_ms);
        let too_long = max > 0 && self.samples_seen - self.start_sample >= max;
        let ended =
            self.silence > 0 && self.silence >= self.ms_to_samples(self.config.end_silence_ms);
        if ended || too_long {
            events.push(VadEvent::UtteranceEnded {
                start_sample: self.start_sample,
                end_sample: self.last_speech_end,
                audio: std::mem::take(&mut self.buffer),
            });
            self.in_speech = false;
            self.silence = 0;
            self.speech_samples = 0;
        }
        events
    }
}

#[cfg(test)]
mod tests;
