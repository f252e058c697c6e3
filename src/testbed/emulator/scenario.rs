//! Rehearsal scenarios as TOML: who answers which number, for `telemarketer emulator`.
//!
//! ```toml
//! ring_ms = 500
//! [default]                      # everyone not listed below
//! kind = "human"                 # human | busy | no-answer | failed | machine | fax
//! lines = ["Yes, go ahead.", "[silence 2s]", "[key 9]", "[hang up]"]
//! [numbers."+14155550101"]
//! kind = "machine"
//! greeting = "Hi, you have reached Sam. Leave a message after the tone."
//! ```

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::{CallerLine, Persona};

#[derive(Debug, thiserror::Error)]
#[error("scenario {file}: {reason}")]
pub struct ScenarioError {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    ring_ms: Option<u64>,
    #[serde(default)]
    default: Option<RawPersona>,
    #[serde(default)]
    numbers: HashMap<String, RawPersona>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPersona {
    kind: String,
    #[serde(default)]
    lines: Vec<String>,
    #[serde(default)]
    greeting: Option<String>,
}

/// A parsed scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub ring: Duration,
    pub default_persona: Persona,
    pub personas: HashMap<String, Persona>,
}

impl Scenario {
    /// Everyone answers and waits for the agent, then hangs up.
    pub fn quiet() -> Self {
        Self {
            ring: Duration::from_millis(500),
            default_persona: Persona::Human { lines: Vec::new() },
            personas: HashMap::new(),
        }
    }

    pub fn from_toml(file: &str, text: &str) -> Result<Self, ScenarioError> {
        let err = |reason: String| ScenarioError {
            file: file.to_string(),
            reason,
        };
        let raw: RawScenario = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let default_persona = match raw.default {
            Some(p) => persona(&p).map_err(|r| err(format!("[default]: {r}")))?,
            None => Persona::Human { lines: Vec::new() },
        };
        let mut personas = HashMap::new();
        for (number, p) in &raw.numbers {
            let phone = crate::leads::normalize_phone(number)
                .map_err(|e| err(format!("numbers.\"{number}\": {e}")))?;
            personas.insert(
                phone,
                persona(p).map_err(|r| err(format!("numbers.\"{number}\": {r}")))?,
            );
        }
        Ok(Self {
            ring: Duration::from_millis(raw.ring_ms.unwrap_or(500)),
            default_persona,
            personas,
        })
    }

    /// Whether any caller speaks (the emulator then needs a voice).
    pub fn needs_voice(&self) -> bool {
        std::iter::once(&self.default_persona)
            .chain(self.personas.values())
            .any(|p| match p {
                Persona::Human { lines } => lines.iter().any(|l| matches!(l, CallerLine::Say(_))),
                Persona::Machine { .. } => true,
                _ => false,
            })
    }
}

fn persona(p: &RawPersona) -> Result<Persona, String> {
    let no_lines = |kind: &str| {
        if p.lines.is_empty() && p.greeting.is_none() {
            Ok(())
        } else {
            Err(format!("kind `{kind}` takes no lines or greeting"))
        }
    };
    Ok(match p.kind.as_str() {
        "human" => Persona::Human {
            lines: p.lines.iter().map(|l| line(l)).collect::<Result<_, _>>()?,
        },
        "machine" => Persona::Machine {
            greeting: p
                .greeting
                .clone()
                .unwrap_or_else(|| "Please leave a message after the tone.".into()),
        },
        "busy" => no_lines("busy").map(|_| Persona::Busy)?,
        "no-answer" => no_lines("no-answer").map(|_| Persona::NoAnswer)?,
        "failed" => no_lines("failed").map(|_| Persona::Failed)?,
        "fax" => no_lines("fax").map(|_| Persona::Fax)?,
        other => {
            return Err(format!(
                "unknown kind `{other}` (human, busy, no-answer, failed, machine, fax)"
            ))
        }
    })
}

/// `"text"`, `"[silence 2s]"`, `"[silence 500ms]"`, `"[key 9]"`, `"[hang up]"`.
fn line(text: &str) -> Result<CallerLine, String> {
    let t = text.trim();
    let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return Ok(CallerLine::Say(t.to_string()));
    };
    let inner = inner.trim().to_lowercase();
    if inner == "hang up" || inner == "hangup" {
        return Ok(CallerLine::HangUp);
    }
    if let Some(k) = inner.strip_prefix("key ") {
        let mut chars = k.trim().chars();
        return match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Ok(CallerLine::Key(c)),
            _ => Err(format!("`{text}`: a key is one of 0-9, * or #")),
        };
    }
    if let Some(d) = inner.strip_prefix("silence ") {
        let d = d.trim();
        let ms = if let Some(ms) = d.strip_suffix("ms") {
            ms.trim().parse::<u64>().ok()
        } else if let Some(s) = d.strip_suffix('s') {
            s.trim().parse::<f64>().ok().map(|s| (s * 1000.0) as u64)
        } else {
            None
        };
        return ms
            .map(|ms| CallerLine::Silence(Duration::from_millis(ms)))
            .ok_or_else(|| format!("`{text}`: write the silence as 2s or 500ms"));
    }
    Err(format!(
        "`{text}`: unknown action (use [silence 2s], [key 9] or [hang up])"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_and_errors_name_the_place() {
        let s = Scenario::from_toml(
            "s.toml",
            r#"
ring_ms = 200
[default]
kind = "human"
lines = ["Yes.", "[silence 1.5s]", "[key 9]", "[hang up]"]
[numbers."(415) 555-0101"]
kind = "machine"
greeting = "Leave a message."
[numbers."+14155550102"]
kind = "busy"
"#,
        )
        .unwrap();
        assert_eq!(s.ring, Duration::from_millis(200));
        match &s.default_persona {
            Persona::Human { lines } => {
                assert!(
                    matches!(lines[1], CallerLine::Silence(d) if d == Duration::from_millis(1500))
                );
                assert!(matches!(lines[2], CallerLine::Key('9')));
                assert!(matches!(lines[3], CallerLine::HangUp));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.personas["+14155550101"],
            Persona::Machine { .. }
        ));
        assert!(matches!(s.personas["+14155550102"], Persona::Busy));
        assert!(s.needs_voice());

        let err = Scenario::from_toml("s.toml", "[default]\nkind = \"robot\"").unwrap_err();
        assert!(err.to_string().contains("unknown kind `robot`"), "{err}");
        let err = Scenario::from_toml(
            "s.toml",
            "[numbers.\"+14155550102\"]\nkind = \"human\"\nlines = [\"[key 99]\"]",
        )
        .unwrap_err();
        assert!(err.to_string().contains("+14155550102"), "{err}");
        let err =
            Scenario::from_toml("s.toml", "[numbers.\"hello\"]\nkind = \"busy\"").unwrap_err();
        assert!(err.to_string().contains("numbers.\"hello\""), "{err}");
        assert!(!Scenario::quiet().needs_voice());
    }
}
