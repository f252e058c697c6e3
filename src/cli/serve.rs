//! `serve`: load the models, then serve Twilio's webhooks, the media WebSocket and the API.

use std::path::Path;

use anyhow::Context;
use telemarketer::app::{self, AppBuilder, Engines};

pub async fn run(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = super::config(config_path)?;
    let engines =
        tokio::task::block_in_place(|| Engines::load(&config)).context("cannot load the models")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(addr = %listener.local_addr()?, version = telemarketer::build_info::LONG_VERSION, "serving");
    if config.secrets.twilio_auth_token.is_none() && !config.allow_unsigned_webhooks {
        tracing::warn!("TWILIO_AUTH_TOKEN is not set: Twilio webhooks will be refused");
    }
    if config.allow_unregistered_media {
        tracing::warn!(
            "!!! server.allow_unregistered_media is ON: media streams are taken without a \
             Twilio signature and for calls nobody registered; development only, never expose \
             this port !!!"
        );
    }
    if config.store_url.starts_with("postgres") && config.twilio.worker_id == "telemarketer" {
        tracing::warn!(
            "twilio.worker_id is the default: appliances sharing this database must each set \
             their own, or they will take each other's claims for their own"
        );
    }
    let grace = config.shutdown_grace;
    let state = AppBuilder::new(config, &engines)
        .build()
        .await
        .context("cannot start the appliance")?;
    let registry = state.registry.clone();
    let store = state.store.clone();
    let crm = state.crm.clone();
    let stopping = stop_calls(&state, grace);
    app::serve(listener, state, stopping).await?;
    // Whatever live calls queued (transcript lines, verdicts) reaches the database before the
    // process ends; do-not-call entries were already committed before their callers heard so.
    tracing::info!("shutting down: writing queued call changes");
    if tokio::time::timeout(FLUSH_LIMIT, registry.flush())
        .await
        .is_err()
    {
        tracing::error!(
            limit_s = FLUSH_LIMIT.as_secs(),
            "queued call changes not all written before the limit"
        );
    }
    // The CRM request in flight ends (within its timeout); pending events go after a restart.
    if let Some(crm) = crm {
        crm.stop().await;
    }
    if let Some(store) = store {
        store.close().await;
    }
    Ok(())
}

/// After the stop signal: no new dials; live calls may finish within `grace`, then each says
/// goodbye and hangs up. Resolves when the server may stop.
fn stop_calls(
    state: &telemarketer::http::AppState,
    grace: std::time::Duration,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (live, dialer, shutdown) = (
        state.live.clone(),
        state.dialer.clone(),
        state.session.shutdown.clone(),
    );
    async move {
        stop_signal().await;
        if let Some(dialer) = &dialer {
            dialer.drain();
        }
        live.close();
        tracing::info!(
            live = live.count(),
            grace_s = grace.as_secs(),
            "stopping: no new calls; live calls may finish"
        );
        if tokio::time::timeout(grace, live.idle()).await.is_err() {
            tracing::warn!(live = live.count(), "grace over: live calls say goodbye");
            shutdown.cancel();
            if tokio::time::timeout(GOODBYE_LIMIT, live.idle())
                .await
                .is_err()
            {
                tracing::error!(live = live.count(), "calls still live; stopping anyway");
            }
        }
    }
}

/// How long calls get to say goodbye once the grace is over.
const GOODBYE_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// How long shutdown waits for queued call changes.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Ctrl-C or SIGTERM (what `docker stop` and systemd send).
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("stop requested");
}
