//! nftables: four sets in a table Spoor owns, changed with JSON batches through
//! `nft -j -f -` (one process and one atomic transaction per batch, however large).
//!
//! Per address family, single addresses (most decisions) go in a hash set with
//! `flags timeout`, networks in a set with `flags interval, timeout`. One interval set
//! for everything was measured too slow at scale (BENCHMARKS.md): nft checks every
//! addition and deletion against the whole interval tree in userspace, so adding one
//! address to an interval set of 100,000 took 2-3 s and deleting 10,000 took minutes,
//! while a hash set takes milliseconds for either. Timeouts let each element carry the
//! rest of its decision's TTL and disappear on its own if the agent dies (the ledger
//! stays the truth; the reconciler puts back what should be there).
//!
//! With `create = true` the backend also makes the table, the four sets and base chains
//! that drop traffic from and to the sets' addresses; those chains are Spoor's own and are
//! rewritten at every setup, nothing else in the ruleset is touched.
//!
//! Emptying many of Spoor's entries at once (the kill switch) flushes the affected sets
//! and re-adds, in the same transaction, whatever else they held with its remaining
//! timeout, instead of deleting element by element.
//!
//! JSON is built with `serde_json` directly: the handful of objects used here (table,
//! set, chain, rule, element) are simpler to write and read than a schema crate's types,
//! and `serde_json` is already a dependency.

use std::collections::{BTreeMap, BTreeSet};
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
    /// Single IPv4 addresses (hash set, `flags timeout`).
    pub set_v4: String,
    /// Single IPv6 addresses (hash set, `flags timeout`).
    pub set_v6: String,
    /// IPv4 networks (`flags interval, timeout`).
    pub net_set_v4: String,
    /// IPv6 networks (`flags interval, timeout`).
    pub net_set_v6: String,
    /// Make the table, sets and drop chains if missing (and rewrite Spoor's chains).
    pub create: bool,
    /// Entries the sets may hold together.
    pub capacity: usize,
}

/// One of the four sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Host4,
    Net4,
    Host6,
    Net6,
}

impl Slot {
    const ALL: [Slot; 4] = [Slot::Host4, Slot::Net4, Slot::Host6, Slot::Net6];

    /// Where Spoor puts a target.
    fn of(t: &IpNet) -> Slot {
        let host = t.prefix_len() == t.max_prefix_len();
        match (t, host) {
            (IpNet::V4(_), true) => Slot::Host4,
            (IpNet::V4(_), false) => Slot::Net4,
            (IpNet::V6(_), true) => Slot::Host6,
            (IpNet::V6(_), false) => Slot::Net6,
        }
    }

    fn addr_type(self) -> &'static str {
        match self {
            Slot::Host4 | Slot::Net4 => "ipv4_addr",
            Slot::Host6 | Slot::Net6 => "ipv6_addr",
        }
    }

    fn flags(self) -> &'static [&'static str] {
        match self {
            Slot::Host4 | Slot::Host6 => &["timeout"],
            Slot::Net4 | Slot::Net6 => &["interval", "timeout"],
        }
    }

    fn protocol(self) -> &'static str {
        match self {
            Slot::Host4 | Slot::Net4 => "ip",
            Slot::Host6 | Slot::Net6 => "ip6",
        }
    }
}

/// One element of a listed set: the set it is in, the element exactly as nft printed it
/// (to put it back verbatim), and the networks it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedElement {
    pub set: String,
    pub raw: Value,
    pub nets: Vec<IpNet>,
}

/// A backend writing to nftables sets.
#[derive(Debug)]
pub struct NftBackend {
    settings: NftSettings,
    /// The set each entry was in at the last list or apply, so that a removal goes to the
    /// set that holds the entry (an admin may have put a single address in a network set).
    located: BTreeMap<IpNet, Slot>,
}

impl NftBackend {
    /// Check that nft works, and set the table up if `create` is on.
    pub fn new(settings: NftSettings) -> Result<Self, BackendError> {
        let b = NftBackend {
            settings,
            located: BTreeMap::new(),
        };
        if b.settings.create {
            b.setup()?;
        }
        Ok(b)
    }

