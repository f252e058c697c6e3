//! Stateful windowed-sinc resampling (rubato), one instance per stream.
//!
//! Resampling each chunk on its own restarts the filter at every boundary and clicks; a
//! [`StreamResampler`] carries the filter state across calls, accepts any input length and
//! keeps the output aligned with the input (checked with an impulse) and, after
//! [`StreamResampler::flush`], exactly `len * to / from` samples long.

use rubato::{
    Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

use super::AudioError;

/// A resampler that keeps its state across calls.
pub struct StreamResampler {
    from: u32,
    to: u32,
    inner: Option<SincFixedIn<f32>>,
    chunk: usize,
    pending: Vec<f32>,
    consumed: u64,
    produced: u64,
}

impl StreamResampler {
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        if from == 0 || to == 0 {
            return Err(AudioError::Resampler {
                from,
                to,
                reason: "rates must be positive".into(),
            });
        }
        let chunk = (from / 50).max(1) as usize; // 20 ms of input
        let inner = if from == to {
            None
        } else {
            let params = SincInterpolationParameters {
                sinc_len: 128,
                f_cutoff: 0.92,
                oversampling_factor: 128,
                interpolation: SincInterpolationType::Cubic,
                window: WindowFunction::BlackmanHarris2,
            };
            Some(
                SincFixedIn::new(to as f64 / from as f64, 1.0, params, chunk, 1).map_err(|e| {
                    AudioError::Resampler {
                        from,
                        to,
                        reason: e.to_string(),
                    }
                })?,
            )
        };
        Ok(Self {
            from,
            to,
            inner,
            chunk,
            pending: Vec::new(),
            consumed: 0,
            produced: 0,
        })
    }

    /// Feeds any number of samples; returns the output that is ready.
    pub fn process(&mut self, input: &[f32]) -> Vec<f32> {
        self.consumed += input.len() as u64;
        let Some(inner) = self.inner.as_mut() else {
            self.produced += input.len() as u64;
            return input.to_vec();
        };
        self.pending.extend_from_slice(input);
        let mut out = Vec::new();
        let mut start = 0;
        while self.pending.len() - start >= self.chunk {
            let slice = &self.pending[start..start + self.chunk];
            if let Ok(mut res) = inner.process(&[slice], None) {
                out.append(&mut res[0]);
            }
            start += self.chunk;
        }
        self.pending.drain(..start);
        self.take_output(out)
    }

    fn take_output(&mut self, out: Vec<f32>) -> Vec<f32> {
        self.produced += out.len() as u64;
        out
    }

    /// Drains the filter at the end of a stream (or utterance) and resets for reuse. The total
    /// output since the last reset is then `round(input * to / from)` samples.
    pub fn flush(&mut self) -> Vec<f32> {
        let expected = (self.consumed * self.to as u64 + self.from as u64 / 2) / self.from as u64;
        let mut out = Vec::new();
        if self.inner.is_some() {
            let mut guard = 0;
            while self.produced + (out.len() as u64) < expected && guard < 64 {
                guard += 1;
                let mut zeros = std::mem::take(&mut self.pending);
                zeros.resize(self.chunk, 0.0);
                let res = self
                    .inner
                    .as_mut()
                    .and_then(|r| r.process(&[&zeros[..]], None).ok());
                if let Some(mut res) = res {
                    let chunk = self.take_output(std::mem::take(&mut res[0]));
                    self.produced -= chunk.len() as u64;
                    out.extend(chunk);
                }
            }
        }
        let keep = expected.saturating_sub(self.produced) as usize;
        out.truncate(keep);
        self.reset();
        out
    }

    /// Forgets all state (after `clear`, or between independent signals).
    pub fn reset(&mut self) {
        if let Some(r) = self.inner.as_mut() {
            r.reset();
        }
        self.pending.clear();
        self.consumed = 0;
        self.produced = 0;
    }
}

/// Resamples a whole signal in one go.
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

    #[test]
    fn an_impulse_stays_where_it_was() {
        let mut input = vec![0.0f32; 8000];
        input[1000] = 1.0;
        let out = resample_all(&input, 8000, 16000).unwrap();
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert!((1998..=2002).contains(&peak), "peak at {peak}");
    }

    #[test]
    fn lengths_are_exact_after_flush() {
        for (from, to, n) in [
            (8000, 16000, 8000),
            (22050, 8000, 22050),
            (22050, 8000, 1234),
            (8000, 8000, 100),
        ] {
            let out = resample_all(&sine(440.0, from, n), from, to).unwrap();
            let expected = (n as u64 * to as u64 + from as u64 / 2) / from as u64;
            assert_eq!(out.len() as u64, expected, "{from}->{to} of {n}");
        }
    }

    #[test]
    fn frequency_and_alignment_are_preserved() {
        let input = sine(440.0, 8000, 8000);
        let out = resample_all(&input, 8000, 16000).unwrap();
        let reference = sine(440.0, 16000, 16000);
        // Aligned within one output sample (a 1-sample shift of this sine is an error of 0.086).
        let err: f32 = out[2000..14000]
            .iter()
            .zip(&reference[2000..14000])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.1, "max error {err}");
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let input = sine(1000.0, 22050, 22050);
        let whole = resample_all(&input, 22050, 8000).unwrap();
        for size in [1, 37, 441, 1000] {
            let mut r = StreamResampler::new(22050, 8000).unwrap();
            let mut out = Vec::new();
            for chunk in input.chunks(size) {
                out.extend(r.process(chunk));
            }
            out.extend(r.flush());
            assert_eq!(out.len(), whole.len());
            let diff = out
                .iter()
                .zip(&whole)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-4, "chunk {size}: {diff}");
        }
    }

    #[test]
    fn a_1khz_tone_keeps_its_frequency_and_level() {
        for (from, to) in [(8000, 16000), (22050, 8000)] {
            let out = resample_all(&sine(1000.0, from, from as usize), from, to).unwrap();
            let body = &out[to as usize / 10..to as usize * 9 / 10];
            let level_db = 20.0 * (rms(body) / 0.3536).log10();
            assert!(level_db.abs() < 0.5, "{from}->{to}: level {level_db:.2} dB");
            // Frequency from zero crossings: 2000 per second for 1 kHz.
            let crossings = body
                .windows(2)
                .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
                .count();
            let hz = crossings as f32 / 2.0 / (body.len() as f32 / to as f32);
            assert!((hz - 1000.0).abs() < 5.0, "{from}->{to}: {hz} Hz");
        }
    }

    #[test]
    fn downsampling_removes_what_8k_cannot_carry() {
        let pass = resample_all(&sine(3000.0, 22050, 22050), 22050, 8000).unwrap();
        let stop = resample_all(&sine(6000.0, 22050, 22050), 22050, 8000).unwrap();
        let pass_db = 20.0 * (rms(&pass[1000..7000]) / 0.3536).log10();
        let stop_db = 20.0 * (rms(&stop[1000..7000]) / 0.3536).log10();
        assert!(pass_db > -1.0, "3 kHz passes: {pass_db:.1} dB");
        assert!(stop_db < -40.0, "6 kHz is filtered: {stop_db:.1} dB");
    }

    #[test]
    fn flush_resets_for_the_next_signal() {
        let input = sine(440.0, 8000, 4000);
        let mut r = StreamResampler::new(8000, 16000).unwrap();
        let mut a = r.process(&input);
        a.extend(r.flush());
        let mut b = r.process(&input);
        b.extend(r.flush());
        assert_eq!(a, b);
    }
}
