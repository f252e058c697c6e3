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
