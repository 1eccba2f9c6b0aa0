//! The `[agent]` config section, raw and validated: where `spoor agent` gets its
//! decisions. Without `server` the agent reads the local ledger (`[respond] ledger`);
//! with it, the agent follows that server's decision stream. The backend, allowlist and
//! guards stay in `[respond]` either way.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use spoor_core::pin::{Fingerprint, parse_fingerprint};
use spoor_core::{ConfigError, Duration, KeyPath};

use crate::stream::MAX_WAIT_SECS;

/// Default long-poll wait: the server answers at once on a change, else after this long.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// Default limit for connecting, and for a request beyond its long-poll wait.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default first wait after a failed request; doubles up to `backoff_max`.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Default longest wait between retries.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The last known decisions, kept for a restart while the server is unreachable.
pub const STATE_FILE_NAME: &str = "agent-decisions.json";

/// `[agent]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAgent {
    /// The Spoor server to follow, e.g. `https://spoor.example:8338`. Default: none (the
    /// agent reads the local ledger). `http://` only to a loopback address.
    pub server: Option<String>,
    /// File holding this agent's token (`[[server.agents]]` on the server); relative to
    /// the config file. Required with `server`.
    pub token_file: Option<PathBuf>,
    /// Trust only the server certificate with this SHA-256 fingerprint (as `spoor server`
    /// prints it). Default: verify against CAs.
    pub pin_sha256: Option<String>,
    /// Trust only the CA certificates in this PEM file. Default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Long-poll wait: the server answers at once on a change, else after this long
    /// (1s to 60s). Default 30s.
    #[serde(default = "default_wait")]
    pub wait: Duration,
    /// Connecting, and a request beyond its wait, may take this long. Default 10s.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// First wait after a failed request; doubles each time. Default 1s.
    #[serde(default = "default_backoff_min")]
    pub backoff_min: Duration,
    /// Longest wait between retries. Default 60s.
    #[serde(default = "default_backoff_max")]
    pub backoff_max: Duration,
    /// The last decisions received, enforced after a restart until the server answers.
    /// Default `<state_dir>/agent-decisions.json`.
    pub state_file: Option<PathBuf>,
}

fn default_wait() -> Duration {
    DEFAULT_WAIT
}
fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}
fn default_backoff_min() -> Duration {
    DEFAULT_BACKOFF_MIN
}
fn default_backoff_max() -> Duration {
    DEFAULT_BACKOFF_MAX
}

impl Default for RawAgent {
    fn default() -> Self {
        RawAgent {
            server: None,
            token_file: None,
            pin_sha256: None,
            ca_file: None,
            wait: DEFAULT_WAIT,
            timeout: DEFAULT_TIMEOUT,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
            state_file: None,
        }
    }
}

/// The validated `[agent]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentConfig {
    /// `Some`: follow this server; `None`: the local ledger.
    pub remote: Option<RemoteConfig>,
}

/// How the agent trusts the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTrust {
    /// The system's root CAs.
    System,
    /// Exactly the certificate with this SHA-256 fingerprint.
    Pin(Fingerprint),
    /// The CA certificates in this PEM file.
    CaFile(PathBuf),
}

/// Following a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// Base URL, without a trailing slash.
    pub server: String,
    pub token_file: PathBuf,
    pub trust: ServerTrust,
    pub wait: Duration,
    pub timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub state_file: PathBuf,
}

impl RawAgent {
    /// Check every key; relative paths are relative to `config_dir`, the state file
    /// defaults into `state_dir`.
    pub fn validate(
        self,
        key: &KeyPath,
        config_dir: &Path,
        state_dir: &Path,
    ) -> Result<AgentConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                config_dir.join(p)
            }
        };
        let Some(server) = self.server else {
            for (name, set) in [
                ("token_file", self.token_file.is_some()),
                ("pin_sha256", self.pin_sha256.is_some()),
                ("ca_file", self.ca_file.is_some()),
                ("state_file", self.state_file.is_some()),
            ] {
                if set {
                    errors.push(ConfigError::new(
                        key.key(name),
                        "only used with `server` (set [agent] server to follow a Spoor server)",
                    ));
                }
            }
            return if errors.is_empty() {
                Ok(AgentConfig { remote: None })
            } else {
                Err(errors)
            };
        };
        let server = match server_url(&server) {
            Ok(s) => s,
            Err(e) => {
                errors.push(ConfigError::new(key.key("server"), e));
                String::new()
            }
        };
        let token_file = match &self.token_file {
            Some(p) if !p.as_os_str().is_empty() => resolve(p),
            _ => {
                errors.push(ConfigError::new(
                    key.key("token_file"),
                    "required with `server`: the file holding this agent's token \
                     (the one in the server's [[server.agents]])",
                ));
                PathBuf::new()
            }
        };
        let trust = match (&self.pin_sha256, &self.ca_file) {
            (Some(_), Some(_)) => {
                errors.push(ConfigError::new(
                    key.key("ca_file"),
                    "set either pin_sha256 or ca_file, not both",
                ));
                ServerTrust::System
            }
            (Some(pin), None) => match parse_fingerprint(pin) {
                Ok(fp) => ServerTrust::Pin(fp),
                Err(e) => {
                    errors.push(ConfigError::new(key.key("pin_sha256"), e));
                    ServerTrust::System
                }
            },
            (None, Some(ca)) => ServerTrust::CaFile(resolve(ca)),
            (None, None) => ServerTrust::System,
        };
        let wait = self.wait.as_std();
        if wait < std::time::Duration::from_secs(1) || wait.as_secs() > MAX_WAIT_SECS {
            errors.push(ConfigError::new(
                key.key("wait"),
                format!("must be 1s to {MAX_WAIT_SECS}s (the server's limit)"),
            ));
        }
        if self.timeout.as_std().is_zero() {
            errors.push(ConfigError::new(key.key("timeout"), "must be above 0s"));
        }
        if self.backoff_min.as_std().is_zero() {
            errors.push(ConfigError::new(key.key("backoff_min"), "must be above 0s"));
        }
        if self.backoff_max < self.backoff_min {
            errors.push(ConfigError::new(
                key.key("backoff_max"),
                format!("must be at least backoff_min ({})", self.backoff_min),
            ));
        }
        let state_file = self
            .state_file
            .as_deref()
            .map(resolve)
            .unwrap_or_else(|| state_dir.join(STATE_FILE_NAME));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AgentConfig {
            remote: Some(RemoteConfig {
                server,
                token_file,
                trust,
                wait: self.wait,
                timeout: self.timeout,
                backoff_min: self.backoff_min,
                backoff_max: self.backoff_max,
                state_file,
            }),
        })
    }
}

