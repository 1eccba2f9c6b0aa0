//! The agent: the small privileged process that keeps one firewall object in line with
//! the ledger. It builds the backend and the allowlist from the config, then reconciles
//! at start and every `reconcile_interval` (expiring decisions by TTL on the way). With
//! the kill switch on it removes everything Spoor added and applies nothing.
//!
//! Two modes. Without `[agent] server` the decisions come from the local ledger file
//! ([`Agent`], single-host use). With it, [`remote::RemoteAgent`] follows the server's
//! decision stream ([`client`]) and applies it with the same guard and planning, keeping
//! only which entries it added in the local ledger file; see [`remote`].

pub mod client;
pub mod config;
pub mod remote;

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};

use ipnet::IpNet;
use rusqlite::Connection;
use spoor_core::Micros;

use crate::allowlist::{AllowSource, Allowlist, HostFacts};
use crate::backend::dry_run::DryRunBackend;
use crate::backend::nftables::{NftBackend, NftSettings};
use crate::backend::opnsense::{OpnsenseBackend, OpnsenseSettings};
use crate::backend::pf::{PfBackend, PfSettings};
use crate::backend::{Backend, BackendError};
use crate::config::{BackendKind, RespondConfig};
use crate::guard::{GuardedBackend, Guards};
use crate::ledger::{self, Ledger, LedgerError};
use crate::reconcile::{self, ReconcileError, Report};

/// The agent sleeps in steps this long so that a stop request is seen quickly.
pub const STOP_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// The actor recorded when the kill switch revokes decisions.
pub const KILL_SWITCH_ACTOR: &str = "kill-switch";

/// The guards the config asks for.
pub fn guards(cfg: &RespondConfig) -> Guards {
    Guards {
        min_prefix_v4: cfg.min_prefix_v4,
        min_prefix_v6: cfg.min_prefix_v6,
        max_new_per_minute: cfg.max_new_per_minute,
        max_active: cfg.max_active,
    }
}

/// Built-ins, host facts, infrastructure (with the OPNsense API host) and `allow`.
pub fn allowlist(cfg: &RespondConfig, facts: &HostFacts) -> Allowlist {
    let mut a = Allowlist::new(cfg.block_private).with_host(facts);
    for n in &cfg.infrastructure {
        a.push(*n, AllowSource::Infrastructure("server or sensor".into()));
    }
    if let Some(url) = &cfg.opnsense.url {
        for ip in url_host_addresses(url) {
            a.push(
                IpNet::from(ip),
                AllowSource::Infrastructure("OPNsense API host".into()),
            );
        }
    }
    for n in &cfg.allow {
        a.push(*n, AllowSource::Configured);
    }
    a
}

/// The host of `host[:port][/path]` (the part after `scheme://`), without the brackets
/// of an IPv6 literal and without user info.
pub(crate) fn url_host(rest: &str) -> &str {
    url_host_port(rest).0
}

/// The host and port of `host[:port][/path]`; the port is `None` when not given.
fn url_host_port(rest: &str) -> (&str, Option<u16>) {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        let (h, after) = v6.split_once(']').unwrap_or((v6, ""));
        (h, after.strip_prefix(':').and_then(|p| p.parse().ok()))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()),
            None => (host_port, None),
        }
    }
}

/// The addresses of the host in an `https://host[:port]/...` URL: the literal address, or
/// what the configured name resolves to (a name from the admin's config, not from traffic).
pub(crate) fn url_host_addresses(url: &str) -> Vec<IpAddr> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (host, port) = url_host_port(rest);
    let port = port.unwrap_or(443);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.map(|a| a.ip()).collect(),
        Err(e) => {
            tracing::warn!("cannot resolve `{host}` for the allowlist: {e}");
            Vec::new()
        }
    }
}

