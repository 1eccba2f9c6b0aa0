//! The `[respond]` backend: the firewall tool, the object listed (never created), room
//! for new blocks, and for OPNsense the alias.

use std::path::Path;

use spoor_responders::backend::BackendError;
use spoor_responders::config::{BackendKind, RespondConfig};

use super::*;

fn backend_kind(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::DryRun => "dry-run",
        BackendKind::Pf => "pf",
        BackendKind::Nftables => "nftables",
        BackendKind::Opnsense => "opnsense",
    }
}

fn program_present(program: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    if program.is_absolute() {
        return std::fs::metadata(program)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    }
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| program_present(&d.join(program)))
    })
}

pub(super) fn check_backend(cfg: &RespondConfig, out: &mut Vec<Finding>) {
    let kind = backend_kind(cfg.backend);
    if cfg.kill_switch {
        out.push(
            Finding::new(Level::Warn, "backend", kind, "kill switch off")
                .detail("[respond] kill_switch = true: the agent removes every block and applies nothing")
                .fix("set [respond] kill_switch = false when blocking should resume"),
        );
    }
    if cfg.mode == Mode::DryRun {
        out.push(
            Finding::new(Level::Warn, "backend", kind, "blocking mode")
                .detail("[respond] mode = \"dry-run\": decisions are recorded, never applied")
                .fix("set [respond] mode = \"approve\" or \"auto\""),
        );
    }
    let mut probe_cfg = cfg.clone();
    // Never change the firewall from the doctor: list without creating.
    probe_cfg.nftables.create = false;
    probe_cfg.opnsense.create_alias = false;
    match cfg.backend {
        BackendKind::DryRun => {
            out.push(
                Finding::new(Level::Warn, "backend", kind, "backend blocks")
                    .detail("[respond] backend = \"dry-run\": decisions are only logged")
                    .fix("set [respond] backend = \"pf\", \"nftables\" or \"opnsense\" with its section"),
            );
            return;
        }
        BackendKind::Pf | BackendKind::Nftables => {
            let (program, key) = if cfg.backend == BackendKind::Pf {
                (&cfg.pf.pfctl, "[respond.pf] pfctl")
            } else {
                (&cfg.nftables.nft, "[respond.nftables] nft")
            };
            if !program_present(program) {
                out.push(
                    Finding::new(Level::Fail, "backend", kind, "firewall tool present")
                        .detail(format!("{} is not an executable here", program.display()))
                        .fix(if cfg.backend == BackendKind::Pf {
                            format!("pf runs on FreeBSD/OPNsense: run the agent there (set {key} if pfctl lives elsewhere), or on Linux set [respond] backend = \"nftables\"")
                        } else {
                            format!("install nftables (`apt install nftables` / `dnf install nftables`) or set {key} to nft's path")
                        }),
                );
                return;
            }
            out.push(
                Finding::new(Level::Ok, "backend", kind, "firewall tool present")
                    .detail(program.display().to_string()),
            );
        }
        BackendKind::Opnsense => {}
    }
    let listed = spoor_responders::agent::backend(&probe_cfg).and_then(|mut b| {
        let name = b.name();
        b.list().map(|held| (name, held.len(), b.capacity()))
    });
    match listed {
        Ok((name, entries, capacity)) => {
            out.push(
                Finding::new(Level::Ok, "backend", name.clone(), "backend reachable")
                    .detail(format!("listed: {entries} entries")),
            );
            out.extend(capacity_findings(
                &name,
                cfg.backend,
                entries,
                capacity,
                cfg.max_active,
            ));
            if cfg.backend == BackendKind::Opnsense {
                out.push(opnsense_alias(cfg));
            }
        }
        Err(e) => out.push(backend_error_finding(cfg, &e)),
    }
}

