//! Lookups on a loaded trail snapshot.
//!
//! [`TrailStore::open`] maps the snapshot file, checks its magic, version and checksum, and
//! validates every section's bounds; after that each lookup is a few array reads in the
//! mapping, with no allocation. Hits borrow from the store and name their origins (every
//! source that lists the trail, with its info, reference and severity).

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use regex::bytes::{RegexSet, RegexSetBuilder};
use spoor_core::indicator::canonical_ip;
use spoor_core::{Indicator, Severity, TrailKind};

use crate::snapshot::hash::{
    KeyFilter, TableEntry, TableHeader, TableView, for_each_suffix, ip_hash, key_hash,
};
use crate::snapshot::ranges::{
    EXACT_BITMAP_WORDS, Entry4, Entry6, ExactSlot, NONE, find, find_exact_v4, find_v4,
    v4_index_is_sound,
};
use crate::snapshot::writer::{IpPort4Rec, IpPort6Rec, OriginRec, SnapshotMeta};
use crate::snapshot::{
    FORMAT_VERSION, HEADER_LEN, MAGIC, SECTION_ENTRY_LEN, Section, SnapshotError, checksum,
};

/// The bytes behind a store: a read-only mapping of the snapshot file, or (for tests and
/// images built in memory) an owned buffer aligned like a mapping.
enum Backing {
    Mapped(memmap2::Mmap),
    Owned(Vec<u128>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => bytemuck::cast_slice(v),
        }
    }
}

/// Typed views of the sections. In the store, `'static` stands for "as long as the backing lives": the
/// store owns the backing, never moves its bytes (a mapping, or a heap buffer never
/// mutated), and only hands out borrows tied to `&self`.
#[derive(Clone, Copy)]
struct Views<'a> {
    strings: &'a [u8],
    origins: &'a [OriginRec],
    sets: &'a [u32],
    v4_index: &'a [u32],
    v4_sub: &'a [u32],
    v4_exact_bitmap: &'a [u64],
    v4_exact: &'a [ExactSlot],
    v4_starts: &'a [u32],
    v4_values: &'a [u32],
    v4_entries: &'a [Entry4],
    v6_starts: &'a [u128],
    v6_values: &'a [u32],
    v6_entries: &'a [Entry6],
    ipport4: &'a [IpPort4Rec],
    ipport4_filter: KeyFilter<'a>,
    ipport6: &'a [IpPort6Rec],
    domains: TableView<'a>,
    domain_filter: KeyFilter<'a>,
    urls: TableView<'a>,
    paths: TableView<'a>,
    ja4: TableView<'a>,
    certs: TableView<'a>,
    wildcards: &'a [TableEntry],
    user_agents: &'a [TableEntry],
    wl_domains: TableView<'a>,
    wl_v4: &'a [[u32; 2]],
    wl_v6: &'a [[u128; 2]],
}

/// Regular-expression trails, compiled on first use so that opening a snapshot stays
/// cheap for processes that never match user agents.
struct Patterns {
    set: RegexSet,
    /// Index in the set → entry in the section.
    entries: Vec<usize>,
}

/// Pattern trails run over bytes with ASCII classes (`\w`, `\b`, case folding): names
/// and user agents are ASCII in practice, and ASCII-only classes let the fast DFA engines
/// run where Unicode word boundaries would force the slow ones.
fn pattern_builder<S: AsRef<str>>(patterns: &[S]) -> RegexSetBuilder {
    let mut b = RegexSetBuilder::new(patterns);
    b.unicode(false)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT);
    b
}

/// Memory a compiled pattern set (and its lazy DFA cache) may use.
const PATTERN_SIZE_LIMIT: usize = 8 << 20;

/// A loaded, immutable trail snapshot.
pub struct TrailStore {
    // Field order matters: `views` borrows from `backing`, so it is declared first and
    // dropped first.
    views: Views<'static>,
    meta: SnapshotMeta,
    path: PathBuf,
    wildcards: OnceLock<Patterns>,
    user_agents: OnceLock<Patterns>,
    /// Patterns that did not compile (Python-only syntax such as look-ahead): skipped.
    pattern_errors: OnceLock<Vec<String>>,
    backing: Backing,
}

impl fmt::Debug for TrailStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrailStore")
            .field("path", &self.path)
            .field("counts", &self.meta.counts)
            .finish()
    }
}

/// What matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched<'a> {
    Ip(IpAddr),
    Net(IpNet),
    IpPort(IpAddr, u16),
    /// A text trail: the domain, URL, path, JA4, certificate or pattern as listed.
    Text(&'a str),
}

impl fmt::Display for Matched<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matched::Ip(ip) => write!(f, "{ip}"),
            Matched::Net(net) => write!(f, "{net}"),
            Matched::IpPort(IpAddr::V6(ip), port) => write!(f, "[{ip}]:{port}"),
            Matched::IpPort(ip, port) => write!(f, "{ip}:{port}"),
            Matched::Text(s) => f.write_str(s),
        }
    }
}

/// One source's word on a trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginView<'a> {
    pub source: &'a str,
    pub info: &'a str,
    pub reference: &'a str,
    pub severity: Severity,
}

/// A trail that matched a query.
#[derive(Clone, Copy)]
pub struct TrailHit<'a> {
    pub kind: TrailKind,
    pub trail: Matched<'a>,
    /// For domains: the trail is a parent of the queried name (`evil.example` for
    /// `x.evil.example`).
    pub parent: bool,
    set: u32,
    store: &'a TrailStore,
}

impl fmt::Debug for TrailHit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrailHit")
            .field("kind", &self.kind)
            .field("trail", &self.trail)
            .field("parent", &self.parent)
            .field("origins", &self.origins().collect::<Vec<_>>())
            .finish()
    }
}

impl<'a> TrailHit<'a> {
    /// Every source listing this trail, in compile order.
    pub fn origins(&self) -> impl Iterator<Item = OriginView<'a>> + 'a {
        let store = self.store;
        store
            .set_ids(self.set)
            .iter()
            .filter_map(move |&id| store.origin(id))
    }

