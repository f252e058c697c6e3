//! The Calls resource: what we send to create a call, what Twilio answers, how we list calls.
//! Form keys and JSON shapes are those of shared/docs/twilio.md ("REST: calls").

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};

use super::TwilioError;

/// Answering-machine detection mode (`MachineDetection` form value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineDetection {
    Enable,
    DetectMessageEnd,
}

impl MachineDetection {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            MachineDetection::Enable => "Enable",
            MachineDetection::DetectMessageEnd => "DetectMessageEnd",
        }
    }
}

/// Parameters of an outbound call (`POST Calls.json`).
#[derive(Debug, Clone, Default)]
pub struct CreateCall {
    pub to: String,
    pub from: String,
    /// TwiML URL Twilio fetches when the call connects.
    pub url: String,
    pub method: Option<String>,
    pub status_callback: Option<String>,
    /// Sent as one repeated `StatusCallbackEvent` form key per value (Twilio rejects a joined
    /// list); empty means initiated, ringing, answered, completed.
    pub status_callback_events: Vec<String>,
    pub machine_detection: Option<MachineDetection>,
    pub async_amd: bool,
    pub async_amd_status_callback: Option<String>,
    pub machine_detection_timeout: Option<u32>,
    /// Ring timeout in seconds (Twilio's default is 60).
    pub timeout: Option<u32>,
    /// Maximum call length in seconds.
    pub time_limit: Option<u32>,
}

const DEFAULT_STATUS_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

/// The subset of Twilio's call resource the product uses; unknown fields are ignored.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct CallResource {
    pub sid: String,
    pub status: String,
    /// `null` reads as "" so one odd call cannot fail a whole list page.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub to: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub from: String,
    #[serde(default)]
    pub direction: Option<String>,
    /// RFC 2822, e.g. `Tue, 31 Aug 2010 20:36:28 +0000`.
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    /// Seconds, as a string.
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub answered_by: Option<String>,
    #[serde(default)]
    pub account_sid: Option<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Filter for [`super::TwilioClient::list_calls`]: query keys `To`, `From`, `Status`, `StartTime>=`.
#[derive(Debug, Default, Clone)]
pub struct CallFilter {
    pub to: Option<String>,
    pub from: Option<String>,
    pub status: Option<String>,
    pub start_time_after: Option<NaiveDate>,
}

/// One page of `GET Calls.json`.
#[derive(Deserialize)]
pub(super) struct CallPage {
    pub(super) calls: Vec<CallResource>,
    #[serde(default)]
    pub(super) next_page_uri: Option<String>,
}

/// The form for `POST Calls.json`, in a stable order; repeated keys stay separate pairs.
pub(super) fn create_form(req: &CreateCall) -> Result<Vec<(&'static str, String)>, TwilioError> {
    for (name, value) in [("to", &req.to), ("from", &req.from), ("url", &req.url)] {
        if value.trim().is_empty() {
            return Err(TwilioError::InvalidConfig(format!(
                "create_call: `{name}` is empty"
            )));
        }
    }
    let mut form = vec![
        ("To", req.to.clone()),
        ("From", req.from.clone()),
        ("Url", req.url.clone()),
    ];
    if let Some(method) = &req.method {
        form.push(("Method", method.clone()));
    }
    if let Some(cb) = &req.status_callback {
        form.push(("StatusCallback", cb.clone()));
    }
    if req.status_callback_events.is_empty() {
        form.extend(
            DEFAULT_STATUS_EVENTS
                .iter()
                .map(|e| ("StatusCallbackEvent", (*e).to_owned())),
        );
    } else {
        form.extend(
            req.status_callback_events
                .iter()
                .map(|e| ("StatusCallbackEvent", e.clone())),
        );
    }
    if let Some(md) = req.machine_detection {
        form.push(("MachineDetection", md.as_str().to_owned()));
    }
    if req.async_amd {
        form.push(("AsyncAmd", "true".to_owned()));
    }
    if let Some(cb) = &req.async_amd_status_callback {
        form.push(("AsyncAmdStatusCallback", cb.clone()));
    }
    if let Some(t) = req.machine_detection_timeout {
        form.push(("MachineDetectionTimeout", t.to_string()));
    }
    if let Some(t) = req.timeout {
        form.push(("Timeout", t.to_string()));
    }
    if let Some(t) = req.time_limit {
        form.push(("TimeLimit", t.to_string()));
    }
    Ok(form)
}

/// Compares phone numbers/addresses ignoring formatting Twilio may normalise away.
pub(super) fn same_number(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect()
    };
    norm(a) == norm(b)
}
