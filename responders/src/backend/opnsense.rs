//! OPNsense: an External alias, changed through the REST API.
//!
//! - `POST /api/firewall/alias_util/add/{alias}` and `.../delete/{alias}` with
//!   `{"address": "..."}` (one address per request: that is the API), answer
//!   `{"status": "done"}`;
//! - `GET /api/firewall/alias_util/list/{alias}`: the table's entries, either a plain JSON
//!   array of strings (older releases) or `{"rows": [{"ip": "..."}], ...}`;
//! - `POST /api/firewall/alias_util/flush/{alias}`;
//! - with `create_alias`: `GET /api/firewall/alias/getAliasUUID/{alias}`, and when it is
//!   missing `POST /api/firewall/alias/addItem` with an `external` alias, then
//!   `POST /api/firewall/alias/reconfigure`.
//!
//! The API answers `done` to a delete even when nothing was removed, so deletes are
//! verified by listing afterwards. Authentication is HTTP basic with the API key and
//! secret, read from files; the secret never appears in a log line or an error. 5xx
//! answers and timeouts are retried with exponential backoff; a 401 is reported at once.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use super::{Backend, BackendError, Changes};
use crate::config::OpnsenseConfig;
use crate::decision::target_text;

/// First retry delay; doubled for each further retry.
pub const RETRY_BASE_DELAY: Duration = Duration::from_millis(250);
/// Longest answer body read (a list of 200,000 entries is a few MiB).
pub const MAX_BODY: usize = 64 << 20;

/// Everything the backend needs, with the key and secret already read.
#[derive(Clone)]
pub struct OpnsenseSettings {
    /// `https://host[:port]`, without a trailing slash.
    pub url: String,
    pub alias: String,
    pub key: String,
    secret: String,
    /// PEM CA certificate(s); `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    pub create_alias: bool,
    pub timeout: Duration,
    pub retries: u32,
    pub capacity: usize,
}

impl std::fmt::Debug for OpnsenseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpnsenseSettings")
            .field("url", &self.url)
            .field("alias", &self.alias)
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .field("create_alias", &self.create_alias)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("capacity", &self.capacity)
            .finish()
    }
}

fn read_secret_file(path: &Path, what: &str) -> Result<String, BackendError> {
    let text = std::fs::read_to_string(path).map_err(|source| BackendError::Io {
        what: format!("reading the OPNsense API {what} from {}", path.display()),
        source,
    })?;
    let v = text.trim().to_string();
    if v.is_empty() {
        return Err(BackendError::Io {
            what: format!("the OPNsense API {what} file {}", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "it is empty"),
        });
    }
    Ok(v)
}

impl OpnsenseSettings {
    /// Build from explicit values (tests, embedding).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        url: &str,
        alias: &str,
        key: &str,
        secret: &str,
        ca_pem: Option<Vec<u8>>,
        create_alias: bool,
        timeout: Duration,
        retries: u32,
        capacity: usize,
    ) -> Self {
        OpnsenseSettings {
            url: url.trim_end_matches('/').to_string(),
            alias: alias.to_string(),
            key: key.to_string(),
            secret: secret.to_string(),
            ca_pem,
            create_alias,
            timeout,
            retries,
            capacity,
        }
    }

    /// Read the key, secret and CA files the config names.
    pub fn from_config(c: &OpnsenseConfig) -> Result<Self, BackendError> {
        let missing = |what: &str| BackendError::Api {
            url: c.url.clone().unwrap_or_default(),
            message: format!("[respond.opnsense] {what} is not set"),
        };
        let url = c.url.as_deref().ok_or_else(|| missing("url"))?;
        let key = read_secret_file(
            c.key_file.as_deref().ok_or_else(|| missing("key_file"))?,
            "key",
        )?;
        let secret = read_secret_file(
            c.secret_file
                .as_deref()
                .ok_or_else(|| missing("secret_file"))?,
            "secret",
        )?;
        let ca_pem = c
            .ca_file
            .as_deref()
            .map(|p: &Path| {
                std::fs::read(p).map_err(|source| BackendError::Io {
                    what: format!("reading the OPNsense CA file {}", p.display()),
                    source,
                })
            })
            .transpose()?;
        Ok(Self::new(
            url,
            &c.alias,
            &key,
            &secret,
            ca_pem,
            c.create_alias,
            c.timeout.as_std(),
            c.retries,
            c.capacity,
        ))
    }
}