    /// The first origin's info (Maltrail shows one).
    pub fn info(&self) -> &'a str {
        self.origins().next().map_or("", |o| o.info)
    }

    pub fn reference(&self) -> &'a str {
        self.origins().next().map_or("", |o| o.reference)
    }

    /// The highest severity any origin gives.
    pub fn severity(&self) -> Severity {
        self.origins()
            .map(|o| o.severity)
            .max()
            .unwrap_or(Severity::Medium)
    }
}

/// Cast a section to a typed slice, checking size and alignment.
fn cast<'b, T: bytemuck::Pod>(
    path: &Path,
    name: &str,
    bytes: &'b [u8],
) -> Result<&'b [T], SnapshotError> {
    bytemuck::try_cast_slice(bytes).map_err(|e| SnapshotError::Corrupt {
        path: path.to_path_buf(),
        what: format!("section {name} is misaligned or has a partial record ({e:?})"),
    })
}

fn table<'b>(path: &Path, name: &str, bytes: &'b [u8]) -> Result<TableView<'b>, SnapshotError> {
    if bytes.is_empty() {
        return Ok(TableView::EMPTY);
    }
    let corrupt = |what: &str| SnapshotError::Corrupt {
        path: path.to_path_buf(),
        what: format!("table {name}: {what}"),
    };
    let header_len = std::mem::size_of::<TableHeader>();
    let header: &TableHeader = bytes
        .get(..header_len)
        .and_then(|b| bytemuck::try_from_bytes(b).ok())
        .ok_or_else(|| corrupt("short header"))?;
    let slots_len = (header.buckets as usize)
        .checked_mul(crate::snapshot::hash::SLOTS_PER_BUCKET * 8)
        .ok_or_else(|| corrupt("bucket count overflows"))?;
    let entries_len = (header.count as usize)
        .checked_mul(std::mem::size_of::<TableEntry>())
        .ok_or_else(|| corrupt("entry count overflows"))?;
    if header_len + slots_len + entries_len != bytes.len() {
        return Err(corrupt("sizes do not add up"));
    }
    let slots = cast::<u64>(path, name, &bytes[header_len..header_len + slots_len])?;
    let entries = cast::<TableEntry>(path, name, &bytes[header_len + slots_len..])?;
    Ok(TableView {
        slots,
        entries,
        buckets: header.buckets as usize,
    })
}

impl TrailStore {
    /// Map and verify a snapshot file.
    pub fn open(path: &Path) -> Result<TrailStore, SnapshotError> {
        let io = |source| SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        // Verify the checksum by reading the file rather than through the mapping, so
        // pages the lookups never need are not made resident in this process.
        let sum = checksum_of_reader(&mut file).map_err(io)?;
        // SAFETY: the snapshot is replaced only by rename (never written in place), so
        // the mapped inode does not change under us.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        // Lookups jump around the file: read-ahead would only fetch pages nobody asked for.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        Self::from_backing(Backing::Mapped(map), path, Some(sum))
    }

