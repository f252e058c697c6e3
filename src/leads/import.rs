//! Lead list import from CSV and JSON.
//!
//! Both formats funnel into one row pipeline (column roles -> phone ->
//! timezone -> consent -> duplicate check) so they accept and refuse exactly
//! the same leads. Problems with one row never sink the file: the row is
//! skipped with a [`RowError`] naming its row and the reason, so that
//! `leads.len() + errors.len()` always equals the number of data rows.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::phone::{normalize_phone, PhoneError};
use super::timezone::timezone_for_number;

/// A validated lead, ready to be stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewLead {
    /// E.164.
    pub phone: String,
    pub name: Option<String>,
    /// Every other column (lower-cased key), exposed to the script as variables.
    pub fields: BTreeMap<String, String>,
    /// IANA name, given or derived from the area code.
    pub timezone: String,
    /// Prior express written consent on file.
    pub consent: bool,
    /// Where the lead came from (web form, list vendor...).
    pub source: Option<String>,
}

/// A skipped row. `row` is the 1-based line in a CSV file (header = line 1)
/// or the 1-based index in a JSON array.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RowError {
    pub row: usize,
    pub reason: String,
}

/// Outcome of an import: the good leads and one error per skipped row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub leads: Vec<NewLead>,
    pub errors: Vec<RowError>,
}

/// Whole-file problems; anything row-level is a [`RowError`] instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImportError {
    #[error("could not read the lead file: {0}")]
    Read(String),
    #[error("the lead file is empty: a header row is required")]
    NoHeader,
    #[error("no phone column: name one phone, phone_number or number (columns found: {})", .found.join(", "))]
    MissingPhoneColumn { found: Vec<String> },
    #[error("column {0:?} appears more than once in the header")]
    DuplicateColumn(String),
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("expected a JSON array of lead objects, found {0}")]
    NotAnArray(&'static str),
}

/// Parses a CSV lead list with a header row; see the module docs.
///
/// Columns (case-insensitive, trimmed): `phone` (or `phone_number`,
/// `number`; required), `name`, `timezone` (or `tz`), `consent`, `source`;
/// any other column goes to `fields`. Blank lines, whitespace-only lines and
/// rows whose cells are all empty (spreadsheet filler) are skipped.
pub fn parse_csv<R: Read>(mut reader: R) -> Result<ImportReport, ImportError> {
    // Buffered whole: csv's own record positions point at the blank lines it
    // skipped, so we recover true line numbers from byte offsets instead.
    let mut data = Vec::new();
    reader
        .read_to_end(&mut data)
        .map_err(|e| ImportError::Read(e.to_string()))?;
    let mut lines = LineCounter::new(&data);
    let mut records = csv::ReaderBuilder::new()
        .has_headers(false) // we read the header ourselves to own its errors
        .flexible(true) // ragged rows become row errors, not a dead file
        .trim(csv::Trim::All)
        .from_reader(data.as_slice())
        .into_records();

    let header: Vec<String> = match records.next() {
        None => return Err(ImportError::NoHeader),
        Some(Err(e)) => return Err(ImportError::Read(e.to_string())),
        Some(Ok(rec)) => rec
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_lowercase())
            .collect(),
    };
    check_header(&header)?;
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if h.is_empty() {
                format!("column_{}", i + 1)
            } else {
                h.clone()
            }
        })
        .collect();

    let mut out = Collector::default();
    for rec in records {
        match rec {
            Ok(rec) => {
                // Whitespace-only lines and spreadsheet filler rows (",,,,")
                // count as blank lines.
                if rec.iter().all(str::is_empty) {
                    continue;
                }
                let row = lines.line_at(rec.position().map_or(u64::MAX, |p| p.byte()));
                if rec.len() != header.len() {
                    let reason = format!(
                        "wrong number of columns: expected {}, found {}",
                        header.len(),
                        rec.len()
                    );
                    out.push(row, Err(reason));
                    continue;
                }
                let cells = names
                    .iter()
                    .zip(&header)
                    .zip(rec.iter())
                    // Unnamed columns (trailing commas from spreadsheets) only matter if filled.
                    .filter(|((_, h), value)| !h.is_empty() || !value.is_empty())
                    .map(|((name, _), value)| (name.clone(), Some(value.to_owned())));
                out.push(row, finish(raw_lead(cells)));
            }
            Err(e) => match (e.kind(), e.position()) {
                (csv::ErrorKind::Utf8 { .. }, Some(pos)) => {
                    let row = lines.line_at(pos.byte());
                    out.push(row, Err("row is not valid UTF-8 text".into()));
                }
                _ => return Err(ImportError::Read(e.to_string())),
            },
        }
    }
    Ok(out.report)
}

