//! Firewall backends: the places a block ends up. One small trait, one file per backend.
//!
//! A backend applies a batch of additions and removals to the one table, set or alias it
//! owns, lists what that object holds, and says how many entries it can take. It never
//! decides anything: the allowlist and the guards are checked by `guard::GuardedBackend`,
//! which every write goes through, and what to add or remove comes from the reconciler.

pub mod dry_run;
pub mod nftables;
pub mod opnsense;
pub mod pf;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnet::IpNet;

/// A batch of changes for one backend. Applying it is all-or-nothing where the backend
/// allows (nftables, pf per command); a failure leaves the ledger's view unchanged and the
/// next reconcile tries again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub add: Vec<IpNet>,
    pub remove: Vec<IpNet>,
    /// Seconds each addition's decision has left; backends with native timeouts
    /// (nftables) give the element that timeout as a safety net.
    pub expires_in: BTreeMap<IpNet, u64>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// What went wrong talking to a firewall, in the admin's terms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot understand the output of `{command}`: {message}")]
    Output { command: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(
        "OPNsense refused the API key (401 at {url}): check key_file and secret_file, and that the key's user may use the firewall alias API"
    )]
    Unauthorized { url: String },
    #[error("OPNsense API {url}: {message}")]
    Api { url: String, message: String },
    #[error("{object}: {message}")]
    Conflict { object: String, message: String },
}

/// One firewall object Spoor owns.
pub trait Backend: fmt::Debug + Send {
    /// Identifies the object (`nftables:inet spoor`, `pf:spoor:spoor_block` for a table
    /// in an anchor, `opnsense:spoor_block`); the ledger keeps the entries Spoor added
    /// under this name.
    fn name(&self) -> String;
    /// Add and remove these entries, in as few calls as the backend allows.
    fn apply(&mut self, changes: &Changes) -> Result<(), BackendError>;
    /// Everything the object holds, Spoor's entries and others'.
    fn list(&mut self) -> Result<BTreeSet<IpNet>, BackendError>;
    /// Remove every entry of `own` (Spoor's entries) the object holds, at once: the kill
    /// switch. Entries not in `own` stay. Returns what was removed. By default a list
    /// and one removal batch; a backend that deletes large batches slowly empties its
    /// object faster (nftables flushes its sets and puts the others' entries back in the
    /// same transaction).
    fn flush_own(&mut self, own: &BTreeSet<IpNet>) -> Result<Vec<IpNet>, BackendError> {
        let held = self.list()?;
        let remove: Vec<IpNet> = own.intersection(&held).copied().collect();
        if !remove.is_empty() {
            self.apply(&Changes {
                remove: remove.clone(),
                ..Changes::default()
            })?;
        }
        Ok(remove)
    }
    /// How many entries the object can hold.
    fn capacity(&self) -> usize;
    /// Why the object can never hold `target`, if it cannot (checked by the guard, which
    /// refuses such a target for good).
    fn cannot_hold(&self, _target: &IpNet) -> Option<String> {
        None
    }
}

/// Run a command, feeding `stdin` if given, and return its stdout; a non-zero exit is a
/// [`BackendError::Command`] with stderr.
pub(crate) fn run(
    program: &std::path::Path,
    args: &[std::ffi::OsString],
    stdin: Option<&[u8]>,
) -> Result<String, BackendError> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let command = std::iter::once(program.display().to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BackendError::Spawn {
            command: command.clone(),
            source,
        })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Write from a thread: a large batch would otherwise deadlock against a child
        // that fills its stdout pipe before reading all of stdin.
        let data = data.to_vec();
        let writer = std::thread::spawn(move || pipe.write_all(&data));
        let out = child.wait_with_output();
        let wrote = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("writer panicked")));
        let out = out.map_err(|source| BackendError::Spawn {
            command: command.clone(),
            source,
        })?;
        if let Err(e) = wrote
            && out.status.success()
        {
            return Err(BackendError::Io {
                what: format!("writing to `{command}`"),
                source: e,
            });
        }
        return finish(command, out);
    }
    let out = child
        .wait_with_output()
        .map_err(|source| BackendError::Spawn {
            command: command.clone(),
            source,
        })?;
    finish(command, out)
}

/// Longest stderr kept in an error: enough for nft's or pfctl's message, not a flood.
const MAX_STDERR: usize = 2048;

fn finish(command: String, out: std::process::Output) -> Result<String, BackendError> {
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if stderr.len() > MAX_STDERR {
        let cut = (0..=MAX_STDERR)
            .rev()
            .find(|&i| stderr.is_char_boundary(i))
            .unwrap_or(0);
        stderr.truncate(cut);
        stderr.push_str("...");
    }
    Err(BackendError::Command {
        command,
        status: out.status.to_string(),
        stderr,
    })
}
