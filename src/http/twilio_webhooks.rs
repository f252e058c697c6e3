//! Twilio's voice webhook: answers with TwiML that connects the call to our media stream.
//! Every request must carry a valid `X-Twilio-Signature` (HMAC-SHA1 with the auth token over the
//! public URL and the sorted form parameters); unsigned requests are refused with 403.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;

use super::{AppError, AppState};
use crate::call::agent::{PUBLIC_URL_PARAM, TRANSFER_PARAM};
use crate::call::recording::recording_file;
use crate::call::registry::RegisterRefused;
use crate::model::{CallMetadata, StatusUpdate};
use crate::twilio::{signature, twiml};

/// The public base URL: configured, else from the Host header (behind a TLS proxy, configure it).
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// Checks `X-Twilio-Signature` over the public URL and the form; logs and refuses bad ones.
fn verify(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    params: &[(String, String)],
) -> Result<(), AppError> {
    let url = format!("{}{uri}", public_base(state, headers));
    check_signature(state, headers, &url, params, "Twilio webhook")
}

/// Checks a media stream's WebSocket upgrade: Twilio signs it as it signs a webhook, over the
/// stream's URL as our TwiML gave it (`wss://`, the `ws` form of the public URL) and no
/// parameters.
pub(super) fn verify_media(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> Result<(), AppError> {
    // Development on loopback only (the config refuses it on any other address).
    if state.config.allow_unregistered_media {
        return Ok(());
    }
    let url = format!("{}{uri}", ws_form(&public_base(state, headers)));
    check_signature(state, headers, &url, &[], "media stream upgrade")
}

fn check_signature(
    state: &AppState,
    headers: &HeaderMap,
    url: &str,
    params: &[(String, String)],
    what: &str,
) -> Result<(), AppError> {
    match state.config.secrets.twilio_auth_token.as_deref() {
        Some(token) => {
            let sig = headers
                .get("x-twilio-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if sig.is_empty() || !signature::validate(token, url, params, sig) {
                tracing::warn!(%url, signed = !sig.is_empty(), "{what} with a bad or missing signature rejected");
                return Err(AppError::BadSignature);
            }
            Ok(())
        }
        None if state.config.allow_unsigned_webhooks => Ok(()),
        None => {
            tracing::warn!("{what} refused: TWILIO_AUTH_TOKEN is not set");
            Err(AppError::BadSignature)
        }
    }
}

/// `https://host` -> `wss://host`: the media stream's scheme.
fn ws_form(base: &str) -> String {
    base.replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1)
}

pub(super) fn param(params: &[(String, String)], key: &str) -> Option<String> {
    params
        .iter()
        .find(|(n, _)| n == key)
        .map(|(_, v)| v.clone())
}

/// A Twilio form POST whose `X-Twilio-Signature` checked out: the extractor every webhook
/// takes, so no handler can forget the check.
pub(super) struct SignedForm {
    pub(super) params: Vec<(String, String)>,
    /// Our public base URL as Twilio sees it.
    pub(super) base: String,
    pub(super) uri: axum::http::Uri,
}

impl SignedForm {
    /// The pairs of the URL's query string (what we put in the webhook URL we gave Twilio).
    pub(super) fn query(&self) -> Vec<(String, String)> {
        serde_urlencoded_pairs(self.uri.query().unwrap_or_default().as_bytes())
    }
}

impl axum::extract::FromRequest<AppState> for SignedForm {
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, AppError> {
        let (parts, body) = req.into_parts();
        // Twilio's forms are small; anything bigger is not Twilio.
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .map_err(|e| AppError::BadRequest(format!("webhook body: {e}")))?;
        let params = serde_urlencoded_pairs(&bytes);
        verify(state, &parts.headers, &parts.uri, &params)?;
        Ok(Self {
            params,
            base: public_base(state, &parts.headers),
            uri: parts.uri,
        })
    }
}

