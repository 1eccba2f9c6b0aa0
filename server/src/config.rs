//! The `[server]` config section: raw as written ([`RawServer`]), then validated into a
//! [`ServerConfig`] that cannot hold an invalid combination (plain HTTP on a public
//! address, a sensor without a token, a webhook that is not http(s)).
//!
//! Token files are only named here; [`crate::Server::start`] reads them, so that
//! `spoor config check` does not need the secrets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use spoor_core::{ByteSize, ConfigError, Duration, EventKind, KeyPath, Severity};

/// Default listen address: loopback only, the dashboard's port.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 8338);
/// Default folder of the database and certificate inside the state dir.
pub const DATA_DIR_NAME: &str = "server";
/// Default age after which events are deleted.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(90 * 86_400);
/// Default age after which audit records are deleted.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(400 * 86_400);
/// Default largest database: past it, the oldest events go first.
pub const DEFAULT_MAX_DB_SIZE: ByteSize = ByteSize(20 * 1024 * 1024 * 1024);
/// Default lifetime of a dashboard session.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Default failed logins from one address (or for one user) before logins are refused.
pub const DEFAULT_LOGIN_MAX_FAILURES: u32 = 5;
/// Default time a throttled address or user waits.
pub const DEFAULT_LOGIN_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Default key period of pseudonyms.
pub const DEFAULT_KEY_PERIOD: Duration = Duration::from_secs(86_400);
/// Default window of `/fail2ban`.
pub const DEFAULT_FAIL2BAN_WINDOW: Duration = Duration::from_secs(86_400);
/// Default per-attempt timeout of a webhook POST.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Default first retry delay of a webhook (doubled per attempt).
pub const DEFAULT_WEBHOOK_BACKOFF: Duration = Duration::from_secs(1);
/// Default attempts per webhook delivery.
pub const DEFAULT_WEBHOOK_ATTEMPTS: u32 = 8;
/// Largest request body (an ingest batch of [`spoor_core::wire::MAX_BATCH_EVENTS`] events
/// with large contexts fits well below).
pub const DEFAULT_MAX_BODY: ByteSize = ByteSize(32 * 1024 * 1024);

/// `[server]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// Address the API and dashboard listen on. Default 127.0.0.1:8338.
    pub listen: SocketAddr,
    /// Database, certificate and other server state. Default `<state_dir>/server`.
    pub data_dir: Option<PathBuf>,
    /// Largest request body. Default 32MiB.
    pub max_body: ByteSize,
    /// Lifetime of a dashboard login. Default 12h.
    pub session_lifetime: Duration,
    /// Failed logins from one address or for one user before further tries are refused.
    pub login_max_failures: u32,
    /// How long refused logins stay refused.
    pub login_lockout: Duration,
    /// Client addresses allowed to read `/metrics`. Default loopback.
    pub metrics_allow: Vec<IpNet>,
    /// `[server.tls]`
    pub tls: RawTls,
    /// `[server.retention]`
    pub retention: RawRetention,
    /// `[server.privacy]`
    pub privacy: RawPrivacy,
    /// `[server.fail2ban]`
    pub fail2ban: RawFail2ban,
    /// `[[server.sensor]]`: sensors allowed to send events.
    pub sensor: Vec<RawSensorAuth>,
    /// `[[server.agent]]` (also spelled `agents`): agents allowed to follow the decision
    /// stream. A sensor's token is never an agent's.
    #[serde(alias = "agents")]
    pub agent: Vec<RawAgentAuth>,
    /// `[[server.webhook]]`: where matching events are POSTed.
    pub webhook: Vec<RawWebhook>,
}

fn loopback() -> Vec<IpNet> {
    vec![
        "127.0.0.0/8".parse().expect("valid"),
        "::1/128".parse().expect("valid"),
    ]
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: DEFAULT_LISTEN,
            data_dir: None,
            max_body: DEFAULT_MAX_BODY,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            login_max_failures: DEFAULT_LOGIN_MAX_FAILURES,
            login_lockout: DEFAULT_LOGIN_LOCKOUT,
            metrics_allow: loopback(),
            tls: RawTls::default(),
            retention: RawRetention::default(),
            privacy: RawPrivacy::default(),
            fail2ban: RawFail2ban::default(),
            sensor: Vec::new(),
            agent: Vec::new(),
            webhook: Vec::new(),
        }
    }
}