fn backend_error_finding(cfg: &RespondConfig, e: &BackendError) -> Finding {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let kind = backend_kind(cfg.backend);
    let f = Finding::new(Level::Fail, "backend", kind, "backend reachable").detail(text.clone());
    match cfg.backend {
        BackendKind::Nftables => {
            let n = &cfg.nftables;
            if lower.contains("not permitted") || lower.contains("permission") {
                f.fix("run the agent as root or with CAP_NET_ADMIN (dist/systemd/spoor-agent.service grants it); check with `sudo spoor doctor`")
            } else if lower.contains("no such file or directory") && n.create {
                f.with_level(Level::Ok).detail(format!(
                    "table {} {} does not exist yet; `spoor agent` creates it at start ([respond.nftables] create = true)",
                    n.family, n.table
                ))
            } else if lower.contains("no such file or directory") {
                f.detail(format!(
                    "table {} {} or one of its sets does not exist, and [respond.nftables] create = false: {text}",
                    n.family, n.table
                ))
                .fix(format!(
                    "set [respond.nftables] create = true (`spoor agent` then makes table {f} {t}, its sets and drop chains at start), or create them as [respond.nftables] names them (`nft list table {f} {t}` shows what exists)",
                    f = n.family,
                    t = n.table,
                ))
            } else {
                f.fix("run the `nft` command from the message by hand and fix what it reports")
            }
        }
        BackendKind::Pf => {
            if lower.contains("permission") || lower.contains("not permitted") {
                f.fix("run the agent as root (pfctl needs /dev/pf): spoor_agent_user=root")
            } else if lower.contains("pf not enabled") || lower.contains("not enabled") {
                f.fix("enable pf: `sysrc pf_enable=YES && service pf start`")
            } else {
                f.fix("run the pfctl command from the message by hand and fix what it reports; the table must be the one the loaded anchor uses (freebsd/README.md, \"Blocking with pf\")")
            }
        }
        BackendKind::Opnsense => {
            if matches!(e, BackendError::Unauthorized { .. }) {
                f.fix("create an API key for a user with the firewall alias privileges (System > Access > Users), put key and secret into [respond.opnsense] key_file / secret_file")
            } else if lower.contains("is not set") || lower.contains("reading the opnsense") {
                f.fix("set [respond.opnsense] url, key_file and secret_file (files readable by the agent's user)")
            } else if lower.contains("certificate") {
                f.fix(
                    "set [respond.opnsense] ca_file to the CA of the OPNsense web GUI certificate",
                )
            } else {
                f.fix(format!(
                    "check [respond.opnsense] url, that the OPNsense web GUI/API answers there, that the alias `{}` exists (Firewall > Aliases, type External) or set create_alias = true",
                    cfg.opnsense.alias
                ))
            }
        }
        BackendKind::DryRun => f,
    }
}

/// `GET /api/firewall/alias/getAliasUUID/{alias}`: the alias list of an alias that does
/// not exist looks like an empty one, so its presence is asked for separately. Key and
/// secret are read as the backend reads them and appear in no finding.
fn opnsense_alias(cfg: &RespondConfig) -> Finding {
    let o = &cfg.opnsense;
    let subject = format!("opnsense:{}", o.alias);
    let f = Finding::new(Level::Fail, "backend", subject, "alias present");
    let read = |p: &Option<std::path::PathBuf>| {
        p.as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| t.trim().to_string())
    };
    let (Some(url), Some(key), Some(secret)) =
        (o.url.as_deref(), read(&o.key_file), read(&o.secret_file))
    else {
        // The list above would have failed first; nothing more to ask.
        return f
            .detail("url, key or secret missing")
            .fix("set [respond.opnsense] url, key_file and secret_file");
    };
    let mut builder =
        reqwest::blocking::Client::builder().timeout(o.timeout.as_std().min(PROBE_TIMEOUT));
    if let Some(certs) = o
        .ca_file
        .as_deref()
        .and_then(|ca| std::fs::read(ca).ok())
        .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).ok())
    {
        builder = builder.tls_certs_only(certs);
    }
    let endpoint = format!(
        "{}/api/firewall/alias/getAliasUUID/{}",
        url.trim_end_matches('/'),
        o.alias
    );
    let answer = builder.build().and_then(|c| {
        c.get(&endpoint)
            .basic_auth(&key, Some(&secret))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
    });
    match answer {
        Ok(body) => alias_finding(f, &o.alias, &body, o.create_alias),
        Err(e) => f
            .detail(format!("{endpoint}: {}", describe(&e).replace(&secret, "<redacted>")))
            .fix("give the API key's user the privilege covering the firewall alias utilities (System > Access > Users; search the privilege list for \"Alias\"; the API answers 403 until it has it)"),
    }
}

