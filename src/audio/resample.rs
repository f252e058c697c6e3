//! Stateful windowed-sinc resampling (rubato), one instance per stream.
//!
//! Resampling each chunk on its own restarts the filter at every boundary and clicks; a
//! [`StreamResampler`] carries the filter state across calls, accepts any input length and
//! keeps the output aligned with the input (an impulse stays where it was) and, after
//! [`StreamResampler::flush`], exactly `round(len * to / from)` samples long.

use rubato::{
    Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

use super::AudioError;

/// Filter taps counted at the lower of the two rates. Scaling the filter with the ratio keeps the
/// response the same for every rate pair: flat to 3.4 kHz (-0.3 dB at 3.5 kHz) and > 60 dB
/// down at 4 kHz for telephony, whether from 16k or 22050 Hz.
const TAPS_AT_LOWER_RATE: f64 = 128.0;
/// Pass band edge as a fraction of the lower Nyquist (3.68 kHz of telephony's 4 kHz).
const F_CUTOFF: f32 = 0.92;
/// Largest exact sinc table (floats; 512 KiB), see [`Filter::new`].
const MAX_EXACT_TABLE: usize = 1 << 17;
/// Rates outside these bounds are configuration mistakes (and would allocate huge filters).
const MAX_RATE: u32 = 768_000;
const MAX_RATIO: f64 = 16.0;

/// How rubato is configured for one rate pair, and how its timing is corrected.
struct Filter {
    params: SincInterpolationParameters,
    sinc_len: usize,
    /// Zeros fed before the signal, delaying the output to line up with the input.
    pad_input: usize,
    /// Output samples dropped at the start, advancing the output to line up with the input.
    skip_output: usize,
}

impl Filter {
    fn new(from: u32, to: u32) -> Self {
        let ratio_in_per_out = from as f64 / to as f64;
        let sinc_len = ((TAPS_AT_LOWER_RATE * ratio_in_per_out.max(1.0) / 8.0).ceil() as usize) * 8;
        // Every output sample of a fixed ratio falls on a grid of `to / gcd(from, to)` sub-sample
        // phases (2 for 8k -> 16k, 160 for 22050 -> 8k). A sinc table with exactly that
        // oversampling makes nearest-phase lookup exact: no interpolation error, and one filter
        // evaluation per output sample instead of cubic interpolation's four. Pairs whose grid
        // would need a huge table fall back to 256 phases with cubic interpolation.
        let phases = (to as u64 / greatest_common_divisor(from as u64, to as u64)) as usize;
        let (oversampling_factor, interpolation) = if phases * sinc_len <= MAX_EXACT_TABLE {
            (phases, SincInterpolationType::Nearest)
        } else {
            (256, SincInterpolationType::Cubic)
        };
        // rubato 0.16 puts output k at input position (k + 1) * from / to - (1 - 1 / phases)
        // (measured: a 22050 -> 8000 sine comes out 0.64 samples early). Pad or skip whole
        // samples so the error left is at most half a sample of the lower rate; the tests pin it.
        let lead = ratio_in_per_out - 1.0 + 1.0 / oversampling_factor as f64;
        let (pad_input, skip_output) = if lead >= 0.0 {
            (lead.round() as usize, 0)
        } else {
            (0, (-lead / ratio_in_per_out).round() as usize)
        };
        Self {
            params: SincInterpolationParameters {
                sinc_len,
                f_cutoff: F_CUTOFF,
                oversampling_factor,
                interpolation,
                window: WindowFunction::BlackmanHarris2,
            },
            sinc_len,
            pad_input,
            skip_output,
        }
    }
}

/// A resampler that keeps its state across calls.
pub struct StreamResampler {
    from: u32,
    to: u32,
    /// `None` when `from == to`: samples pass through untouched.
    inner: Option<SincFixedIn<f32>>,
    /// rubato's fixed input chunk: 20 ms of input, at least one filter length.
    chunk: usize,
    pad_input: usize,
    skip_output: usize,
    /// Input waiting for a full chunk; never longer than `chunk`.
    pending: Vec<f32>,
    /// rubato's output for one chunk, reused so steady state does not allocate per chunk.
    scratch: Vec<f32>,
    /// Output still to be dropped (timing correction).
    to_skip: usize,
    consumed: u64,
    produced: u64,
}

fn greatest_common_divisor(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl StreamResampler {
    /// A resampler from `from_hz` to `to_hz`. Equal rates pass through.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, AudioError> {
        let fail = |reason: String| AudioError::Resampler {
            from: from_hz,
            to: to_hz,
            reason,
        };
        if from_hz == 0 || to_hz == 0 || from_hz > MAX_RATE || to_hz > MAX_RATE {
            return Err(fail(format!("rates must be 1..={MAX_RATE} Hz")));
        }
        let ratio = to_hz as f64 / from_hz as f64;
        if !(1.0 / MAX_RATIO..=MAX_RATIO).contains(&ratio) {
            return Err(fail(format!(
                "ratio must be within 1/{MAX_RATIO}..={MAX_RATIO}"
            )));
        }
        let filter = Filter::new(from_hz, to_hz);
        let chunk = ((from_hz / 50) as usize).max(filter.sinc_len);
        let (inner, pad_input, skip_output) = if from_hz == to_hz {
            (None, 0, 0)
        } else {
            let r = SincFixedIn::new(ratio, 1.0, filter.params, chunk, 1)
                .map_err(|e| fail(e.to_string()))?;
            (Some(r), filter.pad_input, filter.skip_output)
        };
        let scratch_len = inner.as_ref().map_or(0, |r| r.output_frames_max());
        let mut r = Self {
            from: from_hz,
            to: to_hz,
            inner,
            chunk,
            pad_input,
            skip_output,
            pending: Vec::with_capacity(chunk),
            scratch: vec![0.0; scratch_len],
            to_skip: 0,
            consumed: 0,
            produced: 0,
        };
        r.reset();
        Ok(r)
    }

    /// Feeds any number of samples; returns the output that is ready (possibly none).
    pub fn process(&mut self, input: &[f32]) -> Vec<f32> {
        self.consumed += input.len() as u64;
        if self.inner.is_none() {
            self.produced += input.len() as u64;
            return input.to_vec();
        }
        let mut out = Vec::with_capacity(
            ((self.pending.len() + input.len()) as u64 * self.to as u64 / self.from as u64)
                as usize
                + 1,
        );
        let mut rest = input;
        while !rest.is_empty() {
            let take = (self.chunk - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == self.chunk {
                self.run_chunk(&mut out);
            }
        }
        out
    }

    /// Resamples the full `pending` chunk into `out` and empties `pending`.
    fn run_chunk(&mut self, out: &mut Vec<f32>) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        // Buffers are sized from rubato's own limits, so this cannot fail; were it to, the
        // chunk is dropped rather than taking the call down, and `flush` still pads the length.
        if let Ok((_, n)) =
            inner.process_into_buffer(&[&self.pending[..]], &mut [&mut self.scratch[..]], None)
        {
            let skip = self.to_skip.min(n);
            self.to_skip -= skip;
            out.extend_from_slice(&self.scratch[skip..n]);
            self.produced += (n - skip) as u64;
        }
        self.pending.clear();
    }

    /// Output samples owed for the input so far but not yet returned: the filter's look-ahead
    /// plus the partial chunk. This is how far the output lags the input right now.
    pub fn latency_samples(&self) -> usize {
        self.expected_len().saturating_sub(self.produced) as usize
    }

    fn expected_len(&self) -> u64 {
        (self.consumed * self.to as u64 + self.from as u64 / 2) / self.from as u64
    }

    /// Drains the filter at the end of a stream (or utterance) and resets for reuse: the last
    /// partial chunk is zero-padded, and the total output since the last reset is then exactly
    /// `round(input * to / from)` samples.
    pub fn flush(&mut self) -> Vec<f32> {
        let expected = self.expected_len();
        let mut out = Vec::new();
        if self.inner.is_some() && self.consumed > 0 {
            // The look-ahead is about half a filter and a chunk is at least a filter, so two
            // chunks suffice; the bound only guards against a chunk that produced nothing.
            for _ in 0..4 {
                if self.produced >= expected {
                    break;
                }
                self.pending.resize(self.chunk, 0.0);
                self.run_chunk(&mut out);
            }
        }
        // Only what was just produced can be beyond `expected`.
        let already = self.produced - out.len() as u64;
        out.truncate(expected.saturating_sub(already) as usize);
        self.reset();
        out
    }

    /// Forgets all state (after a barge-in `clear`, or between independent signals).
    pub fn reset(&mut self) {
        if let Some(r) = self.inner.as_mut() {
            r.reset();
        }
        self.pending.clear();
        self.pending.resize(self.pad_input, 0.0);
        self.to_skip = self.skip_output;
        self.consumed = 0;
        self.produced = 0;
    }
}

/// Resamples a whole signal in one go (an utterance for Whisper, a prompt WAV).
pub fn resample_all(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    let mut r = StreamResampler::new(from, to)?;
    let mut out = r.process(samples);
    out.extend(r.flush());
    Ok(out)
}

#[cfg(test)]
mod tests;
