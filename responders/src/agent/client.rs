//! The agent's HTTPS client of the server's decision stream: the snapshot, the long poll
//! for changes, and the report. The token goes in an `Authorization: Bearer` header and
//! never into a message; the server's certificate is checked against the system's CAs, a
//! CA file, or one pinned fingerprint (`[agent] pin_sha256`, as the sensor's shipper does).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;

use super::config::{RemoteConfig, ServerTrust};
use crate::stream::{AgentReport, DecisionStream, ReportAck};

/// The stream endpoint, below the server's base URL.
pub const DECISIONS_PATH: &str = "/api/v1/agent/decisions";
/// The report endpoint.
pub const REPORT_PATH: &str = "/api/v1/agent/report";
/// At most this much of an error answer is quoted in a message.
pub const MAX_QUOTED_BODY: usize = 300;

/// Why a request to the server failed, in the admin's terms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error(
        "reading the agent token from {path} ([agent] token_file; put the token of this agent's [[server.agents]] entry there): {source}"
    )]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} ([agent] token_file) must hold one token on one line")]
    TokenFormat { path: PathBuf },
    #[error("the agent's HTTPS client: {0}")]
    Tls(String),
    #[error(
        "cannot reach the server at {url}: {detail} (check [agent] server, that `spoor server` runs there and its certificate matches pin_sha256 or ca_file)"
    )]
    Unreachable { url: String, detail: String },
    #[error(
        "the server at {url} refused the agent token (401): check [agent] token_file and that the server lists this token in [[server.agents]]: {body}"
    )]
    Unauthorized { url: String, body: String },
    #[error(
        "the server at {url} refused the token (403): it is not an agent token (a sensor's token cannot follow decisions); use the token of a [[server.agents]] entry: {body}"
    )]
    Forbidden { url: String, body: String },
    #[error("the server at {url} answered {status}: {body}{hint}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
        hint: &'static str,
    },
    #[error("the server at {url} sent an answer the agent cannot read: {detail}")]
    Body { url: String, detail: String },
}

/// A connection to the server, ready to ask.
#[derive(Clone)]
pub struct ServerClient {
    base: String,
    token: String,
    client: Client,
    wait: Duration,
    timeout: Duration,
}

impl fmt::Debug for ServerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerClient")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .field("wait", &self.wait)
            .finish()
    }
}

/// Read a token file: one token, one line.
pub fn read_token(path: &Path) -> Result<String, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClientError::Token {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(ClientError::TokenFormat {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_string())
}

impl ServerClient {
    /// Read the token and build the HTTPS client the config asks for.
    pub fn new(cfg: &RemoteConfig) -> Result<Self, ClientError> {
        let token = read_token(&cfg.token_file)?;
        let timeout = cfg.timeout.as_std();
        let mut builder = Client::builder()
            .connect_timeout(timeout)
            // A fresh connection per request (one every `wait` at most): a pooled one
            // could outlive the server process it was made to.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("spoor-agent/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        match &cfg.trust {
            ServerTrust::System => {}
            ServerTrust::Pin(pin) => {
                let tls = spoor_core::pin::pinned_client_config(*pin)
                    .map_err(|e| ClientError::Tls(e.to_string()))?;
                builder = builder.tls_backend_preconfigured(tls);
            }
            ServerTrust::CaFile(ca) => {
                let pem = std::fs::read(ca).map_err(|e| {
                    ClientError::Tls(format!("reading [agent] ca_file {}: {e}", ca.display()))
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    ClientError::Tls(format!("[agent] ca_file {}: {e}", ca.display()))
                })?;
                if certs.is_empty() {
                    return Err(ClientError::Tls(format!(
                        "[agent] ca_file {} holds no PEM certificate",
                        ca.display()
                    )));
                }
                builder = builder.tls_certs_only(certs);
            }
        }
        let client = builder
            .build()
            .map_err(|e| ClientError::Tls(describe(&e)))?;
        Ok(ServerClient {
            base: cfg.server.clone(),
            token,
            client,
            wait: cfg.wait.as_std(),
            timeout,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `None`: the snapshot; `Some(cursor)`: the changes after it, waiting up to `wait`
    /// for one.
    pub fn decisions(&self, cursor: Option<i64>) -> Result<DecisionStream, ClientError> {
        let mut url = format!("{}{DECISIONS_PATH}", self.base);
        let mut limit = self.timeout;
        if let Some(c) = cursor {
            url = format!("{url}?cursor={c}&wait={}", self.wait.as_secs());
            limit += self.wait;
        }
        let resp = self
            .client
            .get(&url)
            .bearer_auth(&self.token)
            .timeout(limit)
            .send()
            .map_err(|e| unreachable(&url, &e))?;
        read_json(&url, check(&url, resp)?)
    }

    /// Send a report; the server's account of what it changed.
    pub fn report(&self, report: &AgentReport) -> Result<ReportAck, ClientError> {
        let url = format!("{}{REPORT_PATH}", self.base);
        let body = serde_json::to_vec(report).map_err(|e| ClientError::Body {
            url: url.clone(),
            detail: e.to_string(),
        })?;
        let resp = self
            .client
            .post(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(self.timeout)
            .send()
            .map_err(|e| unreachable(&url, &e))?;
        read_json(&url, check(&url, resp)?)
    }
}

fn unreachable(url: &str, e: &reqwest::Error) -> ClientError {
    ClientError::Unreachable {
        url: url.to_string(),
        detail: describe(e),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    url: &str,
    resp: reqwest::blocking::Response,
) -> Result<T, ClientError> {
    let body = |detail: String| ClientError::Body {
        url: url.to_string(),
        detail,
    };
    let bytes = resp.bytes().map_err(|e| body(describe(&e)))?;
    serde_json::from_slice(&bytes).map_err(|e| body(e.to_string()))
}

/// A 2xx answer, or the error its status means.
fn check(
    url: &str,
    resp: reqwest::blocking::Response,
) -> Result<reqwest::blocking::Response, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let mut body = resp.text().unwrap_or_default();
    if body.len() > MAX_QUOTED_BODY {
        let mut end = MAX_QUOTED_BODY;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
        body.push('…');
    }
    let url = url.to_string();
    Err(match status {
        StatusCode::UNAUTHORIZED => ClientError::Unauthorized { url, body },
        StatusCode::FORBIDDEN => ClientError::Forbidden { url, body },
        StatusCode::NOT_FOUND => ClientError::Status {
            url,
            status,
            body,
            hint: " (the server has no decision stream: an older Spoor, or [server] without \
                   responders; check [agent] server names the Spoor server)",
        },
        StatusCode::CONFLICT => ClientError::Status {
            url,
            status,
            body,
            hint: " (configure [respond] on the server)",
        },
        _ => ClientError::Status {
            url,
            status,
            body,
            hint: "",
        },
    })
}

/// An error with its causes (reqwest's own message hides them).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