/// The server's base URL without a trailing slash, or why it is refused: `https://`, or
/// `http://` to a loopback address only (the token would cross the network in clear).
pub fn server_url(url: &str) -> Result<String, String> {
    let base = url.trim().trim_end_matches('/');
    let rest = if let Some(rest) = base.strip_prefix("https://") {
        rest
    } else if let Some(rest) = base.strip_prefix("http://") {
        let host = super::url_host(rest);
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!(
                "`{url}`: plain http:// is allowed only to a loopback address (127.0.0.1, ::1, \
                 localhost); use https:// with pin_sha256 or ca_file"
            ));
        }
        rest
    } else {
        return Err(format!(
            "`{url}` must start with https:// (or http:// to loopback)"
        ));
    };
    if super::url_host(rest).is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if rest.contains(['?', '#']) {
        return Err(format!(
            "`{url}`: give the server's base URL, without ? or #"
        ));
    }
    Ok(base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: RawAgent) -> Result<AgentConfig, Vec<String>> {
        raw.validate(
            &KeyPath::root().key("agent"),
            Path::new("/etc/spoor"),
            Path::new("/var/lib/spoor"),
        )
        .map_err(|es| es.iter().map(|e| e.key.to_string()).collect())
    }

    #[test]
    fn without_server_the_agent_is_local_and_remote_keys_are_refused() {
        assert_eq!(check(RawAgent::default()), Ok(AgentConfig::default()));
        let raw = RawAgent {
            token_file: Some("agent.token".into()),
            ..RawAgent::default()
        };
        assert_eq!(check(raw), Err(vec!["agent.token_file".to_string()]));
    }

    #[test]
    fn a_remote_config_resolves_paths_and_names_every_bad_key() {
        let ok = check(RawAgent {
            server: Some("https://192.0.2.10:8338/".into()),
            token_file: Some("agent.token".into()),
            pin_sha256: Some("AB:".repeat(31) + "CD"),
            ..RawAgent::default()
        })
        .unwrap()
        .remote
        .unwrap();
        assert_eq!(ok.server, "https://192.0.2.10:8338");
        assert_eq!(ok.token_file, Path::new("/etc/spoor/agent.token"));
        assert_eq!(
            ok.state_file,
            Path::new("/var/lib/spoor").join(STATE_FILE_NAME)
        );
        assert!(matches!(ok.trust, ServerTrust::Pin(fp) if fp[0] == 0xab));
        let bad = check(RawAgent {
            server: Some("http://192.0.2.10".into()),
            pin_sha256: Some("nope".into()),
            wait: Duration::from_secs(MAX_WAIT_SECS + 1),
            backoff_min: Duration::from_secs(5),
            backoff_max: Duration::from_secs(2),
            ..RawAgent::default()
        })
        .unwrap_err();
        assert_eq!(
            bad,
            [
                "agent.server",
                "agent.token_file",
                "agent.pin_sha256",
                "agent.wait",
                "agent.backoff_max"
            ]
        );
        let both = check(RawAgent {
            server: Some("http://127.0.0.1:8338".into()),
            token_file: Some("/t".into()),
            pin_sha256: Some("AB:".repeat(31) + "CD"),
            ca_file: Some("ca.pem".into()),
            ..RawAgent::default()
        })
        .unwrap_err();
        assert_eq!(both, ["agent.ca_file"]);
    }

    #[test]
    fn server_urls() {
        assert!(server_url("https://spoor.example").is_ok());
        assert!(server_url("http://[::1]:8338").is_ok());
        assert!(server_url("http://localhost:8338").is_ok());
        assert!(
            server_url("http://spoor.example")
                .unwrap_err()
                .contains("loopback")
        );
        assert!(server_url("ftp://x").is_err());
        assert!(server_url("https://").is_err());
        assert!(server_url("https://h/?token=x").is_err());
    }
}