/// The backend the config names.
pub fn backend(cfg: &RespondConfig) -> Result<Box<dyn Backend>, BackendError> {
    Ok(match cfg.backend {
        BackendKind::DryRun => Box::new(DryRunBackend::new()),
        BackendKind::Pf => Box::new(PfBackend::new(PfSettings {
            pfctl: cfg.pf.pfctl.clone(),
            anchor: cfg.pf.anchor.clone(),
            table: cfg.pf.table.clone(),
            kill_states: cfg.pf.kill_states,
            capacity: cfg.pf.capacity,
        })),
        BackendKind::Nftables => Box::new(NftBackend::new(NftSettings {
            command: vec![cfg.nftables.nft.clone().into_os_string()],
            family: cfg.nftables.family.clone(),
            table: cfg.nftables.table.clone(),
            set_v4: cfg.nftables.set_v4.clone(),
            set_v6: cfg.nftables.set_v6.clone(),
            net_set_v4: cfg.nftables.net_set_v4.clone(),
            net_set_v6: cfg.nftables.net_set_v6.clone(),
            create: cfg.nftables.create,
            capacity: cfg.nftables.capacity,
        })?),
        BackendKind::Opnsense => Box::new(OpnsenseBackend::new(OpnsenseSettings::from_config(
            &cfg.opnsense,
        )?)?),
    })
}

/// The agent's state: its ledger connection and its guarded backend.
#[derive(Debug)]
pub struct Agent {
    conn: Connection,
    backend: GuardedBackend,
    kill_switch: bool,
    interval: std::time::Duration,
}

impl Agent {
    /// Open the ledger the config names and put the backend behind the guards.
    pub fn open(
        cfg: &RespondConfig,
        backend: Box<dyn Backend>,
        facts: &HostFacts,
    ) -> Result<Self, LedgerError> {
        let conn = ledger::open(&cfg.ledger)?;
        Ok(Self::with_connection(conn, cfg, backend, facts))
    }

    pub fn with_connection(
        conn: Connection,
        cfg: &RespondConfig,
        backend: Box<dyn Backend>,
        facts: &HostFacts,
    ) -> Self {
        Agent {
            conn,
            backend: GuardedBackend::new(backend, allowlist(cfg, facts), guards(cfg)),
            kill_switch: cfg.kill_switch,
            interval: cfg.reconcile_interval.as_std(),
        }
    }

    pub fn ledger(&self) -> Ledger<'_> {
        Ledger::new(&self.conn)
    }

    /// One pass: the kill switch's flush, or a reconcile.
    pub fn pass(&mut self, now: Micros) -> Result<Report, ReconcileError> {
        let ledger = Ledger::new(&self.conn);
        if self.kill_switch {
            return reconcile::flush(&ledger, &mut self.backend, KILL_SWITCH_ACTOR, now);
        }
        reconcile::reconcile(&ledger, &mut self.backend, now)
    }

    /// Reconcile now and every interval until `stop` is set. A failed pass is logged and
    /// retried at the next interval; it never ends the loop.
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            match self.pass(ledger::now()) {
                Ok(r) => {
                    if !r.added.is_empty()
                        || !r.removed.is_empty()
                        || r.expired > 0
                        || !r.refused.is_empty()
                    {
                        tracing::info!(
                            added = r.added.len(),
                            removed = r.removed.len(),
                            expired = r.expired,
                            refused = r.refused.len(),
                            activated = r.activated,
                            "reconciled {}",
                            self.backend.name()
                        );
                    }
                }
                Err(e) => tracing::error!("reconcile failed: {e}"),
            }
            let mut slept = std::time::Duration::ZERO;
            while slept < self.interval && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(STOP_POLL);
                slept += STOP_POLL;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host_addresses("https://192.0.2.1/api"),
            ["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            url_host_addresses("https://[2001:db8::1]:8443"),
            ["2001:db8::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            url_host_addresses("https://198.51.100.2:4443/x"),
            ["198.51.100.2".parse::<IpAddr>().unwrap()]
        );
    }
}
