//! Serialising a [`TrailSet`] into the snapshot layout, and writing it atomically.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};
use spoor_core::TrailKind;

use super::hash::{TableEntry, build_filter, build_slots, for_each_suffix, ip_hash, key_hash};
use super::ranges::{Entry4, Entry6, build_exact_v4, flatten, v4_index};
use super::{FORMAT_VERSION, HEADER_LEN, MAGIC, SECTION_ENTRY_LEN, Section, checksum};
use crate::compile::builder::{Origins, SourceSummary, TrailSet};

/// An origin as stored: string refs into the strings section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct OriginRec {
    pub(crate) info: u32,
    pub(crate) reference: u32,
    pub(crate) source: u16,
    pub(crate) severity: u8,
    pub(crate) _pad: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct IpPort4Rec {
    /// `ip << 16 | port`
    pub(crate) key: u64,
    pub(crate) set: u32,
    pub(crate) _pad: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct IpPort6Rec {
    pub(crate) ip: u128,
    pub(crate) port: u32,
    pub(crate) set: u32,
    pub(crate) _pad: u64,
}

/// What `spoor trails stats` shows; stored as JSON in the metadata section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Seconds since the Unix epoch when the snapshot was compiled.
    pub created: u64,
    pub spoor_version: String,
    pub sources: Vec<SourceSummary>,
    /// Trails in the snapshot by kind.
    pub counts: BTreeMap<String, u64>,
    /// Trails removed because the whitelist covers them, by kind.
    pub whitelisted: BTreeMap<String, u64>,
    /// Trails dropped because too few sources listed them.
    pub below_consensus: u64,
}

/// Strings are stored once each as `len u16 | bytes`; a reference is the offset.
#[derive(Debug, Default)]
struct StringPool {
    bytes: Vec<u8>,
    dedup: HashMap<Box<[u8]>, u32>,
}

impl StringPool {
    fn add(&mut self, s: &[u8]) -> u32 {
        // Trail strings are bounded (URLs at 2,048 bytes); clip anything longer defensively.
        let s = &s[..s.len().min(u16::MAX as usize)];
        let at = self.bytes.len() as u32;
        self.bytes
            .extend_from_slice(&(s.len() as u16).to_le_bytes());
        self.bytes.extend_from_slice(s);
        at
    }
    fn add_shared(&mut self, s: &str) -> u32 {
        if let Some(&at) = self.dedup.get(s.as_bytes()) {
            return at;
        }
        let at = self.add(s.as_bytes());
        self.dedup.insert(s.as_bytes().into(), at);
        at
    }
}

/// Origin sets as `[count, id...]` runs in one u32 array, deduplicated.
#[derive(Debug, Default)]
struct SetPool {
    words: Vec<u32>,
    dedup: HashMap<Vec<u32>, u32>,
}

impl SetPool {
    fn add(&mut self, o: &Origins) -> u32 {
        let ids = o.as_slice();
        if let Some(&at) = self.dedup.get(ids) {
            return at;
        }
        let at = self.words.len() as u32;
        self.words.push(ids.len() as u32);
        self.words.extend_from_slice(ids);
        self.dedup.insert(ids.to_vec(), at);
        at
    }
}

fn table_bytes(
    pool: &mut StringPool,
    sets: &mut SetPool,
    list: &[(Box<str>, Option<&Origins>)],
) -> Vec<u8> {
    let hashes: Vec<u64> = list.iter().map(|(k, _)| key_hash(k.as_bytes())).collect();
    let (header, slots) = build_slots(&hashes);
    let entries: Vec<TableEntry> = list
        .iter()
        .map(|(k, o)| TableEntry {
            key: pool.add(k.as_bytes()),
            value: o.map_or(0, |o| sets.add(o)),
        })
        .collect();
    let mut out = Vec::with_capacity(16 + slots.len() * 8 + entries.len() * 8);
    out.extend_from_slice(bytemuck::bytes_of(&header));
    out.extend_from_slice(bytemuck::cast_slice(&slots));
    out.extend_from_slice(bytemuck::cast_slice(&entries));
    out
}

/// Serialise the trail set into a complete snapshot image.
#[cfg(test)]
pub(crate) fn encode(set: &TrailSet, created: u64) -> Vec<u8> {
    encode_with_meta(set, created).0
}

