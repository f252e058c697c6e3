//! Campaign pages: the list with lead counts, the create form (errors shown at their field),
//! a campaign with its leads, funnel, lead import (row errors listed) and dialing controls.

use std::collections::BTreeMap;

use axum::extract::{Multipart, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::{back, csrf, failed, flash, page, store, when, Operator, Page, Reply};
use crate::http::admin;
use crate::http::{AppError, AppState};
use crate::model::api::{ImportResult, NewCampaign};
use crate::model::{Campaign, CampaignSettings, CampaignState, Lead};
use crate::script::format::Script;

#[derive(Deserialize, Default)]
pub struct Flash {
    ok: Option<String>,
    error: Option<String>,
}

/// Lead counts by state and by outcome.
fn tally(leads: &[Lead]) -> (BTreeMap<&'static str, usize>, BTreeMap<String, usize>) {
    let mut states = BTreeMap::new();
    let mut outcomes = BTreeMap::new();
    for l in leads {
        *states.entry(l.state.as_str()).or_insert(0) += 1;
        if let Some(o) = &l.outcome {
            *outcomes.entry(o.clone()).or_insert(0) += 1;
        }
    }
    (states, outcomes)
}

fn counts(map: &BTreeMap<impl std::fmt::Display, usize>) -> Markup {
    html! {
        @if map.is_empty() { span.muted { "none" } }
        @for (k, n) in map { span.count { (k) ": " strong { (n) } } " " }
    }
}

pub async fn list(op: Operator, State(state): State<AppState>, Query(f): Query<Flash>) -> Reply {
    let store = store(&state)?;
    let campaigns = store.campaigns().await.map_err(failed)?;
    let mut rows = Vec::new();
    for c in campaigns {
        let leads = store.leads(&c.id).await.map_err(failed)?;
        rows.push((c, tally(&leads)));
    }
    Ok(page(
        &op,
        "Campaigns",
        html! {
            (flash(f.ok.as_deref(), f.error.as_deref()))
            table.campaigns {
                thead { tr { th { "Campaign" } th { "State" } th { "Leads by state" } th { "Outcomes" } } }
                tbody {
                    @for (c, (states, outcomes)) in &rows {
                        tr {
                            td { a href={ "/campaigns/" (c.id) } { (c.name) } br; small.muted { (c.id) } }
                            td { span class={ "state " (c.state.as_str()) } { (c.state.as_str()) } }
                            td { (counts(states)) }
                            td { (counts(outcomes)) }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="4" .muted { "No campaigns yet: create one below." } } }
                }
            }
            h2 { "New campaign" }
            (create_form(&op, &NewForm::default(), &[]))
        },
    )
    .into_response())
}

/// The create form's fields, kept on an error so nothing typed is lost.
#[derive(Deserialize, Default)]
pub struct NewForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    from_number: String,
    #[serde(default)]
    max_concurrent: String,
    #[serde(default)]
    window_start: String,
    #[serde(default)]
    window_end: String,
    #[serde(default)]
    machine_detection: Option<String>,
    /// Record both sides of each call (the script's disclosure must say so).
    #[serde(default)]
    recording: Option<String>,
    /// Empty: the shipped solar script.
    #[serde(default)]
    script: String,
    /// More settings as JSON (any `CampaignSettings` key).
    #[serde(default)]
    settings_json: String,
}

/// The fields an error may name, in form order.
const FIELDS: [&str; 7] = [
    "id",
    "name",
    "from_number",
    "max_concurrent",
    "window",
    "script",
    "settings",
];

fn field_errors<'a>(errors: &'a [String], field: &str) -> Vec<&'a str> {
    errors
        .iter()
        .filter(|e| owner(e) == Some(field))
        .map(String::as_str)
        .collect()
}

/// Which field an error is about (its first word names a setting or the script; settings'
/// checks may say `settings: <field> ...`).
fn owner(error: &str) -> Option<&'static str> {
    let named = |head: &str| {
        FIELDS.into_iter().find(|f| {
            head.starts_with(f)
                || (*f == "script"
                    && (head.contains("script")
                        || head.starts_with("node")
                        || head.starts_with("line ")))
        })
    };
    let inner = error
        .strip_prefix("settings: ")
        .or_else(|| error.strip_prefix("settings."));
    inner.and_then(named).or_else(|| named(error))
}

