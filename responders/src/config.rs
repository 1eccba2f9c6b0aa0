//! The `[respond]` config section, raw and validated.
//!
//! The binary deserializes [`RawRespond`] (unknown keys refused) and calls
//! [`RawRespond::validate`], which returns a [`RespondConfig`] that cannot be invalid or
//! names every key that is wrong. The raw structs are the documentation of the section.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use spoor_core::{ConfigError, Duration, EventKind, KeyPath, Severity};

use crate::allowlist::PRIVATE;
use crate::policy::{Action, Mode, Rule};

/// Default ledger file name inside the state dir.
pub const LEDGER_FILE_NAME: &str = "decisions.sqlite";
/// How often the agent compares the ledger with the backend.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(60);
/// Shortest reconcile interval: each pass lists the whole table.
pub const MIN_RECONCILE_INTERVAL: Duration = Duration::from_secs(1);
/// Default shortest IPv4 prefix: a /24 is one provider customer at most.
pub const DEFAULT_MIN_PREFIX_V4: u8 = 24;
/// Default shortest IPv6 prefix: a /48 is one site.
pub const DEFAULT_MIN_PREFIX_V6: u8 = 48;
/// Default rate guard: a real attack wave rarely needs more; a runaway rule is held.
pub const DEFAULT_MAX_NEW_PER_MINUTE: usize = 120;
/// Default size guard.
pub const DEFAULT_MAX_ACTIVE: usize = 50_000;
/// Default escalation ladder for repeat offenders.
pub const DEFAULT_ESCALATION: [Duration; 4] = [
    Duration::from_secs(3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(24 * 3600),
    Duration::from_secs(7 * 24 * 3600),
];
/// Default longest block.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default memory for repeat offenders: earlier blocks this recent count.
pub const DEFAULT_REPEAT_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default counting window of a rule's `min_count`.
pub const DEFAULT_RULE_WINDOW: Duration = Duration::from_secs(600);
/// pf's default `set limit table-entries`.
pub const DEFAULT_PF_CAPACITY: usize = 200_000;
/// nftables sets have no fixed limit; this keeps memory bounded.
pub const DEFAULT_NFT_CAPACITY: usize = 1_000_000;
/// Longest pf anchor path (`PF_ANCHOR_NAME_SIZE` 64 with its terminating NUL).
pub const MAX_PF_ANCHOR_LEN: usize = 63;
/// OPNsense aliases live in pf tables: the same default limit.
pub const DEFAULT_OPNSENSE_CAPACITY: usize = 200_000;
/// Default per-request timeout for the OPNsense API.
pub const DEFAULT_OPNSENSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default retries of an OPNsense request after a 5xx answer or a timeout.
pub const DEFAULT_OPNSENSE_RETRIES: u32 = 3;
/// More retries than this only delays the next reconcile.
pub const MAX_OPNSENSE_RETRIES: u32 = 10;

/// The backend kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[serde(rename = "dry-run")]
    DryRun,
    Pf,
    Nftables,
    Opnsense,
}