    /// The sets the table's family can hold: both families in an `inet` table, IPv4 only
    /// in an `ip` table, IPv6 only in an `ip6` table (nft refuses `ip6 saddr` there).
    fn slots(&self) -> &'static [Slot] {
        match self.settings.family.as_str() {
            "ip" => &[Slot::Host4, Slot::Net4],
            "ip6" => &[Slot::Host6, Slot::Net6],
            _ => &Slot::ALL,
        }
    }

    fn set_name(&self, slot: Slot) -> &str {
        let s = &self.settings;
        match slot {
            Slot::Host4 => &s.set_v4,
            Slot::Net4 => &s.net_set_v4,
            Slot::Host6 => &s.set_v6,
            Slot::Net6 => &s.net_set_v6,
        }
    }

    fn slot_of_name(&self, name: &str) -> Option<Slot> {
        self.slots()
            .iter()
            .copied()
            .find(|s| self.set_name(*s) == name)
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

    fn batch(&self, commands: Vec<Value>) -> Result<String, BackendError> {
        self.batch_text(commands.iter().map(Value::to_string).collect())
    }

    /// One `nft -j -f -` call with these commands (each a JSON object's text).
    fn batch_text(&self, commands: Vec<String>) -> Result<String, BackendError> {
        if commands.is_empty() {
            return Ok(String::new());
        }
        let mut text =
            String::with_capacity(commands.iter().map(|c| c.len() + 1).sum::<usize>() + 16);
        text.push_str("{\"nftables\":[");
        text.push_str(&commands.join(","));
        text.push_str("]}");
        self.run_json(&["-f", "-"], Some(text.as_bytes()))
    }

    /// `{"VERB": {"element": {family, table, name, "elem": [...]}}}`, written as text
    /// directly: for 100,000 elements a `Value` tree per element costs more than the
    /// text itself (addresses and numbers need no escaping; names go through serde).
    fn element_command(&self, verb: &str, slot: Slot, elems: &[(&IpNet, Option<u64>)]) -> String {
        use std::fmt::Write;
        let quote = |s: &str| Value::from(s).to_string();
        let mut out = String::with_capacity(elems.len() * 48 + 128);
        let _ = write!(
            out,
            "{{\"{verb}\":{{\"element\":{{\"family\":{},\"table\":{},\"name\":{},\"elem\":[",
            quote(&self.settings.family),
            quote(&self.settings.table),
            quote(self.set_name(slot)),
        );
        for (i, (t, timeout)) in elems.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if timeout.is_some() {
                out.push_str("{\"elem\":{\"val\":");
            }
            if t.prefix_len() == t.max_prefix_len() {
                let _ = write!(out, "\"{}\"", t.addr());
            } else {
                let _ = write!(
                    out,
                    "{{\"prefix\":{{\"addr\":\"{}\",\"len\":{}}}}}",
                    t.network(),
                    t.prefix_len()
                );
            }
            if let Some(secs) = timeout {
                let _ = write!(out, ",\"timeout\":{secs}}}}}");
            }
        }
        out.push_str("]}}}");
        out
    }

    fn obj(&self, extra: Value) -> Value {
        let mut base = json!({ "family": self.settings.family, "table": self.settings.table });
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        base
    }

    fn set_ref(&self, slot: Slot) -> Value {
        self.obj(json!({"name": self.set_name(slot)}))
    }

    /// The table, the sets, and Spoor's chains with their drop rules, in one transaction.
    fn setup(&self) -> Result<(), BackendError> {
        let s = &self.settings;
        let mut cmds = vec![json!({"add": {"table": {"family": s.family, "name": s.table}}})];
        for &slot in self.slots() {
            cmds.push(json!({"add": {"set": self.obj(json!({
                "name": self.set_name(slot), "type": slot.addr_type(), "flags": slot.flags()
            }))}}));
        }
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
                for &slot in self.slots() {
                    cmds.push(json!({"add": {"rule": self.obj(json!({
                        "chain": name,
                        "expr": [
                            {"match": {"op": "==",
                                "left": {"payload": {"protocol": slot.protocol(), "field": field}},
                                "right": format!("@{}", self.set_name(slot))}},
                            {"drop": null}
                        ]
                    }))}}));
                }
            }
        }
        match self.batch(cmds) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.explain_setup_failure().unwrap_or(e)),
        }
    }

    /// After a failed setup: a set of the configured name that exists with another type
    /// or other flags (for example an interval set for single addresses, from an older
    /// Spoor) makes `add set` fail with a bare "File exists"; name it and say what to do.
    fn explain_setup_failure(&self) -> Option<BackendError> {
        for &slot in self.slots() {
            let name = self.set_name(slot);
            let Ok(out) = self.run_json(
                &[
                    "-t",
                    "list",
                    "set",
                    &self.settings.family,
                    &self.settings.table,
                    name,
                ],
                None,
            ) else {
                continue;
            };
            let Some((ty, flags)) = set_spec(&out) else {
                continue;
            };
            let want: Vec<String> = slot.flags().iter().map(|f| f.to_string()).collect();
            if ty != slot.addr_type() || flags != want {
                return Some(BackendError::Conflict {
                    object: format!(
                        "nftables set {} {} {name}",
                        self.settings.family, self.settings.table
                    ),
                    message: format!(
                        "it exists as type {ty} with flags [{}], but Spoor keeps {} in it and needs type {} with flags [{}]; delete it (`nft delete table {} {}` if that table holds only Spoor's objects) or name another set in [respond.nftables], then restart: the reconciler puts every active block back",
                        flags.join(", "),
                        match slot {
                            Slot::Host4 | Slot::Host6 => "single addresses",
                            Slot::Net4 | Slot::Net6 => "networks",
                        },
                        slot.addr_type(),
                        want.join(", "),
                        self.settings.family,
                        self.settings.table,
                    ),
                });
            }
        }
        None
    }

    /// Every element of the four sets. One nft call per set: nft 1.0.6 cannot list
    /// several sets in one call (its cache then holds only one of them).
    fn list_elements(&self) -> Result<Vec<ListedElement>, BackendError> {
        let s = &self.settings;
        let mut all = Vec::new();
        for &slot in self.slots() {
            let name = self.set_name(slot);
            let out = self.run_json(&["list", "set", &s.family, &s.table, name], None)?;
            all.extend(parse_listing(&out).map_err(|message| BackendError::Output {
                command: format!("nft -j list set {} {} {name}", s.family, s.table),
                message,
            })?);
        }
        Ok(all)
    }

    fn remember<'a>(&mut self, listed: impl IntoIterator<Item = &'a ListedElement>) {
        self.located.clear();
        for e in listed {
            if let Some(slot) = self.slot_of_name(&e.set) {
                for n in &e.nets {
                    self.located.insert(*n, slot);
                }
            }
        }
    }

    /// The set a removal goes to: where the entry was seen, else where Spoor puts it.
    fn slot_holding(&self, t: &IpNet) -> Slot {
        self.located.get(t).copied().unwrap_or_else(|| Slot::of(t))
    }
}

