//! The acceptance corpus: realistic callers of one campaign script, each with what they must
//! experience. `telemarketer rehearse --suite` dials every one as a lead of one campaign and
//! judges each call by what the caller heard ([`super::judge`]).
//!
//! One TOML file per group of callers (a directory is read in name order):
//! ```toml
//! [suite]
//! script = "../campaigns/solar.toml"   # relative to this file; default the shipped example
//!
//! [defaults]                           # for every caller of this file
//! voice = "en-us"                      # espeak-ng voice (or "piper"), see emulator::scenario
//! wpm = 150
//! patience_ms = 1200                   # the agent quiet this long: the caller answers
//! timezone = "America/Los_Angeles"     # the lead's zone: callback times are read in it
//! heard = ["I am an automated AI assistant, and this call may be recorded."]
//! max_dead_air_s = 3.0
//!
//! [[caller]]
//! name = "pause-mid-turn"
//! about = "a long answer with a pause in the middle"
//! lines = ["Yes, that sounds interesting, but I am busy.", "[silence 1.2s]",
//!          "Can you call me back tomorrow at three p.m.?"]
//! outcome = "callback"
//! vars = { callback_time = "tomorrow 15:00" }
//! heard = ["we will call you back {callback_time}"]
//! not_heard = ["Sorry, I did not catch that"]
//! ```
//! `lines` is the scenario mini-language; `voice`, `wpm`, `noise_db`, `patience_ms` and
//! `timezone` may be set per caller too. `heard` adds to the defaults' list (`default_heard =
//! false` drops it, for a caller who cannot hear it all); `"2x ..."` asks for a phrase twice.
//! Variables named `*_time` are [`super::judge::when`] expressions, others plain values.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::emulator::scenario::Manner;
use super::emulator::Persona;
use super::judge::{Expect, Phrase, Want};
use crate::model::Outcome;

pub const DEFAULT_TIMEZONE: &str = "America/Los_Angeles";
pub const DEFAULT_MAX_DEAD_AIR: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
#[error("corpus {file}: {reason}")]
pub struct CorpusError {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    suite: RawSuite,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    caller: Vec<RawCaller>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    script: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    voice: Option<String>,
    wpm: Option<u32>,
    noise_db: Option<f32>,
    patience_ms: Option<u64>,
    timezone: Option<String>,
    #[serde(default)]
    heard: Vec<String>,
    #[serde(default)]
    not_heard: Vec<String>,
    max_dead_air_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaller {
    name: String,
    #[serde(default)]
    about: String,
    #[serde(default)]
    lines: Vec<String>,
    voice: Option<String>,
    wpm: Option<u32>,
    noise_db: Option<f32>,
    patience_ms: Option<u64>,
    timezone: Option<String>,
    outcome: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    heard: Vec<String>,
    #[serde(default)]
    not_heard: Vec<String>,
    default_heard: Option<bool>,
    max_dead_air_s: Option<f64>,
}

/// One caller of the corpus.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    /// What they do, in words (for the table and for whoever fixes a failure).
    pub about: String,
    /// The file (without `.toml`) they come from.
    pub group: String,
    pub persona: Persona,
    /// The lead's IANA zone.
    pub timezone: String,
    pub expect: Expect,
}

/// Callers of one script.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// The campaign script (`None`: the shipped example).
    pub script: Option<PathBuf>,
    pub callers: Vec<Caller>,
}

impl Corpus {
    /// Parses one file; `dir` resolves `[suite] script`.
    pub fn from_toml(file: &str, text: &str, dir: Option<&Path>) -> Result<Self, CorpusError> {
        let err = |reason: String| CorpusError {
            file: file.to_string(),
            reason,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let group = Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let d = &raw.defaults;
        let defaults = Manner {
            voice: d.voice.clone(),
            wpm: d.wpm,
            noise_db: d.noise_db,
            patience_ms: d.patience_ms,
        };
        let mut callers = Vec::new();
        let mut names = BTreeSet::new();
        for c in &raw.caller {
            let at = |reason: String| err(format!("caller {:?}: {reason}", c.name));
            if c.name.is_empty()
                || !c
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                return Err(at("a name is letters, digits, - and _".into()));
            }
            if !names.insert(c.name.clone()) {
                return Err(at("named twice".into()));
            }
            callers.push(caller(&group, d, &defaults, c).map_err(at)?);
        }
        let script = raw
            .suite
            .script
            .map(|s| dir.map(|d| d.join(&s)).unwrap_or_else(|| PathBuf::from(s)));
        Ok(Self { script, callers })
    }

