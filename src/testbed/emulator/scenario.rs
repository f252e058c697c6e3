//! Rehearsal scenarios as TOML: who answers which number, for `telemarketer emulator` and
//! `rehearse` (the acceptance corpus, [`crate::testbed::corpus`], reuses the persona part).
//!
//! ```toml
//! ring_ms = 500
//! [default]                      # everyone not listed below
//! kind = "human"                 # human | busy | no-answer | failed | machine | fax
//! lines = ["Yes, go ahead.", "[silence 2s]", "[key 9]", "[hang up]"]
//! voice = "en-us+m3"             # espeak-ng voice, or "piper" (the default: the configured TTS)
//! wpm = 150                      # speaking speed with espeak-ng
//! noise_db = -40                 # line noise under everything the caller sends
//! patience_ms = 800              # how long the agent must be quiet before the caller answers
//! [numbers."+14155550101"]
//! kind = "machine"
//! greeting = "Hi, you have reached Sam. Leave a message after the tone."
//! [numbers."+14155550107"]
//! kind = "human"
//! lines = ["I am busy, can you call me back tomorrow at ten?"]
//! [numbers."+14155550107".then]  # who answers the next call to that number (the callback);
//! kind = "human"                 # `then` nests for a third, and the last one answers the rest
//! lines = ["Yes, go ahead."]
//! ```
//!
//! A number our server `<Dial>`s (a transfer to a person) answers as its entry too: `human`
//! answers after the ring and hears the whisper, `no-answer` lets the dial time out, `busy` is
//! busy (the advisors' line of `scripts/campaigns/solar-rehearsal.toml`).
//!
//! The line mini-language: a plain string is said after the agent has spoken and then been
//! quiet (`patience`); an action in brackets changes what happens next:
//! - `[silence 1.2s]`: stay quiet, then the next line starts regardless of the agent (between two
//!   lines: a pause mid-turn, and both lines are one turn);
//! - `[over 300ms]`: the next line starts 300 ms after the agent starts talking (barge-in at a
//!   chosen phase: over the disclosure, late in a fixed line, over the goodbye);
//! - `[mumble 2s]`: quiet unintelligible speech; `[key 9]`: a keypad press;
//! - `[hang up]`; `[hang up after 800ms]`: hang up 800 ms into the next line (mid-sentence);
//! - `[raw {"event":"bogus"}]`, `[binary]`: a malformed text frame, a binary frame;
//! - `[voice en-gb+f2 190wpm]`, `[noise -35dB]`, `[noise off]`, `[patience 1.5s]`: settings for
//!   the lines after (the persona fields above set them for the whole call).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::{CallerLine, Persona};
use crate::testbed::voice::Voice;

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
    #[serde(default)]
    voice: Option<String>,
    #[serde(default)]
    wpm: Option<u32>,
    #[serde(default)]
    noise_db: Option<f32>,
    #[serde(default)]
    patience_ms: Option<u64>,
    /// Who answers the next call to the same number (a callback), and so on.
    #[serde(default)]
    then: Option<Box<RawPersona>>,
}

/// How a person sounds and behaves, for every line: the persona fields of the module docs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Manner {
    pub voice: Option<String>,
    pub wpm: Option<u32>,
    pub noise_db: Option<f32>,
    pub patience_ms: Option<u64>,
}

impl Manner {
    /// The settings as leading lines, then the persona's lines.
    pub fn lines(&self, lines: &[String]) -> Result<Vec<CallerLine>, String> {
        let mut out = Vec::new();
        if self.voice.is_some() || self.wpm.is_some() {
            let name = self.voice.as_deref().unwrap_or("en-us");
            if let Some(w) = self.wpm.filter(|w| !(60..=450).contains(w)) {
                return Err(format!("wpm {w}: use 60-450"));
            }
            out.push(CallerLine::Voice(Voice::named(name, self.wpm)));
        }
        if let Some(db) = self.noise_db {
            if db >= 0.0 {
                return Err(format!("noise_db {db}: use a level below full scale (-40)"));
            }
            out.push(CallerLine::Noise(Some(db)));
        }
        if let Some(ms) = self.patience_ms {
            out.push(CallerLine::Patience(Duration::from_millis(ms)));
        }
        for l in lines {
            out.push(line(l)?);
        }
        Ok(out)
    }

    /// Settings from `over` win over these.
    pub fn or(&self, over: &Manner) -> Manner {
        Manner {
            voice: over.voice.clone().or_else(|| self.voice.clone()),
            wpm: over.wpm.or(self.wpm),
            noise_db: over.noise_db.or(self.noise_db),
            patience_ms: over.patience_ms.or(self.patience_ms),
        }
    }
}

