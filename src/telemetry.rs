//! Process-wide metrics in Prometheus' text format: per-stage latency histograms of every agent
//! turn, barge-in reaction, active calls, calls by status and engine queue depths.
//!
//! A few atomics and one small lock instead of a metrics crate: the set is fixed and tiny, and the
//! per-frame audio path never touches it (only turn and call boundaries do).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use crate::model::TurnLatency;

/// Bucket upper bounds in seconds: 50 ms to 10 s, dense where conversations live.
const BUCKETS: &[f64] = &[
    0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Stage names as exported (`telemarketer_stage_seconds{stage="..."}`).
pub const STAGES: &[&str] = &[
    "endpointing",
    "stt",
    "llm_first_token",
    "llm_first_clause",
    "tts_first_audio",
    "first_frame",
    "voice_to_voice",
    "barge_in_reaction",
];

struct Metrics {
    stages: Mutex<Vec<Histogram>>,
    calls_by_status: Mutex<Vec<(String, u64)>>,
    active_calls: AtomicI64,
}

static METRICS: Metrics = Metrics {
    stages: Mutex::new(Vec::new()),
    calls_by_status: Mutex::new(Vec::new()),
    active_calls: AtomicI64::new(0),
};

fn observe(stage: &str, ms: Option<f64>) {
    let (Some(ms), Some(i)) = (ms, STAGES.iter().position(|s| *s == stage)) else {
        return;
    };
    let mut stages = METRICS.stages.lock().unwrap_or_else(|p| p.into_inner());
    if stages.is_empty() {
        *stages = vec![Histogram::default(); STAGES.len()];
    }
    stages[i].observe(ms / 1000.0);
}

/// Records one agent turn's stage timings.
pub fn observe_turn(l: &TurnLatency) {
    observe("endpointing", Some(l.endpointing_ms));
    observe("stt", Some(l.stt_ms));
    observe("llm_first_token", l.llm_first_token_ms);
    observe("llm_first_clause", l.llm_first_clause_ms);
    observe("tts_first_audio", l.tts_first_audio_ms);
    observe("first_frame", l.first_frame_ms);
    observe("voice_to_voice", l.voice_to_voice_ms);
}

pub fn observe_barge_in(reaction_ms: f64) {
    observe("barge_in_reaction", Some(reaction_ms));
}

pub fn call_started() {
    METRICS.active_calls.fetch_add(1, Ordering::Relaxed);
}

pub fn call_ended(status: &str) {
    METRICS.active_calls.fetch_sub(1, Ordering::Relaxed);
    let mut calls = METRICS
        .calls_by_status
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    match calls.iter_mut().find(|(s, _)| s == status) {
        Some((_, n)) => *n += 1,
        None => calls.push((status.to_string(), 1)),
    }
}

/// The exposition text; `queues` are (engine, jobs waiting).
pub fn render(engines: &[(&str, crate::engine::EngineHealth)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP telemarketer_stage_seconds Per-turn latency of each conversation stage."
    );
    let _ = writeln!(out, "# TYPE telemarketer_stage_seconds histogram");
    let stages = METRICS
        .stages
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for (i, name) in STAGES.iter().enumerate() {
        let h = stages.get(i).cloned().unwrap_or_default();
        for (j, b) in BUCKETS.iter().enumerate() {
            let c = h.counts.get(j).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "telemarketer_stage_seconds_bucket{{stage=\"{name}\",le=\"{b}\"}} {c}"
            );
        }
        let _ = writeln!(
            out,
            "telemarketer_stage_seconds_bucket{{stage=\"{name}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "telemarketer_stage_seconds_sum{{stage=\"{name}\"}} {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "telemarketer_stage_seconds_count{{stage=\"{name}\"}} {}",
            h.count
        );
    }
    let _ = writeln!(
        out,
        "# HELP telemarketer_active_calls Media streams in progress."
    );
    let _ = writeln!(out, "# TYPE telemarketer_active_calls gauge");
    let _ = writeln!(
        out,
        "telemarketer_active_calls {}",
        METRICS.active_calls.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP telemarketer_calls_total Finished media streams by status."
    );
    let _ = writeln!(out, "# TYPE telemarketer_calls_total counter");
    for (status, n) in METRICS
        .calls_by_status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        let _ = writeln!(out, "telemarketer_calls_total{{status=\"{status}\"}} {n}");
    }
    type Gauge = fn(&crate::engine::EngineHealth) -> u64;
    let gauges: [(&str, &str, &str, Gauge); 5] = [
        (
            "engine_queue_depth",
            "gauge",
            "Jobs waiting for an engine worker.",
            |h| h.queued as u64,
        ),
        (
            "engine_workers_alive",
            "gauge",
            "Engine workers serving jobs.",
            |h| h.alive as u64,
        ),
        (
            "engine_restarts_total",
            "counter",
            "Engine workers rebuilt after a panic.",
            |h| h.restarts,
        ),
        (
            "engine_shed_total",
            "counter",
            "Engine jobs refused: queue full.",
            |h| h.shed,
        ),
        (
            "engine_expired_total",
            "counter",
            "Engine jobs dropped: waited past their deadline.",
            |h| h.expired,
        ),
    ];
    for (name, kind, help, value) in gauges {
        let _ = writeln!(out, "# HELP telemarketer_{name} {help}");
        let _ = writeln!(out, "# TYPE telemarketer_{name} {kind}");
        for (engine, health) in engines {
            let _ = writeln!(
                out,
                "telemarketer_{name}{{engine=\"{engine}\"}} {}",
                value(health)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.15);
        h.observe(0.7);
        h.observe(20.0);
        assert_eq!(h.counts[BUCKETS.iter().position(|b| *b == 0.2).unwrap()], 1);
        assert_eq!(h.counts[BUCKETS.iter().position(|b| *b == 1.0).unwrap()], 2);
        assert_eq!(*h.counts.last().unwrap(), 2, "20 s is only in +Inf");
        assert_eq!(h.count, 3);
    }

    #[test]
    fn exposition_has_every_stage() {
        observe_turn(&TurnLatency {
            endpointing_ms: 500.0,
            stt_ms: 300.0,
            voice_to_voice_ms: Some(900.0),
            ..Default::default()
        });
        let stt = crate::engine::EngineHealth {
            queued: 2,
            restarts: 1,
            ..crate::engine::EngineHealth::inline()
        };
        let text = render(&[("stt", stt)]);
        for stage in STAGES {
            assert!(text.contains(&format!("stage=\"{stage}\"")), "{stage}");
        }
        assert!(text.contains("telemarketer_engine_queue_depth{engine=\"stt\"} 2"));
        assert!(text.contains("telemarketer_engine_restarts_total{engine=\"stt\"} 1"));
        assert!(text.contains("telemarketer_engine_workers_alive{engine=\"stt\"} 1"));
        assert!(text.contains("telemarketer_stage_seconds_count{stage=\"voice_to_voice\"}"));
    }
}