#[derive(Debug)]
pub struct OpnsenseBackend {
    settings: OpnsenseSettings,
    client: Client,
}

impl OpnsenseBackend {
    /// Build the client (with the CA if given) and, with `create_alias`, make sure the
    /// alias exists.
    pub fn new(settings: OpnsenseSettings) -> Result<Self, BackendError> {
        let mut builder = Client::builder().timeout(settings.timeout);
        if let Some(pem) = &settings.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| BackendError::Api {
                    url: settings.url.clone(),
                    message: format!("the CA file is not PEM certificates: {e}"),
                })?;
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().map_err(|e| BackendError::Api {
            url: settings.url.clone(),
            message: format!("cannot build the HTTPS client: {e}"),
        })?;
        let b = OpnsenseBackend { settings, client };
        if b.settings.create_alias {
            b.ensure_alias()?;
        }
        Ok(b)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/firewall/{path}", self.settings.url)
    }

    /// One request with retries on 5xx and timeouts; the answer's JSON.
    fn call(&self, post: Option<&Value>, path: &str) -> Result<Value, BackendError> {
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            let req = match post {
                Some(body) => self
                    .client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string()),
                None => self.client.get(&url),
            };
            let result = req
                .basic_auth(&self.settings.key, Some(&self.settings.secret))
                .send();
            let retry_reason = match result {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    return Err(BackendError::Unauthorized { url });
                }
                Ok(resp) if resp.status().is_server_error() => format!("HTTP {}", resp.status()),
                Ok(resp) => return self.read_json(&url, resp),
                Err(e) if e.is_timeout() || e.is_connect() => self.redact(&format!("{e}")),
                Err(e) => {
                    return Err(BackendError::Api {
                        url,
                        message: self.redact(&format!("{e}")),
                    });
                }
            };
            if attempt >= self.settings.retries {
                return Err(BackendError::Api {
                    url,
                    message: format!("{retry_reason} (after {} attempts)", attempt + 1),
                });
            }
            let delay = RETRY_BASE_DELAY * 2u32.saturating_pow(attempt);
            tracing::warn!("OPNsense {url}: {retry_reason}; retrying in {delay:?}");
            std::thread::sleep(delay);
            attempt += 1;
        }
    }

    fn read_json(&self, url: &str, resp: Response) -> Result<Value, BackendError> {
        let status = resp.status();
        let body = resp.bytes().map_err(|e| BackendError::Api {
            url: url.to_string(),
            message: self.redact(&format!("reading the answer: {e}")),
        })?;
        if body.len() > MAX_BODY {
            return Err(BackendError::Api {
                url: url.to_string(),
                message: format!("answer larger than {MAX_BODY} bytes"),
            });
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(BackendError::Api {
                url: url.to_string(),
                message: format!("HTTP {status}: {}", self.redact(&text)),
            });
        }
        serde_json::from_slice(&body).map_err(|e| BackendError::Api {
            url: url.to_string(),
            message: format!("the answer is not JSON: {e}"),
        })
    }

    /// Errors from the HTTP stack may echo a URL; make sure the secret is never in them.
    fn redact(&self, s: &str) -> String {
        s.replace(&self.settings.secret, "<redacted>")
    }

    fn expect_status(&self, path: &str, v: &Value, ok: &[&str]) -> Result<(), BackendError> {
        let status = v
            .get("status")
            .or_else(|| v.get("result"))
            .and_then(Value::as_str);
        match status {
            Some(s) if ok.iter().any(|o| o.eq_ignore_ascii_case(s)) => Ok(()),
            _ => Err(BackendError::Api {
                url: self.url(path),
                message: format!("unexpected answer {}", self.redact(&v.to_string())),
            }),
        }
    }

    fn ensure_alias(&self) -> Result<(), BackendError> {
        let alias = &self.settings.alias;
        let path = format!("alias/getAliasUUID/{alias}");
        let found = self.call(None, &path)?;
        if found
            .get("uuid")
            .and_then(Value::as_str)
            .is_some_and(|u| !u.is_empty())
        {
            return Ok(());
        }
        let body = json!({"alias": {
            "enabled": "1",
            "name": alias,
            "type": "external",
            "description": "Spoor: blocked addresses (managed by spoor agent)",
        }});
        let added = self.call(Some(&body), "alias/addItem")?;
        self.expect_status("alias/addItem", &added, &["saved"])?;
        let rec = self.call(Some(&json!({})), "alias/reconfigure")?;
        self.expect_status("alias/reconfigure", &rec, &["ok", "done"])?;
        tracing::info!("created the OPNsense External alias `{alias}`");
        Ok(())
    }

    fn each(&self, verb: &str, targets: &[IpNet]) -> Result<(), BackendError> {
        let path = format!("alias_util/{verb}/{}", self.settings.alias);
        for t in targets {
            let v = self.call(Some(&json!({"address": target_text(t)})), &path)?;
            self.expect_status(&path, &v, &["done"])?;
        }
        Ok(())
    }

    /// Empty the alias (the kill switch of an alias that only Spoor fills).
    pub fn flush(&self) -> Result<(), BackendError> {
        let path = format!("alias_util/flush/{}", self.settings.alias);
        let v = self.call(Some(&json!({})), &path)?;
        self.expect_status(&path, &v, &["done"])
    }
}

