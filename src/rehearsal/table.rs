//! The suite's report as text: one row per caller (what was wanted and got, the checks, the
//! worst dead air, caller-side latency, PASS/FAIL with the reasons), then the pass rate and
//! caller-side latency percentiles over all turns; optional details per call (what the caller
//! heard, turn by turn timings) for whoever fixes a failure.

use std::fmt::Write as _;

use super::{CallResult, SuiteReport};
use crate::model::TurnPath;
use crate::testbed::measure::{percentile, Agreement};

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn median_latency(r: &CallResult) -> Option<u64> {
    let v: Vec<u64> = r.timings.iter().filter_map(|t| t.latency_ms).collect();
    percentile(&v, 50.0)
}

fn fraction(ok: usize, total: usize) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{ok}/{total}")
    }
}

/// One line as each call is judged.
pub fn progress_line(r: &CallResult) -> String {
    format!(
        "{} {} (outcome {})",
        if r.verdict.passed() { "PASS" } else { "FAIL" },
        r.caller.name,
        r.outcome.as_deref().unwrap_or("none")
    )
}

/// The table, the pass rate and the latency percentiles.
pub fn render(report: &SuiteReport) -> String {
    let mut out = String::new();
    let name_w = report
        .results
        .iter()
        .map(|r| r.caller.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:<name_w$} | {:<31} | {:<5} | {:<5} | {:<17} | {:<7} | result",
        "caller", "outcome want / got", "vars", "heard", "worst dead air", "latency"
    );
    let _ = writeln!(out, "{}", "-".repeat(name_w + 95));
    for r in &report.results {
        let v = &r.verdict;
        let want = r.caller.expect.outcome.as_deref().unwrap_or("-");
        let got = r.outcome.as_deref().unwrap_or("none");
        let dead = v
            .worst_dead_air
            .as_ref()
            .map(|(ms, _)| secs(*ms))
            .unwrap_or_else(|| "-".into());
        let dead_turn = v
            .worst_dead_air
            .as_ref()
            .map(|(_, label)| format!(" ({})", turn_no(r, label)))
            .unwrap_or_default();
        let latency = median_latency(r).map(secs).unwrap_or_else(|| "-".into());
        let result = if v.passed() {
            "PASS".to_string()
        } else {
            format!("FAIL {}", v.failures.join("; "))
        };
        let _ = writeln!(
            out,
            "{:<name_w$} | {:<31} | {:<5} | {:<5} | {:<17} | {:<7} | {result}",
            r.caller.name,
            format!("{want} / {got}"),
            fraction(v.vars_ok, v.vars_total),
            fraction(v.heard_ok, v.heard_total),
            format!("{dead}{dead_turn}"),
            latency,
        );
    }
    let n = report.results.len();
    let passed = report.passed();
    let lat = report.latencies();
    let _ = writeln!(
        out,
        "\npassed {passed}/{n} ({:.0}%) in {:.0} s; caller-side latency over {} turns: p50 {}, p95 {}",
        if n == 0 { 0.0 } else { 100.0 * passed as f64 / n as f64 },
        report.elapsed.as_secs_f64(),
        lat.len(),
        percentile(&lat, 50.0).map(secs).unwrap_or_else(|| "-".into()),
        percentile(&lat, 95.0).map(secs).unwrap_or_else(|| "-".into()),
    );
    if let Some(over) = over_line(report) {
        let _ = writeln!(out, "{over}");
    }
    let paired = report.agreements();
    let _ = writeln!(out, "{}", agreement_line(&paired, lat.len()));
    if let Some(apart) = apart_line(report) {
        let _ = writeln!(out, "{apart}");
    }
    let _ = writeln!(out, "{}", paths_line(&paired));
    let _ = writeln!(out, "{}", early_line(report));
    out
}

/// The turns spoken over an agent line that went on (the disclosure): no wait to time.
fn over_line(report: &SuiteReport) -> Option<String> {
    let over: Vec<String> = report
        .results
        .iter()
        .flat_map(|r| {
            r.timings
                .iter()
                .filter(|t| t.over_line)
                .map(|t| format!("{} {}", r.caller.name, t.turn + 1))
        })
        .collect();
    (!over.is_empty()).then(|| {
        format!(
            "{} turns spoken over a line that went on (no wait, not timed): {}",
            over.len(),
            over.join(", ")
        )
    })
}

