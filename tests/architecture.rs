//! The house rules, checked on the source: every arrow between modules points down.
//!
//! Reads `src/**/*.rs` (test code excluded), collects each module's `crate::…`, `super::…` and
//! external-crate paths, and asserts:
//! - no two top-level rooms import each other, directly or through others (the room graph is
//!   acyclic), and no two modules inside a room do either;
//! - pure rooms (the protocol, audio, leads, the script's machine and format, the dialer's
//!   decisions, the shared records) import only pure rooms and no I/O crate;
//! - `call` knows nothing of `store`, `http` or `dialer`; the test bed knows nothing of `call`,
//!   `http` or `dialer` (it must stay a black box that only speaks Twilio's protocols).
//!
//! A grep, not a compiler: it sees `use` lines and inline paths, which is what the code uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules whose code must not touch the network, the disk, threads or the async runtime.
const PURE: &[&str] = &[
    "model",
    "audio",
    "twilio",
    "leads",
    "script::format",
    "script::machine",
    "script::classify",
    "script::clauses",
    "script::context",
    "script::slots",
    "dialer::decide",
    "crm::webhook",
    "call::turn",
    "call::detector",
    "call::browser",
];

/// Crates (and std modules) that mean I/O or a runtime.
const IO: &[&str] = &[
    "tokio",
    "tokio_util",
    "tokio_tungstenite",
    "sqlx",
    "axum",
    "reqwest",
    "hyper",
    "whisper_rs",
    "llama_cpp_2",
    "ort",
    "piper_rs",
    "std::net",
    "std::process",
    "std::thread",
    "crossbeam_channel",
];

/// (importer, imported): edges that must not exist.
const FORBIDDEN: &[(&str, &str)] = &[
    ("call", "store"),
    ("call", "http"),
    ("call", "dialer"),
    ("testbed", "call"),
    ("testbed", "http"),
    ("testbed", "dialer"),
    ("testbed", "app"),
];

struct Module {
    path: String,
    /// `crate::` and `super::` targets, as module paths.
    internal: BTreeSet<String>,
    /// Text of the module's non-test code, for external-crate checks.
    code: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` -> `a::b`; `src/a/mod.rs` -> `a`; `src/lib.rs` -> "".
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code before the first `#[cfg(test)]` module; test files are skipped by the caller.
fn non_test_code(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    let mut depth = 0i32;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if !skipping && t == "#[cfg(test)]" {
            if let Some(next) = lines.peek() {
                let n = next.trim();
                if n.starts_with("mod ") && n.ends_with('{') {
                    skipping = true;
                    depth = 0;
                    continue;
                }
                if n.starts_with("mod ") && n.ends_with(';') {
                    lines.next();
                    continue;
                }
            }
        }
        if skipping {
            depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            if depth <= 0 && line.contains('}') {
                skipping = false;
            }
            continue;
        }
        // Comments name modules without importing them.
        let code = match t.find("//") {
            Some(0) => continue,
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

fn ident_chars(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Module paths named after `crate::` or `super::` (lowercase segments only: types end it).
fn internal_refs(module: &[String], code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", module[..module.len().saturating_sub(1)].to_vec()),
    ] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            // `self::super::` or a longer identifier ending in `crate` do not count.
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let mut path = base.clone();
            let mut tail = rest;
            loop {
                let seg = ident_chars(tail);
                if seg.is_empty() || seg.chars().next().is_some_and(|c| c.is_uppercase()) {
                    break;
                }
                path.push(seg.to_string());
                tail = &tail[seg.len()..];
                match tail.strip_prefix("::") {
                    Some(t) if !t.starts_with('{') => tail = t,
                    Some(t) => {
                        // `crate::a::{b, c}`: one level of braces.
                        let inner = &t[1..t.find('}').unwrap_or(t.len())];
                        for item in inner.split(',') {
                            let seg = ident_chars(item.trim());
                            if !seg.is_empty()
                                && seg.chars().next().is_some_and(|c| c.is_lowercase())
                            {
                                let mut p = path.clone();
                                p.push(seg.to_string());
                                refs.insert(p.join("::"));
                            }
                        }
                        break;
                    }
                    None => break,
                }
            }
            if !path.is_empty() {
                refs.insert(path.join("::"));
            }
        }
    }
    refs
}

fn modules() -> Vec<Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = Vec::new();
    for file in files {
        let parts = module_path(&src, &file);
        if parts.last().is_some_and(|p| p == "tests") || parts.first().is_some_and(|p| p == "cli") {
            continue;
        }
        let code = non_test_code(&std::fs::read_to_string(&file).unwrap());
        out.push(Module {
            path: parts.join("::"),
            internal: internal_refs(&parts, &code),
            code,
        });
    }
    out
}

