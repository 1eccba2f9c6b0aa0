//! Merging records from every source into one deduplicated trail set.
//!
//! Each indicator keeps the list of its origins (source, info, reference, severity), so a
//! hit can say every feed that lists it. `finish` applies the whitelist and the consensus
//! rules and hands a [`TrailSet`] to the snapshot writer.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use spoor_core::{Indicator, Severity, TrailKind};

use crate::config::OriginDefaults;
use crate::format::Record;
use crate::snapshot::ranges::Addr;

/// Index of a distinct (source, info, reference, severity).
pub(crate) type OriginId = u32;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub(crate) source: u16,
    pub(crate) info: Arc<str>,
    pub(crate) reference: Arc<str>,
    pub(crate) severity: Severity,
}

/// The origins of one indicator: nearly always one, so no allocation for that case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origins {
    One(OriginId),
    Many(Vec<OriginId>),
}

impl Origins {
    fn add(&mut self, id: OriginId) {
        match self {
            Origins::One(o) if *o == id => {}
            Origins::One(o) => *self = Origins::Many(vec![*o, id]),
            Origins::Many(v) => {
                if !v.contains(&id) {
                    v.push(id);
                }
            }
        }
    }
    pub(crate) fn as_slice(&self) -> &[OriginId] {
        match self {
            Origins::One(o) => std::slice::from_ref(o),
            Origins::Many(v) => v,
        }
    }
}

/// Per-source facts kept in the snapshot's metadata (`spoor trails stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSummary {
    pub name: String,
    pub format: String,
    pub location: String,
    /// Records read (before deduplication, whitelist and consensus).
    pub records: u64,
    pub malformed: u64,
    /// Trails in the snapshot that this source lists, by kind.
    pub trails: std::collections::BTreeMap<String, u64>,
    pub whitelist: bool,
}

/// Everything the writer needs, deduplicated and filtered.
#[derive(Debug, Default)]
pub(crate) struct TrailSet {
    pub(crate) origins: Vec<Origin>,
    pub(crate) sources: Vec<SourceSummary>,
    pub(crate) v4: Vec<((u32, u8), Origins)>,
    pub(crate) v6: Vec<((u128, u8), Origins)>,
    pub(crate) ipport4: Vec<(u64, Origins)>,
    pub(crate) ipport6: Vec<((u128, u16), Origins)>,
    /// Domain, URL, path, JA4, cert (lower-case hex), wildcard, user-agent trails.
    pub(crate) text: HashMap<TrailKind, Vec<(Box<str>, Origins)>>,
    pub(crate) whitelist_domains: Vec<Box<str>>,
    pub(crate) whitelist_v4: Vec<(u32, u32)>,
    pub(crate) whitelist_v6: Vec<(u128, u128)>,
    pub(crate) whitelisted: std::collections::BTreeMap<String, u64>,
    pub(crate) below_consensus: u64,
}

#[derive(Debug, Default)]
struct Whitelist {
    domains: HashSet<Box<str>>,
    v4: Vec<(u32, u8)>,
    v6: Vec<(u128, u8)>,
}

#[derive(Debug)]
struct SourceState {
    summary: SourceSummary,
    defaults: OriginDefaults,
    default_info: Arc<str>,
    default_reference: Arc<str>,
}

/// Collects records from every source.
#[derive(Debug, Default)]
pub(crate) struct TrailSetBuilder {
    sources: Vec<SourceState>,
    origin_ids: HashMap<Origin, OriginId>,
    origins: Vec<Origin>,
    interned: HashSet<Arc<str>>,
    v4: HashMap<(u32, u8), Origins>,
    v6: HashMap<(u128, u8), Origins>,
    ipport4: HashMap<u64, Origins>,
    ipport6: HashMap<(u128, u16), Origins>,
    text: HashMap<TrailKind, HashMap<Box<str>, Origins>>,
    whitelist: Whitelist,
}

/// The highest source index a snapshot can name.
pub(crate) const MAX_SOURCES: usize = u16::MAX as usize;

fn insert<K: Eq + Hash>(map: &mut HashMap<K, Origins>, key: K, id: OriginId) {
    map.entry(key)
        .and_modify(|o| o.add(id))
        .or_insert(Origins::One(id));
}

impl TrailSetBuilder {
    /// Register a source; records are then added with the returned id.
    pub(crate) fn add_source(
        &mut self,
        name: &str,
        format: &str,
        location: &str,
        defaults: &OriginDefaults,
        whitelist: bool,
    ) -> Option<u16> {
        if self.sources.len() >= MAX_SOURCES {
            return None;
        }
        let default_info = self.intern(defaults.info.as_deref().unwrap_or(name));
        let default_reference = self.intern(defaults.reference.as_deref().unwrap_or(name));
        self.sources.push(SourceState {
            summary: SourceSummary {
                name: name.to_string(),
                format: format.to_string(),
                location: location.to_string(),
                whitelist,
                ..SourceSummary::default()
            },
            defaults: defaults.clone(),
            default_info,
            default_reference,
        });
        Some((self.sources.len() - 1) as u16)
    }