/// The paired turns where the server's figure and the ear's are over 100 ms apart, by caller
/// and turn, so whoever reads the agreement line can look at exactly those calls.
pub fn apart_line(report: &SuiteReport) -> Option<String> {
    let apart: Vec<String> = report
        .results
        .iter()
        .flat_map(|r| {
            r.agreement
                .iter()
                .filter(|a| a.diff_ms().abs() > 100.0)
                .map(|a| {
                    format!(
                        "{} {} (ear {}, server {})",
                        r.caller.name,
                        a.turn + 1,
                        secs(a.ear_ms),
                        secs(a.server_ms.max(0.0).round() as u64)
                    )
                })
        })
        .collect();
    (!apart.is_empty()).then(|| format!("server and ear over 100 ms apart: {}", apart.join(", ")))
}

/// False turn ends as the callers met them: replies begun in a pause inside a turn.
pub fn early_line(report: &SuiteReport) -> String {
    let turns: usize = report.results.iter().map(|r| r.timings.len()).sum();
    let early: Vec<String> = report
        .results
        .iter()
        .flat_map(|r| {
            r.early
                .iter()
                .map(|i| format!("{} {}", r.caller.name, i + 1))
        })
        .collect();
    let which = if early.is_empty() {
        String::new()
    } else {
        format!(" ({})", early.join(", "))
    };
    format!(
        "answered before the caller was done (a pause taken for the end): {} of {turns} turns{which}",
        early.len()
    )
}

/// Caller-side latency per path (the server says which path each paired turn took).
pub fn paths_line(paired: &[Agreement]) -> String {
    let mut parts = Vec::new();
    for path in TurnPath::ALL {
        let v: Vec<u64> = paired
            .iter()
            .filter(|a| a.path == Some(path))
            .map(|a| a.ear_ms)
            .collect();
        if let (Some(p50), Some(p95)) = (percentile(&v, 50.0), percentile(&v, 95.0)) {
            parts.push(format!(
                "{} p50 {} p95 {} (n={})",
                path.as_str(),
                secs(p50),
                secs(p95),
                v.len()
            ));
        }
    }
    if parts.is_empty() {
        "caller-side latency per path: no paired turn".into()
    } else {
        format!("caller-side latency per path: {}", parts.join("; "))
    }
}

/// How well the server's own voice-to-voice agrees with the caller's ear.
pub fn agreement_line(paired: &[Agreement], answered: usize) -> String {
    if paired.is_empty() {
        return format!("server vs caller: no turn paired (of {answered} answered)");
    }
    let diffs: Vec<f64> = paired.iter().map(Agreement::diff_ms).collect();
    let abs: Vec<u64> = diffs.iter().map(|d| d.abs().round() as u64).collect();
    let mut sorted = diffs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let within = abs.iter().filter(|&&d| d <= 100).count();
    format!(
        "server vs caller over {} paired turns (of {answered} answered): server minus ear median {:+.0} ms, |diff| p95 {} ms, max {} ms; within 100 ms: {within}/{}",
        paired.len(),
        median,
        percentile(&abs, 95.0).unwrap_or(0),
        abs.iter().max().copied().unwrap_or(0),
        paired.len()
    )
}

/// "turn 3" for the turn a label belongs to.
fn turn_no(r: &CallResult, label: &str) -> String {
    r.timings
        .iter()
        .find(|t| t.label == label)
        .map(|t| format!("turn {}", t.turn + 1))
        .unwrap_or_default()
}

/// Per call: what it is about, what the caller heard, each turn's latency and dead air.
pub fn details(report: &SuiteReport, failed_only: bool) -> String {
    let mut out = String::new();
    for r in &report.results {
        if failed_only && r.verdict.passed() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n== {} [{}] {} ({})",
            r.caller.name,
            r.caller.group,
            r.caller.about,
            r.call_sid.as_deref().unwrap_or("not dialed")
        );
        if !r.vars.is_empty() {
            let _ = writeln!(out, "  stored: {:?}", r.vars);
        }
        let _ = writeln!(out, "  heard: {}", r.transcript);
        let _ = writeln!(out, "  understood: {:?}", r.understood);
        for t in &r.timings {
            let server = r
                .agreement
                .iter()
                .find(|a| a.turn == t.turn)
                .map(|a| format!(" (server {:.2}s)", a.server_ms / 1000.0))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  turn {:>2} at {:>6} ms: latency {:>6}{server}, dead air {:>6}  {}",
                t.turn + 1,
                t.end_ms,
                match (t.latency_ms, t.over_line) {
                    (Some(ms), _) => secs(ms),
                    (None, true) => "over line".into(),
                    (None, false) => "none".into(),
                },
                secs(t.dead_air_ms),
                t.label
            );
        }
        for f in &r.verdict.failures {
            let _ = writeln!(out, "  FAIL {f}");
        }
    }
    out
}