fn create_form(op: &Operator, f: &NewForm, errors: &[String]) -> Markup {
    let defaults = CampaignSettings::default();
    let field = |name: &str| -> Markup {
        html! { @for e in field_errors(errors, name) { span.field-error role="alert" { (e) } } }
    };
    let other: Vec<&String> = errors.iter().filter(|e| owner(e).is_none()).collect();
    html! {
        form.create method="post" action="/campaigns" {
            (csrf(op))
            @for e in other { p.error role="alert" { (e) } }
            label { "Id (in URLs)" input name="id" value=(f.id) required pattern="[A-Za-z0-9_-]{1,64}"; (field("id")) }
            label { "Name" input name="name" value=(f.name) required; (field("name")) }
            label { "Caller ID (E.164)" input name="from_number" value=(f.from_number) placeholder="+14155550100"; (field("from_number")) }
            label { "Calls at once" input name="max_concurrent" value=(if f.max_concurrent.is_empty() { defaults.max_concurrent.to_string() } else { f.max_concurrent.clone() }); (field("max_concurrent")) }
            label { "Calling window (lead's local time)"
                span.pair {
                    input name="window_start" value=(if f.window_start.is_empty() { defaults.window_start.clone() } else { f.window_start.clone() });
                    input name="window_end" value=(if f.window_end.is_empty() { defaults.window_end.clone() } else { f.window_end.clone() });
                }
                (field("window"))
            }
            label.check { input type="checkbox" name="machine_detection" value="on" checked[f.machine_detection.is_some() || f.id.is_empty()]; "Detect answering machines" }
            label.check { input type="checkbox" name="recording" value="on" checked[f.recording.is_some()]; "Record calls (both sides; the disclosure must say so)" }
            label { "Script (TOML; empty: the shipped solar script)" textarea name="script" rows="4" { (f.script) } (field("script")) }
            label { "More settings (JSON, e.g. {\"max_attempts\": 2})" textarea name="settings_json" rows="2" { (f.settings_json) } (field("settings")) }
            button type="submit" { "Create campaign" }
        }
    }
}

fn settings_from(f: &NewForm) -> Result<CampaignSettings, Vec<String>> {
    let mut value = if f.settings_json.trim().is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_str::<serde_json::Value>(&f.settings_json)
            .map_err(|e| vec![format!("settings: not JSON: {e}")])?
    };
    let Some(map) = value.as_object_mut() else {
        return Err(vec!["settings: must be a JSON object".into()]);
    };
    map.insert("from_number".into(), f.from_number.trim().into());
    if !f.max_concurrent.trim().is_empty() {
        let n: u32 = f.max_concurrent.trim().parse().map_err(|_| {
            vec![format!(
                "max_concurrent must be a whole number (got {:?})",
                f.max_concurrent
            )]
        })?;
        map.insert("max_concurrent".into(), n.into());
    }
    for (key, v) in [
        ("window_start", &f.window_start),
        ("window_end", &f.window_end),
    ] {
        if !v.trim().is_empty() {
            map.insert(key.into(), v.trim().into());
        }
    }
    map.insert(
        "machine_detection".into(),
        f.machine_detection.is_some().into(),
    );
    if f.recording.is_some() {
        map.insert("recording".into(), true.into());
    }
    serde_json::from_value(value).map_err(|e| vec![format!("settings: {e}")])
}

pub async fn create(op: Operator, State(state): State<AppState>, Form(f): Form<NewForm>) -> Reply {
    op.check_csrf(&f.csrf)?;
    let result = match settings_from(&f) {
        Ok(settings) => admin::new_campaign(
            &state,
            NewCampaign {
                id: f.id.trim().to_string(),
                name: f.name.trim().to_string(),
                script: (!f.script.trim().is_empty()).then(|| f.script.clone()),
                settings,
            },
        )
        .await
        .map_err(|e| split_problems(&e)),
        Err(errors) => Err(errors),
    };
    match result {
        Ok(c) => Ok(back(
            &format!("/campaigns/{}", c.id),
            Ok(format!("Campaign {} created.", c.name)),
        )),
        Err(errors) => {
            let mut page = page(
                &op,
                "Campaigns",
                html! { h2 { "New campaign" } (create_form(&op, &f, &errors)) },
            )
            .into_response();
            *page.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(page)
        }
    }
}