    /// Load a snapshot image held in memory (tests, tools).
    pub fn from_image(image: &[u8], name: &Path) -> Result<TrailStore, SnapshotError> {
        let mut owned = vec![0u128; image.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<u128, u8>(&mut owned)[..image.len()].copy_from_slice(image);
        let store = Self::from_backing(Backing::Owned(owned), name, None)?;
        Ok(store)
    }

    fn from_backing(
        backing: Backing,
        path: &Path,
        precomputed_sum: Option<u64>,
    ) -> Result<TrailStore, SnapshotError> {
        let full = backing.bytes();
        let len = match &backing {
            Backing::Owned(_) => full.len(),
            Backing::Mapped(m) => m.len(),
        };
        let corrupt = |what: String| SnapshotError::Corrupt {
            path: path.to_path_buf(),
            what,
        };
        if len < HEADER_LEN || &full[..8] != MAGIC {
            return Err(SnapshotError::BadMagic {
                path: path.to_path_buf(),
            });
        }
        let u32_at = |at: usize| u32::from_le_bytes(full[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(full[at..at + 8].try_into().unwrap());
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let expected = u64_at(16);
        let found = match precomputed_sum {
            Some(sum) => sum,
            None => checksum(&full[..len]),
        };
        if found != expected {
            return Err(SnapshotError::ChecksumMismatch {
                path: path.to_path_buf(),
                expected,
                found,
            });
        }
        let count = u32_at(12) as usize;
        let table_end = count
            .checked_mul(SECTION_ENTRY_LEN)
            .and_then(|n| n.checked_add(HEADER_LEN))
            .filter(|&n| n <= len)
            .ok_or_else(|| {
                corrupt(format!(
                    "section table of {count} entries runs past the end"
                ))
            })?;
        let mut sections: Vec<(u32, &[u8])> = Vec::with_capacity(count);
        for i in 0..count {
            let at = HEADER_LEN + i * SECTION_ENTRY_LEN;
            let id = u32_at(at);
            let off = u64_at(at + 8) as usize;
            let slen = u64_at(at + 16) as usize;
            let bytes = off
                .checked_add(slen)
                .filter(|&end| off >= table_end && end <= len)
                .map(|end| &full[off..end])
                .ok_or_else(|| corrupt(format!("section {id} lies outside the file")))?;
            sections.push((id, bytes));
        }
        let get = |s: Section| -> &[u8] {
            sections
                .iter()
                .find(|(id, _)| *id == s as u32)
                .map_or(&[][..], |(_, b)| *b)
        };
        let meta: SnapshotMeta = serde_json::from_slice(get(Section::Metadata))
            .map_err(|e| corrupt(format!("metadata: {e}")))?;
        let p = path;
        let views = Views {
            strings: get(Section::Strings),
            origins: cast(p, "origins", get(Section::Origins))?,
            sets: cast(p, "origin sets", get(Section::OriginSets))?,
            v4_index: cast(p, "v4 index", get(Section::V4Index))?,
            v4_sub: cast(p, "v4 sub-index", get(Section::V4Sub))?,
            v4_exact_bitmap: cast(p, "v4 exact bitmap", get(Section::V4ExactBitmap))?,
            v4_exact: cast(p, "v4 exact", get(Section::V4Exact))?,
            v4_starts: cast(p, "v4 starts", get(Section::V4Starts))?,
            v4_values: cast(p, "v4 values", get(Section::V4Values))?,
            v4_entries: cast(p, "v4 entries", get(Section::V4Entries))?,
            v6_starts: cast(p, "v6 starts", get(Section::V6Starts))?,
            v6_values: cast(p, "v6 values", get(Section::V6Values))?,
            v6_entries: cast(p, "v6 entries", get(Section::V6Entries))?,
            ipport4: cast(p, "ip:port v4", get(Section::IpPort4))?,
            ipport4_filter: KeyFilter {
                words: cast(p, "ip:port v4 filter", get(Section::IpPort4Filter))?,
            },
            ipport6: cast(p, "ip:port v6", get(Section::IpPort6))?,
            domains: table(p, "domains", get(Section::Domains))?,
            domain_filter: KeyFilter {
                words: cast(p, "domain filter", get(Section::KeyFilter))?,
            },
            urls: table(p, "urls", get(Section::Urls))?,
            paths: table(p, "paths", get(Section::Paths))?,
            ja4: table(p, "ja4", get(Section::Ja4))?,
            certs: table(p, "certs", get(Section::Certs))?,
            wildcards: cast(p, "wildcards", get(Section::Wildcards))?,
            user_agents: cast(p, "user agents", get(Section::UserAgents))?,
            wl_domains: table(p, "whitelist domains", get(Section::WhitelistDomains))?,
            wl_v4: cast(p, "whitelist v4", get(Section::WhitelistV4))?,
            wl_v6: cast(p, "whitelist v6", get(Section::WhitelistV6))?,
        };
        if !v4_index_is_sound(views.v4_index, views.v4_sub, views.v4_starts.len())
            || views.v4_exact_bitmap.len() != EXACT_BITMAP_WORDS
            || !views.v4_exact.len().is_power_of_two()
            || views.v4_exact.iter().all(|s| s.set != NONE)
            || views.v4_starts.len() != views.v4_values.len()
            || views.v6_starts.len() != views.v6_values.len()
        {
            return Err(corrupt("IP range tables are inconsistent".into()));
        }
        // SAFETY: see `Views`. The slices point into `backing`, which moves into the
        // store below and outlives every borrow the store hands out.
        let views = unsafe { std::mem::transmute::<Views<'_>, Views<'static>>(views) };
        Ok(TrailStore {
            views,
            meta,
            path: path.to_path_buf(),
            wildcards: OnceLock::new(),
            user_agents: OnceLock::new(),
            pattern_errors: OnceLock::new(),
            backing,
        })
    }
}

fn checksum_of_reader(file: &mut std::fs::File) -> std::io::Result<u64> {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos: u64 = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &mut buf[..n];
        // The checksum field (bytes 16..24) counts as zeros.
        for (i, b) in chunk.iter_mut().enumerate() {
            let at = pos + i as u64;
            if (16..24).contains(&at) {
                *b = 0;
            } else if at >= 24 {
                break;
            }
        }
        h.update(chunk);
        pos += n as u64;
    }
    Ok(h.digest())
}

/// Suffixes of one name kept on the stack during a domain lookup; a name whose walk goes
/// deeper (a long chain of listed parents) continues on the heap.
const SHORT_WALK: usize = 8;

/// URL and path trails are matched with and without their query string.
fn without_query(s: &str) -> Option<&str> {
    s.split_once('?').map(|(base, _)| base)
}

impl TrailStore {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts by kind and by source, as compiled.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Size of the snapshot image in bytes.
    pub fn image_len(&self) -> usize {
        self.backing.bytes().len()
    }

    fn str_at(&self, at: u32) -> &str {
        let s = self.views.strings;
        let at = at as usize;
        let Some(len) = s.get(at..at + 2) else {
            return "";
        };
        let len = u16::from_le_bytes([len[0], len[1]]) as usize;
        s.get(at + 2..at + 2 + len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    fn set_ids(&self, set: u32) -> &[u32] {
        let sets = self.views.sets;
        let at = set as usize;
        let Some(&n) = sets.get(at) else {
            return &[];
        };
        sets.get(at + 1..at + 1 + n as usize).unwrap_or(&[])
    }

    fn origin(&self, id: u32) -> Option<OriginView<'_>> {
        let o = self.views.origins.get(id as usize)?;
        Some(OriginView {
            source: self
                .meta
                .sources
                .get(o.source as usize)
                .map_or("", |s| s.name.as_str()),
            info: self.str_at(o.info),
            reference: self.str_at(o.reference),
            severity: Severity::from_u8(o.severity).unwrap_or(Severity::Medium),
        })
    }

    fn hit<'s>(&'s self, kind: TrailKind, trail: Matched<'s>, set: u32) -> TrailHit<'s> {
        TrailHit {
            kind,
            trail,
            parent: false,
            set,
            store: self,
        }
    }

    // ---- IP addresses -------------------------------------------------------------------

    /// The most specific IP or CIDR trail containing `ip` (IPv4-mapped IPv6 counts as IPv4).
    #[inline]
    pub fn lookup_ip(&self, ip: IpAddr) -> Option<TrailHit<'_>> {
        match canonical_ip(ip) {
            IpAddr::V4(v4) => self.lookup_v4(v4),
            IpAddr::V6(v6) => self.lookup_v6(v6),
        }
    }

    #[inline]
    pub fn lookup_v4(&self, ip: Ipv4Addr) -> Option<TrailHit<'_>> {
        let v = &self.views;
        // An exact trail is the most specific match there is.
        if let Some(set) = find_exact_v4(v.v4_exact_bitmap, v.v4_exact, u32::from(ip)) {
            return Some(self.hit(TrailKind::Ip, Matched::Ip(IpAddr::V4(ip)), set));
        }
        let r = find_v4(v.v4_index, v.v4_sub, v.v4_starts, u32::from(ip))?;
        let entry = *v.v4_values.get(r)?;
        (entry != NONE).then(|| self.v4_hit(entry)).flatten()
    }

    fn v4_hit(&self, entry: u32) -> Option<TrailHit<'_>> {
        let e = self.views.v4_entries.get(entry as usize)?;
        let addr = Ipv4Addr::from(e.net);
        Some(if e.len == 32 {
            self.hit(TrailKind::Ip, Matched::Ip(IpAddr::V4(addr)), e.set)
        } else {
            let net = Ipv4Net::new(addr, e.len).ok()?;
            self.hit(TrailKind::Cidr, Matched::Net(IpNet::V4(net)), e.set)
        })
    }

