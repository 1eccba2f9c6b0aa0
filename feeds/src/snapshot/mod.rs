//! The compiled trail snapshot: one file, memory-mapped by the sensor.
//!
//! Layout (all integers little-endian, every section 8-byte aligned):
//!
//! ```text
//! header   magic "SPOORTRL" | version u32 | section count u32 | checksum u64 | created u64
//! table    section count × { id u32, reserved u32, offset u64, len u64 }
//! sections strings, origins, origin sets, IPv4/IPv6 ranges, IP:port keys, hash tables for
//!          domains/URLs/paths/JA4/certificates, patterns, whitelist, metadata (JSON)
//! ```
//!
//! The checksum (XXH3-64) covers the whole file (its own field read as zeros); a snapshot with the wrong
//! magic, version or checksum is refused before any table is used. Nothing in the file is
//! trusted further than its bounds: every offset is checked when the store opens it.

pub(crate) mod hash;
pub(crate) mod ranges;
pub(crate) mod writer;

use std::path::PathBuf;

/// Identifies a Spoor trail snapshot.
pub const MAGIC: &[u8; 8] = b"SPOORTRL";
/// Bumped whenever the layout changes; an older binary refuses a newer file and vice versa.
pub const FORMAT_VERSION: u32 = 2;
/// magic + version + section count + checksum + created.
pub const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 8;
pub const SECTION_ENTRY_LEN: usize = 24;

/// Section identifiers. Open numbering: an unknown id in a file is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Section {
    Strings = 1,
    Origins = 2,
    OriginSets = 3,
    V4Index = 10,
    V4Starts = 11,
    V4Values = 12,
    V4Entries = 13,
    V4Sub = 17,
    V4ExactBitmap = 18,
    V4Exact = 19,
    V6Starts = 14,
    V6Values = 15,
    V6Entries = 16,
    IpPort4 = 20,
    IpPort6 = 21,
    IpPort4Filter = 22,
    Domains = 30,
    Urls = 31,
    Paths = 32,
    Ja4 = 33,
    Certs = 34,
    KeyFilter = 35,
    Wildcards = 40,
    UserAgents = 41,
    WhitelistDomains = 50,
    WhitelistV4 = 51,
    WhitelistV6 = 52,
    Metadata = 60,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error("cannot read trail snapshot {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a Spoor trail snapshot (bad magic); compile one with `spoor trails compile`"
    )]
    BadMagic { path: PathBuf },
    #[error(
        "{path} has snapshot format version {found}, this spoor reads version {expected}; \
         recompile it with `spoor trails compile`"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "{path} is corrupt: checksum {found:016x} does not match the header's {expected:016x} \
         (truncated or modified file); recompile it with `spoor trails compile`"
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path} is corrupt: {what}; recompile it with `spoor trails compile`")]
    Corrupt { path: PathBuf, what: String },
}

/// XXH3-64 of the whole image with the checksum field read as zeros: computed by the
/// writer and checked by the reader, so no byte of the file escapes it.
pub fn checksum(image: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let field = 16..24;
    h.update(&image[..field.start.min(image.len())]);
    h.update(&[0u8; 8]);
    if image.len() > field.end {
        h.update(&image[field.end..]);
    }
    h.digest()
}
