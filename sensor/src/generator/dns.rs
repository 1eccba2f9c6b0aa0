//! DNS queries and answers (RFC 1035) as UDP payloads.
//!
//! ```text
//! header:   id u16 | flags u16 | qdcount u16 | ancount u16 | nscount u16 | arcount u16
//! question: qname (labels) | qtype u16 | qclass u16
//! answer:   name (labels or 0xc000|offset pointer) | type u16 | class u16 | ttl u32
//!           | rdlength u16 | rdata
//! ```
//! Answers use name compression the way resolvers do: owner names point back into the question
//! (`0xc00c`), and an optional CNAME target is a new label plus a pointer into the middle of the
//! question name, so a parser has to follow pointers to both whole and partial names.

use std::net::IpAddr;

pub(crate) const QTYPE_A: u16 = 1;
pub(crate) const QTYPE_CNAME: u16 = 5;
pub(crate) const QTYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// Longest label the wire format allows; longer ones are cut (callers validate names first).
const MAX_LABEL: usize = 63;
const HEADER_LEN: usize = 12;
/// Standard query, recursion desired.
const FLAGS_QUERY: u16 = 0x0100;
/// Response, recursion desired and available, no error.
const FLAGS_ANSWER: u16 = 0x8180;
/// As above with rcode 3 (NXDOMAIN).
const FLAGS_NXDOMAIN: u16 = 0x8183;

fn header(out: &mut Vec<u8>, id: u16, flags: u16, ancount: u16) {
    for word in [id, flags, 1, ancount, 0, 0] {
        out.extend_from_slice(&word.to_be_bytes());
    }
}

/// Writes `name` as labels and returns how many; `offsets` receives the offsets of the first
/// labels relative to `start`, the first byte of the DNS message.
fn write_name(out: &mut Vec<u8>, start: usize, name: &str, offsets: &mut [u16; 8]) -> usize {
    let mut count = 0;
    for label in name.split('.').filter(|l| !l.is_empty()) {
        if count < offsets.len() {
            offsets[count] = (out.len() - start) as u16;
            count += 1;
        }
        let label = &label.as_bytes()[..label.len().min(MAX_LABEL)];
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    count
}

fn question(
    out: &mut Vec<u8>,
    start: usize,
    name: &str,
    qtype: u16,
    offsets: &mut [u16; 8],
) -> usize {
    let labels = write_name(out, start, name, offsets);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    labels
}

/// Appends a recursive query for `name` to `out`.
pub(crate) fn query(out: &mut Vec<u8>, id: u16, name: &str, qtype: u16) {
    let start = out.len();
    header(out, id, FLAGS_QUERY, 0);
    question(out, start, name, qtype, &mut [0; 8]);
}

/// What an answer says about the queried name.
#[derive(Debug)]
pub(crate) struct Answer<'a> {
    /// `Some(n)`: the name is an alias for `edge-n.<parent of name>`.
    pub(crate) cname: Option<u16>,
    pub(crate) ttl: u32,
    /// Addresses for the (final) name; no CNAME and no addresses means NXDOMAIN.
    pub(crate) addrs: &'a [IpAddr],
}