    pub fn lookup_v6(&self, ip: Ipv6Addr) -> Option<TrailHit<'_>> {
        let v = &self.views;
        let r = find(v.v6_starts, u128::from(ip))?;
        let entry = *v.v6_values.get(r)?;
        (entry != NONE).then(|| self.v6_hit(entry)).flatten()
    }

    fn v6_hit(&self, entry: u32) -> Option<TrailHit<'_>> {
        let e = self.views.v6_entries.get(entry as usize)?;
        let addr = Ipv6Addr::from(e.net);
        Some(if e.len == 128 {
            self.hit(TrailKind::Ip, Matched::Ip(IpAddr::V6(addr)), e.set)
        } else {
            let net = Ipv6Net::new(addr, e.len).ok()?;
            self.hit(TrailKind::Cidr, Matched::Net(IpNet::V6(net)), e.set)
        })
    }

    /// Every IP and CIDR trail containing `ip`, most specific first.
    pub fn lookup_ip_all(&self, ip: IpAddr) -> Vec<TrailHit<'_>> {
        let mut out = Vec::new();
        match canonical_ip(ip) {
            IpAddr::V4(v4) => {
                let v = &self.views;
                let mut entry = find_v4(v.v4_index, v.v4_sub, v.v4_starts, u32::from(v4))
                    .and_then(|r| v.v4_values.get(r).copied())
                    .unwrap_or(NONE);
                // Parent chains are acyclic by construction; the bound guards a corrupt file.
                for _ in 0..=32 {
                    if entry == NONE {
                        break;
                    }
                    out.extend(self.v4_hit(entry));
                    entry = v.v4_entries.get(entry as usize).map_or(NONE, |e| e.parent);
                }
            }
            IpAddr::V6(v6) => {
                let v = &self.views;
                let mut entry = find(v.v6_starts, u128::from(v6))
                    .and_then(|r| v.v6_values.get(r).copied())
                    .unwrap_or(NONE);
                for _ in 0..=128 {
                    if entry == NONE {
                        break;
                    }
                    out.extend(self.v6_hit(entry));
                    entry = v.v6_entries.get(entry as usize).map_or(NONE, |e| e.parent);
                }
            }
        }
        out
    }

    /// An `IP:port` trail (matches only on that port).
    #[inline]
    pub fn lookup_ip_port(&self, ip: IpAddr, port: u16) -> Option<TrailHit<'_>> {
        let ip = canonical_ip(ip);
        let set = match ip {
            IpAddr::V4(v4) => {
                let key = (u64::from(u32::from(v4)) << 16) | u64::from(port);
                let t = self.views.ipport4;
                let i = t.partition_point(|r| r.key < key);
                t.get(i).filter(|r| r.key == key)?.set
            }
            IpAddr::V6(v6) => {
                let key = (u128::from(v6), u32::from(port));
                let t = self.views.ipport6;
                let i = t.partition_point(|r| (r.ip, r.port) < key);
                t.get(i).filter(|r| (r.ip, r.port) == key)?.set
            }
        };
        Some(self.hit(TrailKind::IpPort, Matched::IpPort(ip, port), set))
    }

    /// Whether any `IP:port` trail names this address (the sensor can skip the per-port
    /// lookup for the vast majority of addresses).
    pub fn has_ip_port_trails(&self, ip: IpAddr) -> bool {
        match canonical_ip(ip) {
            IpAddr::V4(v4) => {
                if !self
                    .views
                    .ipport4_filter
                    .check(ip_hash(u32::from(v4)))
                    .maybe_trail
                {
                    return false;
                }
                let base = u64::from(u32::from(v4)) << 16;
                let t = self.views.ipport4;
                let i = t.partition_point(|r| r.key < base);
                t.get(i).is_some_and(|r| r.key >> 16 == base >> 16)
            }
            IpAddr::V6(v6) => {
                let ip = u128::from(v6);
                let t = self.views.ipport6;
                let i = t.partition_point(|r| r.ip < ip);
                t.get(i).is_some_and(|r| r.ip == ip)
            }
        }
    }

    // ---- names and strings --------------------------------------------------------------

    fn find_text<'s>(
        &'s self,
        table: &TableView<'s>,
        key: &[u8],
        hash: u64,
    ) -> Option<&'s TableEntry> {
        table.find(hash, |e| {
            let at = e.key as usize;
            let s = self.views.strings;
            s.get(at..at + 2).is_some_and(|l| {
                let len = u16::from_le_bytes([l[0], l[1]]) as usize;
                s.get(at + 2..at + 2 + len) == Some(key)
            })
        })
    }

    /// A domain trail equal to `name` or to one of its parents (nearest first).
    /// `name` must be normalised (lower-case, no trailing dot: see
    /// [`spoor_core::normalize_domain`]); the sensor does this once per name.
    #[inline]
    pub fn lookup_domain(&self, name: &str) -> Option<TrailHit<'_>> {
        let table = &self.views.domains;
        if table.len() == 0 {
            return None;
        }
        // Walk the suffixes from the right (`com`, `example.com`, `x.example.com`). The
        // filter knows every trail and every parent of a trail, so the first suffix it
        // rejects ends the walk: no longer suffix can be a trail either. A random name
        // costs two or three filter reads and no table probe; only suffixes the filter
        // says may be trails are probed, longest first.
        let filter = self.views.domain_filter;
        let mut starts = [0u16; SHORT_WALK];
        let mut hashes = [0u64; SHORT_WALK];
        let mut n = 0usize;
        let mut long_walk: Vec<(usize, u64)> = Vec::new();
        for_each_suffix(name.as_bytes(), |start, hash| {
            let answer = filter.check(hash);
            if answer.maybe_trail {
                if n < SHORT_WALK && long_walk.is_empty() {
                    starts[n] = start as u16;
                    hashes[n] = hash;
                    n += 1;
                } else {
                    if long_walk.is_empty() {
                        long_walk
                            .extend(starts.iter().zip(&hashes).map(|(s, h)| (*s as usize, *h)));
                    }
                    long_walk.push((start, hash));
                }
            }
            answer.walk_on
        });
        if !long_walk.is_empty() {
            return self.probe_domains(name, long_walk.iter().rev().copied());
        }
        self.probe_domains(
            name,
            starts[..n]
                .iter()
                .zip(&hashes[..n])
                .rev()
                .map(|(s, h)| (*s as usize, *h)),
        )
    }

    fn probe_domains(
        &self,
        name: &str,
        suffixes: impl Iterator<Item = (usize, u64)>,
    ) -> Option<TrailHit<'_>> {
        let table = &self.views.domains;
        for (start, hash) in suffixes {
            if let Some(e) = self.find_text(table, &name.as_bytes()[start..], hash) {
                let mut hit = self.hit(
                    TrailKind::Domain,
                    Matched::Text(self.str_at(e.key)),
                    e.value,
                );
                hit.parent = start > 0;
                return Some(hit);
            }
        }
        None
    }

    /// The whitelist covers `name` or one of its parents.
    pub fn is_whitelisted_domain(&self, name: &str) -> bool {
        let table = &self.views.wl_domains;
        if table.len() == 0 {
            return false;
        }
        let mut found = false;
        for_each_suffix(name.as_bytes(), |start, hash| {
            found = self
                .find_text(table, &name.as_bytes()[start..], hash)
                .is_some();
            !found
        });
        found
    }

    /// The whitelist covers this address.
    pub fn is_whitelisted_ip(&self, ip: IpAddr) -> bool {
        match canonical_ip(ip) {
            IpAddr::V4(v4) => {
                let ip = u32::from(v4);
                let t = self.views.wl_v4;
                let i = t.partition_point(|r| r[0] <= ip);
                i > 0 && t[i - 1][1] >= ip
            }
            IpAddr::V6(v6) => {
                let ip = u128::from(v6);
                let t = self.views.wl_v6;
                let i = t.partition_point(|r| r[0] <= ip);
                i > 0 && t[i - 1][1] >= ip
            }
        }
    }

    fn lookup_exact(
        &self,
        kind: TrailKind,
        table: &TableView<'_>,
        key: &str,
    ) -> Option<TrailHit<'_>> {
        let table: &TableView<'_> = table;
        let e = table.find(key_hash(key.as_bytes()), |e| {
            self.str_at(e.key).as_bytes() == key.as_bytes()
        })?;
        Some(self.hit(kind, Matched::Text(self.str_at(e.key)), e.value))
    }

    /// A URL trail for `host/path?query` (host lower-case), tried with and without the
    /// query; then path trails for its path.
    pub fn lookup_url(&self, url: &str) -> Option<TrailHit<'_>> {
        let urls = self.views.urls;
        if let Some(hit) = self.lookup_exact(TrailKind::Url, &urls, url) {
            return Some(hit);
        }
        if let Some(base) = without_query(url)
            && let Some(hit) = self.lookup_exact(TrailKind::Url, &urls, base)
        {
            return Some(hit);
        }
        let path = &url[url.find('/')?..];
        self.lookup_path(path)
    }

    /// A path trail (`/malicious-login.php`) for a request path, with and without query.
    pub fn lookup_path(&self, path: &str) -> Option<TrailHit<'_>> {
        let paths = self.views.paths;
        self.lookup_exact(TrailKind::Path, &paths, path)
            .or_else(|| {
                without_query(path)
                    .and_then(|base| self.lookup_exact(TrailKind::Path, &paths, base))
            })
    }

    /// Whether any JA4 trail is loaded (the sensor skips computing fingerprints otherwise).
    pub fn has_ja4_trails(&self) -> bool {
        self.views.ja4.len() > 0
    }

    pub fn lookup_ja4(&self, ja4: &str) -> Option<TrailHit<'_>> {
        let t = self.views.ja4;
        self.lookup_exact(TrailKind::Ja4, &t, ja4)
    }

    /// A certificate SHA-1 trail.
    pub fn lookup_cert(&self, sha1: &[u8; 20]) -> Option<TrailHit<'_>> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 40];
        for (i, b) in sha1.iter().enumerate() {
            text[2 * i] = HEX[(b >> 4) as usize];
            text[2 * i + 1] = HEX[(b & 15) as usize];
        }
        let text = std::str::from_utf8(&text).ok()?;
        let t = self.views.certs;
        self.lookup_exact(TrailKind::CertSha1, &t, text)
    }

    // ---- patterns ----------------------------------------------------------------------

    fn patterns(&self, entries: &[TableEntry], user_agent: bool) -> Patterns {
        let mut sources = Vec::with_capacity(entries.len());
        let mut index = Vec::with_capacity(entries.len());
        let mut errors = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let raw = self.str_at(e.key);
            // Python's `\Z` (end of text) is Rust's `\z`.
            let pattern = raw.replace(r"\Z", r"\z");
            let pattern = if user_agent {
                format!("(?i){pattern}")
            } else {
                pattern
            };
            match pattern_builder(std::slice::from_ref(&pattern)).build() {
                Ok(_) => {
                    sources.push(pattern);
                    index.push(i);
                }
                Err(e) => errors.push(format!("{raw}: {e}")),
            }
        }
        if !errors.is_empty() {
            let _ = self.pattern_errors.set(errors);
        }
        let set = pattern_builder(&sources)
            .build()
            .unwrap_or_else(|_| RegexSet::empty());
        Patterns {
            set,
            entries: index,
        }
    }

    /// The first wildcard (regular expression) trail that matches somewhere in `name`.
    pub fn match_wildcard(&self, name: &str) -> Option<TrailHit<'_>> {
        let entries = self.views.wildcards;
        if entries.is_empty() {
            return None;
        }
        let p = self.wildcards.get_or_init(|| self.patterns(entries, false));
        if !p.set.is_match(name.as_bytes()) {
            return None;
        }
        let first = p.set.matches(name.as_bytes()).into_iter().next()?;
        let e = entries.get(*p.entries.get(first)?)?;
        Some(self.hit(
            TrailKind::Wildcard,
            Matched::Text(self.str_at(e.key)),
            e.value,
        ))
    }

    /// The first suspicious user-agent pattern that matches `ua` (case-insensitive).
    pub fn match_user_agent(&self, ua: &str) -> Option<TrailHit<'_>> {
        let entries = self.views.user_agents;
        if entries.is_empty() {
            return None;
        }
        let p = self
            .user_agents
            .get_or_init(|| self.patterns(entries, true));
        if !p.set.is_match(ua.as_bytes()) {
            return None;
        }
        let first = p.set.matches(ua.as_bytes()).into_iter().next()?;
        let e = entries.get(*p.entries.get(first)?)?;
        Some(self.hit(
            TrailKind::UserAgent,
            Matched::Text(self.str_at(e.key)),
            e.value,
        ))
    }

    /// Every wildcard (`TrailKind::Wildcard`) or user-agent (`TrailKind::UserAgent`)
    /// pattern trail, as listed (for stats and audits; matching uses the compiled set).
    pub fn pattern_trails(&self, kind: TrailKind) -> impl Iterator<Item = TrailHit<'_>> + '_ {
        let entries = match kind {
            TrailKind::Wildcard => self.views.wildcards,
            TrailKind::UserAgent => self.views.user_agents,
            _ => &[],
        };
        entries
            .iter()
            .map(move |e| self.hit(kind, Matched::Text(self.str_at(e.key)), e.value))
    }

    /// Patterns skipped because this regex engine cannot compile them (known after the
    /// first pattern match).
    pub fn pattern_errors(&self) -> &[String] {
        self.pattern_errors.get().map_or(&[], |v| v.as_slice())
    }

    // ---- any indicator -----------------------------------------------------------------

    /// Every hit for a free-form indicator, as `spoor trails lookup` shows them: an IP
    /// (exact and every covering CIDR), `IP:port` (and the IP alone), a domain (itself or a
    /// parent, and wildcard trails), a URL or path, a JA4 or certificate fingerprint, or
    /// else a user agent.
    pub fn lookup(&self, query: &str) -> Vec<TrailHit<'_>> {
        let q = query.trim();
        let mut hits = Vec::new();
        if let Ok(ind) = Indicator::parse_as(TrailKind::Ja4, q) {
            if let Indicator::Ja4(s) = &ind {
                hits.extend(self.lookup_ja4(s));
            }
            return hits;
        }
        if let Ok(Indicator::CertSha1(sha)) = Indicator::parse_as(TrailKind::CertSha1, q) {
            hits.extend(self.lookup_cert(&sha));
            if !hits.is_empty() {
                return hits;
            }
        }
        // `host:port` as pasted from a log: the host's trails.
        if let Some((host, port)) = q.rsplit_once(':')
            && port.parse::<u16>().is_ok()
            && !host.contains(':')
            && host.parse::<IpAddr>().is_err()
            && let Some(name) = spoor_core::normalize_domain(host)
        {
            hits.extend(self.lookup_domain(&name));
            hits.extend(self.match_wildcard(&name));
            return hits;
        }
        match Indicator::parse(q) {
            Ok(Indicator::Ip(ip)) => hits.extend(self.lookup_ip_all(ip)),
            Ok(Indicator::IpPort(ip, port)) => {
                hits.extend(self.lookup_ip_port(ip, port));
                hits.extend(self.lookup_ip_all(ip));
            }
            Ok(Indicator::Cidr(net)) => {
                // A CIDR query: trails covering its network address at that width or wider.
                hits.extend(self.lookup_ip_all(net.network()).into_iter().filter(
                    |h| match h.trail {
                        Matched::Net(n) => n.prefix_len() <= net.prefix_len(),
                        _ => false,
                    },
                ));
            }
            Ok(Indicator::Domain(name)) => {
                if let Some(hit) = self.lookup_domain(&name) {
                    hits.push(hit);
                }
                hits.extend(self.match_wildcard(&name));
            }
            Ok(Indicator::Url(url)) => {
                hits.extend(self.lookup_url(&url));
                if let Some(host) = url.split('/').next() {
                    if let Ok(ip) = host.parse::<IpAddr>() {
                        hits.extend(self.lookup_ip(ip));
                    } else if let Some(hit) = self.lookup_domain(host) {
                        hits.push(hit);
                    }
                }
            }
            Ok(Indicator::Path(path)) => hits.extend(self.lookup_path(&path)),
            _ => {}
        }
        // Anything that matched nothing else may be a User-Agent value
        // (`Mozilla/5.0 ...` classifies as a URL).
        if hits.is_empty() {
            hits.extend(self.match_user_agent(q));
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::builder::TrailSetBuilder;
    use crate::config::OriginDefaults;
    use crate::format::Record;
    use crate::snapshot::writer::encode;

    fn store(lines: &[(&str, &str)], whitelist: &[&str]) -> TrailStore {
        let mut b = TrailSetBuilder::default();
        let src = b
            .add_source("test", "maltrail", "mem", &OriginDefaults::default(), false)
            .unwrap();
        for (trail, info) in lines {
            b.add(
                src,
                Record::new(Indicator::parse(trail).unwrap()).with_info(*info),
            );
        }
        let wl = b
            .add_source("wl", "whitelist", "mem", &OriginDefaults::default(), true)
            .unwrap();
        for w in whitelist {
            b.add(wl, Record::new(Indicator::parse(w).unwrap()));
        }
        let image = encode(&b.finish(), 0);
        TrailStore::from_image(&image, Path::new("test.snapshot")).unwrap()
    }

    #[test]
    fn domain_parent_walk_reports_the_parent() {
        let s = store(&[("evil.example", "evil (malware)")], &[]);
        let hit = s.lookup_domain("x.y.evil.example").unwrap();
        assert_eq!(hit.trail, Matched::Text("evil.example"));
        assert!(hit.parent);
        assert_eq!(hit.info(), "evil (malware)");
        assert_eq!(hit.severity(), Severity::High);
        let exact = s.lookup_domain("evil.example").unwrap();
        assert!(!exact.parent);
        assert!(s.lookup_domain("notevil.example").is_none());
        assert!(s.lookup_domain("example").is_none());
        assert!(s.lookup_domain("evil.example.com").is_none());
        // A host:port pasted from a log finds the host's trail.
        assert_eq!(s.lookup("www.evil.example:443").len(), 1);
    }

    #[test]
    fn ip_port_matches_only_its_port() {
        let s = store(
            &[
                ("6.6.6.6:8443", "c2 (malware)"),
                ("[dead::beef]:443", "x (malware)"),
            ],
            &[],
        );
        let ip: IpAddr = "6.6.6.6".parse().unwrap();
        assert!(s.lookup_ip_port(ip, 8443).is_some());
        assert!(s.lookup_ip_port(ip, 443).is_none());
        assert!(
            s.lookup_ip(ip).is_none(),
            "an IP:port trail is not an IP trail"
        );
        assert!(s.has_ip_port_trails(ip));
        assert!(!s.has_ip_port_trails("6.6.6.7".parse().unwrap()));
        let v6: IpAddr = "dead::beef".parse().unwrap();
        assert!(s.lookup_ip_port(v6, 443).is_some());
        assert!(s.lookup_ip_port(v6, 80).is_none());
    }

    #[test]
    fn cidr_matches_inside_and_nesting_is_reported() {
        let s = store(
            &[
                ("10.0.0.0/8", "big (suspicious)"),
                ("10.1.2.0/24", "small (malware)"),
                ("10.1.2.3", "host (malware)"),
                ("2001:db8::/32", "v6net (malware)"),
            ],
            &[],
        );
        let hit = s.lookup_ip("10.1.2.200".parse().unwrap()).unwrap();
        assert_eq!(hit.kind, TrailKind::Cidr);
        assert_eq!(hit.trail.to_string(), "10.1.2.0/24");
        let all = s.lookup_ip_all("10.1.2.3".parse().unwrap());
        let trails: Vec<String> = all.iter().map(|h| h.trail.to_string()).collect();
        assert_eq!(trails, ["10.1.2.3", "10.1.2.0/24", "10.0.0.0/8"]);
        assert!(s.lookup_ip("11.0.0.0".parse().unwrap()).is_none());
        assert!(s.lookup_ip("2001:db8::1".parse().unwrap()).is_some());
        assert!(s.lookup_ip("2001:db9::1".parse().unwrap()).is_none());
        // IPv4-mapped IPv6 is the IPv4 address.
        assert!(s.lookup_ip("::ffff:10.1.2.3".parse().unwrap()).is_some());
    }

    #[test]
    fn whitelist_removes_trails_at_compile_time() {
        let s = store(
            &[
                ("good.example", "x (malware)"),
                ("cdn.good.example", "x (malware)"),
                ("good.example/evil/payload.exe", "x (malware)"),
                ("192.168.1.1", "x (malware)"),
                ("8.8.8.8", "x (malware)"),
            ],
            &["good.example", "192.168.0.0/16"],
        );
        assert!(s.lookup_domain("good.example").is_none());
        assert!(s.lookup_domain("cdn.good.example").is_none());
        assert!(s.lookup_url("good.example/evil/payload.exe").is_some());
        assert!(s.lookup_ip("192.168.1.1".parse().unwrap()).is_none());
        assert!(s.lookup_ip("8.8.8.8".parse().unwrap()).is_some());
        assert!(s.is_whitelisted_domain("www.good.example"));
        assert!(s.is_whitelisted_ip("192.168.200.1".parse().unwrap()));
        assert!(!s.is_whitelisted_ip("8.8.8.8".parse().unwrap()));
        assert_eq!(s.meta().whitelisted.get("domain"), Some(&2));
    }

    #[test]
    fn urls_paths_and_patterns() {
        let s = store(
            &[
                ("evil-url.example/bad/path", "u (malware)"),
                ("/malicious-login.php", "p (malware)"),
                (r"dga[0-9]+\.wildcard-test\.com", "w (malware)"),
            ],
            &[],
        );
        assert!(s.lookup_url("evil-url.example/bad/path").is_some());
        assert!(s.lookup_url("evil-url.example/bad/path?x=1").is_some());
        assert!(s.lookup_url("evil-url.example/bad").is_none());
        assert!(
            s.lookup_url("any.example/malicious-login.php?u=a")
                .is_some()
        );
        let w = s.match_wildcard("dga123.wildcard-test.com").unwrap();
        assert_eq!(w.kind, TrailKind::Wildcard);
        assert!(s.match_wildcard("dga.wildcard-test.com").is_none());
    }

    #[test]
    fn fingerprints_and_user_agents() {
        let mut b = TrailSetBuilder::default();
        let src = b
            .add_source("fp", "ja4", "mem", &OriginDefaults::default(), false)
            .unwrap();
        let ja4 = "t13d1516h2_8daaf6152771_02713d6af862";
        let sha = "a1b2c3d4e5f60718293a4b5c6d7e8f9001122334";
        for (kind, value) in [
            (TrailKind::Ja4, ja4),
            (TrailKind::CertSha1, sha),
            (TrailKind::UserAgent, r"\Amasscan"),
            (TrailKind::UserAgent, r"look(?=ahead)"),
        ] {
            b.add(
                src,
                Record::new(Indicator::parse_as(kind, value).unwrap()).with_info("x (malware)"),
            );
        }
        let s = TrailStore::from_image(&encode(&b.finish(), 0), Path::new("t")).unwrap();
        assert_eq!(s.lookup_ja4(ja4).unwrap().kind, TrailKind::Ja4);
        assert!(
            s.lookup_ja4("t13d1516h2_8daaf6152771_000000000000")
                .is_none()
        );
        let Indicator::CertSha1(bytes) = Indicator::parse_as(TrailKind::CertSha1, sha).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(s.lookup_cert(&bytes).unwrap().trail, Matched::Text(sha));
        assert!(s.lookup_cert(&[0; 20]).is_none());
        assert!(
            s.match_user_agent("MASSCAN/1.3").is_some(),
            "case-insensitive"
        );
        assert!(
            s.match_user_agent("curl/8.0 masscan").is_none(),
            "anchored at the start"
        );
        // The look-ahead pattern cannot compile here; it is skipped and reported.
        assert_eq!(s.pattern_errors().len(), 1);
        // The generic lookup finds each kind from its text form.
        assert_eq!(s.lookup(ja4).len(), 1);
        assert_eq!(s.lookup(&sha.to_uppercase()).len(), 1);
        assert_eq!(s.lookup("masscan/1.0").len(), 1);
    }

    /// Deterministic fuzz: a damaged snapshot whose checksum was recomputed (a crafted
    /// file) must be refused or answer lookups without panicking.
    #[test]
    fn crafted_snapshots_never_panic() {
        let s = store(
            &[
                ("evil.example", "a (malware)"),
                ("1.2.3.4", "b (malware)"),
                ("10.0.0.0/8", "c (malware)"),
                ("6.6.6.6:80", "d (malware)"),
                ("evil.example/x", "e (malware)"),
                ("dead::beef", "f (malware)"),
            ],
            &["good.example", "192.168.0.0/16"],
        );
        let image = s.backing.bytes()[..s.image_len()].to_vec();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let queries = [
            "evil.example",
            "a.b.evil.example",
            "1.2.3.4",
            "10.9.8.7",
            "6.6.6.6:80",
            "evil.example/x?y",
            "dead::beef",
            "/x",
            "Mozilla/5.0",
        ];
        for round in 0..1000 {
            let mut bad = image.clone();
            for _ in 0..1 + round % 8 {
                let at = crate::snapshot::HEADER_LEN + (next() as usize) % (bad.len() - 32);
                bad[at] = next() as u8;
            }
            let sum = crate::snapshot::checksum(&bad);
            bad[16..24].copy_from_slice(&sum.to_le_bytes());
            if let Ok(store) = TrailStore::from_image(&bad, Path::new("crafted")) {
                for q in queries {
                    let _ = store.lookup(q);
                }
                let _ = store.is_whitelisted_domain("www.good.example");
                let _ = store.is_whitelisted_ip("192.168.1.1".parse().unwrap());
            }
        }
    }

    #[test]
    fn duplicates_keep_every_origin() {
        let mut b = TrailSetBuilder::default();
        let a = b
            .add_source("a", "ip", "mem", &OriginDefaults::default(), false)
            .unwrap();
        let c = b
            .add_source("c", "ip", "mem", &OriginDefaults::default(), false)
            .unwrap();
        let ip = Indicator::parse("1.2.3.4").unwrap();
        b.add(a, Record::new(ip.clone()).with_info("one (malware)"));
        b.add(c, Record::new(ip.clone()).with_info("two (suspicious)"));
        b.add(c, Record::new(ip).with_info("two (suspicious)"));
        let s = TrailStore::from_image(&encode(&b.finish(), 0), Path::new("t")).unwrap();
        let hit = s.lookup_ip("1.2.3.4".parse().unwrap()).unwrap();
        let infos: Vec<&str> = hit.origins().map(|o| o.info).collect();
        assert_eq!(infos, ["one (malware)", "two (suspicious)"]);
        assert_eq!(hit.severity(), Severity::High);
    }

    #[test]
    fn consensus_drops_trails_listed_by_too_few_sources() {
        let mut b = TrailSetBuilder::default();
        let noisy = OriginDefaults {
            min_consensus: 2,
            ..OriginDefaults::default()
        };
        let n1 = b.add_source("n1", "ip", "mem", &noisy, false).unwrap();
        let n2 = b.add_source("n2", "ip", "mem", &noisy, false).unwrap();
        b.add(n1, Record::new(Indicator::parse("1.1.1.1").unwrap()));
        b.add(n1, Record::new(Indicator::parse("2.2.2.2").unwrap()));
        b.add(n2, Record::new(Indicator::parse("2.2.2.2").unwrap()));
        let s = TrailStore::from_image(&encode(&b.finish(), 0), Path::new("t")).unwrap();
        assert!(s.lookup_ip("1.1.1.1".parse().unwrap()).is_none());
        assert!(s.lookup_ip("2.2.2.2".parse().unwrap()).is_some());
        assert_eq!(s.meta().below_consensus, 1);
    }

    #[test]
    fn damaged_snapshots_are_refused() {
        let s = store(&[("evil.example", "x (malware)")], &[]);
        let image = s.backing.bytes()[..s.image_len()].to_vec();
        let mut bad = image.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let err = TrailStore::from_image(&bad, Path::new("x.snapshot")).unwrap_err();
        assert!(
            matches!(err, SnapshotError::ChecksumMismatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("x.snapshot is corrupt"));
        let mut old = image.clone();
        old[8..12].copy_from_slice(&99u32.to_le_bytes());
        let err = TrailStore::from_image(&old, Path::new("x.snapshot")).unwrap_err();
        assert!(
            matches!(err, SnapshotError::UnsupportedVersion { found: 99, .. }),
            "{err}"
        );
        let err =
            TrailStore::from_image(b"not a snapshot at all, clearly", Path::new("x")).unwrap_err();
        assert!(matches!(err, SnapshotError::BadMagic { .. }));
        let err = TrailStore::from_image(&image[..image.len() / 2], Path::new("x")).unwrap_err();
        assert!(
            matches!(err, SnapshotError::ChecksumMismatch { .. }),
            "{err}"
        );
    }
}