/// The checks name every problem in one message, `; `-separated.
/// A script's problems come as "campaign <id>: <where>: <why>; ...": each goes to the script
/// field.
fn split_problems(e: &AppError) -> Vec<String> {
    let text = e.to_string();
    match text
        .strip_prefix("campaign ")
        .and_then(|t| t.split_once(": "))
    {
        Some((_, problems)) => problems
            .split("; ")
            .map(|p| format!("script: {}", p.trim()))
            .collect(),
        None => text.split("; ").map(|p| p.trim().to_string()).collect(),
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    action: String,
}

pub async fn action(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Reply {
    op.check_csrf(&f.csrf)?;
    let path = format!("/campaigns/{id}");
    match admin::act(&state, &id, &f.action).await {
        Ok(()) => {
            if let Some(store) = state.store.as_ref() {
                super::auth::audit(
                    store,
                    &op.username,
                    "campaign_action",
                    &format!("{id}: {}", f.action),
                )
                .await;
            }
            Ok(back(
                &path,
                Ok(format!("Campaign {}.", done_word(&f.action))),
            ))
        }
        Err(e) => Ok(back(&path, Err(e.to_string()))),
    }
}

fn done_word(action: &str) -> &str {
    match action {
        "start" => "started",
        "pause" => "paused",
        "resume" => "resumed",
        "stop" => "stopped",
        other => other,
    }
}

pub async fn show(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(f): Query<Flash>,
) -> Response {
    match detail(&op, &state, &id, f, None).await {
        Ok(p) => p.into_response(),
        Err(r) => r,
    }
}

/// A lead file posted from the page (`multipart/form-data`: `_csrf`, `file`).
pub async fn import(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut form: Multipart,
) -> Reply {
    let (mut token, mut file, mut name) = (String::new(), None, String::new());
    loop {
        match form.next_field().await {
            Ok(Some(field)) => match field.name() {
                Some("_csrf") => token = field.text().await.unwrap_or_default(),
                Some("file") => {
                    name = field.file_name().unwrap_or("").to_string();
                    match field.bytes().await {
                        Ok(b) => file = Some(b),
                        Err(e) => {
                            return Ok(back(
                                &format!("/campaigns/{id}"),
                                Err(format!("upload failed: {e}")),
                            ))
                        }
                    }
                }
                _ => {}
            },
            Ok(None) => break,
            Err(e) => {
                return Ok(back(
                    &format!("/campaigns/{id}"),
                    Err(format!("upload failed: {e}")),
                ))
            }
        }
    }
    op.check_csrf(&token)?;
    let Some(file) = file.filter(|f| !f.is_empty()) else {
        return Ok(back(
            &format!("/campaigns/{id}"),
            Err("choose a CSV or JSON file to import".into()),
        ));
    };
    let store = store(&state)?;
    let is_json = name.to_ascii_lowercase().ends_with(".json");
    match admin::import(store, &id, &file, is_json).await {
        Ok(report) => {
            super::auth::audit(
                store,
                &op.username,
                "leads_import",
                &format!(
                    "{id}: {} imported, {} errors",
                    report.imported,
                    report.errors.len()
                ),
            )
            .await;
            match detail(&op, &state, &id, Flash::default(), Some(report)).await {
                Ok(p) => Ok(p.into_response()),
                Err(r) => Err(r),
            }
        }
        Err(e) => Ok(back(&format!("/campaigns/{id}"), Err(e.to_string()))),
    }
}

async fn detail(
    op: &Operator,
    state: &AppState,
    id: &str,
    f: Flash,
    report: Option<ImportResult>,
) -> Result<Page, Response> {
    let store = store(state)?;
    let c = store.campaign(id).await.map_err(failed)?;
    let leads = store.leads(id).await.map_err(failed)?;
    let calls = store.calls(id).await.map_err(failed)?;
    let (states, outcomes) = tally(&leads);
    let fault = state.dialer.as_ref().and_then(|d| d.fault(id));
    Ok(page(
        op,
        &format!("Campaign {}", c.name),
        html! {
            (flash(f.ok.as_deref(), f.error.as_deref()))
            @if let Some(fault) = fault { p.error role="alert" { "Dialing is failing since " (when(fault.since_ms)) ": " (fault.error) } }
            section.summary {
                p { "State: " span class={ "state " (c.state.as_str()) } { (c.state.as_str()) } }
                p { "Leads: " (counts(&states)) }
                p { "Outcomes: " (counts(&outcomes)) }
                p.settings {
                    "Caller ID " (c.settings.from_number) " · " (c.settings.max_concurrent) " at once · window "
                    (c.settings.window_start) "-" (c.settings.window_end) " (lead's time) · "
                    @if c.settings.recording { span.recording { "recording on (kept " (c.settings.recording_retention_days) " days)" } }
                    @else { "not recorded" }
                }
                div.actions {
                    @for action in actions(c.state) {
                        form method="post" action={ "/campaigns/" (c.id) "/action" } {
                            (csrf(op))
                            input type="hidden" name="action" value=(action);
                            button type="submit" name="do" value=(action) { (action) }
                        }
                    }
                    a.button href={ "/scripts/" (c.id) } { "Script" }
                    a.button href={ "/calls?campaign=" (c.id) } { "Calls" }
                }
            }
            @if let Some(r) = &report {
                section.import-report {
                    h2 { "Import" }
                    p.ok role="status" { (r.imported) " imported, " (r.duplicates.len()) " already in the campaign, " (r.errors.len()) " rows refused." }
                    @if !r.errors.is_empty() {
                        table.row-errors {
                            thead { tr { th { "Row" } th { "Why it was not imported" } } }
                            tbody { @for e in &r.errors { tr { td { (e.row) } td { (e.reason) } } } }
                        }
                    }
                }
            }
            h2 { "Import leads" }
            form.import method="post" action={ "/campaigns/" (c.id) "/import" } enctype="multipart/form-data" {
                (csrf(op))
                input type="file" name="file" accept=".csv,.json,text/csv,application/json" required;
                button type="submit" { "Import" }
                small.muted { " CSV with a header: phone, name, timezone, consent, and any other columns the script may use." }
            }
            h2 { "Funnel" }
            (funnel(&c, &calls))
            h2 { "Leads" }
            table.leads {
                thead { tr { th { "Phone" } th { "Name" } th { "State" } th { "Outcome" } th { "Attempts" } th { "Next" } } }
                tbody {
                    @for l in &leads {
                        tr {
                            td { a href={ "/calls?phone=" (url_part(&l.phone)) } { (l.phone) } }
                            td { (l.name.as_deref().unwrap_or("")) }
                            td { (l.state.as_str()) }
                            td { (l.outcome.as_deref().unwrap_or("")) }
                            td { (l.attempts) }
                            td { (l.callback_at.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        },
    ))
}

fn url_part(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn actions(s: CampaignState) -> &'static [&'static str] {
    match s {
        CampaignState::Draft => &["start"],
        CampaignState::Running => &["pause", "stop"],
        CampaignState::Paused => &["resume", "stop"],
        CampaignState::Stopped | CampaignState::Completed => &[],
    }
}

/// Calls that reached each node (conversion from the first node) and each outcome.
fn funnel(c: &Campaign, calls: &[crate::model::StoredCall]) -> Markup {
    let Ok(script) = Script::from_toml(&c.id, &c.script_toml) else {
        return html! { p.error { "The campaign's script does not load." } };
    };
    let paths: Vec<Vec<String>> = calls
        .iter()
        .map(|c| c.path.clone())
        .filter(|p| !p.is_empty())
        .collect();
    let order = crate::script::graph::order(&script);
    let rows = crate::script::graph::funnel(&order, &paths);
    let top = rows
        .first()
        .map(|r| r.1)
        .unwrap_or(0)
        .max(paths.len())
        .max(1);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for call in calls {
        if let Some(o) = &call.outcome {
            *outcomes.entry(o.clone()).or_insert(0) += 1;
        }
    }
    html! {
        p.muted { (paths.len()) " conversations, " (calls.len()) " calls placed." }
        table.funnel {
            thead { tr { th { "Node" } th { "Calls" } th { "Of conversations" } } }
            tbody {
                @for (node, n) in &rows {
                    tr data-node=(node) {
                        td { (node) }
                        td { (n) }
                        td { span.bar style={ "width:" (n * 100 / top) "%" } {} " " (n * 100 / top) "%" }
                    }
                }
                @for (o, n) in &outcomes {
                    tr.outcome data-outcome=(o) {
                        td { "→ " (o) }
                        td { (n) }
                        td { span.bar style={ "width:" (n * 100 / top) "%" } {} " " (n * 100 / top) "%" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_error_lands_on_the_field_it_names() {
        for (error, field) in [
            (
                "max_concurrent must be 1..=1000 (got 0)",
                Some("max_concurrent"),
            ),
            ("window_start/window_end must be HH:MM", Some("window")),
            ("from_number must be E.164", Some("from_number")),
            ("id: 1-64 letters, digits, `-` or `_`", Some("id")),
            ("script.toml: line 3: unknown field", Some("script")),
            ("settings: not JSON: expected value", Some("settings")),
            (
                "settings: max_concurrent must be 1..=1000 (got 0)",
                Some("max_concurrent"),
            ),
            ("something else entirely", None),
        ] {
            assert_eq!(owner(error), field, "{error}");
        }
    }

    #[test]
    fn the_form_fields_become_settings_and_bad_json_is_named() {
        let f = NewForm {
            from_number: "+14155550100".into(),
            max_concurrent: "3".into(),
            settings_json: r#"{"max_attempts": 2}"#.into(),
            ..Default::default()
        };
        let s = settings_from(&f).unwrap();
        assert_eq!(
            (s.max_concurrent, s.max_attempts, s.machine_detection),
            (3, 2, false)
        );
        assert!(!s.recording);
        let on = NewForm {
            recording: Some("on".into()),
            ..Default::default()
        };
        assert!(settings_from(&on).unwrap().recording);
        let bad = NewForm {
            settings_json: "{nope".into(),
            ..Default::default()
        };
        assert!(settings_from(&bad).unwrap_err()[0].starts_with("settings: not JSON"));
        let bad = NewForm {
            max_concurrent: "many".into(),
            ..Default::default()
        };
        assert!(settings_from(&bad).unwrap_err()[0].starts_with("max_concurrent"));
    }
}
