//! pf: one table, changed with `pfctl -t TABLE -T add|delete` and read with `-T show`.
//!
//! A table defined inside an anchor (the shipped `freebsd/pf/spoor.anchor` has
//! `table <spoor_block> persist` in anchor `spoor`) is only reachable with `-a ANCHOR`:
//! without it pfctl addresses (and `-T add` silently creates) a table of the same name
//! in the main ruleset that no rule uses. Every table command carries `-a ANCHOR` when an
//! anchor is configured. State kills (`-k`) do not: pf's state table is global.
//!
//! Small batches go as arguments; a batch of more than [`MAX_ARGS`] addresses is written
//! to a temporary file and passed with `-f FILE` (pfctl reads one address per line;
//! stdin is avoided so that a failure names a file an admin can inspect). With
//! `kill_states` each newly blocked address also loses its existing states
//! (`pfctl -k ADDR` for states from it, `pfctl -k 0.0.0.0/0 -k ADDR` for states to it),
//! since pf only consults the table for new connections.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use super::{Backend, BackendError, Changes, run};
use crate::decision::target_text;

/// Addresses passed as arguments at most; more go through `-f FILE`. Keeps the command
/// line far below ARG_MAX and readable in process lists.
pub const MAX_ARGS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PfSettings {
    pub pfctl: PathBuf,
    /// The anchor holding the table; empty for the main ruleset.
    pub anchor: String,
    pub table: String,
    pub kill_states: bool,
    pub capacity: usize,
}

#[derive(Debug)]
pub struct PfBackend {
    settings: PfSettings,
}

impl PfBackend {
    pub fn new(settings: PfSettings) -> Self {
        PfBackend { settings }
    }

    /// `[-a ANCHOR] -t TABLE -T COMMAND`.
    fn table_args(&self, command: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::with_capacity(6);
        if !self.settings.anchor.is_empty() {
            args.push("-a".into());
            args.push(self.settings.anchor.clone().into());
        }
        args.push("-t".into());
        args.push(self.settings.table.clone().into());
        args.push("-T".into());
        args.push(command.into());
        args
    }

    fn table_cmd(&self, command: &str, targets: &[IpNet]) -> Result<String, BackendError> {
        let mut args = self.table_args(command);
        // The file must outlive the command.
        let _file = if targets.len() > MAX_ARGS {
            let mut f = tempfile::Builder::new()
                .prefix("spoor-pf-")
                .tempfile()
                .map_err(|source| BackendError::Io {
                    what: "creating the pfctl batch file".into(),
                    source,
                })?;
            let mut text = String::with_capacity(targets.len() * 20);
            for t in targets {
                text.push_str(&target_text(t));
                text.push('\n');
            }
            f.write_all(text.as_bytes())
                .map_err(|source| BackendError::Io {
                    what: format!("writing {}", f.path().display()),
                    source,
                })?;
            args.push("-f".into());
            args.push(f.path().as_os_str().to_owned());
            Some(f)
        } else {
            args.extend(targets.iter().map(|t| OsString::from(target_text(t))));
            None
        };
        run(&self.settings.pfctl, &args, None)
    }

    /// Whether the table matches this address (`-T test`).
    pub fn test(&self, addr: IpAddr) -> Result<bool, BackendError> {
        let mut args = self.table_args("test");
        args.push(addr.to_string().into());
        match run(&self.settings.pfctl, &args, None) {
            Ok(_) => Ok(true),
            // pfctl -T test exits non-zero when the address is not in the table.
            Err(BackendError::Command { stderr, .. }) if stderr.contains("0/1 addresses match") => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn kill_states(&self, targets: &[IpNet]) -> Result<(), BackendError> {
        for t in targets {
            let any = match t {
                IpNet::V4(_) => "0.0.0.0/0",
                IpNet::V6(_) => "::/0",
            };
            let text = target_text(t);
            run(
                &self.settings.pfctl,
                &["-k".into(), text.clone().into()],
                None,
            )?;
            run(
                &self.settings.pfctl,
                &["-k".into(), any.into(), "-k".into(), text.into()],
                None,
            )?;
        }
        Ok(())
    }
}

impl Backend for PfBackend {
    fn name(&self) -> String {
        if self.settings.anchor.is_empty() {
            format!("pf:{}", self.settings.table)
        } else {
            format!("pf:{}:{}", self.settings.anchor, self.settings.table)
        }
    }

    fn apply(&mut self, changes: &Changes) -> Result<(), BackendError> {
        if !changes.remove.is_empty() {
            self.table_cmd("delete", &changes.remove)?;
        }
        if !changes.add.is_empty() {
            self.table_cmd("add", &changes.add)?;
            if self.settings.kill_states {
                self.kill_states(&changes.add)?;
            }
        }
        Ok(())
    }

    fn list(&mut self) -> Result<BTreeSet<IpNet>, BackendError> {
        match self.table_cmd("show", &[]) {
            Ok(out) => parse_show(&out).map_err(|message| BackendError::Output {
                command: std::iter::once(self.settings.pfctl.as_os_str())
                    .chain(self.table_args("show").iter().map(|a| a.as_os_str()))
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
                message,
            }),
            // A table that does not exist yet holds nothing; `-T add` creates it.
            Err(BackendError::Command { stderr, .. })
                if stderr.contains("Table does not exist") =>
            {
                Ok(BTreeSet::new())
            }
            Err(e) => Err(e),
        }
    }

    fn capacity(&self) -> usize {
        self.settings.capacity
    }
}

/// `pfctl -T show` output: one entry per line, indented, `ADDR` or `ADDR/LEN`. Negated
/// entries (`!ADDR`) are exceptions, not blocks: they are skipped.
pub fn parse_show(text: &str) -> Result<BTreeSet<IpNet>, String> {
    let mut out = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.trim();
        if entry.is_empty() || entry.starts_with('!') {
            continue;
        }
        let net = match entry.parse::<IpAddr>() {
            Ok(a) => IpNet::from(a),
            Err(_) => entry
                .parse::<IpNet>()
                .map_err(|_| format!("line {}: `{entry}` is not an address or network", n + 1))?,
        };
        out.insert(net);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_output() {
        let text = "   192.0.2.7\n   198.51.100.0/24\n   2001:db8::1\n   2001:db8:1::/48\n  !203.0.113.5\n\n";
        let got: Vec<String> = parse_show(text)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "192.0.2.7/32",
                "198.51.100.0/24",
                "2001:db8::1/128",
                "2001:db8:1::/48"
            ]
        );
        assert!(parse_show("   nonsense\n").unwrap_err().contains("line 1"));
    }
}