impl Backend for NftBackend {
    fn name(&self) -> String {
        format!("nftables:{} {}", self.settings.family, self.settings.table)
    }

    fn apply(&mut self, changes: &Changes) -> Result<(), BackendError> {
        let mut cmds = Vec::new();
        // Removals first: a batch may replace a host with the network around it.
        let mut removals: BTreeMap<Slot, Vec<(&IpNet, Option<u64>)>> = BTreeMap::new();
        for t in &changes.remove {
            removals
                .entry(self.slot_holding(t))
                .or_default()
                .push((t, None));
        }
        for (slot, elems) in removals {
            cmds.push(self.element_command("delete", slot, &elems));
        }
        let mut additions: BTreeMap<Slot, Vec<(&IpNet, Option<u64>)>> = BTreeMap::new();
        let (fits, unfit): (Vec<&IpNet>, Vec<&IpNet>) = changes
            .add
            .iter()
            .partition(|t| self.slots().contains(&Slot::of(t)));
        if let Some(first) = unfit.first() {
            tracing::warn!(
                "{} blocks not written: a table of family {} cannot hold {} (first: {first}); use family inet for both",
                unfit.len(),
                self.settings.family,
                if self.settings.family == "ip" {
                    "IPv6 addresses"
                } else {
                    "IPv4 addresses"
                },
            );
        }
        for t in fits {
            let timeout = changes.expires_in.get(t).copied().filter(|&s| s > 0);
            additions.entry(Slot::of(t)).or_default().push((t, timeout));
        }
        for (slot, elems) in additions {
            cmds.push(self.element_command("add", slot, &elems));
        }
        if let Err(e) = self.batch_text(cmds) {
            self.located.clear();
            return Err(e);
        }
        for t in &changes.remove {
            self.located.remove(t);
        }
        for t in &changes.add {
            if self.slots().contains(&Slot::of(t)) {
                self.located.insert(*t, Slot::of(t));
            }
        }
        Ok(())
    }