/// Appends the response to [`query`] to `out`.
pub(crate) fn answer(out: &mut Vec<u8>, id: u16, name: &str, qtype: u16, a: &Answer<'_>) {
    let start = out.len();
    let records = a.addrs.len() + usize::from(a.cname.is_some());
    let flags = if records == 0 {
        FLAGS_NXDOMAIN
    } else {
        FLAGS_ANSWER
    };
    header(out, id, flags, records as u16);
    let mut offsets = [0u16; 8];
    let labels = question(out, start, name, qtype, &mut offsets);
    let qname_at = HEADER_LEN as u16;
    let mut owner = qname_at;
    if let Some(n) = a.cname {
        record_head(out, qname_at, QTYPE_CNAME, a.ttl);
        let rdlength_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let target_at = (out.len() - start) as u16;
        let label = format!("edge-{n}");
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
        // Point at the parent of the queried name when it has one worth keeping.
        let parent = if labels >= 3 { offsets[1] } else { offsets[0] };
        out.extend_from_slice(&(0xc000 | parent).to_be_bytes());
        let rdlength = (out.len() - rdlength_at - 2) as u16;
        out[rdlength_at..rdlength_at + 2].copy_from_slice(&rdlength.to_be_bytes());
        owner = target_at;
    }
    for addr in a.addrs {
        match addr {
            IpAddr::V4(v4) => {
                record_head(out, owner, QTYPE_A, a.ttl);
                out.extend_from_slice(&4u16.to_be_bytes());
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                record_head(out, owner, QTYPE_AAAA, a.ttl);
                out.extend_from_slice(&16u16.to_be_bytes());
                out.extend_from_slice(&v6.octets());
            }
        }
    }
}

fn record_head(out: &mut Vec<u8>, owner: u16, rtype: u16, ttl: u32) {
    out.extend_from_slice(&(0xc000 | owner).to_be_bytes());
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
}

/// Whether `name` can be sent as a query name: ASCII letters, digits, `-` and `_`, labels of
/// 1..=63 bytes, at most 253 bytes in all.
pub(crate) fn valid_name(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            (1..=MAX_LABEL).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Reads a possibly compressed name at `at`; test-only, bounded against pointer loops.
    pub(crate) fn read_name(msg: &[u8], mut at: usize) -> String {
        let mut labels = Vec::new();
        for _ in 0..64 {
            let len = msg[at] as usize;
            if len == 0 {
                break;
            }
            if len & 0xc0 == 0xc0 {
                at = (usize::from(msg[at] & 0x3f) << 8) | usize::from(msg[at + 1]);
                continue;
            }
            labels.push(String::from_utf8(msg[at + 1..at + 1 + len].to_vec()).unwrap());
            at += 1 + len;
        }
        labels.join(".")
    }

    #[test]
    fn query_layout() {
        let mut out = Vec::new();
        query(&mut out, 0xbeef, "www.example.com", QTYPE_AAAA);
        assert_eq!(&out[..12], &[0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(read_name(&out, 12), "www.example.com");
        assert_eq!(&out[out.len() - 4..], &[0, 28, 0, 1]);
    }

    #[test]
    fn answer_with_cname_compresses_names() {
        let mut out = Vec::new();
        let addrs = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))];
        let a = Answer {
            cname: Some(3),
            ttl: 300,
            addrs: &addrs,
        };
        answer(&mut out, 1, "img.cdn.example.com", QTYPE_A, &a);
        assert_eq!(u16::from_be_bytes([out[6], out[7]]), 2); // ancount
        let q_end = 12 + "img.cdn.example.com".len() + 2 + 4;
        assert_eq!(&out[q_end..q_end + 2], &[0xc0, 0x0c]);
        let cname_rdata = q_end + 12;
        assert_eq!(read_name(&out, cname_rdata), "edge-3.cdn.example.com");
        let a_rec = cname_rdata + 1 + "edge-3".len() + 2;
        assert_eq!(read_name(&out, a_rec), "edge-3.cdn.example.com");
        assert_eq!(&out[out.len() - 4..], &[192, 0, 2, 7]);
    }

    #[test]
    fn nxdomain_has_no_records() {
        let mut out = Vec::new();
        let a = Answer {
            cname: None,
            ttl: 0,
            addrs: &[],
        };
        answer(&mut out, 9, "nope.example", QTYPE_A, &a);
        assert_eq!(out[3] & 0x0f, 3);
        assert_eq!(u16::from_be_bytes([out[6], out[7]]), 0);
    }

    #[test]
    fn name_validation() {
        assert!(valid_name("a.example.com"));
        assert!(!valid_name("nodot"));
        assert!(!valid_name("a..b"));
        assert!(!valid_name(&format!("{}.com", "x".repeat(64))));
        assert!(!valid_name("spa ce.com"));
    }
}