/// Serialise the trail set, and return the metadata stored in it.
pub(crate) fn encode_with_meta(set: &TrailSet, created: u64) -> (Vec<u8>, SnapshotMeta) {
    let mut pool = StringPool::default();
    let mut sets = SetPool::default();
    let mut sections: Vec<(Section, Vec<u8>)> = Vec::new();

    let origins: Vec<OriginRec> = set
        .origins
        .iter()
        .map(|o| OriginRec {
            info: pool.add_shared(&o.info),
            reference: pool.add_shared(&o.reference),
            source: o.source,
            severity: o.severity.to_u8(),
            _pad: 0,
        })
        .collect();
    sections.push((Section::Origins, bytemuck::cast_slice(&origins).to_vec()));

    // IPv4 prefixes → ranges.
    let prefixes4: Vec<(u32, u8)> = set.v4.iter().map(|e| e.0).collect();
    let flat4 = flatten(&prefixes4);
    let entries4: Vec<Entry4> = set
        .v4
        .iter()
        .zip(&flat4.parents)
        .map(|(((net, len), o), &parent)| Entry4 {
            net: *net,
            parent,
            set: sets.add(o),
            len: *len,
            _pad: [0; 3],
        })
        .collect();
    let index4 = v4_index(&flat4.starts);
    sections.push((
        Section::V4Index,
        bytemuck::cast_slice(&index4.index).to_vec(),
    ));
    sections.push((Section::V4Sub, bytemuck::cast_slice(&index4.sub).to_vec()));
    let exact: Vec<(u32, u32)> = entries4
        .iter()
        .filter(|e| e.len == 32)
        .map(|e| (e.net, e.set))
        .collect();
    let (bitmap, slots) = build_exact_v4(&exact);
    sections.push((
        Section::V4ExactBitmap,
        bytemuck::cast_slice(&bitmap).to_vec(),
    ));
    sections.push((Section::V4Exact, bytemuck::cast_slice(&slots).to_vec()));
    sections.push((
        Section::V4Starts,
        bytemuck::cast_slice(&flat4.starts).to_vec(),
    ));
    sections.push((
        Section::V4Values,
        bytemuck::cast_slice(&flat4.values).to_vec(),
    ));
    sections.push((Section::V4Entries, bytemuck::cast_slice(&entries4).to_vec()));

    let prefixes6: Vec<(u128, u8)> = set.v6.iter().map(|e| e.0).collect();
    let flat6 = flatten(&prefixes6);
    let entries6: Vec<Entry6> = set
        .v6
        .iter()
        .zip(&flat6.parents)
        .map(|(((net, len), o), &parent)| Entry6 {
            net: *net,
            parent,
            set: sets.add(o),
            len: *len,
            _pad: [0; 7],
        })
        .collect();
    sections.push((
        Section::V6Starts,
        bytemuck::cast_slice(&flat6.starts).to_vec(),
    ));
    sections.push((
        Section::V6Values,
        bytemuck::cast_slice(&flat6.values).to_vec(),
    ));
    sections.push((Section::V6Entries, bytemuck::cast_slice(&entries6).to_vec()));

    let ipport4: Vec<IpPort4Rec> = set
        .ipport4
        .iter()
        .map(|(key, o)| IpPort4Rec {
            key: *key,
            set: sets.add(o),
            _pad: 0,
        })
        .collect();
    sections.push((Section::IpPort4, bytemuck::cast_slice(&ipport4).to_vec()));
    // Which addresses have any IP:port trail: most addresses have none, and the filter
    // answers that from cache instead of a binary search over every IP:port trail.
    let mut port_ips: Vec<(u64, bool)> = set
        .ipport4
        .iter()
        .map(|(key, _)| (ip_hash((key >> 16) as u32), true))
        .collect();
    port_ips.dedup();
    sections.push((
        Section::IpPort4Filter,
        bytemuck::cast_slice(&build_filter(&port_ips)).to_vec(),
    ));
    let ipport6: Vec<IpPort6Rec> = set
        .ipport6
        .iter()
        .map(|((ip, port), o)| IpPort6Rec {
            ip: *ip,
            port: u32::from(*port),
            set: sets.add(o),
            _pad: 0,
        })
        .collect();
    sections.push((Section::IpPort6, bytemuck::cast_slice(&ipport6).to_vec()));

    let empty = Vec::new();
    let text = |kind: TrailKind| set.text.get(&kind).unwrap_or(&empty);
    for (kind, section) in [
        (TrailKind::Domain, Section::Domains),
        (TrailKind::Url, Section::Urls),
        (TrailKind::Path, Section::Paths),
        (TrailKind::Ja4, Section::Ja4),
        (TrailKind::CertSha1, Section::Certs),
    ] {
        let list: Vec<(Box<str>, Option<&Origins>)> = text(kind)
            .iter()
            .map(|(k, o)| (k.clone(), Some(o)))
            .collect();
        sections.push((section, table_bytes(&mut pool, &mut sets, &list)));
        if kind == TrailKind::Domain {
            // Every trail and every parent of a trail (see `TrailStore::lookup_domain`).
            let mut keys: Vec<(u64, bool)> = Vec::with_capacity(list.len() * 2);
            for (k, _) in &list {
                for_each_suffix(k.as_bytes(), |start, h| {
                    keys.push((h, start == 0));
                    true
                });
            }
            // A key that is a trail somewhere wins over the same key seen as a parent.
            keys.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            keys.dedup_by_key(|k| k.0);
            sections.push((
                Section::KeyFilter,
                bytemuck::cast_slice(&build_filter(&keys)).to_vec(),
            ));
        }
    }
    for (kind, section) in [
        (TrailKind::Wildcard, Section::Wildcards),
        (TrailKind::UserAgent, Section::UserAgents),
    ] {
        let entries: Vec<TableEntry> = text(kind)
            .iter()
            .map(|(k, o)| TableEntry {
                key: pool.add(k.as_bytes()),
                value: sets.add(o),
            })
            .collect();
        sections.push((section, bytemuck::cast_slice(&entries).to_vec()));
    }

    let wl: Vec<(Box<str>, Option<&Origins>)> = set
        .whitelist_domains
        .iter()
        .map(|d| (d.clone(), None))
        .collect();
    sections.push((
        Section::WhitelistDomains,
        table_bytes(&mut pool, &mut sets, &wl),
    ));
    let wl4: Vec<[u32; 2]> = set.whitelist_v4.iter().map(|r| [r.0, r.1]).collect();
    sections.push((Section::WhitelistV4, bytemuck::cast_slice(&wl4).to_vec()));
    let wl6: Vec<[u128; 2]> = set.whitelist_v6.iter().map(|r| [r.0, r.1]).collect();
    sections.push((Section::WhitelistV6, bytemuck::cast_slice(&wl6).to_vec()));

    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for ((_, len), _) in &set.v4 {
        *counts
            .entry(if *len == 32 { "ip" } else { "cidr" }.into())
            .or_default() += 1;
    }
    for ((_, len), _) in &set.v6 {
        *counts
            .entry(if *len == 128 { "ip" } else { "cidr" }.into())
            .or_default() += 1;
    }
    if !set.ipport4.is_empty() || !set.ipport6.is_empty() {
        counts.insert(
            "ip_port".into(),
            (set.ipport4.len() + set.ipport6.len()) as u64,
        );
    }
    for (kind, list) in &set.text {
        if !list.is_empty() {
            counts.insert(kind.to_string(), list.len() as u64);
        }
    }
    let meta = SnapshotMeta {
        created,
        spoor_version: env!("CARGO_PKG_VERSION").to_string(),
        sources: set.sources.clone(),
        counts,
        whitelisted: set.whitelisted.clone(),
        below_consensus: set.below_consensus,
    };
    sections.push((
        Section::Metadata,
        serde_json::to_vec(&meta).expect("metadata serialises"),
    ));
    sections.push((
        Section::OriginSets,
        bytemuck::cast_slice(&sets.words).to_vec(),
    ));
    sections.push((Section::Strings, pool.bytes));

    (assemble(&sections, created), meta)
}

fn align16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

fn assemble(sections: &[(Section, Vec<u8>)], created: u64) -> Vec<u8> {
    let table_end = HEADER_LEN + sections.len() * SECTION_ENTRY_LEN;
    let mut offset = align16(table_end);
    let mut table = Vec::with_capacity(sections.len() * SECTION_ENTRY_LEN);
    for (id, bytes) in sections {
        table.extend_from_slice(&(*id as u32).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&(offset as u64).to_le_bytes());
        table.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        offset = align16(offset + bytes.len());
    }
    let mut out = vec![0u8; offset];
    out[HEADER_LEN..table_end].copy_from_slice(&table);
    let mut at = align16(table_end);
    for (_, bytes) in sections {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at = align16(at + bytes.len());
    }
    out[0..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    out[24..32].copy_from_slice(&created.to_le_bytes());
    let sum = checksum(&out);
    out[16..24].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Write `image` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over the old snapshot, so a reader never sees half a file.
pub(crate) fn write_atomic(path: &Path, image: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().map_or_else(
        || "trails.snapshot".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(image)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