    pub(crate) fn note_malformed(&mut self, source: u16, count: u64) {
        self.sources[source as usize].summary.malformed += count;
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.interned.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.interned.insert(a.clone());
        a
    }

    fn origin(&mut self, source: u16, record: &Record) -> OriginId {
        let state = &self.sources[source as usize];
        let info = record
            .info
            .clone()
            .unwrap_or_else(|| state.default_info.clone());
        let reference = record
            .reference
            .clone()
            .unwrap_or_else(|| state.default_reference.clone());
        let severity = record
            .severity
            .or(state.defaults.severity)
            .unwrap_or_else(|| Severity::from_info(&info));
        let origin = Origin {
            source,
            info,
            reference,
            severity,
        };
        if let Some(&id) = self.origin_ids.get(&origin) {
            return id;
        }
        let id = self.origins.len() as OriginId;
        self.origins.push(origin.clone());
        self.origin_ids.insert(origin, id);
        id
    }

    pub(crate) fn add(&mut self, source: u16, record: Record) {
        self.sources[source as usize].summary.records += 1;
        if self.sources[source as usize].summary.whitelist {
            self.add_whitelist(record.indicator);
            return;
        }
        let id = self.origin(source, &record);
        match record.indicator {
            Indicator::Ip(IpAddr::V4(ip)) => insert(&mut self.v4, (u32::from(ip), 32), id),
            Indicator::Ip(IpAddr::V6(ip)) => insert(&mut self.v6, (u128::from(ip), 128), id),
            Indicator::Cidr(IpNet::V4(n)) => {
                insert(&mut self.v4, (u32::from(n.network()), n.prefix_len()), id)
            }
            Indicator::Cidr(IpNet::V6(n)) => {
                insert(&mut self.v6, (u128::from(n.network()), n.prefix_len()), id)
            }
            Indicator::IpPort(IpAddr::V4(ip), port) => insert(
                &mut self.ipport4,
                (u64::from(u32::from(ip)) << 16) | u64::from(port),
                id,
            ),
            Indicator::IpPort(IpAddr::V6(ip), port) => {
                insert(&mut self.ipport6, (u128::from(ip), port), id)
            }
            text => {
                let kind = text.kind();
                let key = match text {
                    Indicator::Domain(s)
                    | Indicator::Url(s)
                    | Indicator::Path(s)
                    | Indicator::Wildcard(s)
                    | Indicator::UserAgent(s)
                    | Indicator::Ja4(s) => s.into_boxed_str(),
                    other => other.to_string().into_boxed_str(),
                };
                insert(self.text.entry(kind).or_default(), key, id)
            }
        }
    }

    fn add_whitelist(&mut self, indicator: Indicator) {
        match indicator {
            Indicator::Domain(d) => {
                self.whitelist.domains.insert(d.into_boxed_str());
            }
            Indicator::Ip(IpAddr::V4(ip)) => self.whitelist.v4.push((u32::from(ip), 32)),
            Indicator::Ip(IpAddr::V6(ip)) => self.whitelist.v6.push((u128::from(ip), 128)),
            Indicator::Cidr(IpNet::V4(n)) => self
                .whitelist
                .v4
                .push((u32::from(n.network()), n.prefix_len())),
            Indicator::Cidr(IpNet::V6(n)) => self
                .whitelist
                .v6
                .push((u128::from(n.network()), n.prefix_len())),
            // Formats only hand domains and addresses to a whitelist source.
            _ => {}
        }
    }
}

impl Whitelist {
    /// The domain or one of its parents is whitelisted.
    fn covers_domain(&self, name: &str) -> bool {
        let mut rest = name;
        loop {
            if self.domains.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => return false,
            }
        }
    }
}

/// Merge prefixes into sorted, disjoint, non-adjacent `(first, last)` ranges.
fn merged_ranges<A: Addr>(prefixes: &[(A, u8)]) -> Vec<(A, A)> {
    let mut ranges: Vec<(A, A)> = prefixes
        .iter()
        .map(|&(net, len)| (net, A::last_of(net, len)))
        .collect();
    ranges.sort();
    let mut out: Vec<(A, A)> = Vec::with_capacity(ranges.len());
    for (first, last) in ranges {
        match out.last_mut() {
            Some(prev) if prev.1.checked_inc().is_none_or(|next| first <= next) => {
                if last > prev.1 {
                    prev.1 = last;
                }
            }
            _ => out.push((first, last)),
        }
    }
    out
}

/// `[first, last]` lies entirely inside one of the merged `ranges`.
fn inside<A: Addr>(ranges: &[(A, A)], first: A, last: A) -> bool {
    let i = ranges.partition_point(|r| r.0 <= first);
    i > 0 && ranges[i - 1].1 >= last
}