    fn list(&mut self) -> Result<BTreeSet<IpNet>, BackendError> {
        let listed = self.list_elements()?;
        self.remember(&listed);
        Ok(listed.into_iter().flat_map(|e| e.nets).collect())
    }

    /// Flush each set that holds any of `own` and put back, in the same transaction,
    /// everything else it held, with its timeout and time left as nft printed them.
    fn flush_own(&mut self, own: &BTreeSet<IpNet>) -> Result<Vec<IpNet>, BackendError> {
        let listed = self.list_elements()?;
        let is_own = |e: &ListedElement| e.nets.len() == 1 && own.contains(&e.nets[0]);
        let removed: BTreeSet<IpNet> = listed
            .iter()
            .filter(|e| is_own(e))
            .map(|e| e.nets[0])
            .collect();
        let mut cmds = Vec::new();
        let mut kept = Vec::new();
        for &slot in self.slots() {
            let name = self.set_name(slot);
            let in_set: Vec<&ListedElement> = listed.iter().filter(|e| e.set == name).collect();
            if !in_set.iter().any(|e| is_own(e)) {
                kept.extend(in_set);
                continue;
            }
            cmds.push(json!({"flush": {"set": self.set_ref(slot)}}));
            let keep: Vec<&ListedElement> = in_set
                .into_iter()
                .filter(|e| !is_own(e) && !expiring(&e.raw))
                .collect();
            if !keep.is_empty() {
                let mut set = self.set_ref(slot);
                set["elem"] = keep.iter().map(|e| e.raw.clone()).collect();
                cmds.push(json!({"add": {"element": set}}));
                kept.extend(keep);
            }
        }
        if let Err(e) = self.batch(cmds) {
            self.located.clear();
            return Err(e);
        }
        self.remember(kept);
        Ok(removed.into_iter().collect())
    }

    fn capacity(&self) -> usize {
        self.settings.capacity
    }

    fn cannot_hold(&self, target: &IpNet) -> Option<String> {
        (!self.slots().contains(&Slot::of(target))).then(|| {
            format!(
                "nftables table {} {} is of family {} (use family inet for IPv4 and IPv6)",
                self.settings.family, self.settings.table, self.settings.family
            )
        })
    }
}

/// An element whose timeout has run out (nft prints `"expires": 0` until its garbage
/// collection): not put back.
fn expiring(raw: &Value) -> bool {
    raw.get("elem")
        .and_then(|e| e.get("expires"))
        .and_then(Value::as_u64)
        == Some(0)
}

/// The type and flags of the set in a terse `nft -j -t list set` output.
fn set_spec(text: &str) -> Option<(String, Vec<String>)> {
    let doc: Value = serde_json::from_str(text).ok()?;
    let set = doc
        .get("nftables")?
        .as_array()?
        .iter()
        .find_map(|i| i.get("set"))?;
    let ty = set.get("type")?.as_str()?.to_string();
    let flags = set
        .get("flags")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Some((ty, flags))
}

