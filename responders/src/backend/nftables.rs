//! nftables: one set per family in a table Spoor owns, changed with JSON batches through
//! `nft -j -f -` (one process and one atomic transaction per batch, however large).
//!
//! The sets have `flags interval, timeout`: intervals so that CIDR decisions are single
//! elements, timeouts so that each element carries the rest of its decision's TTL and
//! disappears on its own if the agent dies (the ledger stays the truth; the reconciler
//! puts back what should be there). With `create = true` the backend also makes the table,
//! the two sets and base chains that drop traffic from and to the sets' addresses; those
//! chains are Spoor's own and are rewritten at every setup, nothing else in the ruleset is
//! touched.
//!
//! JSON is built with `serde_json` directly: the handful of objects used here (table,
//! set, chain, rule, element) are simpler to write and read than a schema crate's types,
//! and `serde_json` is already a dependency.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde_json::{Value, json};

use super::{Backend, BackendError, Changes, run};

/// The priority of Spoor's base chains: before the usual `filter` chains (priority 0), so
/// a block holds whatever the admin's own rules accept.
pub const CHAIN_PRIORITY: i32 = -10;

/// Where and how the sets live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftSettings {
    /// The program and any leading arguments (`/usr/sbin/nft`, or
    /// `ip netns exec NS nft` in tests).
    pub command: Vec<OsString>,
    /// Table family: `inet` (both address families in one table).
    pub family: String,
    pub table: String,
    pub set_v4: String,
    pub set_v6: String,
    /// Make the table, sets and drop chains if missing (and rewrite Spoor's chains).
    pub create: bool,
    /// Entries the sets may hold together.
    pub capacity: usize,
}

/// A backend writing to nftables sets.
#[derive(Debug)]
pub struct NftBackend {
    settings: NftSettings,
}

impl NftBackend {
    /// Check that nft works, and set the table up if `create` is on.
    pub fn new(settings: NftSettings) -> Result<Self, BackendError> {
        let b = NftBackend { settings };
        if b.settings.create {
            b.setup()?;
        }
        Ok(b)
    }

    fn run_json(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<String, BackendError> {
        let (program, lead) =
            self.settings
                .command
                .split_first()
                .ok_or_else(|| BackendError::Output {
                    command: "nft".into(),
                    message: "no nft command configured".into(),
                })?;
        let mut all: Vec<OsString> = lead.to_vec();
        all.push("-j".into());
        all.extend(args.iter().map(OsString::from));
        run(&PathBuf::from(program), &all, stdin)
    }

    fn batch(&self, commands: Vec<Value>) -> Result<(), BackendError> {
        if commands.is_empty() {
            return Ok(());
        }
        let doc = json!({ "nftables": commands });
        let text = serde_json::to_vec(&doc).unwrap_or_default();
        self.run_json(&["-f", "-"], Some(&text)).map(|_| ())
    }

    fn obj(&self, extra: Value) -> Value {
        let mut base = json!({ "family": self.settings.family, "table": self.settings.table });
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        base
    }

    /// The table, the sets, and Spoor's chains with their drop rules, in one transaction.
    fn setup(&self) -> Result<(), BackendError> {
        let s = &self.settings;
        let mut cmds = vec![
            json!({"add": {"table": {"family": s.family, "name": s.table}}}),
            json!({"add": {"set": self.obj(json!({"name": s.set_v4, "type": "ipv4_addr", "flags": ["interval", "timeout"]}))}}),
            json!({"add": {"set": self.obj(json!({"name": s.set_v6, "type": "ipv6_addr", "flags": ["interval", "timeout"]}))}}),
        ];
        // input: from a blocked source; forward: either way; output: to a blocked address.
        let chains = [
            ("spoor_input", "input", &["saddr"][..]),
            ("spoor_forward", "forward", &["saddr", "daddr"][..]),
            ("spoor_output", "output", &["daddr"][..]),
        ];
        for (name, hook, fields) in chains {
            cmds.push(json!({"add": {"chain": self.obj(json!({
                "name": name, "type": "filter", "hook": hook, "prio": CHAIN_PRIORITY, "policy": "accept"
            }))}}));
            cmds.push(json!({"flush": {"chain": self.obj(json!({"name": name}))}}));
            for field in fields {
                for (proto, set) in [("ip", &s.set_v4), ("ip6", &s.set_v6)] {
                    cmds.push(json!({"add": {"rule": self.obj(json!({
                        "chain": name,
                        "expr": [
                            {"match": {"op": "==",
                                "left": {"payload": {"protocol": proto, "field": field}},
                                "right": format!("@{set}")}},
                            {"drop": null}
                        ]
                    }))}}));
                }
            }
        }
        self.batch(cmds)
    }

    fn set_for(&self, t: &IpNet) -> &str {
        match t {
            IpNet::V4(_) => &self.settings.set_v4,
            IpNet::V6(_) => &self.settings.set_v6,
        }
    }

    fn element_value(t: &IpNet) -> Value {
        if t.prefix_len() == t.max_prefix_len() {
            json!(t.addr().to_string())
        } else {
            json!({"prefix": {"addr": t.network().to_string(), "len": t.prefix_len()}})
        }
    }

    fn list_set(&self, set: &str) -> Result<BTreeSet<IpNet>, BackendError> {
        let out = self.run_json(
            &[
                "list",
                "set",
                &self.settings.family,
                &self.settings.table,
                set,
            ],
            None,
        )?;
        parse_set_listing(&out).map_err(|message| BackendError::Output {
            command: format!(
                "nft -j list set {} {} {set}",
                self.settings.family, self.settings.table
            ),
            message,
        })
    }
}

impl Backend for NftBackend {
    fn name(&self) -> String {
        format!("nftables:{} {}", self.settings.family, self.settings.table)
    }