pub(super) async fn voice(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<impl IntoResponse, AppError> {
    let xml = |body: String| ([(header::CONTENT_TYPE, "text/xml")], body);
    let query = form.query();
    let SignedForm { params, base, .. } = form;
    let call_sid = param(&params, "CallSid")
        .filter(|s| super::v1::is_call_sid(s))
        .ok_or_else(|| AppError::BadRequest("CallSid missing or not a call SID".into()))?;
    let answered_by = param(&params, "AnsweredBy");
    // A fax line gets nothing to hear.
    if answered_by.as_deref() == Some("fax") {
        return Ok(xml(twiml::hangup()));
    }
    // At the call limit (or stopping) the upgrade would be refused anyway: say busy instead
    // of dead air.
    if state.live.refuses() {
        tracing::warn!(
            max = state.live.max(),
            "call rejected as busy: too many calls, or stopping"
        );
        return Ok(xml(twiml::reject_busy()));
    }
    let mut stream_params = vec![("call_sid".to_string(), call_sid.clone())];
    for (key, name) in [
        ("From", "from"),
        ("To", "to"),
        ("AnsweredBy", "answered_by"),
    ] {
        if let Some(v) = param(&params, key) {
            stream_params.push((name.to_string(), v));
        }
    }
    // A dialed call names its campaign and lead in the URL we gave Twilio: the lead's fields
    // become the script's variables.
    let mut campaign = param(&query, "campaign");
    let mut lead_id = param(&query, "lead").and_then(|l| l.parse::<i64>().ok());
    // Twilio says who rang whom; a call we dialed carries its campaign in our URL.
    let inbound = match param(&params, "Direction") {
        Some(d) => d == "inbound",
        None => campaign.is_none(),
    };
    // A person rang one of our campaign numbers: that campaign's lead with their number (or a
    // new one), so the call has its memory and variables and its outcome reaches the lead.
    if let (true, None, Some(store), Some(from), Some(to)) = (
        inbound,
        &campaign,
        &state.store,
        param(&params, "From"),
        param(&params, "To"),
    ) {
        let zone = crate::leads::timezone_for_number(&from).unwrap_or(chrono_tz::America::New_York);
        match store.inbound_lead(&to, &from, zone.name()).await {
            Ok(Some((c, lead))) => {
                tracing::info!(%call_sid, campaign = %c.id, lead = lead.id, "inbound call for a campaign");
                // Its script, even when the campaign is not dialing (people ring back later).
                if state.session.scripts.get(&c.id).is_none() {
                    match crate::dialer::Dialer::check_campaign(&c) {
                        Ok((script, _)) => state.session.scripts.insert(&c.id, script),
                        Err(e) => {
                            tracing::error!(campaign = %c.id, error = %e, "inbound call: the campaign's script is invalid")
                        }
                    }
                }
                campaign = Some(c.id);
                lead_id = Some(lead.id);
            }
            Ok(None) => {}
            Err(e) => tracing::error!(%call_sid, error = %e, "cannot look up the inbound caller"),
        }
    }
    if let Some(campaign) = &campaign {
        stream_params.push(("campaign_id".into(), campaign.clone()));
    }
    if let (Some(lead_id), Some(store)) = (lead_id, &state.store) {
        match store.lead(lead_id).await {
            Ok(lead) => {
                stream_params.push(("lead_id".into(), lead.id.to_string()));
                // Typed answers ("tomorrow at three") resolve in the lead's zone and window.
                stream_params.push(("timezone".into(), lead.timezone.clone()));
                if let Ok(c) = store.campaign(&lead.campaign_id).await {
                    stream_params.push(("window_start".into(), c.settings.window_start));
                    stream_params.push(("window_end".into(), c.settings.window_end));
                    // A transfer node's destination, and where Twilio finds its webhooks.
                    if let Some(t) = &c.settings.transfer {
                        let json = serde_json::to_string(t).unwrap_or_default();
                        stream_params.push((TRANSFER_PARAM.into(), json));
                        stream_params.push((PUBLIC_URL_PARAM.into(), base.clone()));
                    }
                }
                if let Some(name) = lead.name {
                    stream_params.push(("name".into(), name));
                }
                for (k, v) in lead.fields {
                    if !stream_params.iter().any(|(n, _)| *n == k) {
                        stream_params.push((k, v));
                    }
                }
                if let Some(memory) = lead.memory {
                    remembered(&mut stream_params, memory);
                }
            }
            Err(e) => tracing::warn!(lead_id, error = %e, "voice webhook for an unknown lead"),
        }
    }
    let mut metadata = call_metadata(&state, &call_sid, &stream_params, inbound);
    // The campaign's choice, whatever the API registered: no campaign, no recording.
    metadata.record = campaign_records(&state, campaign.as_deref()).await;
    match state.registry.register(metadata) {
        Ok(record) => {
            super::v1::keep_record(&state, &record).await;
            if record.metadata.record && !note_recording(&state, &record.metadata).await {
                // Better unrecorded than recorded where the retention sweep cannot find it.
                let mut metadata = record.metadata;
                metadata.record = false;
                let _ = state.registry.register(metadata);
            }
        }
        Err(RegisterRefused::AlreadyStreamed(_)) => {
            tracing::warn!(%call_sid, "voice webhook for a call that has streamed already: hung up");
            return Ok(xml(twiml::hangup()));
        }
        Err(e @ RegisterRefused::Full) => {
            tracing::error!(error = %e, "call rejected as busy");
            return Ok(xml(twiml::reject_busy()));
        }
    }
    let xml_doc = twiml::connect_stream(
        &format!("{}/twilio/media", ws_form(&base)),
        &stream_params,
        true,
    );
    Ok(xml(xml_doc))
}

/// Does this campaign record its calls?
async fn campaign_records(state: &AppState, campaign: Option<&str>) -> bool {
    let (Some(id), Some(store)) = (campaign, &state.store) else {
        return false;
    };
    match store.campaign(id).await {
        Ok(c) => c.settings.recording,
        Err(e) => {
            tracing::error!(campaign = id, error = %e, "cannot read the campaign: the call is not recorded");
            false
        }
    }
}

/// Stores where the call's recording will be before its first sample is taken (the call row
/// exists: `keep_record` made it), so no recording exists that the store does not know.
async fn note_recording(state: &AppState, metadata: &CallMetadata) -> bool {
    let Some(store) = &state.store else {
        return false;
    };
    let path = recording_file(&state.session.recordings, &metadata.call_sid);
    let noted = store
        .set_recording(
            &metadata.call_sid,
            &path.to_string_lossy(),
            crate::store::now_ms(),
        )
        .await;
    match noted {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(call_sid = %metadata.call_sid, error = %e, "cannot note the recording: the call is not recorded");
            false
        }
    }
}

