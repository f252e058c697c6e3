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
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    /// Level of a resampled 0.5-amplitude sine relative to its input, in dB, away from the edges.
    fn level_db(out: &[f32], rate: u32) -> f32 {
        let body = &out[rate as usize / 10..out.len() - rate as usize / 10];
        20.0 * (rms(body) / (0.5 / 2f32.sqrt())).log10()
    }

    fn expected_len(n: usize, from: u32, to: u32) -> usize {
        ((n as u64 * to as u64 + from as u64 / 2) / from as u64) as usize
    }

    /// Where a resampled sine sits relative to the ideal one, in output samples (> 0: early).
    fn lead_in_output_samples(out: &[f32], freq: f32, rate: u32) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq as f64 / rate as f64;
        let (mut s, mut c) = (0.0f64, 0.0f64);
        for (i, &v) in out.iter().enumerate().skip(rate as usize / 10) {
            if i >= out.len() - rate as usize / 10 {
                break;
            }
            s += v as f64 * (w * i as f64).sin();
            c += v as f64 * (w * i as f64).cos();
        }
        c.atan2(s) / w
    }

    #[test]
    fn output_lines_up_with_input_for_any_rate_pair() {
        for (from, to) in [
            (8000, 16000),
            (22050, 8000),
            (16000, 8000),
            (48000, 8000),
            (22050, 16000),
            (8000, 22050),
            (44100, 16000),
        ] {
            let mut impulse = vec![0.0f32; from as usize];
            impulse[from as usize / 4] = 1.0;
            let out = resample_all(&impulse, from, to).unwrap();
            let peak = out
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            assert!(
                peak.abs_diff(to as usize / 4) <= 1,
                "{from}->{to}: peak {peak}"
            );
            // Sub-sample: within half a sample of the lower rate.
            let out = resample_all(&sine(440.0, from, from as usize), from, to).unwrap();
            let lead = lead_in_output_samples(&out, 440.0, to);
            let limit = 0.5 * (to as f64 / from as f64).max(1.0);
            assert!(lead.abs() <= limit, "{from}->{to}: {lead:.3} samples early");
        }
    }

    #[test]
    fn lengths_match_the_rate_ratio_after_flush() {
        for (from, to, n) in [
            (8000, 16000, 8000),
            (8000, 16000, 7),
            (22050, 8000, 22050),
            (22050, 8000, 1234),
            (22050, 16000, 999),
            (44100, 16000, 3000),
            (8000, 22050, 333),
            (8000, 8000, 100),
            (8000, 16000, 0),
        ] {
            let out = resample_all(&sine(440.0, from, n), from, to).unwrap();
            assert_eq!(out.len(), expected_len(n, from, to), "{from}->{to} of {n}");
        }
    }

    #[test]
    fn a_440hz_sine_keeps_frequency_level_and_shape() {
        for (from, to) in [(8000, 16000), (22050, 8000)] {
            let out = resample_all(&sine(440.0, from, from as usize), from, to).unwrap();
            assert_eq!(out.len(), to as usize);
            let reference = sine(440.0, to, to as usize);
            // A one-sample shift alone would be an error of > 0.08.
            let body = to as usize / 10..to as usize * 9 / 10;
            let err = out[body.clone()]
                .iter()
                .zip(&reference[body.clone()])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 0.02, "{from}->{to}: max error {err}");
            let crossings = out[body.clone()]
                .windows(2)
                .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
                .count();
            let hz = crossings as f32 / 2.0 / (body.len() as f32 / to as f32);
            assert!((hz - 440.0).abs() < 3.0, "{from}->{to}: {hz} Hz");
            assert!(level_db(&out, to).abs() < 0.1, "{from}->{to}");
        }
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        for (from, to) in [(8000, 16000), (22050, 8000)] {
            let input = sine(440.0, from, from as usize / 2);
            let whole = resample_all(&input, from, to).unwrap();
            for size in [1, 37, 160, 1000] {
                let mut r = StreamResampler::new(from, to).unwrap();
                let mut out = Vec::new();
                for chunk in input.chunks(size) {
                    out.extend(r.process(chunk));
                }
                out.extend(r.flush());
                assert_eq!(out.len(), whole.len(), "{from}->{to} by {size}");
                let diff = out
                    .iter()
                    .zip(&whole)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(diff < 1e-4, "{from}->{to} by {size}: {diff}");
            }
        }
    }

    #[test]
    fn downsampling_keeps_telephone_band_and_removes_aliases() {
        let pass = resample_all(&sine(3500.0, 22050, 22050), 22050, 8000).unwrap();
        let stop = resample_all(&sine(6000.0, 22050, 22050), 22050, 8000).unwrap();
        let (pass_db, stop_db) = (level_db(&pass, 8000), level_db(&stop, 8000));
        assert!(pass_db > -1.0, "3.5 kHz passes: {pass_db:.1} dB");
        assert!(
            stop_db < -30.0,
            "6 kHz (would alias to 2 kHz) is removed: {stop_db:.1} dB"
        );
    }

    #[test]
    fn latency_is_reported_and_flush_resets_for_the_next_signal() {
        let input = sine(440.0, 8000, 4000);
        let mut r = StreamResampler::new(8000, 16000).unwrap();
        let mut a = r.process(&input);
        let lag = r.latency_samples();
        assert!(lag > 0 && lag < 2 * 160 * 2, "lag {lag}");
        assert_eq!(a.len() + lag, 8000);
        a.extend(r.flush());
        assert_eq!(r.latency_samples(), 0);
        let mut b = r.process(&input);
        b.extend(r.flush());
        assert_eq!(a, b);
    }

    #[test]
    fn equal_rates_pass_through_and_bad_rates_are_errors() {
        let mut r = StreamResampler::new(8000, 8000).unwrap();
        assert_eq!(r.process(&[0.25, -0.5]), vec![0.25, -0.5]);
        assert!(r.flush().is_empty());
        for (from, to) in [(0, 8000), (8000, 0), (8000, 8_000_000), (100, 8000)] {
            assert!(
                matches!(
                    StreamResampler::new(from, to),
                    Err(AudioError::Resampler { .. })
                ),
                "{from}->{to}"
            );
        }
    }
}