/// 1-based line of a record from its byte offset, counting forward from the
/// previous record so a whole file costs one pass.
struct LineCounter<'a> {
    data: &'a [u8],
    cursor: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(data: &'a [u8]) -> Self {
        LineCounter {
            data,
            cursor: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, byte: u64) -> usize {
        let mut start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        // The offset may sit before blank lines the csv reader skipped.
        while matches!(self.data.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start < self.cursor {
            *self = LineCounter::new(self.data);
        }
        // Line breaks as the csv reader reads them: "\n", "\r\n" and a lone "\r" (old Mac
        // files) each end one line.
        let data = self.data;
        self.line += (self.cursor..start)
            .filter(|&i| match data[i] {
                b'\n' => true,
                b'\r' => data.get(i + 1) != Some(&b'\n'),
                _ => false,
            })
            .count();
        self.cursor = start;
        self.line
    }
}

/// Parses a JSON array of lead objects with the same keys as the CSV
/// columns. Values may be strings, numbers, bools or null (= absent);
/// `fields` may be a nested object of extra variables (top-level keys win).
pub fn parse_json(body: &[u8]) -> Result<ImportReport, ImportError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ImportError::InvalidJson(e.to_string()))?;
    let Value::Array(items) = value else {
        return Err(ImportError::NotAnArray(json_kind(&value)));
    };
    let mut out = Collector::default();
    for (i, item) in items.iter().enumerate() {
        out.push(i + 1, json_row(item).and_then(finish));
    }
    Ok(out.report)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whole-file header checks: no duplicate names, some phone column.
fn check_header(header: &[String]) -> Result<(), ImportError> {
    let mut seen = std::collections::HashSet::new();
    for h in header.iter().filter(|h| !h.is_empty()) {
        if !seen.insert(h.as_str()) {
            return Err(ImportError::DuplicateColumn(h.clone()));
        }
    }
    if !header
        .iter()
        .any(|h| matches!(role(h), Some((Role::Phone, _))))
    {
        return Err(ImportError::MissingPhoneColumn {
            found: header.to_vec(),
        });
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Phone,
    Name,
    Timezone,
    Consent,
    Source,
}

/// Role of a (lower-cased) column name and its rank among aliases: when a
/// file has both `phone` and `number`, `phone` is the phone and `number`
/// stays an ordinary field.
fn role(name: &str) -> Option<(Role, u8)> {
    Some(match name {
        "phone" => (Role::Phone, 0),
        "phone_number" => (Role::Phone, 1),
        "number" => (Role::Phone, 2),
        "name" => (Role::Name, 0),
        "timezone" => (Role::Timezone, 0),
        "tz" => (Role::Timezone, 1),
        "consent" => (Role::Consent, 0),
        "source" => (Role::Source, 0),
        _ => return None,
    })
}

/// A row with its columns sorted into roles, before validation.
#[derive(Debug, Default)]
struct RawLead {
    phone: Option<String>,
    name: Option<String>,
    timezone: Option<String>,
    consent: Option<String>,
    source: Option<String>,
    fields: BTreeMap<String, String>,
}

/// Sorts `(lower-cased name, value)` cells into roles; `None` = absent.
fn raw_lead(cells: impl Iterator<Item = (String, Option<String>)>) -> RawLead {
    let cells: Vec<(String, Option<String>)> = cells.collect();
    // Best-ranked column name present for each role.
    let mut best: HashMap<Role, (u8, &str)> = HashMap::new();
    for (name, _) in &cells {
        if let Some((r, rank)) = role(name) {
            let entry = best.entry(r).or_insert((rank, name.as_str()));
            if rank < entry.0 {
                *entry = (rank, name.as_str());
            }
        }
    }
    let chosen =
        |name: &str| role(name).filter(|(r, _)| best.get(r).is_some_and(|&(_, n)| n == name));

    let mut raw = RawLead::default();
    for (name, value) in &cells {
        let Some((r, _)) = chosen(name) else {
            if let Some(v) = value {
                raw.fields.insert(name.clone(), v.clone());
            }
            continue;
        };
        let value = value
            .as_ref()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let slot = match r {
            Role::Phone => &mut raw.phone,
            Role::Name => &mut raw.name,
            Role::Timezone => &mut raw.timezone,
            Role::Consent => &mut raw.consent,
            Role::Source => &mut raw.source,
        };
        *slot = value;
    }
    raw
}

/// One JSON array element -> cells, then roles.
fn json_row(item: &Value) -> Result<RawLead, String> {
    let Value::Object(map) = item else {
        return Err(format!("expected a lead object, found {}", json_kind(item)));
    };
    let mut seen = std::collections::HashSet::new();
    let mut cells = Vec::with_capacity(map.len());
    let mut nested = Vec::new();
    for (key, value) in map {
        let name = key.trim().to_lowercase();
        if !seen.insert(name.clone()) {
            return Err(format!(
                "key {name:?} is given twice (keys are case-insensitive)"
            ));
        }
        match (name.as_str(), value) {
            ("fields", Value::Object(extra)) => {
                for (k, v) in extra {
                    let k = k.trim().to_lowercase();
                    let v = json_scalar(v).map_err(|kind| {
                        format!("fields.{k}: expected a string, number or bool, found {kind}")
                    })?;
                    nested.push((k, v));
                }
            }
            ("fields", Value::Null) => {}
            ("fields", other) => {
                return Err(format!(
                    "fields: expected an object, found {}",
                    json_kind(other)
                ))
            }
            _ => {
                let v = json_scalar(value).map_err(|kind| {
                    format!("{name}: expected a string, number or bool, found {kind}")
                })?;
                cells.push((name, v));
            }
        }
    }
    let mut raw = raw_lead(cells.into_iter());
    for (k, v) in nested {
        if let Some(v) = v {
            // Top-level keys win over the nested object.
            raw.fields.entry(k).or_insert(v);
        }
    }
    Ok(raw)
}

/// Scalar JSON value as text; `Err(kind)` for arrays and objects.
fn json_scalar(v: &Value) -> Result<Option<String>, &'static str> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.trim().to_owned())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(json_kind(other)),
    }
}