/// Does `code` name the path `krate::…` (not as the tail of a longer identifier)?
fn mentions(code: &str, krate: &str) -> bool {
    let needle = format!("{krate}::");
    code.match_indices(&needle).any(|(i, _)| {
        !code[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    })
}

fn room(path: &str) -> &str {
    path.split("::").next().unwrap_or(path)
}

/// Does `path` (a module) fall under `prefix` (a module or room)?
fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}::"))
}

/// The known module a reference lands in: the longest module path that prefixes it.
fn resolve<'a>(known: &'a BTreeSet<String>, reference: &str) -> Option<&'a str> {
    let mut parts: Vec<&str> = reference.split("::").collect();
    while !parts.is_empty() {
        let candidate = parts.join("::");
        if let Some(k) = known.get(&candidate) {
            return Some(k);
        }
        parts.pop();
    }
    None
}

fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Depth-first search for back edges; each found cycle is reported once.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(i) = stack.iter().position(|s| s == n) {
            found.push(stack[i..].to_vec());
            return;
        }
        if done.contains(n) {
            return;
        }
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            visit(m, edges, stack, done, found);
        }
        stack.pop();
        done.insert(n.to_string());
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        visit(n, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn every_arrow_points_down() {
    let modules = modules();
    let known: BTreeSet<String> = modules.iter().map(|m| m.path.clone()).collect();
    let mut problems = Vec::new();

    // Room graph, and module graph inside each room.
    let mut rooms: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut inner: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &modules {
        for r in &m.internal {
            let Some(target) = resolve(&known, r) else {
                continue;
            };
            let (from, to) = (room(&m.path), room(target));
            if from.is_empty() || to.is_empty() {
                continue;
            }
            if from != to {
                rooms
                    .entry(from.to_string())
                    .or_default()
                    .insert(to.to_string());
            } else if target != m.path && !under(target, &m.path) && !under(&m.path, target) {
                inner
                    .entry(m.path.clone())
                    .or_default()
                    .insert(target.to_string());
            }
            for (a, b) in FORBIDDEN {
                if under(&m.path, a) && under(target, b) {
                    problems.push(format!(
                        "{} imports {target} ({a} must not know {b})",
                        m.path
                    ));
                }
            }
            let pure_src = PURE.iter().any(|p| under(&m.path, p));
            let pure_dst = PURE.iter().any(|p| under(target, p) || under(p, target));
            if pure_src && !pure_dst {
                problems.push(format!(
                    "{} is pure but imports {target}, which is not",
                    m.path
                ));
            }
        }
        if PURE.iter().any(|p| under(&m.path, p)) {
            for io in IO {
                if mentions(&m.code, io) {
                    problems.push(format!("{} is pure but uses {io}", m.path));
                }
            }
        }
    }
    for c in cycles(&rooms) {
        problems.push(format!("rooms import each other: {}", c.join(" -> ")));
    }
    for c in cycles(&inner) {
        problems.push(format!("modules import each other: {}", c.join(" -> ")));
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_checker_sees_paths() {
    let m = vec!["call".to_string(), "agent".to_string()];
    let refs = internal_refs(
        &m,
        "use crate::store::{Store, records};\nuse super::session::Deps;\nlet x = crate::model::Outcome::DoNotCall;",
    );
    assert!(refs.contains("store"), "{refs:?}");
    assert!(refs.contains("store::records"), "{refs:?}");
    assert!(refs.contains("call::session"), "{refs:?}");
    assert!(refs.contains("model"), "{refs:?}");
    let code = non_test_code("use a::b;\n#[cfg(test)]\nmod tests {\n    use crate::http;\n}\n");
    assert!(!code.contains("http"), "{code}");
    let mut e = BTreeMap::new();
    e.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    e.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycles(&e).len(), 1);
}

/// A file that grows past this is doing two jobs; `main.rs` only parses and dispatches.
const MAX_LINES: usize = 700;
const MAX_MAIN_LINES: usize = 250;

#[test]
fn files_stay_small() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut big = Vec::new();
    for file in files {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Comments count: a file is read whole.
        let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or("");
        let lines = code.lines().count();
        let limit = if file.ends_with("main.rs") {
            MAX_MAIN_LINES
        } else {
            MAX_LINES
        };
        if lines > limit {
            big.push(format!("{}: {lines} lines (limit {limit})", file.display()));
        }
    }
    assert!(big.is_empty(), "{}", big.join("\n"));
}
