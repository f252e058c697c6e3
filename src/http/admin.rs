//! The admin API (bearer token): campaigns, lead import, start/pause, calls with their
//! transcripts, the do-not-call list, CSV export. Thin: the store and the dialer do the work.

use std::borrow::Cow;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::bearer::Bearer;
use super::{AppError, AppState};
use crate::dialer::Dialer;
use crate::leads::{normalize_phone, ImportReport};
use crate::model::api::{CampaignView, DeliveryPage, ImportResult, NewCampaign, NewDnc};
use crate::model::{Campaign, CampaignState};
use crate::store::{Store, MAX_DELIVERY_PAGE};

fn store(state: &AppState) -> Result<&Store, AppError> {
    state.store.as_ref().ok_or(AppError::NoStore)
}

fn dialer(state: &AppState) -> Result<&Dialer, AppError> {
    state.dialer.as_ref().ok_or_else(|| {
        AppError::NoDialer(
            state
                .dialer_off
                .clone()
                .unwrap_or_else(|| "this appliance runs without a database".into()),
        )
    })
}

/// A campaign with its lead counts and, if its loop here is failing, why and since when.
async fn view(
    state: &AppState,
    store: &Store,
    campaign: Campaign,
) -> Result<CampaignView, AppError> {
    let leads = store.lead_counts(&campaign.id).await?;
    let dialer_error = state.dialer.as_ref().and_then(|d| d.fault(&campaign.id));
    Ok(CampaignView {
        campaign,
        leads,
        dialer_error,
    })
}

/// The store, and the campaign must exist (404 names it).
async fn campaign_store<'a>(state: &'a AppState, id: &str) -> Result<&'a Store, AppError> {
    let store = store(state)?;
    store.campaign(id).await?;
    Ok(store)
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))
}

pub(super) async fn create_campaign(
    _: Bearer,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CampaignView>), AppError> {
    let campaign = new_campaign(&state, json_body(&body)?).await?;
    let store = store(&state)?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state, store, campaign).await?),
    ))
}

/// Checks and creates a campaign (the API and the console): a broken script or unlawful
/// settings are refused now, not at the first call.
pub(super) async fn new_campaign(state: &AppState, new: NewCampaign) -> Result<Campaign, AppError> {
    let id_ok = !new.id.is_empty()
        && new.id.len() <= 64
        && new
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(AppError::BadRequest(
            "id: 1-64 letters, digits, `-` or `_`".into(),
        ));
    }
    let script = new
        .script
        .unwrap_or_else(|| crate::script::EXAMPLE_SCRIPT.to_string());
    let probe = Campaign {
        id: new.id.clone(),
        name: new.name.clone(),
        script_toml: script.clone(),
        settings: new.settings.clone(),
        state: CampaignState::Draft,
        created_at_ms: 0,
    };
    Dialer::check_campaign(&probe).map_err(AppError::BadRequest)?;
    if new.settings.crm_webhook_url.is_some() && state.config.secrets.crm_secret.is_none() {
        return Err(AppError::BadRequest(
            "settings.crm_webhook_url needs TELEMARKETER_CRM_SECRET set on the appliance \
             (webhooks are signed with it)"
                .into(),
        ));
    }
    Ok(store(state)?
        .create_campaign(&new.id, &new.name, &script, &new.settings)
        .await?)
}

pub(super) async fn list_campaigns(
    _: Bearer,
    State(state): State<AppState>,
) -> Result<Json<Vec<CampaignView>>, AppError> {
    let store = store(&state)?;
    let mut out = Vec::new();
    for campaign in store.campaigns().await? {
        out.push(view(&state, store, campaign).await?);
    }
    Ok(Json(out))
}

pub(super) async fn get_campaign(
    _: Bearer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, AppError> {
    let store = store(&state)?;
    let campaign = store.campaign(&id).await?;
    Ok(Json(view(&state, store, campaign).await?))
}

/// Leads as CSV (`text/csv`) or a JSON array (`application/json`).
pub(super) async fn import_leads(
    _: Bearer,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<ImportResult>), AppError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let result = import(store(&state)?, &id, &body, is_json).await?;
    Ok((StatusCode::OK, Json(result)))
}

/// Imports the good rows of a lead file; the bad ones come back with their reasons.
pub(super) async fn import(
    store: &Store,
    id: &str,
    body: &[u8],
    is_json: bool,
) -> Result<ImportResult, AppError> {
    let parsed: ImportReport = if is_json {
        crate::leads::parse_json(body)
    } else {
        crate::leads::parse_csv(body)
    }
    .map_err(|e| AppError::BadRequest(format!("leads file: {e}")))?;
    let inserted = store.insert_leads(id, &parsed.leads).await?;
    Ok(ImportResult {
        imported: inserted.inserted,
        duplicates: inserted.duplicates,
        errors: parsed.errors,
    })
}