/// `[server.tls] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain HTTP; only allowed on a loopback address.
    Off,
    /// A certificate made on first start under the data dir; its fingerprint is printed.
    SelfSigned,
    /// The admin's certificate chain and key (PEM files).
    Files,
}

/// `[server.tls]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    /// off, self-signed or files. Default off.
    pub mode: TlsMode,
    /// PEM certificate chain (mode = files).
    pub cert: Option<PathBuf>,
    /// PEM private key (mode = files).
    pub key: Option<PathBuf>,
    /// Extra DNS names and addresses for the self-signed certificate (besides localhost,
    /// 127.0.0.1, ::1 and the listen address).
    pub names: Vec<String>,
}

impl Default for RawTls {
    fn default() -> Self {
        RawTls {
            mode: TlsMode::Off,
            cert: None,
            key: None,
            names: Vec::new(),
        }
    }
}

/// `[server.retention]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetention {
    /// Events (and their triage and rollups) older than this are deleted. Default 90d.
    pub events: Duration,
    /// Audit records older than this are deleted. Default 400d.
    pub audit: Duration,
    /// Past this database size the oldest events are deleted. Default 20GiB.
    pub max_size: ByteSize,
}

impl Default for RawRetention {
    fn default() -> Self {
        RawRetention {
            events: DEFAULT_EVENT_RETENTION,
            audit: DEFAULT_AUDIT_RETENTION,
            max_size: DEFAULT_MAX_DB_SIZE,
        }
    }
}

/// `[server.privacy]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrivacy {
    /// Replace local client addresses by keyed pseudonyms before storing. Default false.
    pub pseudonymise: bool,
    /// What counts as local. Default: RFC 1918, RFC 6598, and IPv6 unique-local.
    pub local_networks: Vec<IpNet>,
    /// A new random key per period: pseudonyms are stable within it. Default 1d.
    pub key_period: Duration,
}

fn private_networks() -> Vec<IpNet> {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
    ]
    .iter()
    .map(|s| s.parse().expect("valid"))
    .collect()
}

impl Default for RawPrivacy {
    fn default() -> Self {
        RawPrivacy {
            pseudonymise: false,
            local_networks: private_networks(),
            key_period: DEFAULT_KEY_PERIOD,
        }
    }
}

/// `[server.fail2ban]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFail2ban {
    /// Client addresses allowed to fetch `/fail2ban`. Default loopback.
    pub allow: Vec<IpNet>,
    /// Offenders of events newer than this are listed. Default 1d.
    pub window: Duration,
    /// Only events of at least this severity. Default low (all).
    pub min_severity: Severity,
}

impl Default for RawFail2ban {
    fn default() -> Self {
        RawFail2ban {
            allow: loopback(),
            window: DEFAULT_FAIL2BAN_WINDOW,
            min_severity: Severity::Low,
        }
    }
}

/// One `[[server.sensor]]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSensorAuth {
    /// The sensor's `[sensor] name`.
    pub name: String,
    /// File holding the sensor's token (first line).
    pub token_file: Option<PathBuf>,
    /// SHA-256 of the token, 64 hex digits (`printf %s TOKEN | sha256sum`).
    pub token_sha256: Option<String>,
}

/// One `[[server.agent]]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentAuth {
    /// The agent's name: the actor of the transitions it reports (`agent:<name>`).
    pub name: String,
    /// File holding the agent's token (first line).
    pub token_file: Option<PathBuf>,
    /// SHA-256 of the token, 64 hex digits (`printf %s TOKEN | sha256sum`).
    pub token_sha256: Option<String>,
}

/// One `[[server.webhook]]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// http:// or https:// URL the event is POSTed to as JSON.
    pub url: String,
    /// Only events of at least this severity. Default low.
    #[serde(default = "low")]
    pub min_severity: Severity,
    /// Only these kinds (ip, dns, heuristic, ...). Default: all.
    #[serde(default)]
    pub kinds: Vec<EventKind>,
    /// Per attempt. Default 10s.
    #[serde(default = "webhook_timeout")]
    pub timeout: Duration,
    /// First retry delay, doubled per attempt (at most 5m). Default 1s.
    #[serde(default = "webhook_backoff")]
    pub backoff: Duration,
    /// Attempts before an event is given up (counted). Default 8.
    #[serde(default = "webhook_attempts")]
    pub max_attempts: u32,
}

fn low() -> Severity {
    Severity::Low
}
fn webhook_timeout() -> Duration {
    DEFAULT_WEBHOOK_TIMEOUT
}
fn webhook_backoff() -> Duration {
    DEFAULT_WEBHOOK_BACKOFF
}
fn webhook_attempts() -> u32 {
    DEFAULT_WEBHOOK_ATTEMPTS
}