/// A lead's memory joins the call: the answers of earlier calls as script variables (newer
/// than the lead's columns of the same name, never over the call's own parameters, which are
/// set before), the summary as `memory` and that call's outcome as `last_outcome` (the
/// agent gives both to the script, not as variables).
fn remembered(stream_params: &mut Vec<(String, String)>, memory: crate::model::LeadMemory) {
    const OWN: &[&str] = &[
        "call_sid",
        "from",
        "to",
        "answered_by",
        "campaign_id",
        "lead_id",
        "timezone",
        "window_start",
        "window_end",
        "name",
    ];
    for (k, v) in memory.variables {
        if OWN.contains(&k.as_str()) {
            continue;
        }
        match stream_params.iter_mut().find(|(n, _)| *n == k) {
            Some(slot) => slot.1 = v,
            None => stream_params.push((k, v)),
        }
    }
    stream_params.retain(|(n, _)| n != "memory" && n != "last_outcome");
    stream_params.push(("memory".into(), memory.summary));
    stream_params.push(("last_outcome".into(), memory.outcome));
}

/// What the media stream will know of the call: what the API registered for it, if anything
/// (an external dialer's lead), completed with what this webhook learned.
fn call_metadata(
    state: &AppState,
    call_sid: &str,
    stream_params: &[(String, String)],
    inbound: bool,
) -> CallMetadata {
    let mut metadata = state
        .registry
        .get(call_sid)
        .map(|r| r.metadata)
        .unwrap_or_else(|| CallMetadata {
            call_sid: call_sid.to_string(),
            inbound,
            ..Default::default()
        });
    let get = |key: &str| param(stream_params, key);
    metadata.from = metadata.from.or_else(|| get("from"));
    metadata.to = metadata.to.or_else(|| get("to"));
    metadata.campaign_id = metadata.campaign_id.or_else(|| get("campaign_id"));
    for (k, v) in stream_params {
        metadata.lead.entry(k.clone()).or_insert_with(|| v.clone());
    }
    metadata
}

/// The status callback (`initiated`, `ringing`, `answered`, `completed`, or a failure): kept
/// in the call's history by `SequenceNumber`; a terminal one settles the lead.
pub(super) async fn status(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<axum::http::StatusCode, AppError> {
    let update = status_update(&form.params, "status")?;
    record_status(&state, update).await
}

/// The asynchronous AMD result (`AnsweredBy`): recorded on the call.
pub(super) async fn amd(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<axum::http::StatusCode, AppError> {
    let mut update = status_update(&form.params, "amd")?;
    if update.answered_by.is_none() {
        return Err(AppError::BadRequest(
            "AMD callback without AnsweredBy".into(),
        ));
    }
    update.status = "amd".into();
    record_status(&state, update).await
}

fn status_update(params: &[(String, String)], source: &str) -> Result<StatusUpdate, AppError> {
    let call_sid = param(params, "CallSid")
        .filter(|s| super::v1::is_call_sid(s))
        .ok_or_else(|| AppError::BadRequest("CallSid missing or not a call SID".into()))?;
    let sequence = match param(params, "SequenceNumber") {
        Some(n) => n
            .parse::<i64>()
            .map_err(|_| AppError::BadRequest(format!("SequenceNumber `{n}` is not a number")))?,
        // AMD callbacks carry no sequence: one per call.
        None if source == "amd" => 0,
        None => return Err(AppError::BadRequest("SequenceNumber missing".into())),
    };
    Ok(StatusUpdate {
        call_sid,
        source: source.into(),
        sequence,
        status: param(params, "CallStatus").unwrap_or_default(),
        answered_by: param(params, "AnsweredBy"),
        duration_s: param(params, "CallDuration").and_then(|d| d.parse().ok()),
        params: params.to_vec(),
    })
}

async fn record_status(
    state: &AppState,
    update: StatusUpdate,
) -> Result<axum::http::StatusCode, AppError> {
    if update.source == "status" && update.status.is_empty() {
        return Err(AppError::BadRequest("CallStatus missing".into()));
    }
    let applied = match (&state.dialer, &state.store) {
        (Some(dialer), _) => dialer.on_status(&update).await?,
        (None, Some(store)) => store.apply_status(&update).await?,
        (None, None) => {
            tracing::info!(call_sid = %update.call_sid, status = %update.status, "status callback (no store)");
            return Ok(axum::http::StatusCode::NO_CONTENT);
        }
    };
    tracing::info!(call_sid = %update.call_sid, status = %update.status, seq = update.sequence, ?applied, "status callback");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Form pairs in order, repeated keys kept (signatures cover every value).
fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}