/// `start`, `pause`, `resume`, `stop`.
pub(super) async fn campaign_action(
    _: Bearer,
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<CampaignView>, AppError> {
    act(&state, &id, &action).await?;
    let store = store(&state)?;
    let campaign = store.campaign(&id).await?;
    Ok(Json(view(&state, store, campaign).await?))
}

/// Starts, pauses, resumes or stops a campaign's dialing.
pub(super) async fn act(state: &AppState, id: &str, action: &str) -> Result<(), AppError> {
    let target = match action {
        "start" | "resume" => CampaignState::Running,
        "pause" => CampaignState::Paused,
        "stop" => CampaignState::Stopped,
        other => {
            return Err(AppError::NotFound(format!(
                "action `{other}` (use start, pause, resume or stop)"
            )))
        }
    };
    dialer(state)?.set_state(id, target).await?;
    Ok(())
}

pub(super) async fn campaign_calls(
    _: Bearer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let store = campaign_store(&state, &id).await?;
    Ok(Json(store.calls(&id).await?))
}

pub(super) async fn campaign_leads(
    _: Bearer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let store = campaign_store(&state, &id).await?;
    Ok(Json(store.leads(&id).await?))
}

pub(super) async fn campaign_audit(
    _: Bearer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let store = campaign_store(&state, &id).await?;
    Ok(Json(store.audit_log(&id).await?))
}

/// `GET /v1/campaigns/{id}/deliveries?limit=&before=`: the CRM delivery log, newest first.
pub(super) async fn campaign_deliveries(
    _: Bearer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(page): Query<DeliveryPage>,
) -> Result<impl IntoResponse, AppError> {
    let store = campaign_store(&state, &id).await?;
    let limit = page.limit.unwrap_or(100).clamp(1, MAX_DELIVERY_PAGE);
    Ok(Json(store.deliveries(&id, limit, page.before).await?))
}

/// A cell a spreadsheet will not run as a formula (CSV injection): one starting with `=`,
/// `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, which spreadsheets show as
/// text. A phone number in E.164 (`+14155550123`) is left alone: it is what the column holds
/// and no spreadsheet evaluates it. Names, outcomes and captured variables come from lead
/// files and callers, so nothing else is trusted.
pub(super) fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !crate::leads::is_e164(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// One row per lead: its final state and outcome, its latest call and captured variables,
/// every cell [`spreadsheet_safe`].
pub(super) async fn export_csv(
    _: Bearer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let store = campaign_store(&state, &id).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "phone",
        "name",
        "state",
        "outcome",
        "attempts",
        "last_call_sid",
        "call_status",
        "answered_by",
        "duration_s",
        "variables",
    ];
    let io = |e: csv::Error| AppError::Internal(format!("csv: {e}"));
    w.write_record(header).map_err(io)?;
    for lead in store.leads(&id).await? {
        let call = store.latest_call_for_lead(lead.id).await?;
        let vars = call
            .as_ref()
            .map(|c| {
                c.variables
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        let cells = [
            lead.phone.as_str(),
            lead.name.as_deref().unwrap_or(""),
            lead.state.as_str(),
            lead.outcome.as_deref().unwrap_or(""),
            &lead.attempts.to_string(),
            call.as_ref().map(|c| c.sid.as_str()).unwrap_or(""),
            call.as_ref().map(|c| c.status.as_str()).unwrap_or(""),
            call.as_ref()
                .and_then(|c| c.answered_by.as_deref())
                .unwrap_or(""),
            &call
                .as_ref()
                .and_then(|c| c.duration_s)
                .map(|d| d.to_string())
                .unwrap_or_default(),
            &vars,
        ];
        let safe: Vec<Cow<'_, str>> = cells.iter().map(|c| spreadsheet_safe(c)).collect();
        w.write_record(safe.iter().map(|c| c.as_bytes()))
            .map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| AppError::Internal(format!("csv: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes))
}

/// A stored call: status history, transcript with per-turn latency, outcome, variables.
pub(super) async fn call_record(
    _: Bearer,
    State(state): State<AppState>,
    Path(sid): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(store(&state)?.call_detail(&sid).await?))
}

pub(super) async fn dnc_list(
    _: Bearer,
    State(state): State<AppState>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(store(&state)?.dnc_list().await?))
}

pub(super) async fn dnc_add(
    _: Bearer,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, AppError> {
    let new: NewDnc = json_body(&body)?;
    let phone =
        normalize_phone(&new.phone).map_err(|e| AppError::BadRequest(format!("phone: {e}")))?;
    let store = store(&state)?;
    store
        .add_dnc(
            &phone,
            new.reason.as_deref().unwrap_or("added by an operator"),
            "api",
        )
        .await?;
    store
        .console_audit(
            "api",
            "dnc_add",
            &format!("{phone}: {}", new.reason.as_deref().unwrap_or("")),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(store.dnc_entry(&phone).await?)))
}

pub(super) async fn dnc_remove(
    _: Bearer,
    State(state): State<AppState>,
    Path(phone): Path<String>,
) -> Result<StatusCode, AppError> {
    let phone = normalize_phone(&phone).map_err(|e| AppError::BadRequest(format!("phone: {e}")))?;
    let store = store(&state)?;
    if store.remove_dnc(&phone).await? {
        store.console_audit("api", "dnc_remove", &phone).await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound(format!(
            "{phone} on the do-not-call list"
        )))
    }
}

#[cfg(test)]
mod tests;
