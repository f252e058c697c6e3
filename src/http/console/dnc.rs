//! The do-not-call list: add, remove (an operator's reason is required and kept), CSV export;
//! every change is audited with who made it.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::auth::audit;
use super::{back, csrf, failed, flash, page, store, when, Operator, Reply};
use crate::http::admin::spreadsheet_safe;
use crate::http::AppState;
use crate::leads::normalize_phone;

#[derive(Deserialize)]
pub struct Flash {
    ok: Option<String>,
    error: Option<String>,
}

pub async fn list(op: Operator, State(state): State<AppState>, Query(f): Query<Flash>) -> Reply {
    let store = store(&state)?;
    let (list, changes) = match (
        store.dnc_list().await,
        store.console_audit_log("dnc_", 50).await,
    ) {
        (Ok(l), Ok(c)) => (l, c),
        (Err(e), _) | (_, Err(e)) => return Err(failed(e)),
    };
    Ok(page(
        &op,
        "Do-not-call",
        html! {
            (flash(f.ok.as_deref(), f.error.as_deref()))
            form.add method="post" action="/dnc" {
                (csrf(&op))
                label { "Phone" input name="phone" required placeholder="+14155550123"; }
                label { "Reason" input name="reason" required placeholder="asked by email"; }
                button type="submit" { "Add" }
            }
            p { a.button href="/dnc.csv" download { "Export CSV" } " " span.muted { (list.len()) " numbers" } }
            table.dnc {
                thead { tr { th { "Phone" } th { "Reason" } th { "Source" } th { "Added" } th { "Remove (why)" } } }
                tbody {
                    @for e in &list {
                        tr data-phone=(e.phone) {
                            td { (e.phone) } td { (e.reason) } td { (e.source) } td { (when(e.added_at_ms)) }
                            td {
                                form.remove method="post" action="/dnc/remove" {
                                    (csrf(&op))
                                    input type="hidden" name="phone" value=(e.phone);
                                    input name="reason" required placeholder="why" aria-label={ "why remove " (e.phone) };
                                    button type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Changes" }
            table.changes {
                thead { tr { th { "When" } th { "Who" } th { "Change" } th { "Detail" } } }
                tbody { @for c in &changes { tr { td { (when(c.at_ms)) } td { (c.username) } td { (c.action) } td { (c.detail) } } } }
            }
        },
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct Change {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    phone: String,
    #[serde(default)]
    reason: String,
}

pub async fn add(op: Operator, State(state): State<AppState>, Form(f): Form<Change>) -> Reply {
    op.check_csrf(&f.csrf)?;
    let store = store(&state)?;
    let phone = match normalize_phone(&f.phone) {
        Ok(p) => p,
        Err(e) => return Ok(back("/dnc", Err(format!("phone {:?}: {e}", f.phone)))),
    };
    let reason = f.reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Ok(back(
            "/dnc",
            Err("a reason (at most 500 characters) is required".into()),
        ));
    }
    if let Err(e) = store.add_dnc(&phone, reason, "console").await {
        return Err(failed(e));
    }
    audit(
        store,
        &op.username,
        "dnc_add",
        &format!("{phone}: {reason}"),
    )
    .await;
    Ok(back("/dnc", Ok(format!("{phone} will not be called."))))
}

pub async fn remove(op: Operator, State(state): State<AppState>, Form(f): Form<Change>) -> Reply {
    op.check_csrf(&f.csrf)?;
    let store = store(&state)?;
    let reason = f.reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Ok(back(
            "/dnc",
            Err("removing a number needs a reason (at most 500 characters)".into()),
        ));
    }
    let phone = match normalize_phone(&f.phone) {
        Ok(p) => p,
        Err(e) => return Ok(back("/dnc", Err(format!("phone {:?}: {e}", f.phone)))),
    };
    match store.remove_dnc(&phone).await {
        Ok(true) => {
            audit(
                store,
                &op.username,
                "dnc_remove",
                &format!("{phone}: {reason}"),
            )
            .await;
            Ok(back("/dnc", Ok(format!("{phone} removed from the list."))))
        }
        Ok(false) => Ok(back("/dnc", Err(format!("{phone} is not on the list.")))),
        Err(e) => Err(failed(e)),
    }
}

pub async fn export(_: Operator, State(state): State<AppState>) -> Reply {
    let store = store(&state)?;
    let list = store.dnc_list().await.map_err(failed)?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut rows = vec![["phone", "reason", "source", "added_at"].map(String::from)];
    rows.extend(list.iter().map(|e| {
        [&e.phone, &e.reason, &e.source, &when(e.added_at_ms)]
            .map(|c| spreadsheet_safe(c).into_owned())
    }));
    for row in rows {
        if let Err(e) = w.write_record(&row) {
            return Err(failed(e));
        }
    }
    match w.into_inner() {
        Ok(bytes) => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"do-not-call.csv\"",
                ),
            ],
            bytes,
        )
            .into_response()),
        Err(e) => Err(failed(e)),
    }
}