/// Validates a sorted row into a lead, or says why not.
fn finish(raw: RawLead) -> Result<NewLead, String> {
    let given = raw.phone.unwrap_or_default();
    let phone = normalize_phone(&given).map_err(|e| match e {
        PhoneError::Empty => "missing phone number".to_owned(),
        e => format!("invalid phone {given:?}: {e}"),
    })?;
    let timezone = match raw.timezone {
        Some(name) => parse_tz(&name).ok_or_else(|| {
            format!("unknown timezone {name:?}: expected an IANA name such as America/New_York")
        })?,
        None => timezone_for_number(&phone).ok_or_else(|| {
            format!("no timezone given and none can be derived from {phone}; add a timezone column")
        })?,
    };
    let consent = match raw.consent.as_deref() {
        None => false,
        Some(v) => parse_consent(v).ok_or_else(|| {
            format!("invalid consent value {v:?}: expected yes/no, true/false, y/n or 1/0")
        })?,
    };
    Ok(NewLead {
        phone,
        name: raw.name,
        fields: raw.fields,
        timezone: timezone.name().to_owned(),
        consent,
        source: raw.source,
    })
}

/// IANA name, exact first, then ignoring case ("america/new_york").
fn parse_tz(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok().or_else(|| {
        chrono_tz::TZ_VARIANTS
            .iter()
            .copied()
            .find(|tz| tz.name().eq_ignore_ascii_case(name))
    })
}

fn parse_consent(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" => Some(true),
        "no" | "n" | "false" | "0" | "" => Some(false),
        _ => None,
    }
}

/// Accumulates the report and rejects phones already imported.
#[derive(Default)]
struct Collector {
    report: ImportReport,
    first_row: HashMap<String, usize>,
}

impl Collector {
    fn push(&mut self, row: usize, lead: Result<NewLead, String>) {
        let reason = match lead {
            Ok(lead) => match self.first_row.get(&lead.phone) {
                Some(first) => format!("duplicate of row {first}"),
                None => {
                    self.first_row.insert(lead.phone.clone(), row);
                    self.report.leads.push(lead);
                    return;
                }
            },
            Err(reason) => reason,
        };
        self.report.errors.push(RowError { row, reason });
    }
}

#[cfg(test)]
mod tests;