/// The validated `[server]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Absolute.
    pub data_dir: PathBuf,
    pub max_body: u64,
    pub session_lifetime: std::time::Duration,
    pub login_max_failures: u32,
    pub login_lockout: std::time::Duration,
    pub metrics_allow: Vec<IpNet>,
    pub tls: TlsConfig,
    pub retention: Retention,
    pub privacy: Privacy,
    pub fail2ban: Fail2ban,
    pub sensors: Vec<SensorAuth>,
    /// Agents allowed to follow the decision stream (same shape as a sensor's entry).
    pub agents: Vec<SensorAuth>,
    pub webhooks: Vec<Webhook>,
    /// The feeds the dashboard's feeds page reports on (not part of `[server]`: the
    /// binary passes its `[feeds]` section). None: the feeds page says so.
    pub feeds: Option<spoor_feeds::config::FeedsConfig>,
    /// The responders (not part of `[server]`: the binary passes its `[respond]`
    /// section). None: no policy on ingest, no decisions; the decision endpoints say so.
    pub respond: Option<spoor_responders::config::RespondConfig>,
}

/// How the listener speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfig {
    Off,
    SelfSigned { names: Vec<String> },
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub events: std::time::Duration,
    pub audit: std::time::Duration,
    pub max_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privacy {
    pub pseudonymise: bool,
    pub local_networks: Vec<IpNet>,
    pub key_period: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail2ban {
    pub allow: Vec<IpNet>,
    pub window: std::time::Duration,
    pub min_severity: Severity,
}

/// Where a sensor's token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Absolute path; read at start.
    File(PathBuf),
    /// The token's SHA-256.
    Sha256([u8; 32]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorAuth {
    pub name: String,
    pub token: TokenSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub min_severity: Severity,
    pub kinds: Vec<EventKind>,
    pub timeout: std::time::Duration,
    pub backoff: std::time::Duration,
    pub max_attempts: u32,
}

impl ServerConfig {
    /// The defaults with the database under `data_dir`, for tests and `spoor up`.
    pub fn with_data_dir(data_dir: &Path) -> ServerConfig {
        RawServer::default()
            .validate(&KeyPath::root().key("server"), data_dir, data_dir)
            .map(|mut c| {
                c.data_dir = data_dir.to_path_buf();
                c
            })
            .expect("defaults are valid")
    }
}

/// `[[server.sensor]]` or `[[server.agent]]` entries (`what` names them in messages):
/// unique names, exactly one of `token_file` and `token_sha256` each.
fn token_entries<'a>(
    what: &str,
    entries: impl Iterator<Item = (&'a str, &'a Option<PathBuf>, &'a Option<String>)>,
    key: &KeyPath,
    config_dir: &Path,
    err: &mut impl FnMut(KeyPath, String),
) -> Vec<SensorAuth> {
    let mut out: Vec<SensorAuth> = Vec::new();
    for (i, (name, token_file, token_sha256)) in entries.enumerate() {
        let k = key.index(i);
        if name.is_empty() {
            err(k.key("name"), "must not be empty".into());
        } else if out.iter().any(|o| o.name == name) {
            err(k.key("name"), format!("{what} `{name}` is listed twice"));
        }
        let token = match (token_file, token_sha256) {
            (Some(f), None) => Some(TokenSource::File(config_dir.join(f))),
            (None, Some(h)) => match parse_sha256_hex(&h.to_ascii_lowercase()) {
                Some(h) => Some(TokenSource::Sha256(h)),
                None => {
                    err(
                        k.key("token_sha256"),
                        "is not 64 hex digits (make it with `printf %s TOKEN | sha256sum`)".into(),
                    );
                    None
                }
            },
            _ => {
                err(
                    k.clone(),
                    "give exactly one of `token_file` and `token_sha256`".into(),
                );
                None
            }
        };
        if let Some(token) = token {
            out.push(SensorAuth {
                name: name.to_string(),
                token,
            });
        }
    }
    out
}

/// 64 hex digits → bytes.
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl RawServer {
    /// Check everything; relative paths are taken from `config_dir`, derived defaults
    /// from `state_dir`.
    pub fn validate(
        self,
        key: &KeyPath,
        config_dir: &Path,
        state_dir: &Path,
    ) -> Result<ServerConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut err = |k: KeyPath, m: String| errors.push(ConfigError::new(k, m));
        let data_dir = match &self.data_dir {
            Some(d) if d.as_os_str().is_empty() => {
                err(key.key("data_dir"), "must not be empty".into());
                PathBuf::new()
            }
            Some(d) => config_dir.join(d),
            None => state_dir.join(DATA_DIR_NAME),
        };
        let tls = match self.tls.mode {
            TlsMode::Off => {
                if !self.listen.ip().is_loopback() {
                    err(
                        key.key("listen"),
                        format!(
                            "{} is not a loopback address: set [server.tls] mode = \"self-signed\" or \"files\" (sessions and sensor tokens must not cross the network in clear)",
                            self.listen
                        ),
                    );
                }
                TlsConfig::Off
            }
            TlsMode::SelfSigned => TlsConfig::SelfSigned {
                names: self.tls.names.clone(),
            },
            TlsMode::Files => match (&self.tls.cert, &self.tls.key) {
                (Some(cert), Some(k)) => TlsConfig::Files {
                    cert: config_dir.join(cert),
                    key: config_dir.join(k),
                },
                _ => {
                    err(
                        key.key("tls").key("mode"),
                        "mode = \"files\" needs both `cert` and `key`".into(),
                    );
                    TlsConfig::Off
                }
            },
        };
        if self.tls.mode != TlsMode::Files && (self.tls.cert.is_some() || self.tls.key.is_some()) {
            err(
                key.key("tls").key("cert"),
                "`cert` and `key` are only used with mode = \"files\"".into(),
            );
        }
        if self.max_body.0 < 1024 {
            err(key.key("max_body"), "must be at least 1KiB".into());
        }
        if self.session_lifetime.as_std() < std::time::Duration::from_secs(60) {
            err(key.key("session_lifetime"), "must be at least 1m".into());
        }
        if self.login_max_failures == 0 {
            err(key.key("login_max_failures"), "must be at least 1".into());
        }
        if self.privacy.key_period.as_std() < std::time::Duration::from_secs(60) {
            err(
                key.key("privacy").key("key_period"),
                "must be at least 1m".into(),
            );
        }
        if self.retention.events.as_std() < std::time::Duration::from_secs(3600) {
            err(
                key.key("retention").key("events"),
                "must be at least 1h".into(),
            );
        }
        let sensors = token_entries(
            "sensor",
            self.sensor
                .iter()
                .map(|s| (s.name.as_str(), &s.token_file, &s.token_sha256)),
            &key.key("sensor"),
            config_dir,
            &mut err,
        );
        let agents = token_entries(
            "agent",
            self.agent
                .iter()
                .map(|s| (s.name.as_str(), &s.token_file, &s.token_sha256)),
            &key.key("agent"),
            config_dir,
            &mut err,
        );
        let mut webhooks = Vec::new();
        for (i, w) in self.webhook.iter().enumerate() {
            let k = key.key("webhook").index(i);
            if !(w.url.starts_with("http://") || w.url.starts_with("https://"))
                || reqwest::Url::parse(&w.url).is_err()
            {
                err(
                    k.key("url"),
                    format!("`{}` is not an http:// or https:// URL", w.url),
                );
            }
            if w.max_attempts == 0 {
                err(k.key("max_attempts"), "must be at least 1".into());
            }
            webhooks.push(Webhook {
                url: w.url.clone(),
                min_severity: w.min_severity,
                kinds: w.kinds.clone(),
                timeout: w.timeout.as_std(),
                backoff: w.backoff.as_std(),
                max_attempts: w.max_attempts,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ServerConfig {
            listen: self.listen,
            data_dir,
            max_body: self.max_body.0,
            session_lifetime: self.session_lifetime.as_std(),
            login_max_failures: self.login_max_failures,
            login_lockout: self.login_lockout.as_std(),
            metrics_allow: self.metrics_allow,
            tls,
            retention: Retention {
                events: self.retention.events.as_std(),
                audit: self.retention.audit.as_std(),
                max_size: self.retention.max_size.0,
            },
            privacy: Privacy {
                pseudonymise: self.privacy.pseudonymise,
                local_networks: self.privacy.local_networks,
                key_period: self.privacy.key_period.as_std(),
            },
            fail2ban: Fail2ban {
                allow: self.fail2ban.allow,
                window: self.fail2ban.window.as_std(),
                min_severity: self.fail2ban.min_severity,
            },
            sensors,
            agents,
            webhooks,
            feeds: None,
            respond: None,
        })
    }
}