    /// A corpus file, or every `*.toml` of a directory (in name order): one script for all,
    /// names unique across files.
    pub fn load(path: &Path) -> Result<Self, CorpusError> {
        let err = |reason: String| CorpusError {
            file: path.display().to_string(),
            reason,
        };
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| err(e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(err("no .toml files".into()));
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut all = Corpus::default();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| CorpusError {
                file: f.display().to_string(),
                reason: e.to_string(),
            })?;
            let one = Self::from_toml(&f.display().to_string(), &text, f.parent())?;
            all.merge(one).map_err(|reason| CorpusError {
                file: f.display().to_string(),
                reason,
            })?;
        }
        Ok(all)
    }

    fn merge(&mut self, other: Corpus) -> Result<(), String> {
        match (&self.script, other.script) {
            (Some(a), Some(b)) if *a != b => {
                return Err(format!(
                    "script {} differs from {} (one campaign per suite)",
                    b.display(),
                    a.display()
                ))
            }
            (None, Some(b)) => self.script = Some(b),
            _ => {}
        }
        for c in other.callers {
            if self.callers.iter().any(|k| k.name == c.name) {
                return Err(format!("caller {:?} is in two files", c.name));
            }
            self.callers.push(c);
        }
        Ok(())
    }

    /// Keeps only the named callers, in the corpus's order; an unknown name is an error.
    pub fn only(mut self, names: &[String]) -> Result<Self, String> {
        if let Some(unknown) = names
            .iter()
            .find(|n| !self.callers.iter().any(|c| &c.name == *n))
        {
            return Err(format!("no caller named {unknown:?} in the corpus"));
        }
        self.callers.retain(|c| names.contains(&c.name));
        Ok(self)
    }
}

fn caller(
    group: &str,
    d: &RawDefaults,
    defaults: &Manner,
    c: &RawCaller,
) -> Result<Caller, String> {
    let manner = defaults.or(&Manner {
        voice: c.voice.clone(),
        wpm: c.wpm,
        noise_db: c.noise_db,
        patience_ms: c.patience_ms,
    });
    let persona = Persona::Human {
        lines: manner.lines(&c.lines)?,
    };
    let timezone = c
        .timezone
        .clone()
        .or_else(|| d.timezone.clone())
        .unwrap_or_else(|| DEFAULT_TIMEZONE.into());
    timezone
        .parse::<chrono_tz::Tz>()
        .map_err(|_| format!("unknown time zone {timezone:?}"))?;
    if let Some(o) = &c.outcome {
        if Outcome::parse(o).is_none() {
            let known: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            return Err(format!("outcome {o:?} is none of {}", known.join(", ")));
        }
    }
    let vars = c
        .vars
        .iter()
        .map(|(k, v)| Want::new(k, v).map(|w| (k.clone(), w)))
        .collect::<Result<_, _>>()?;
    let inherit = c.default_heard.unwrap_or(true);
    let phrases = |own: &[String], common: &[String]| -> Vec<Phrase> {
        let common = if inherit { common } else { &[] };
        common.iter().chain(own).map(|p| Phrase::parse(p)).collect()
    };
    let seconds = c.max_dead_air_s.or(d.max_dead_air_s);
    if seconds.is_some_and(|s| !(0.1..=120.0).contains(&s)) {
        return Err("max_dead_air_s: use 0.1-120".into());
    }
    Ok(Caller {
        name: c.name.clone(),
        about: c.about.clone(),
        group: group.to_string(),
        persona,
        timezone,
        expect: Expect {
            outcome: c.outcome.clone(),
            vars,
            heard: phrases(&c.heard, &d.heard),
            not_heard: phrases(&c.not_heard, &d.not_heard),
            max_dead_air: seconds
                .map(Duration::from_secs_f64)
                .unwrap_or(DEFAULT_MAX_DEAD_AIR),
        },
    })
}

#[cfg(test)]
mod tests;