impl Backend for OpnsenseBackend {
    fn name(&self) -> String {
        format!("opnsense:{}", self.settings.alias)
    }

    fn apply(&mut self, changes: &Changes) -> Result<(), BackendError> {
        self.each("delete", &changes.remove)?;
        self.each("add", &changes.add)?;
        if !changes.remove.is_empty() {
            let held = self.list()?;
            let left: Vec<String> = changes
                .remove
                .iter()
                .filter(|t| held.contains(t))
                .map(ToString::to_string)
                .collect();
            if !left.is_empty() {
                return Err(BackendError::Api {
                    url: self.url(&format!("alias_util/delete/{}", self.settings.alias)),
                    message: format!(
                        "answered done but still holds {} (is `{}` an External alias?)",
                        left.join(", "),
                        self.settings.alias
                    ),
                });
            }
        }
        Ok(())
    }

    fn list(&mut self) -> Result<BTreeSet<IpNet>, BackendError> {
        let path = format!("alias_util/list/{}", self.settings.alias);
        let v = self.call(None, &path)?;
        parse_list(&v).map_err(|message| BackendError::Api {
            url: self.url(&path),
            message,
        })
    }

    fn capacity(&self) -> usize {
        self.settings.capacity
    }
}

/// The entries of a `list` answer, in either form.
pub fn parse_list(v: &Value) -> Result<BTreeSet<IpNet>, String> {
    let items: Vec<&str> = if let Some(arr) = v.as_array() {
        arr.iter().filter_map(Value::as_str).collect()
    } else if let Some(rows) = v.get("rows").and_then(Value::as_array) {
        rows.iter()
            .filter_map(|r| r.get("ip").and_then(Value::as_str))
            .collect()
    } else {
        return Err(format!("unexpected list answer {v}"));
    };
    let mut out = BTreeSet::new();
    for s in items {
        let s = s.trim();
        let net = match s.parse::<IpAddr>() {
            Ok(a) => IpNet::from(a),
            Err(_) => s
                .parse::<IpNet>()
                .map_err(|_| format!("entry `{s}` is not an address"))?,
        };
        out.insert(net);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_forms() {
        let a = parse_list(&json!(["192.0.2.1", "2001:db8::/48"])).unwrap();
        assert_eq!(a.len(), 2);
        let b = parse_list(
            &json!({"total": 1, "rowCount": 1, "current": 1, "rows": [{"ip": "198.51.100.0/24"}]}),
        )
        .unwrap();
        assert_eq!(b.into_iter().next().unwrap().to_string(), "198.51.100.0/24");
        assert!(parse_list(&json!({"status": "failed"})).is_err());
        let s = OpnsenseSettings::new(
            "https://x/",
            "a",
            "k",
            "hunter2",
            None,
            false,
            Duration::from_secs(1),
            0,
            1,
        );
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.url, "https://x");
    }
}