/// The elements of `nft -j list set ...` output (one or more JSON documents, one per
/// listed set): addresses, `prefix` objects, `range` pairs (split into the CIDRs covering
/// them), each bare or wrapped in an `elem` object with its timeout.
pub fn parse_listing(text: &str) -> Result<Vec<ListedElement>, String> {
    let mut out = Vec::new();
    let mut docs = 0;
    for doc in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let mut doc = doc.map_err(|e| format!("not JSON: {e}"))?;
        docs += 1;
        let items = doc
            .get_mut("nftables")
            .and_then(Value::as_array_mut)
            .ok_or("no `nftables` array")?;
        for item in items {
            let Some(set) = item.get_mut("set") else {
                continue;
            };
            let name = set
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(elems) = set.get_mut("elem") else {
                continue;
            };
            let elems = elems.as_array_mut().ok_or("`elem` is not an array")?;
            for e in elems.drain(..) {
                let v = e.get("elem").and_then(|w| w.get("val")).unwrap_or(&e);
                let mut nets = BTreeSet::new();
                parse_element(v, &mut nets)?;
                out.push(ListedElement {
                    set: name.clone(),
                    raw: e,
                    nets: nets.into_iter().collect(),
                });
            }
        }
    }
    if docs == 0 {
        return Err("no output".into());
    }
    Ok(out)
}

/// Everything `nft -j list set ...` output holds, as networks.
pub fn parse_set_listing(text: &str) -> Result<BTreeSet<IpNet>, String> {
    Ok(parse_listing(text)?
        .into_iter()
        .flat_map(|e| e.nets)
        .collect())
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
        assert!(
            parse_set_listing("").is_err(),
            "no output is not an empty set"
        );
    }

    #[test]
    fn element_commands_are_the_documented_json() {
        let b = NftBackend {
            settings: NftSettings {
                command: vec![],
                family: "inet".into(),
                table: "spoor".into(),
                set_v4: "block_v4".into(),
                set_v6: "block_v6".into(),
                net_set_v4: "block_net_v4".into(),
                net_set_v6: "block_net_v6".into(),
                create: false,
                capacity: 10,
            },
            located: BTreeMap::new(),
        };
        let host: IpNet = "192.0.2.7/32".parse().unwrap();
        let v6net: IpNet = "2001:db8:1::/48".parse().unwrap();
        let text = b.element_command("add", Slot::Host4, &[(&host, Some(60)), (&host, None)]);
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            got,
            json!({"add": {"element": {"family": "inet", "table": "spoor", "name": "block_v4",
                "elem": [{"elem": {"val": "192.0.2.7", "timeout": 60}}, "192.0.2.7"]}}})
        );
        let text = b.element_command("delete", Slot::Net6, &[(&v6net, None)]);
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            got,
            json!({"delete": {"element": {"family": "inet", "table": "spoor", "name": "block_net_v6",
                "elem": [{"prefix": {"addr": "2001:db8:1::", "len": 48}}]}}})
        );
        assert_eq!(Slot::of(&host), Slot::Host4);
        assert_eq!(Slot::of(&v6net), Slot::Net6);
    }

    #[test]
    fn listing_keeps_set_names_and_raw_elements() {
        let text = concat!(
            r#"{"nftables": [{"set": {"name": "block_v4", "elem": [{"elem": {"val": "192.0.2.7", "timeout": 60, "expires": 12}}]}}]}"#,
            "\n",
            r#"{"nftables": [{"set": {"name": "block_net_v4", "elem": [{"range": ["192.0.2.16", "192.0.2.23"]}]}}]}"#,
        );
        let got = parse_listing(text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].set, "block_v4");
        assert_eq!(got[0].raw["elem"]["expires"], 12);
        assert_eq!(got[1].set, "block_net_v4");
        assert_eq!(got[1].nets, ["192.0.2.16/29".parse::<IpNet>().unwrap()]);
        assert!(!expiring(&got[0].raw));
        assert!(expiring(
            &json!({"elem": {"val": "192.0.2.7", "timeout": 60, "expires": 0}})
        ));
    }
}
