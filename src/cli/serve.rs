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
    let state = AppBuilder::new(config, &engines)
        .build()
        .await
        .context("cannot start the appliance")?;
    app::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