/// What `getAliasUUID` answered: `{"uuid": "..."}` when the alias exists, an empty
/// object or list when it does not.
pub(crate) fn alias_finding(f: Finding, alias: &str, body: &str, create: bool) -> Finding {
    let uuid = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("uuid").and_then(|u| u.as_str()).map(str::to_string))
        .filter(|u| !u.is_empty());
    match uuid {
        Some(u) => f
            .with_level(Level::Ok)
            .detail(format!("alias `{alias}` exists ({u})")),
        None if create => f.with_level(Level::Ok).detail(format!(
            "alias `{alias}` does not exist yet; `spoor agent` creates it at start ([respond.opnsense] create_alias = true)"
        )),
        None => f
            .detail(format!("no alias `{alias}` on the firewall: blocks have nowhere to go"))
            .fix(format!(
                "create it (Firewall > Aliases: name {alias}, type External (advanced)) and a block rule that uses it, or set [respond.opnsense] create_alias = true"
            )),
    }
}

fn capacity_key(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Pf => "[respond.pf] capacity (and pf's `set limit table-entries`)",
        BackendKind::Nftables => "[respond.nftables] capacity",
        BackendKind::Opnsense => "[respond.opnsense] capacity",
        BackendKind::DryRun => "capacity",
    }
}

/// Entries held against the limit the guard applies: `min(max_active, capacity)`.
pub(crate) fn capacity_findings(
    subject: &str,
    kind: BackendKind,
    entries: usize,
    capacity: usize,
    max_active: usize,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if max_active > capacity {
        out.push(
            Finding::new(Level::Warn, "backend", subject, "max_active within capacity")
                .detail(format!(
                    "[respond] max_active = {max_active} is above the backend's capacity {capacity}: the guard stops at {capacity}"
                ))
                .fix(format!(
                    "lower [respond] max_active to at most {capacity}, or raise {}",
                    capacity_key(kind)
                )),
        );
    }
    let limit = max_active.min(capacity);
    let f = Finding::new(Level::Ok, "backend", subject, "room for new blocks");
    let detail =
        format!("{entries} entries; limit {limit} (capacity {capacity}, max_active {max_active})");
    out.push(if entries >= limit {
        f.with_level(Level::Fail)
            .detail(format!("{detail}: full, every new block is refused"))
            .fix(format!(
                "raise [respond] max_active and {} if the firewall can hold more, shorten TTLs ([respond] escalation, max_ttl), or remove stale entries (`spoor block list`, `spoor block unblock`)",
                capacity_key(kind)
            ))
    } else if entries.saturating_mul(100) >= limit.saturating_mul(FULL_WARN_PERCENT) {
        f.with_level(Level::Warn)
            .detail(format!("{detail}: at least {FULL_WARN_PERCENT}% full"))
            .fix(format!(
                "raise [respond] max_active and {}, or shorten TTLs ([respond] escalation, max_ttl)",
                capacity_key(kind)
            ))
    } else {
        f.detail(detail)
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opnsense_alias_is_present_only_with_a_uuid() {
        let f = || {
            Finding::new(
                Level::Fail,
                "backend",
                "opnsense:spoor_block",
                "alias present",
            )
        };
        let found = alias_finding(f(), "spoor_block", r#"{"uuid":"6a1e-77"}"#, false);
        assert_eq!(found.level, Level::Ok);
        assert!(found.detail.contains("6a1e-77"));
        for missing in ["[]", "{}", r#"{"uuid":""}"#, "not json"] {
            let m = alias_finding(f(), "spoor_block", missing, false);
            assert_eq!(m.level, Level::Fail, "{missing}");
            assert!(m.fix.unwrap().contains("create_alias = true"));
            assert_eq!(
                alias_finding(f(), "spoor_block", missing, true).level,
                Level::Ok
            );
        }
    }

    #[test]
    fn capacity_guard_limit_is_the_smaller_of_the_two() {
        let k = BackendKind::Nftables;
        let ok = capacity_findings("b", k, 10, 1000, 100);
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].level, Level::Ok);
        let above = capacity_findings("b", k, 10, 100, 1000);
        assert_eq!(above[0].level, Level::Warn);
        assert!(above[0].fix.as_deref().unwrap().contains("max_active"));
        let nearly = capacity_findings("b", k, 90, 1000, 100);
        assert_eq!(nearly[0].level, Level::Warn);
        let full = capacity_findings("b", k, 100, 1000, 100);
        assert_eq!(full[0].level, Level::Fail);
        assert!(full[0].detail.contains("full"));
    }
}
