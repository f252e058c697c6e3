//! A typed client of the admin API (`/v1`, bearer token): what the CLI's admin commands and the
//! tests use, with the server's own request and response types ([`crate::model::api`]).

use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::model::api::{
    CampaignAction, CampaignView, DeliveryPage, ImportResult, NewCampaign, NewDnc,
};
use crate::model::{
    AuditEntry, CallDetail, CallMetadata, CallRecord, Delivery, DncEntry, Lead, StoredCall,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("set TELEMARKETER_API_TOKEN to the server's API token")]
    NoToken,
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// The server refused the request; `message` is its own wording.
    #[error("{status}: {message}")]
    Api { status: u16, message: String },
    #[error("unexpected response from the server: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The format of a lead file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadFormat {
    Csv,
    Json,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct AdminClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// The token from `TELEMARKETER_API_TOKEN` (secrets come from the environment only).
    pub fn from_env(base: &str) -> Result<Self, ClientError> {
        let token = std::env::var("TELEMARKETER_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or(ClientError::NoToken)?;
        Ok(Self::new(base, &token))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<String, ClientError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some((bytes, content_type)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            server: self.base.clone(),
            reason: e.to_string(),
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.map_err(unreachable)?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(text);
            return Err(ClientError::Api {
                status: status.as_u16(),
                message,
            });
        }
        Ok(text)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<T, ClientError> {
        let text = self.send(method, path, body).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    fn body(value: &impl serde::Serialize) -> Option<(Vec<u8>, &'static str)> {
        // Our own types always serialise.
        Some((
            serde_json::to_vec(value).unwrap_or_default(),
            "application/json",
        ))
    }

    pub async fn create_campaign(&self, new: &NewCampaign) -> Result<CampaignView, ClientError> {
        self.json(Method::POST, "/v1/campaigns", Self::body(new))
            .await
    }

    /// Bad rows come back in [`ImportResult::errors`]; the good ones are imported.
    pub async fn import_leads(
        &self,
        campaign: &str,
        file: Vec<u8>,
        format: LeadFormat,
    ) -> Result<ImportResult, ClientError> {
        let kind = match format {
            LeadFormat::Csv => "text/csv",
            LeadFormat::Json => "application/json",
        };
        let path = format!("/v1/campaigns/{}/leads", segment(campaign));
        self.json(Method::POST, &path, Some((file, kind))).await
    }

    pub async fn campaign_action(
        &self,
        campaign: &str,
        action: CampaignAction,
    ) -> Result<CampaignView, ClientError> {
        let path = format!("/v1/campaigns/{}/{}", segment(campaign), action.as_str());
        self.json(Method::POST, &path, None).await
    }

    pub async fn campaign(&self, campaign: &str) -> Result<CampaignView, ClientError> {
        let path = format!("/v1/campaigns/{}", segment(campaign));
        self.json(Method::GET, &path, None).await
    }

    pub async fn campaigns(&self) -> Result<Vec<CampaignView>, ClientError> {
        self.json(Method::GET, "/v1/campaigns", None).await
    }

    pub async fn calls(&self, campaign: &str) -> Result<Vec<StoredCall>, ClientError> {
        let path = format!("/v1/campaigns/{}/calls", segment(campaign));
        self.json(Method::GET, &path, None).await
    }

    pub async fn leads(&self, campaign: &str) -> Result<Vec<Lead>, ClientError> {
        let path = format!("/v1/campaigns/{}/leads", segment(campaign));
        self.json(Method::GET, &path, None).await
    }

    pub async fn audit(&self, campaign: &str) -> Result<Vec<AuditEntry>, ClientError> {
        let path = format!("/v1/campaigns/{}/audit", segment(campaign));
        self.json(Method::GET, &path, None).await
    }

    /// The CRM delivery log, newest first (`limit` rows, ids below `before`).
    pub async fn deliveries(
        &self,
        campaign: &str,
        page: &DeliveryPage,
    ) -> Result<Vec<Delivery>, ClientError> {
        let mut path = format!("/v1/campaigns/{}/deliveries", segment(campaign));
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(limit) = page.limit {
            query.append_pair("limit", &limit.to_string());
        }
        if let Some(before) = page.before {
            query.append_pair("before", &before.to_string());
        }
        let query = query.finish();
        if !query.is_empty() {
            path = format!("{path}?{query}");
        }
        self.json(Method::GET, &path, None).await
    }

    /// One row per lead, as CSV text.
    pub async fn export_csv(&self, campaign: &str) -> Result<String, ClientError> {
        let path = format!("/v1/campaigns/{}/export.csv", segment(campaign));
        self.send(Method::GET, &path, None).await
    }

    /// A stored call: status history, transcript with per-stage latency, outcome, variables.
    pub async fn call_record(&self, sid: &str) -> Result<CallDetail, ClientError> {
        let path = format!("/v1/calls/{}/record", segment(sid));
        self.json(Method::GET, &path, None).await
    }

    /// A call the engine knows (live or finished since the server started).
    pub async fn call(&self, sid: &str) -> Result<CallRecord, ClientError> {
        let path = format!("/v1/calls/{}", segment(sid));
        self.json(Method::GET, &path, None).await
    }

    /// Registers a call's metadata before Twilio connects its media stream.
    pub async fn register_call(&self, metadata: &CallMetadata) -> Result<CallRecord, ClientError> {
        self.json(Method::POST, "/v1/calls", Self::body(metadata))
            .await
    }

    pub async fn dnc_list(&self) -> Result<Vec<DncEntry>, ClientError> {
        self.json(Method::GET, "/v1/dnc", None).await
    }

    pub async fn dnc_add(
        &self,
        phone: &str,
        reason: Option<&str>,
    ) -> Result<DncEntry, ClientError> {
        let new = NewDnc {
            phone: phone.to_string(),
            reason: reason.map(str::to_string),
        };
        self.json(Method::POST, "/v1/dnc", Self::body(&new)).await
    }

    pub async fn dnc_remove(&self, phone: &str) -> Result<(), ClientError> {
        let path = format!("/v1/dnc/{}", segment(phone));
        self.send(Method::DELETE, &path, None).await.map(|_| ())
    }
}

/// A path segment, percent-encoded (`+1415…` keeps its plus).
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