/// `[respond]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RespondConfig {
    pub mode: Mode,
    pub kill_switch: bool,
    pub ledger: PathBuf,
    pub backend: BackendKind,
    /// The server applies the decisions to the backend itself (single host) instead of
    /// a `spoor agent`.
    pub server_applies: bool,
    pub reconcile_interval: Duration,
    /// `[respond] allow`.
    pub allow: Vec<IpNet>,
    pub block_private: bool,
    pub local_networks: Vec<IpNet>,
    /// Server and sensor addresses, never blocked.
    pub infrastructure: Vec<IpNet>,
    pub min_prefix_v4: u8,
    pub min_prefix_v6: u8,
    pub max_new_per_minute: usize,
    pub max_active: usize,
    pub escalation: Vec<Duration>,
    pub max_ttl: Duration,
    pub repeat_window: Duration,
    pub rules: Vec<Rule>,
    pub pf: PfConfig,
    pub nftables: NftConfig,
    pub opnsense: OpnsenseConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PfConfig {
    pub pfctl: PathBuf,
    /// The anchor holding the table (`-a ANCHOR`); empty: the main ruleset.
    pub anchor: String,
    pub table: String,
    pub kill_states: bool,
    pub capacity: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftConfig {
    pub nft: PathBuf,
    pub family: String,
    pub table: String,
    pub set_v4: String,
    pub set_v6: String,
    pub net_set_v4: String,
    pub net_set_v6: String,
    pub create: bool,
    pub capacity: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpnsenseConfig {
    /// `https://firewall.example:443`; required when the backend is `opnsense`.
    pub url: Option<String>,
    pub alias: String,
    pub key_file: Option<PathBuf>,
    pub secret_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub create_alias: bool,
    pub timeout: Duration,
    pub retries: u32,
    pub capacity: usize,
}

// ---------------------------------------------------------------------------------------
// Raw
// ---------------------------------------------------------------------------------------

fn default_mode() -> Mode {
    Mode::Off
}
fn default_backend() -> BackendKind {
    BackendKind::DryRun
}
fn default_reconcile() -> Duration {
    DEFAULT_RECONCILE_INTERVAL
}
fn default_prefix_v4() -> u8 {
    DEFAULT_MIN_PREFIX_V4
}
fn default_prefix_v6() -> u8 {
    DEFAULT_MIN_PREFIX_V6
}
fn default_rate() -> usize {
    DEFAULT_MAX_NEW_PER_MINUTE
}
fn default_max_active() -> usize {
    DEFAULT_MAX_ACTIVE
}
fn default_escalation() -> Vec<Duration> {
    DEFAULT_ESCALATION.to_vec()
}
fn default_max_ttl() -> Duration {
    DEFAULT_MAX_TTL
}
fn default_repeat_window() -> Duration {
    DEFAULT_REPEAT_WINDOW
}
fn default_local_networks() -> Vec<String> {
    PRIVATE.iter().map(|(n, _)| n.to_string()).collect()
}

/// `[respond]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRespond {
    /// off, dry-run, approve or auto. Default off.
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// true: remove every entry Spoor added and apply nothing. Default false.
    pub kill_switch: bool,
    /// The decisions ledger (SQLite). Default `<state_dir>/decisions.sqlite`.
    pub ledger: Option<PathBuf>,
    /// dry-run, pf, nftables or opnsense. Default dry-run.
    #[serde(default = "default_backend")]
    pub backend: BackendKind,
    /// true: `spoor server` / `spoor up` applies the decisions to the backend itself (a
    /// single host); false: a `spoor agent` does. Default false.
    pub server_applies: bool,
    /// How often the agent reconciles. Default 60s.
    #[serde(default = "default_reconcile")]
    pub reconcile_interval: Duration,
    /// Addresses and networks never blocked. Default none.
    pub allow: Vec<String>,
    /// Allow blocking RFC 1918, ULA and CGNAT addresses. Default false.
    pub block_private: bool,
    /// The networks of your own hosts: rules only target them with
    /// `quarantine_internal`. Default: the private ranges.
    #[serde(default = "default_local_networks")]
    pub local_networks: Vec<String>,
    /// The Spoor server's and sensors' addresses, never blocked. Default none.
    pub infrastructure: Vec<String>,
    /// Shortest IPv4 prefix that may be blocked. Default 24.
    #[serde(default = "default_prefix_v4")]
    pub min_prefix_v4: u8,
    /// Shortest IPv6 prefix that may be blocked. Default 48.
    #[serde(default = "default_prefix_v6")]
    pub min_prefix_v6: u8,
    /// New blocks allowed per minute. Default 120.
    #[serde(default = "default_rate")]
    pub max_new_per_minute: usize,
    /// Most entries held (also capped by the backend's capacity). Default 50000.
    #[serde(default = "default_max_active")]
    pub max_active: usize,
    /// Block lengths for the 1st, 2nd, ... block of the same target. Default 1h, 6h, 24h, 7d.
    #[serde(default = "default_escalation")]
    pub escalation: Vec<Duration>,
    /// No block lasts longer. Default 30d.
    #[serde(default = "default_max_ttl")]
    pub max_ttl: Duration,
    /// Earlier blocks this recent make a repeat offender. Default 30d.
    #[serde(default = "default_repeat_window")]
    pub repeat_window: Duration,
    /// `[[respond.rule]]`: which events become decisions. Default none.
    pub rule: Vec<RawRule>,
    pub pf: RawPf,
    pub nftables: RawNft,
    pub opnsense: RawOpnsense,
}

impl Default for RawRespond {
    fn default() -> Self {
        RawRespond {
            mode: default_mode(),
            kill_switch: false,
            ledger: None,
            backend: default_backend(),
            server_applies: false,
            reconcile_interval: default_reconcile(),
            allow: Vec::new(),
            block_private: false,
            local_networks: default_local_networks(),
            infrastructure: Vec::new(),
            min_prefix_v4: default_prefix_v4(),
            min_prefix_v6: default_prefix_v6(),
            max_new_per_minute: default_rate(),
            max_active: default_max_active(),
            escalation: default_escalation(),
            max_ttl: default_max_ttl(),
            repeat_window: default_repeat_window(),
            rule: Vec::new(),
            pf: RawPf::default(),
            nftables: RawNft::default(),
            opnsense: RawOpnsense::default(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_min_count() -> u64 {
    1
}
fn default_window() -> Duration {
    DEFAULT_RULE_WINDOW
}
fn default_action() -> Action {
    Action::Approve
}

/// One `[[respond.rule]]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique name, recorded as the decision's reason (required).
    pub name: Option<String>,
    /// Event kinds matched (ip, ip_port, cidr, dns, url, host, sni, heuristic...). Default: any.
    #[serde(default)]
    pub kinds: Vec<EventKind>,
    /// Lowest severity matched. Default: any.
    pub min_severity: Option<Severity>,
    /// Match events whose reference (feed) contains one of these. Default: any.
    #[serde(default)]
    pub references: Vec<String>,
    /// Match heuristic events with one of these names. Default: any.
    #[serde(default)]
    pub heuristics: Vec<String>,
    /// Occurrences of the same target needed within `window`. Default 1.
    #[serde(default = "default_min_count")]
    pub min_count: u64,
    /// Counting window for `min_count`. Default 10m.
    #[serde(default = "default_window")]
    pub window: Duration,
    /// auto, approve or dry-run. Default approve.
    #[serde(default = "default_action")]
    pub action: Action,
    /// This rule's own escalation ladder. Default: `[respond] escalation`.
    pub ttl: Option<Vec<Duration>>,
    /// May target addresses inside `local_networks` (quarantine). Default false.
    #[serde(default)]
    pub quarantine_internal: bool,
    /// false keeps the rule in the file but ignores it. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_pfctl() -> PathBuf {
    PathBuf::from("/sbin/pfctl")
}
fn default_pf_anchor() -> String {
    "spoor".into()
}
fn default_pf_table() -> String {
    "spoor_block".into()
}
fn default_pf_capacity() -> usize {
    DEFAULT_PF_CAPACITY
}

/// `[respond.pf]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPf {
    /// Default /sbin/pfctl.
    #[serde(default = "default_pfctl")]
    pub pfctl: PathBuf,
    /// The anchor the table lives in, passed to pfctl as `-a ANCHOR`; empty for a table of
    /// the main ruleset. Default spoor (the shipped `freebsd/pf/spoor.anchor`).
    #[serde(default = "default_pf_anchor")]
    pub anchor: String,
    /// The pf table Spoor owns. Default spoor_block (the shipped anchor's table).
    #[serde(default = "default_pf_table")]
    pub table: String,
    /// Kill existing states of a newly blocked address. Default false.
    pub kill_states: bool,
    /// Entries the table may hold (pf's table-entries limit minus other tables). Default 200000.
    #[serde(default = "default_pf_capacity")]
    pub capacity: usize,
}

impl Default for RawPf {
    fn default() -> Self {
        RawPf {
            pfctl: default_pfctl(),
            anchor: default_pf_anchor(),
            table: default_pf_table(),
            kill_states: false,
            capacity: default_pf_capacity(),
        }
    }
}

fn default_nft() -> PathBuf {
    PathBuf::from("/usr/sbin/nft")
}
fn default_nft_family() -> String {
    "inet".into()
}
fn default_nft_table() -> String {
    "spoor".into()
}
fn default_set_v4() -> String {
    "block_v4".into()
}
fn default_set_v6() -> String {
    "block_v6".into()
}
fn default_net_set_v4() -> String {
    "block_net_v4".into()
}
fn default_net_set_v6() -> String {
    "block_net_v6".into()
}
fn default_nft_capacity() -> usize {
    DEFAULT_NFT_CAPACITY
}

/// `[respond.nftables]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawNft {
    /// Default /usr/sbin/nft.
    #[serde(default = "default_nft")]
    pub nft: PathBuf,
    /// Table family: inet, ip or ip6. Default inet.
    #[serde(default = "default_nft_family")]
    pub family: String,
    /// Default spoor.
    #[serde(default = "default_nft_table")]
    pub table: String,
    /// Single IPv4 addresses (hash set). Default block_v4.
    #[serde(default = "default_set_v4")]
    pub set_v4: String,
    /// Single IPv6 addresses (hash set). Default block_v6.
    #[serde(default = "default_set_v6")]
    pub set_v6: String,
    /// IPv4 networks (interval set). Default block_net_v4.
    #[serde(default = "default_net_set_v4")]
    pub net_set_v4: String,
    /// IPv6 networks (interval set). Default block_net_v6.
    #[serde(default = "default_net_set_v6")]
    pub net_set_v6: String,
    /// Create the table, sets and drop chains. Default true.
    #[serde(default = "default_true")]
    pub create: bool,
    /// Default 1000000.
    #[serde(default = "default_nft_capacity")]
    pub capacity: usize,
}

impl Default for RawNft {
    fn default() -> Self {
        RawNft {
            nft: default_nft(),
            family: default_nft_family(),
            table: default_nft_table(),
            set_v4: default_set_v4(),
            set_v6: default_set_v6(),
            net_set_v4: default_net_set_v4(),
            net_set_v6: default_net_set_v6(),
            create: true,
            capacity: default_nft_capacity(),
        }
    }
}

fn default_alias() -> String {
    "spoor_block".into()
}
fn default_opn_timeout() -> Duration {
    DEFAULT_OPNSENSE_TIMEOUT
}
fn default_opn_retries() -> u32 {
    DEFAULT_OPNSENSE_RETRIES
}
fn default_opn_capacity() -> usize {
    DEFAULT_OPNSENSE_CAPACITY
}

/// `[respond.opnsense]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOpnsense {
    /// Base URL of the OPNsense web UI, https only (required for this backend).
    pub url: Option<String>,
    /// The External alias Spoor owns. Default spoor_block.
    #[serde(default = "default_alias")]
    pub alias: String,
    /// File holding the API key (required for this backend).
    pub key_file: Option<PathBuf>,
    /// File holding the API secret (required for this backend).
    pub secret_file: Option<PathBuf>,
    /// PEM CA certificate(s) to verify the firewall with. Default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Create the External alias if it is missing. Default false.
    pub create_alias: bool,
    /// Per-request timeout. Default 10s.
    #[serde(default = "default_opn_timeout")]
    pub timeout: Duration,
    /// Retries after a 5xx answer or a timeout. Default 3.
    #[serde(default = "default_opn_retries")]
    pub retries: u32,
    /// Default 200000.
    #[serde(default = "default_opn_capacity")]
    pub capacity: usize,
}

impl Default for RawOpnsense {
    fn default() -> Self {
        RawOpnsense {
            url: None,
            alias: default_alias(),
            key_file: None,
            secret_file: None,
            ca_file: None,
            create_alias: false,
            timeout: default_opn_timeout(),
            retries: default_opn_retries(),
            capacity: default_opn_capacity(),
        }
    }
}

/// pf anchor paths: names of letters, digits, `_` and `-` separated by `/`.
fn valid_anchor(s: &str) -> bool {
    s.len() <= MAX_PF_ANCHOR_LEN
        && s.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// pf table names, nft object names and OPNsense alias names: letters, digits, `_` and
/// `-`, starting with a letter, at most 31 characters (pf's limit).
fn valid_name(s: &str) -> bool {
    (1..=31).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn nets(list: &[String], key: &KeyPath, errors: &mut Vec<ConfigError>) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        match s.parse::<std::net::IpAddr>() {
            Ok(a) => out.push(IpNet::from(a)),
            Err(_) => match s.parse::<IpNet>() {
                Ok(n) => out.push(n.trunc()),
                Err(_) => errors.push(ConfigError::new(
                    key.index(i),
                    format!("`{s}` is not an IP address or CIDR network"),
                )),
            },
        }
    }
    out
}

impl RawRespond {
    /// Check every key; `state_dir` gives the ledger's default place, `config_dir` is what
    /// relative paths are relative to.
    pub fn validate(
        self,
        key: &KeyPath,
        config_dir: &Path,
        state_dir: &Path,
    ) -> Result<RespondConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                config_dir.join(p)
            }
        };
        let ledger = self
            .ledger
            .as_deref()
            .map(resolve)
            .unwrap_or_else(|| state_dir.join(LEDGER_FILE_NAME));
        if self.reconcile_interval.as_std() < MIN_RECONCILE_INTERVAL.as_std() {
            errors.push(ConfigError::new(
                key.key("reconcile_interval"),
                format!("must be at least {MIN_RECONCILE_INTERVAL}"),
            ));
        }
        let allow = nets(&self.allow, &key.key("allow"), &mut errors);
        let local_networks = nets(
            &self.local_networks,
            &key.key("local_networks"),
            &mut errors,
        );
        let infrastructure = nets(
            &self.infrastructure,
            &key.key("infrastructure"),
            &mut errors,
        );
        if !(1..=32).contains(&self.min_prefix_v4) {
            errors.push(ConfigError::new(
                key.key("min_prefix_v4"),
                "must be 1 to 32",
            ));
        }
        if !(1..=128).contains(&self.min_prefix_v6) {
            errors.push(ConfigError::new(
                key.key("min_prefix_v6"),
                "must be 1 to 128",
            ));
        }
        if self.max_new_per_minute == 0 {
            errors.push(ConfigError::new(
                key.key("max_new_per_minute"),
                "must be at least 1 (use mode = \"off\" to stop blocking)",
            ));
        }
        if self.max_active == 0 {
            errors.push(ConfigError::new(
                key.key("max_active"),
                "must be at least 1",
            ));
        }
        check_ladder(&self.escalation, &key.key("escalation"), &mut errors);
        if self.max_ttl.as_std().is_zero() {
            errors.push(ConfigError::new(key.key("max_ttl"), "must be more than 0s"));
        }
        let mut rules: Vec<Rule> = Vec::new();
        for (i, r) in self.rule.into_iter().enumerate() {
            let k = key.key("rule").index(i);
            let name = match r.name {
                Some(n) if !n.trim().is_empty() => n,
                _ => {
                    errors.push(ConfigError::new(k.key("name"), "every rule needs a name"));
                    continue;
                }
            };
            if rules.iter().any(|o| o.name == name) {
                errors.push(ConfigError::new(
                    k.key("name"),
                    format!("rule `{name}` is defined twice"),
                ));
            }
            if r.min_count == 0 {
                errors.push(ConfigError::new(k.key("min_count"), "must be at least 1"));
            }
            if r.window.as_std().is_zero() {
                errors.push(ConfigError::new(k.key("window"), "must be more than 0s"));
            }
            if let Some(ladder) = &r.ttl {
                check_ladder(ladder, &k.key("ttl"), &mut errors);
            }
            if !r.enabled {
                continue;
            }
            rules.push(Rule {
                name,
                kinds: r.kinds,
                min_severity: r.min_severity,
                references: r.references.iter().map(|s| s.to_lowercase()).collect(),
                heuristics: r.heuristics,
                min_count: r.min_count,
                window: r.window,
                action: r.action,
                ladder: r.ttl.unwrap_or_else(|| self.escalation.clone()),
                quarantine_internal: r.quarantine_internal,
            });
        }
        let pk = key.key("pf");
        if !self.pf.anchor.is_empty() && !valid_anchor(&self.pf.anchor) {
            errors.push(ConfigError::new(
                pk.key("anchor"),
                format!("names of letters, digits, _ and - separated by /, up to {MAX_PF_ANCHOR_LEN} characters; empty for the main ruleset"),
            ));
        }
        if !valid_name(&self.pf.table) {
            errors.push(ConfigError::new(
                pk.key("table"),
                "letters, digits, _ and -, up to 31, starting with a letter",
            ));
        }
        let nk = key.key("nftables");
        if !["inet", "ip", "ip6"].contains(&self.nftables.family.as_str()) {
            errors.push(ConfigError::new(
                nk.key("family"),
                "must be inet, ip or ip6",
            ));
        }
        for (name, v) in [
            ("table", &self.nftables.table),
            ("set_v4", &self.nftables.set_v4),
            ("set_v6", &self.nftables.set_v6),
            ("net_set_v4", &self.nftables.net_set_v4),
            ("net_set_v6", &self.nftables.net_set_v6),
        ] {
            if !valid_name(v) {
                errors.push(ConfigError::new(
                    nk.key(name),
                    "letters, digits, _ and -, up to 31, starting with a letter",
                ));
            }
        }
        let sets = [
            ("set_v4", &self.nftables.set_v4),
            ("set_v6", &self.nftables.set_v6),
            ("net_set_v4", &self.nftables.net_set_v4),
            ("net_set_v6", &self.nftables.net_set_v6),
        ];
        for (i, (name, v)) in sets.iter().enumerate() {
            if let Some((other, _)) = sets[..i].iter().find(|(_, w)| w == v) {
                errors.push(ConfigError::new(
                    nk.key(name),
                    format!(
                        "`{v}` is already the name of {other}: the four sets need distinct names"
                    ),
                ));
            }
        }
        let ok = key.key("opnsense");
        if !valid_name(&self.opnsense.alias) {
            errors.push(ConfigError::new(
                ok.key("alias"),
                "letters, digits, _ and -, up to 31, starting with a letter",
            ));
        }
        if let Some(url) = &self.opnsense.url
            && !url.starts_with("https://")
        {
            errors.push(ConfigError::new(
                ok.key("url"),
                "must start with https:// (the API key travels with every request)",
            ));
        }
        if self.opnsense.retries > MAX_OPNSENSE_RETRIES {
            errors.push(ConfigError::new(
                ok.key("retries"),
                format!("at most {MAX_OPNSENSE_RETRIES}"),
            ));
        }
        if self.backend == BackendKind::Opnsense {
            for (name, missing) in [
                ("url", self.opnsense.url.is_none()),
                ("key_file", self.opnsense.key_file.is_none()),
                ("secret_file", self.opnsense.secret_file.is_none()),
            ] {
                if missing {
                    errors.push(ConfigError::new(
                        ok.key(name),
                        "required when backend = \"opnsense\"",
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(RespondConfig {
            mode: self.mode,
            kill_switch: self.kill_switch,
            ledger,
            backend: self.backend,
            server_applies: self.server_applies,
            reconcile_interval: self.reconcile_interval,
            allow,
            block_private: self.block_private,
            local_networks,
            infrastructure,
            min_prefix_v4: self.min_prefix_v4,
            min_prefix_v6: self.min_prefix_v6,
            max_new_per_minute: self.max_new_per_minute,
            max_active: self.max_active,
            escalation: self.escalation,
            max_ttl: self.max_ttl,
            repeat_window: self.repeat_window,
            rules,
            pf: PfConfig {
                pfctl: resolve(&self.pf.pfctl),
                anchor: self.pf.anchor,
                table: self.pf.table,
                kill_states: self.pf.kill_states,
                capacity: self.pf.capacity,
            },
            nftables: NftConfig {
                nft: resolve(&self.nftables.nft),
                family: self.nftables.family,
                table: self.nftables.table,
                set_v4: self.nftables.set_v4,
                set_v6: self.nftables.set_v6,
                net_set_v4: self.nftables.net_set_v4,
                net_set_v6: self.nftables.net_set_v6,
                create: self.nftables.create,
                capacity: self.nftables.capacity,
            },
            opnsense: OpnsenseConfig {
                url: self.opnsense.url,
                alias: self.opnsense.alias,
                key_file: self.opnsense.key_file.as_deref().map(resolve),
                secret_file: self.opnsense.secret_file.as_deref().map(resolve),
                ca_file: self.opnsense.ca_file.as_deref().map(resolve),
                create_alias: self.opnsense.create_alias,
                timeout: self.opnsense.timeout,
                retries: self.opnsense.retries,
                capacity: self.opnsense.capacity,
            },
        })
    }
}

fn check_ladder(ladder: &[Duration], key: &KeyPath, errors: &mut Vec<ConfigError>) {
    if ladder.is_empty() {
        errors.push(ConfigError::new(key.clone(), "needs at least one duration"));
    }
    for (i, d) in ladder.iter().enumerate() {
        if d.as_std().is_zero() {
            errors.push(ConfigError::new(key.index(i), "must be more than 0s"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: RawRespond) -> Result<RespondConfig, Vec<String>> {
        raw.validate(
            &KeyPath::root().key("respond"),
            Path::new("/etc/spoor"),
            Path::new("/var/db/spoor"),
        )
        .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn pf_anchor_and_nft_set_names() {
        let ok = check(RawRespond::default()).unwrap();
        assert_eq!(
            (ok.pf.anchor.as_str(), ok.pf.table.as_str()),
            ("spoor", "spoor_block"),
            "the shipped freebsd/pf/spoor.anchor"
        );
        for anchor in ["", "spoor", "filters/spoor", "a-b_c"] {
            let mut raw = RawRespond::default();
            raw.pf.anchor = anchor.into();
            assert_eq!(check(raw).unwrap().pf.anchor, anchor);
        }
        for anchor in ["spoor/", "/spoor", "sp oor", "a;b", &"a".repeat(64)] {
            let mut raw = RawRespond::default();
            raw.pf.anchor = anchor.into();
            let errs = check(raw).unwrap_err();
            assert!(errs[0].contains("respond.pf.anchor"), "{anchor}: {errs:?}");
        }
        // the defaults are what the shipped anchor file defines and the README loads
        let shipped = |f: &str| {
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../freebsd")
                    .join(f),
            )
            .unwrap()
        };
        assert!(
            shipped("pf/spoor.anchor").contains(&format!("\ntable <{}> persist\n", ok.pf.table))
        );
        assert!(shipped("README.md").contains(&format!("anchor \"{}\"\n", ok.pf.anchor)));
        let mut raw = RawRespond::default();
        raw.nftables.net_set_v6 = "block_v4".into();
        let errs = check(raw).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("respond.nftables.net_set_v6")
                && errs[0].contains("already the name of set_v4"),
            "{errs:?}"
        );
    }
}