    fn apply(&mut self, changes: &Changes) -> Result<(), BackendError> {
        let mut cmds = Vec::new();
        // Removals first: a batch may replace a host with the network around it.
        for (family_set, targets) in group(&changes.remove, |t| self.set_for(t).to_string()) {
            let elems: Vec<Value> = targets.iter().map(|t| Self::element_value(t)).collect();
            cmds.push(json!({"delete": {"element": self.obj(json!({"name": family_set, "elem": elems}))}}));
        }
        for (family_set, targets) in group(&changes.add, |t| self.set_for(t).to_string()) {
            let elems: Vec<Value> = targets
                .iter()
                .map(|t| match changes.expires_in.get(t) {
                    Some(&secs) if secs > 0 => {
                        json!({"elem": {"val": Self::element_value(t), "timeout": secs}})
                    }
                    _ => Self::element_value(t),
                })
                .collect();
            cmds.push(
                json!({"add": {"element": self.obj(json!({"name": family_set, "elem": elems}))}}),
            );
        }
        self.batch(cmds)
    }

    fn list(&mut self) -> Result<BTreeSet<IpNet>, BackendError> {
        let mut all = self.list_set(&self.settings.set_v4.clone())?;
        all.extend(self.list_set(&self.settings.set_v6.clone())?);
        Ok(all)
    }

    fn capacity(&self) -> usize {
        self.settings.capacity
    }
}

fn group(targets: &[IpNet], key: impl Fn(&IpNet) -> String) -> Vec<(String, Vec<&IpNet>)> {
    let mut out: Vec<(String, Vec<&IpNet>)> = Vec::new();
    for t in targets {
        let k = key(t);
        match out.iter_mut().find(|(n, _)| *n == k) {
            Some((_, v)) => v.push(t),
            None => out.push((k, vec![t])),
        }
    }
    out
}

/// The elements of `nft -j list set ...` output: addresses, `prefix` objects, `range`
/// pairs (split into the CIDRs covering them), each bare or wrapped in an `elem` object
/// with its timeout.
pub fn parse_set_listing(text: &str) -> Result<BTreeSet<IpNet>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("no `nftables` array")?;
    let mut out = BTreeSet::new();
    for item in items {
        let Some(set) = item.get("set") else { continue };
        let Some(elems) = set.get("elem") else {
            continue;
        };
        let elems = elems.as_array().ok_or("`elem` is not an array")?;
        for e in elems {
            let v = e.get("elem").and_then(|w| w.get("val")).unwrap_or(e);
            parse_element(v, &mut out)?;
        }
    }
    Ok(out)
}

fn parse_element(v: &Value, out: &mut BTreeSet<IpNet>) -> Result<(), String> {
    if let Some(s) = v.as_str() {
        let a: IpAddr = s
            .parse()
            .map_err(|_| format!("element `{s}` is not an address"))?;
        out.insert(IpNet::from(a));
        return Ok(());
    }
    if let Some(p) = v.get("prefix") {
        let addr = p
            .get("addr")
            .and_then(Value::as_str)
            .ok_or("prefix without addr")?;
        let len = p
            .get("len")
            .and_then(Value::as_u64)
            .ok_or("prefix without len")?;
        let a: IpAddr = addr
            .parse()
            .map_err(|_| format!("prefix address `{addr}`"))?;
        let net = IpNet::new(a, len as u8).map_err(|_| format!("prefix length {len}"))?;
        out.insert(net);
        return Ok(());
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        let ends: Vec<IpAddr> = r
            .iter()
            .filter_map(|x| x.as_str().and_then(|s| s.parse().ok()))
            .collect();
        match ends[..] {
            [IpAddr::V4(a), IpAddr::V4(b)] => {
                out.extend(ipnet::Ipv4Subnets::new(a, b, 0).map(IpNet::V4));
            }
            [IpAddr::V6(a), IpAddr::V6(b)] => {
                out.extend(ipnet::Ipv6Subnets::new(a, b, 0).map(IpNet::V6));
            }
            _ => return Err(format!("range {v}")),
        }
        return Ok(());
    }
    Err(format!("unknown element {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_forms() {
        let text = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
          {"set": {"family": "inet", "name": "block4", "table": "spoor", "type": "ipv4_addr",
            "handle": 2, "flags": ["interval", "timeout"],
            "elem": ["192.0.2.7",
              {"prefix": {"addr": "198.51.100.0", "len": 24}},
              {"elem": {"val": "203.0.113.9", "timeout": 3600, "expires": 3597}},
              {"elem": {"val": {"prefix": {"addr": "203.0.113.128", "len": 25}}, "timeout": 60}},
              {"range": ["192.0.2.16", "192.0.2.23"]}]}}]}"#;
        let got: Vec<String> = parse_set_listing(text)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "192.0.2.7/32",
                "192.0.2.16/29",
                "198.51.100.0/24",
                "203.0.113.9/32",
                "203.0.113.128/25"
            ]
        );
        let empty = r#"{"nftables": [{"set": {"family": "inet", "name": "block6", "table": "spoor", "type": "ipv6_addr"}}]}"#;
        assert!(parse_set_listing(empty).unwrap().is_empty());
        assert!(parse_set_listing("{}").is_err());
        assert!(parse_set_listing(r#"{"nftables":[{"set":{"elem":[{"foo":1}]}}]}"#).is_err());
    }
}
