//! CI SUBSET of the acceptance corpus (scripts/corpus): nine representative callers of the
//! shipped solar script, rehearsed through the same code as `telemarketer rehearse --suite`
//! (the dialer, the store, the emulator, the real tiny models), each call judged by what its
//! caller heard. The full corpus is the product's acceptance test; run it with
//! `telemarketer rehearse --suite scripts/corpus`. Real time (about 7 minutes): run with
//! `cargo test --release --test corpus -- --test-threads=1`.

use std::time::Duration;

use telemarketer::app::Engines;
use telemarketer::config::{RawConfig, Secrets};
use telemarketer::rehearsal::{self, table, SuiteOptions};
use telemarketer::testbed::corpus::Corpus;

/// One caller per behaviour the CI guards.
const CI_SUBSET: &[&str] = &[
    // the disclosure talked over 0.3 s in: heard in full, the caller answered after
    "over-disclosure-300ms",
    // a pause mid-turn: one turn, answered whole, with a typed callback time
    "pause-busy-callback",
    // an off-script question: answered, the node's question asked again
    "question-intro-who",
    // a decline: ends politely
    "decline-pitch",
    // an opt-out by word
    "optout-stop-calling",
    // a callback time, normalised and read back
    "time-tomorrow-3pm",
    // a generated line interrupted
    "over-generated-early",
    // line noise under everything the caller sends
    "noise-heavy-renter",
    // a wrong number
    "wrong-number",
];

fn models_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    assert!(
        dir.join("llm.gguf").is_file(),
        "run `scripts/fetch_models.sh --profile test` first"
    );
    dir
}

// Not yet in CI: with the tiny models 5 of these 9 callers pass (Whisper tiny mishears the
// espeak callers' amounts, times and questions: "$200,000" for "about two hundred dollars");
// issue 11 stays open until this passes. Run it with `-- --ignored`.
#[ignore = "acceptance corpus: not yet passing with the tiny models (issue 11)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_subset_of_the_acceptance_corpus_passes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let names: Vec<String> = CI_SUBSET.iter().map(|s| s.to_string()).collect();
    let corpus = Corpus::load(&root.join("scripts/corpus"))
        .unwrap()
        .only(&names)
        .unwrap();
    let raw = RawConfig::from_toml(&format!(
        "[models]\ndir = {:?}",
        models_dir().display().to_string()
    ))
    .unwrap()
    .single_threaded();
    let engines = Engines::load(&raw.clone().validate(Secrets::default()).unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("corpus-ci-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = SuiteOptions {
        store_url: format!("sqlite://{}", dir.join("suite.db").display()),
        max_concurrent: 1,
        offset: rehearsal::ten_in_los_angeles(),
        wav_dir: Some(dir.clone()),
    };
    let report = tokio::time::timeout(
        Duration::from_secs(1800),
        rehearsal::run_suite(raw, &engines, &corpus, &opts, &|l| eprintln!("{l}")),
    )
    .await
    .expect("the subset finishes in 30 minutes")
    .unwrap();
    eprintln!("\n{}", table::render(&report));
    eprintln!("{}", table::details(&report, true));
    eprintln!("calls recorded in {}", dir.display());
    assert_eq!(report.results.len(), CI_SUBSET.len());
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| !r.verdict.passed())
        .map(|r| format!("{}: {}", r.caller.name, r.verdict.failures.join("; ")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
