//! Admin commands: campaigns, leads, the do-not-call list and call records of a running server,
//! through the typed client ([`telemarketer::client::AdminClient`]). Responses print as JSON.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use telemarketer::client::{AdminClient, LeadFormat};
use telemarketer::model::api::{CampaignAction, DeliveryPage, NewCampaign};

/// Where the admin commands find the running server.
#[derive(clap::Args)]
pub struct ServerArg {
    /// The server's base URL (also after the action: `campaign show ID --server URL`).
    #[arg(
        long = "server",
        global = true,
        env = "TELEMARKETER_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
}

#[derive(Subcommand)]
pub enum CampaignCmd {
    /// Create a campaign from a script (default: the shipped example) and settings (JSON).
    Create {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        script: Option<PathBuf>,
        /// JSON file with settings (from_number, max_concurrent, calls_per_second, ...).
        #[arg(long)]
        settings: Option<PathBuf>,
    },
    /// Import leads from a CSV (or .json) file; bad rows are listed with their reason.
    Import {
        id: String,
        file: PathBuf,
    },
    Start {
        id: String,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Stop {
        id: String,
    },
    /// Campaign state and lead counts.
    Show {
        id: String,
    },
    List,
    /// Calls with status, answered_by and outcome.
    Calls {
        id: String,
    },
    Leads {
        id: String,
    },
    /// Every dial decision and why (do-not-call, consent, calling hours, retries).
    Audit {
        id: String,
    },
    /// The CRM webhook delivery log, newest first: state, attempts, last status or error.
    Deliveries {
        id: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Older rows: the smallest id of the previous page.
        #[arg(long)]
        before: Option<i64>,
    },
    /// Results as CSV, one row per lead.
    Export {
        id: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum DncCmd {
    /// List a number: it is never dialed again by any campaign.
    Add {
        phone: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Take a number off the list (an operator's correction).
    Remove { phone: String },
    /// Every listed number with reason, source and time.
    List,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn print(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn campaign(server: &ServerArg, action: CampaignCmd) -> anyhow::Result<()> {
    let api = AdminClient::from_env(&server.url)?;
    let act = |id: String, a: CampaignAction| {
        let api = api.clone();
        async move { api.campaign_action(&id, a).await }
    };
    match action {
        CampaignCmd::Create {
            id,
            name,
            script,
            settings,
        } => {
            let script = script
                .map(|p| Ok::<_, anyhow::Error>(String::from_utf8(read(&p)?)?))
                .transpose()?;
            let settings = match settings {
                Some(p) => serde_json::from_slice(&read(&p)?)
                    .with_context(|| format!("{} is not valid settings JSON", p.display()))?,
                None => Default::default(),
            };
            let new = NewCampaign {
                id,
                name,
                script,
                settings,
            };
            print(&api.create_campaign(&new).await?)
        }
        CampaignCmd::Import { id, file } => {
            let format = if file.extension().is_some_and(|e| e == "json") {
                LeadFormat::Json
            } else {
                LeadFormat::Csv
            };
            print(&api.import_leads(&id, read(&file)?, format).await?)
        }
        CampaignCmd::Start { id } => print(&act(id, CampaignAction::Start).await?),
        CampaignCmd::Pause { id } => print(&act(id, CampaignAction::Pause).await?),
        CampaignCmd::Resume { id } => print(&act(id, CampaignAction::Resume).await?),
        CampaignCmd::Stop { id } => print(&act(id, CampaignAction::Stop).await?),
        CampaignCmd::Show { id } => print(&api.campaign(&id).await?),
        CampaignCmd::List => print(&api.campaigns().await?),
        CampaignCmd::Calls { id } => print(&api.calls(&id).await?),
        CampaignCmd::Leads { id } => print(&api.leads(&id).await?),
        CampaignCmd::Audit { id } => print(&api.audit(&id).await?),
        CampaignCmd::Deliveries { id, limit, before } => {
            let page = DeliveryPage {
                limit: Some(limit),
                before,
            };
            print(&api.deliveries(&id, &page).await?)
        }
        CampaignCmd::Export { id, output } => {
            let csv = api.export_csv(&id).await?;
            match output {
                Some(p) => {
                    std::fs::write(&p, csv).with_context(|| format!("cannot write {}", p.display()))
                }
                None => {
                    print!("{csv}");
                    Ok(())
                }
            }
        }
    }
}

pub async fn dnc(server: &ServerArg, action: DncCmd) -> anyhow::Result<()> {
    let api = AdminClient::from_env(&server.url)?;
    match action {
        DncCmd::Add { phone, reason } => print(&api.dnc_add(&phone, reason.as_deref()).await?),
        DncCmd::Remove { phone } => api.dnc_remove(&phone).await.map_err(Into::into),
        DncCmd::List => print(&api.dnc_list().await?),
    }
}

pub async fn call(server: &ServerArg, sid: &str) -> anyhow::Result<()> {
    let api = AdminClient::from_env(&server.url)?;
    print(&api.call_record(sid).await?)
}

#[derive(Subcommand)]
pub enum OperatorCmd {
    /// Create a console account or set a new password (their sessions end).
    Add { username: String },
    /// The console accounts.
    List,
}

/// Shortest console password.
const MIN_PASSWORD: usize = 10;

/// Console accounts live in the appliance's store (the config's `store.url`), not behind the
/// API: whoever can run this on the box can already read the database.
pub async fn operator(config: Option<&std::path::Path>, action: OperatorCmd) -> anyhow::Result<()> {
    let config = super::config(config)?;
    let store = telemarketer::store::Store::connect(&config.store_url)
        .await
        .context("cannot open the store")?;
    match action {
        OperatorCmd::Add { username } => {
            let username = username.trim().to_lowercase();
            anyhow::ensure!(
                !username.is_empty()
                    && username.len() <= 64
                    && username
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b)),
                "user names are 1-64 letters, digits, `.`, `_`, `-` or `@`"
            );
            let password = match std::env::var("TELEMARKETER_OPERATOR_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprintln!("password for {username} (one line):");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            anyhow::ensure!(
                password.chars().count() >= MIN_PASSWORD,
                "the password needs at least {MIN_PASSWORD} characters"
            );
            let hash = telemarketer::http::console::hash_password(&password)
                .map_err(|e| anyhow::anyhow!(e))?;
            store.set_operator(&username, &hash).await?;
            println!("operator {username} can log in to the console");
        }
        OperatorCmd::List => {
            for name in store.operators().await? {
                println!("{name}");
            }
        }
    }
    store.close().await;
    Ok(())
}