impl TrailSetBuilder {
    /// Apply the whitelist and the consensus rules, and sort everything for the writer.
    pub(crate) fn finish(mut self) -> TrailSet {
        let wl4 = merged_ranges(&self.whitelist.v4);
        let wl6 = merged_ranges(&self.whitelist.v6);
        let mut set = TrailSet {
            whitelist_v4: wl4.clone(),
            whitelist_v6: wl6.clone(),
            ..TrailSet::default()
        };
        let min_consensus: Vec<u32> = self
            .sources
            .iter()
            .map(|s| s.defaults.min_consensus.max(1))
            .collect();
        let origins = std::mem::take(&mut self.origins);
        let mut below_consensus = 0u64;
        // Keep the origins whose source's consensus rule holds; None drops the trail.
        let mut consensus = |o: Origins| -> Option<Origins> {
            let ids = o.as_slice();
            if ids
                .iter()
                .all(|&id| min_consensus[origins[id as usize].source as usize] <= 1)
            {
                return Some(o);
            }
            let mut sources: Vec<u16> = ids.iter().map(|&id| origins[id as usize].source).collect();
            sources.sort_unstable();
            sources.dedup();
            let listed = sources.len() as u32;
            let kept: Vec<OriginId> = ids
                .iter()
                .copied()
                .filter(|&id| min_consensus[origins[id as usize].source as usize] <= listed)
                .collect();
            match kept.len() {
                0 => {
                    below_consensus += 1;
                    None
                }
                1 => Some(Origins::One(kept[0])),
                _ => Some(Origins::Many(kept)),
            }
        };
        let mut whitelisted: std::collections::BTreeMap<String, u64> = Default::default();
        let mut drop = |kind: TrailKind| *whitelisted.entry(kind.to_string()).or_default() += 1;

        for ((net, len), o) in std::mem::take(&mut self.v4) {
            if inside(&wl4, net, u32::last_of(net, len)) {
                drop(if len == 32 {
                    TrailKind::Ip
                } else {
                    TrailKind::Cidr
                });
            } else if let Some(o) = consensus(o) {
                set.v4.push(((net, len), o));
            }
        }
        for ((net, len), o) in std::mem::take(&mut self.v6) {
            if inside(&wl6, net, u128::last_of(net, len)) {
                drop(if len == 128 {
                    TrailKind::Ip
                } else {
                    TrailKind::Cidr
                });
            } else if let Some(o) = consensus(o) {
                set.v6.push(((net, len), o));
            }
        }
        for (key, o) in std::mem::take(&mut self.ipport4) {
            let ip = (key >> 16) as u32;
            if inside(&wl4, ip, ip) {
                drop(TrailKind::IpPort);
            } else if let Some(o) = consensus(o) {
                set.ipport4.push((key, o));
            }
        }
        for ((ip, port), o) in std::mem::take(&mut self.ipport6) {
            if inside(&wl6, ip, ip) {
                drop(TrailKind::IpPort);
            } else if let Some(o) = consensus(o) {
                set.ipport6.push(((ip, port), o));
            }
        }
        for (kind, map) in std::mem::take(&mut self.text) {
            let mut list = Vec::with_capacity(map.len());
            for (key, o) in map {
                // URL trails on a whitelisted host stay: malware is hosted on big sites too.
                if kind == TrailKind::Domain && self.whitelist.covers_domain(&key) {
                    drop(kind);
                } else if let Some(o) = consensus(o) {
                    list.push((key, o));
                }
            }
            list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            set.text.insert(kind, list);
        }
        set.v4.sort_unstable_by_key(|e| e.0);
        set.v6.sort_unstable_by_key(|e| e.0);
        set.ipport4.sort_unstable_by_key(|e| e.0);
        set.ipport6.sort_unstable_by_key(|e| e.0);
        let mut wl_domains: Vec<Box<str>> = self.whitelist.domains.drain().collect();
        wl_domains.sort_unstable();
        set.whitelist_domains = wl_domains;

        // Per-source trail counts by kind, for `trails stats`.
        let mut summaries: Vec<SourceSummary> =
            self.sources.into_iter().map(|s| s.summary).collect();
        let mut count = |o: &Origins, kind: TrailKind| {
            let mut seen: Vec<u16> = Vec::new();
            for &id in o.as_slice() {
                let src = origins[id as usize].source;
                if !seen.contains(&src) {
                    seen.push(src);
                    *summaries[src as usize]
                        .trails
                        .entry(kind.to_string())
                        .or_default() += 1;
                }
            }
        };
        for ((_, len), o) in &set.v4 {
            count(
                o,
                if *len == 32 {
                    TrailKind::Ip
                } else {
                    TrailKind::Cidr
                },
            );
        }
        for ((_, len), o) in &set.v6 {
            count(
                o,
                if *len == 128 {
                    TrailKind::Ip
                } else {
                    TrailKind::Cidr
                },
            );
        }
        for (_, o) in &set.ipport4 {
            count(o, TrailKind::IpPort);
        }
        for (_, o) in &set.ipport6 {
            count(o, TrailKind::IpPort);
        }
        for (kind, list) in &set.text {
            for (_, o) in list {
                count(o, *kind);
            }
        }
        set.sources = summaries;
        set.origins = origins;
        set.whitelisted = whitelisted;
        set.below_consensus = below_consensus;
        set
    }
}