/// A parsed scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub ring: Duration,
    pub default_persona: Persona,
    pub personas: HashMap<String, Persona>,
    /// Who answers the second, third... call to a number (`then`); after the last, the last.
    pub later: HashMap<String, Vec<Persona>>,
}

impl Scenario {
    /// Everyone answers and waits for the agent, then hangs up.
    pub fn quiet() -> Self {
        Self {
            ring: Duration::from_millis(500),
            default_persona: Persona::Human { lines: Vec::new() },
            personas: HashMap::new(),
            later: HashMap::new(),
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
        let mut later = HashMap::new();
        for (number, p) in &raw.numbers {
            let phone = crate::leads::normalize_phone(number)
                .map_err(|e| err(format!("numbers.\"{number}\": {e}")))?;
            let at = |r: String| err(format!("numbers.\"{number}\": {r}"));
            personas.insert(phone.clone(), persona(p).map_err(at)?);
            let mut next = Vec::new();
            let mut then = p.then.as_deref();
            while let Some(p) = then {
                next.push(persona(p).map_err(at)?);
                then = p.then.as_deref();
            }
            if !next.is_empty() {
                later.insert(phone, next);
            }
        }
        Ok(Self {
            ring: Duration::from_millis(raw.ring_ms.unwrap_or(500)),
            default_persona,
            personas,
            later,
        })
    }

    /// Whether any caller speaks with the configured TTS (the emulator then needs it).
    pub fn needs_voice(&self) -> bool {
        std::iter::once(&self.default_persona)
            .chain(self.personas.values())
            .chain(self.later.values().flatten())
            .any(Persona::needs_tts)
    }
}

fn persona(p: &RawPersona) -> Result<Persona, String> {
    let manner = Manner {
        voice: p.voice.clone(),
        wpm: p.wpm,
        noise_db: p.noise_db,
        patience_ms: p.patience_ms,
    };
    let no_lines = |kind: &str| {
        if p.lines.is_empty() && p.greeting.is_none() && manner == Manner::default() {
            Ok(())
        } else {
            Err(format!("kind `{kind}` takes no lines, greeting or voice"))
        }
    };
    Ok(match p.kind.as_str() {
        "human" => Persona::Human {
            lines: manner.lines(&p.lines)?,
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

/// One line of the mini-language (see the module docs).
pub fn line(text: &str) -> Result<CallerLine, String> {
    let t = text.trim();
    let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return Ok(CallerLine::Say(t.to_string()));
    };
    let inner = inner.trim();
    // A raw frame keeps its case and spacing.
    if inner.len() > 4 && inner[..4].eq_ignore_ascii_case("raw ") {
        return Ok(CallerLine::Raw(inner[4..].trim().to_string()));
    }
    let lower = inner.to_lowercase();
    let (word, rest) = split_action(&lower);
    let bad = |how: &str| Err(format!("`{text}`: {how}"));
    match word {
        "hang up" | "hangup" if rest.is_empty() => Ok(CallerLine::HangUp),
        "hang up" | "hangup" => match rest.strip_prefix("after ").and_then(duration) {
            Some(d) => Ok(CallerLine::HangUpAfter(d)),
            None => bad("write [hang up] or [hang up after 800ms]"),
        },
        "key" => {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => {
                    Ok(CallerLine::Key(c))
                }
                _ => bad("a key is one of 0-9, * or #"),
            }
        }
        "silence" | "over" | "mumble" | "patience" => match duration(rest) {
            Some(d) => Ok(match word {
                "silence" => CallerLine::Silence(d),
                "over" => CallerLine::Over(d),
                "mumble" => CallerLine::Mumble(d),
                _ => CallerLine::Patience(d),
            }),
            None => bad("write the time as 2s, 1.2s or 500ms"),
        },
        "binary" if rest.is_empty() => Ok(CallerLine::Binary),
        "noise" if rest == "off" => Ok(CallerLine::Noise(None)),
        "noise" => match rest
            .strip_suffix("db")
            .and_then(|d| d.trim().parse::<f32>().ok())
        {
            Some(db) if db < 0.0 => Ok(CallerLine::Noise(Some(db))),
            _ => bad("write the level as -40dB (below full scale), or off"),
        },
        "voice" => {
            let mut parts = rest.split_whitespace();
            let name = parts.next().unwrap_or("");
            let wpm = match parts.next() {
                None => None,
                Some(w) => match w.strip_suffix("wpm").and_then(|w| w.parse::<u32>().ok()) {
                    Some(w) if (60..=450).contains(&w) => Some(w),
                    _ => return bad("write the speed as 150wpm (60-450)"),
                },
            };
            if name.is_empty() || parts.next().is_some() {
                return bad("write [voice en-us+m3 150wpm] or [voice piper]");
            }
            Ok(CallerLine::Voice(Voice::named(name, wpm)))
        }
        _ => bad(
            "unknown action (silence, over, mumble, key, hang up, hang up after, raw, binary, \
             voice, noise, patience)",
        ),
    }
}

/// `"hang up after 1s"` -> `("hang up", "after 1s")`; `"key 9"` -> `("key", "9")`.
fn split_action(inner: &str) -> (&str, &str) {
    for two in ["hang up", "hangup"] {
        if let Some(rest) = inner.strip_prefix(two) {
            return (two, rest.trim());
        }
    }
    match inner.split_once(' ') {
        Some((w, rest)) => (w, rest.trim()),
        None => (inner, ""),
    }
}

/// `2s`, `1.2s`, `500ms`.
fn duration(d: &str) -> Option<Duration> {
    let d = d.trim();
    let ms = if let Some(ms) = d.strip_suffix("ms") {
        ms.trim().parse::<u64>().ok()?
    } else {
        let s = d.strip_suffix('s')?.trim().parse::<f64>().ok()?;
        if !(0.0..=3600.0).contains(&s) {
            return None;
        }
        (s * 1000.0).round() as u64
    };
    Some(Duration::from_millis(ms))
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

    #[test]
    fn the_mini_language_reads_every_action() {
        use crate::testbed::voice::Voice as V;
        use CallerLine as L;
        let ms = Duration::from_millis;
        assert_eq!(line("[over 300ms]"), Ok(L::Over(ms(300))));
        assert_eq!(line("[over 2.5s]"), Ok(L::Over(ms(2500))));
        assert_eq!(line("[silence 1.2s]"), Ok(L::Silence(ms(1200))));
        assert_eq!(line("[mumble 2s]"), Ok(L::Mumble(ms(2000))));
        assert_eq!(line("[hang up after 800ms]"), Ok(L::HangUpAfter(ms(800))));
        assert_eq!(line("[Hang Up]"), Ok(L::HangUp));
        assert_eq!(line("[key #]"), Ok(L::Key('#')));
        assert_eq!(
            line(r#"[raw {"event":"Bogus", "x": [1]}]"#),
            Ok(L::Raw(r#"{"event":"Bogus", "x": [1]}"#.into()))
        );
        assert_eq!(line("[binary]"), Ok(L::Binary));
        assert_eq!(line("[noise -35dB]"), Ok(L::Noise(Some(-35.0))));
        assert_eq!(line("[noise off]"), Ok(L::Noise(None)));
        assert_eq!(
            line("[voice en-gb+f2 190wpm]"),
            Ok(L::Voice(V::Espeak {
                name: "en-gb+f2".into(),
                wpm: 190
            }))
        );
        assert_eq!(line("[voice piper]"), Ok(L::Voice(V::Tts)));
        assert_eq!(line("[patience 1.5s]"), Ok(L::Patience(ms(1500))));
        assert_eq!(
            line("  Yes, go ahead. "),
            Ok(L::Say("Yes, go ahead.".into()))
        );
        for bad in [
            "[over soon]",
            "[noise 3dB]",
            "[voice]",
            "[voice en-us fast]",
            "[dance]",
            "[key 99]",
            "[hang up later]",
            "[silence -1s]",
        ] {
            assert!(line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn persona_fields_become_leading_lines() {
        let s = Scenario::from_toml(
            "s.toml",
            r#"
[default]
kind = "human"
voice = "en-us+m3"
wpm = 190
noise_db = -40
patience_ms = 1200
lines = ["Yes."]
"#,
        )
        .unwrap();
        let Persona::Human { lines } = &s.default_persona else {
            panic!("{:?}", s.default_persona)
        };
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(matches!(
            &lines[0],
            CallerLine::Voice(Voice::Espeak { wpm: 190, .. })
        ));
        assert_eq!(lines[1], CallerLine::Noise(Some(-40.0)));
        assert_eq!(lines[2], CallerLine::Patience(Duration::from_millis(1200)));
        // An espeak voice needs no TTS.
        assert!(!s.needs_voice());
        let err = Scenario::from_toml("s.toml", "[default]\nkind = \"busy\"\nvoice = \"en-us\"")
            .unwrap_err();
        assert!(err.to_string().contains("takes no lines"), "{err}");
        let err =
            Scenario::from_toml("s.toml", "[default]\nkind = \"human\"\nwpm = 5").unwrap_err();
        assert!(err.to_string().contains("wpm 5"), "{err}");
    }
}
