//! The fuzz targets' short run in CI, on stable: every committed corpus input
//! (`fuzz/corpus/<target>/`) goes through the same checks `cargo +nightly fuzz run <target>` runs
//! (`fuzz/src/lib.rs`), then a fixed-seed mutation pass (byte flips, inserts, deletions, cuts
//! and splices of the corpus) adds [`MUTATIONS`] inputs per target.
//!
//! A failing input is written to `target/fuzz-failures/<target>-<n>` and the panic names it;
//! reproduce with `cargo +nightly fuzz run <target> target/fuzz-failures/<target>-<n>`.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Mutated inputs per target (deterministic: the same inputs on every run); a few seconds in
/// all. `FUZZ_MUTATIONS=N` runs N instead (a longer local run, same seed).
const MUTATIONS: usize = 10_000;

fn mutations() -> usize {
    std::env::var("FUZZ_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(MUTATIONS)
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The committed corpus of `target`, sorted by file name; panics when it is missing or empty.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let path = e.expect("corpus entry").path();
            let data =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            (format!("corpus file {name}"), data)
        })
        .collect();
    assert!(
        !files.is_empty(),
        "corpus {} is empty: run the fuzzer and commit its corpus (README \"Fuzzing\")",
        dir.display()
    );
    files.sort();
    files
}

/// Runs one input; on a panic, saves the input and fails naming it.
fn check(target: &str, what: &str, data: &[u8]) {
    let outcome = catch_unwind(AssertUnwindSafe(|| checks::run(target, data)));
    match outcome {
        Ok(known) => assert!(known, "no fuzz target {target:?}"),
        Err(_) => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join("fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{target}-{}", what.replace(['/', ' '], "_")));
            let saved = std::fs::write(&file, data).is_ok();
            panic!(
                "fuzz target {target} failed on {what} ({} bytes{}); reproduce: cargo +nightly fuzz run {target} {}",
                data.len(),
                if saved { ", saved" } else { ", not saved" },
                file.display()
            );
        }
    }
}

/// One random edit of `data`, sometimes with a piece of `other`.
fn mutate(rng: &mut StdRng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    match rng.gen_range(0..8) {
        0 if len > 0 => {
            let i = rng.gen_range(0..len);
            data[i] ^= 1 << rng.gen_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.gen_range(0..len);
            data[i] = *[
                0u8, b'"', b'\n', b',', b'{', b'}', b'[', b'=', b'&', b'%', 0xff, 0x7f,
            ]
            .get(rng.gen_range(0..12))
            .unwrap_or(&0);
        }
        2 => {
            let i = rng.gen_range(0..=len);
            let n = rng.gen_range(1..=4);
            let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            data.splice(i..i, bytes);
        }
        3 if len > 0 => {
            let i = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - i).min(16));
            data.drain(i..i + n);
        }
        4 => data.truncate(rng.gen_range(0..=len)),
        5 if !other.is_empty() => {
            // Splice: a prefix of this input, the rest of another.
            let i = rng.gen_range(0..=len);
            let j = rng.gen_range(0..other.len());
            data.truncate(i);
            data.extend_from_slice(&other[j..]);
        }
        6 if len > 0 => {
            // Repeat a chunk (nesting, repeated fields).
            let i = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - i).min(32));
            let chunk = data[i..i + n].to_vec();
            data.splice(i..i, chunk);
        }
        _ if len > 1 => {
            let (i, j) = (rng.gen_range(0..len), rng.gen_range(0..len));
            data.swap(i, j);
        }
        _ => data.push(rng.gen()),
    }
}

/// The corpus, then [`MUTATIONS`] mutated corpus inputs.
fn replay(target: &str) {
    let files = corpus(target);
    for (name, data) in &files {
        check(target, name, data);
    }
    let seed = target
        .bytes()
        .fold(0x5eed_f022u64, |h, b| h.rotate_left(7) ^ u64::from(b));
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0..mutations() {
        let (_, base) = &files[rng.gen_range(0..files.len())];
        let (_, other) = &files[rng.gen_range(0..files.len())];
        let mut data = base.clone();
        for _ in 0..rng.gen_range(1..=4) {
            mutate(&mut rng, &mut data, other);
        }
        check(target, &format!("mutation {n}"), &data);
    }
}

#[test]
fn media() {
    replay("media");
}

#[test]
fn webhook() {
    replay("webhook");
}

#[test]
fn leads() {
    replay("leads");
}

#[test]
fn script() {
    replay("script");
}

#[test]
fn time_slot() {
    replay("time_slot");
}

/// Every target has its cargo-fuzz binary, a corpus and a test above; no stray corpus.
#[test]
fn targets_match_the_fuzz_project() {
    let fuzz = fuzz_dir();
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for t in checks::TARGETS {
        assert!(
            fuzz.join("fuzz_targets").join(format!("{t}.rs")).is_file(),
            "fuzz/fuzz_targets/{t}.rs"
        );
        assert!(
            manifest.contains(&format!("name = \"{t}\"")),
            "[[bin]] {t} in fuzz/Cargo.toml"
        );
    }
    let dirs = std::fs::read_dir(fuzz.join("corpus")).expect("fuzz/corpus");
    for d in dirs {
        let name = d.expect("corpus dir").file_name();
        let name = name.to_string_lossy();
        assert!(
            checks::TARGETS.contains(&name.as_ref()),
            "fuzz/corpus/{name} has no target"
        );
    }
}

/// The script seeds load, so the replay reaches the checks on a loaded script (rendering, the
/// classifier's labels, the walk through the state machine), not only the parser's refusals.
#[test]
fn script_seeds_load() {
    let dir = fuzz_dir().join("corpus").join("script");
    for name in ["seed-solar.toml", "seed-minimal.toml", "seed-open.toml"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("seed script");
        if let Err(e) = telemarketer::script::format::Script::from_toml(name, &text) {
            panic!("{name} does not load: {e}");
        }
    }
}
