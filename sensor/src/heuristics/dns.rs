//! DNS heuristics: names that look generated, smuggled or exhausted.
//!
//! | heuristic | fed by | fires when | info |
//! |---|---|---|---|
//! | `dns_exhaustion` | queries | ≥ 1000 distinct subdomains of one domain within 60 s (estimated) | potential dns exhaustion |
//! | `nxdomain` | NXDOMAIN answers | > 20 distinct names answered NXDOMAIN to one client within an hour (sliding) | excessive no such domain (suspicious) |
//! | `dga` | NXDOMAIN answers | the registrable label's entropy > 3.5 bits with a run of more than 4 consonants, or a run of more than 6 | entropy / consonant threshold no such domain (suspicious) |
//! | `long_domain` | queries | the leftmost label is longer than 24 characters and has no `-` | long domain (suspicious) |
//!
//! Thresholds are Maltrail's. "Domain" is the registrable part of a name, taken as the
//! last two labels, or three under the usual second-level zones of country codes
//! (`example.co.uk`); there is no public-suffix list on the packet path. Names in local
//! zones and whitelisted names never reach these checks (the detector filters them).
//!
//! Differences from Maltrail: entropy alone (> 3.5) flags any label of 12 or more
//! distinct letters (`cloudstarnet7.io`, 3.55), so a high entropy also needs a run of
//! more than four consonants (`xkqwzlvbnmfghjd`: 15). The consonant rule looks at the
//! longest run of consonants
//! (`xkqwzlvbnmfghjd`: 15) rather than their number (Maltrail: more than 7), which flags
//! ordinary compound names such as `cloudstartri.com` (8 consonants, longest run 3);
//! words run up to five consonants (`strengths`), glued words up to six (`worldscript`). NXDOMAIN answers are counted per client (a DGA-infected
//! host asks for many unrelated names) in a sliding window rather than per parent domain
//! in hour buckets; DNS exhaustion counts with a 2048-bit sketch per domain (about ±2 %
//! at the threshold) instead of a set of names, so a flood of names costs a fixed amount
//! of memory.

use std::net::IpAddr;

use spoor_core::Severity;

use super::state::secs_of;
use super::{Finding, Heuristics, addr_key, bytes_hash32, bytes_hash64};
use crate::detect::PacketView;

const NXDOMAIN_SALT: u64 = 0x6e78;
/// Letters Maltrail counts as consonants (`y` included).
const CONSONANTS: &[u8] = b"bcdfghjklmnpqrstvwxyz";
/// Second-level labels under which country codes register names (`co.uk`, `com.au`).
const SECOND_LEVEL_ZONES: [&str; 10] = [
    "co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go",
];
/// Long labels that are normal (Maltrail's `WHITELIST_LONG_DOMAIN_NAME_KEYWORDS`).
const LONG_LABEL_KEYWORDS: [&str; 1] = ["blogspot"];

/// Split `name` into (what is left of the registrable domain, the registrable label,
/// the public suffix): `a.b.example.co.uk` → (`a.b`, `example`, `co.uk`).
pub fn split_name(name: &str) -> Option<(&str, &str, &str)> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let (rest, tld) = name.rsplit_once('.')?;
    let (mut left, mut label) = match rest.rsplit_once('.') {
        Some((l, r)) => (l, r),
        None => ("", rest),
    };
    let mut suffix_start = name.len() - tld.len();
    if tld.len() == 2 && SECOND_LEVEL_ZONES.contains(&label) && !left.is_empty() {
        suffix_start -= label.len() + 1;
        (left, label) = match left.rsplit_once('.') {
            Some((l, r)) => (l, r),
            None => ("", left),
        };
    }
    if label.is_empty() || tld.is_empty() {
        return None;
    }
    Some((left, label, &name[suffix_start..]))
}

/// Shannon entropy of a label in bits per character (Maltrail's `dga_detector` figure).
pub fn entropy(label: &str) -> f64 {
    let bytes = label.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            p * p.log2()
        })
        .sum::<f64>()
}

/// Consonants in a label (ASCII, case-insensitive): Maltrail's figure.
pub fn consonants(label: &str) -> u32 {
    label
        .bytes()
        .filter(|b| CONSONANTS.contains(&b.to_ascii_lowercase()))
        .count() as u32
}

/// The longest run of consecutive consonants in a label.
pub fn consonant_run(label: &str) -> u32 {
    let (mut run, mut longest) = (0u32, 0u32);
    for b in label.bytes() {
        if CONSONANTS.contains(&b.to_ascii_lowercase()) {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

impl Heuristics {
    /// A DNS query for `name` from the packet's source (the client).
    pub fn dns_query(&self, p: &PacketView<'_>, name: &str, out: &mut Vec<Finding>) {
        let Some((left, label, suffix)) = split_name(name) else {
            return;
        };
        if let Some(table) = &self.dns_exhaustion
            && !left.is_empty()
        {
            let domain_len = label.len() + 1 + suffix.len();
            let domain = &name[name.len() - domain_len..];
            let key = bytes_hash64(domain.as_bytes());
            if let Some(c) = table.observe(key, bytes_hash32(left.as_bytes()), secs_of(p.ts)) {
                let cfg = &self.config.dns_exhaustion;
                out.push(Finding {
                    name: "dns_exhaustion",
                    trail: format!("({left}).{domain}"),
                    info: "potential dns exhaustion",
                    reason: format!(
                        "about {} distinct subdomains of {domain} within {} s (threshold {} in {} s)",
                        c.distinct, c.span_secs, cfg.threshold, cfg.window_secs
                    ),
                    severity: Severity::Medium,
                    offender: p.src,
                    qname: Some(name.to_string()),
                    qtype: None,
                    rcode: None,
                });
            }
        }
        let cfg = &self.config.long_domain;
        if cfg.enabled {
            let first = name.split('.').next().unwrap_or("");
            if first.len() > cfg.max_label_length as usize
                && !first.contains('-')
                && !LONG_LABEL_KEYWORDS.iter().any(|k| name.contains(k))
            {
                out.push(Finding {
                    name: "long_domain",
                    trail: bracket(name, first.len()),
                    info: "long domain (suspicious)",
                    reason: format!(
                        "leftmost label of {} characters (threshold {})",
                        first.len(),
                        cfg.max_label_length
                    ),
                    severity: Severity::Low,
                    offender: p.src,
                    qname: Some(name.to_string()),
                    qtype: None,
                    rcode: None,
                });
            }
        }
    }

    /// An NXDOMAIN answer for `name`; `client` asked for it.
    pub fn dns_nxdomain(
        &self,
        p: &PacketView<'_>,
        client: IpAddr,
        name: &str,
        out: &mut Vec<Finding>,
    ) {
        if let Some(table) = &self.nxdomain
            && let Some(c) = table.observe(
                addr_key(client, NXDOMAIN_SALT),
                bytes_hash32(name.as_bytes()),
                secs_of(p.ts),
            )
        {
            let cfg = &self.config.nxdomain;
            out.push(Finding {
                name: "nxdomain",
                trail: client.to_string(),
                info: "excessive no such domain (suspicious)",
                reason: format!(
                    "{} distinct names answered NXDOMAIN to {client} within {} s (threshold {} in {} s), the last {name}",
                    c.distinct, c.span_secs, cfg.threshold, cfg.window_secs
                ),
                severity: Severity::Medium,
                offender: client,
                qname: Some(name.to_string()),
                qtype: None,
                rcode: None,
            });
        }
        let cfg = &self.config.dga;
        if !cfg.enabled {
            return;
        }
        let Some((left, label, suffix)) = split_name(name) else {
            return;
        };
        if label.contains('-') || label.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        let e = entropy(label);
        let k = consonant_run(label);
        let (info, reason) = if e > cfg.entropy && k > cfg.entropy_consonant_run {
            (
                "entropy threshold no such domain (suspicious)",
                format!(
                    "label `{label}` has an entropy of {e:.2} bits (threshold {}) and a run of {k} consonants (threshold {})",
                    cfg.entropy, cfg.entropy_consonant_run
                ),
            )
        } else if k > cfg.consonant_run {
            (
                "consonant threshold no such domain (suspicious)",
                format!(
                    "label `{label}` has a run of {k} consonants (threshold {})",
                    cfg.consonant_run
                ),
            )
        } else {
            return;
        };
        let inner = if left.is_empty() {
            label.to_string()
        } else {
            format!("{left}.{label}")
        };
        out.push(Finding {
            name: "dga",
            trail: format!("({inner}).{suffix}"),
            info,
            reason,
            severity: Severity::Medium,
            offender: client,
            qname: Some(name.to_string()),
            qtype: None,
            rcode: None,
        });
    }
}

/// `name` with its first `len` bytes in parentheses, as Maltrail writes suspicious parts.
fn bracket(name: &str, len: usize) -> String {
    match name.get(len + 1..) {
        Some(rest) if !rest.is_empty() => format!("({}).{rest}", &name[..len]),
        _ => format!("({name})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_core::{Micros, Proto};
    use std::net::Ipv4Addr;

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66));
    const RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));

    fn query(s: i64) -> PacketView<'static> {
        PacketView {
            ts: Micros(1_700_000_000_000_000 + s * 1_000_000),
            src: CLIENT,
            dst: RESOLVER,
            proto: Proto::UDP,
            src_port: 50000,
            dst_port: 53,
            tcp: None,
            payload: &[],
        }
    }

    #[test]
    fn names_split_at_the_registrable_domain() {
        assert_eq!(
            split_name("a.b.example.com"),
            Some(("a.b", "example", "com"))
        );
        assert_eq!(split_name("example.com."), Some(("", "example", "com")));
        assert_eq!(
            split_name("www.bbc.co.uk"),
            Some(("www", "bbc", "co.uk")),
            "country-code second levels"
        );
        assert_eq!(split_name("co.uk"), Some(("", "co", "uk")));
        assert_eq!(split_name("nodot"), None);
        assert_eq!(split_name(".com"), None);
    }

    #[test]
    fn exhaustion_needs_about_a_thousand_subdomains() {
        let h = Heuristics::default();
        let mut out = Vec::new();
        for i in 0..900 {
            h.dns_query(&query(i / 100), &format!("s{i}.tunnel.example"), &mut out);
        }
        assert!(out.is_empty());
        for i in 900..1200 {
            h.dns_query(&query(9), &format!("s{i}.tunnel.example"), &mut out);
        }
        assert_eq!(out.len(), 1, "once per window");
        assert_eq!(out[0].name, "dns_exhaustion");
        assert!(
            out[0].trail.ends_with(").tunnel.example"),
            "{}",
            out[0].trail
        );
        // Repeats of one subdomain, or the bare domain, are not distinct subdomains.
        let h = Heuristics::default();
        for i in 0..3000 {
            h.dns_query(&query(i / 100), "www.busy.example", &mut out);
            h.dns_query(&query(i / 100), "busy.example", &mut out);
        }
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn nxdomain_floods_per_client() {
        let h = Heuristics::default();
        let mut out = Vec::new();
        let answer = |s| query(s);
        for i in 0..20 {
            h.dns_nxdomain(
                &answer(i),
                CLIENT,
                &format!("nx{i}.parent.example"),
                &mut out,
            );
        }
        assert!(out.is_empty(), "20 is not more than 20");
        h.dns_nxdomain(&answer(20), CLIENT, "nx20.parent.example", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].info, "excessive no such domain (suspicious)");
        assert_eq!(out[0].trail, "10.0.0.66");
        assert!(
            out[0].reason.starts_with("21 distinct names"),
            "{}",
            out[0].reason
        );
    }

    #[test]
    fn dga_labels() {
        let h = Heuristics::default();
        let mut out = Vec::new();
        h.dns_nxdomain(&query(0), CLIENT, "google.com", &mut out);
        h.dns_nxdomain(&query(0), CLIENT, "some-long-hyphenated-name.com", &mut out);
        h.dns_nxdomain(&query(0), CLIENT, "cloudstartri.com", &mut out);
        h.dns_nxdomain(&query(0), CLIENT, "strengths.example", &mut out);
        h.dns_nxdomain(&query(0), CLIENT, "worldscript.example", &mut out);
        h.dns_nxdomain(&query(0), CLIENT, "cloudstarnet7.io", &mut out);
        h.dns_nxdomain(&query(0), CLIENT, "app.newsjetplay63.app", &mut out);
        assert!(out.is_empty(), "{out:#?}");
        h.dns_nxdomain(&query(0), CLIENT, "xkqwzlvbnmfghjd.com", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].trail, "(xkqwzlvbnmfghjd).com");
        assert_eq!(out[0].info, "entropy threshold no such domain (suspicious)");
        // Few distinct letters, many consonants.
        h.dns_nxdomain(&query(0), CLIENT, "www.bcdbcdbcdb.net", &mut out);
        assert_eq!(
            out[1].info,
            "consonant threshold no such domain (suspicious)"
        );
        assert_eq!(out[1].trail, "(www.bcdbcdbcdb).net");
    }

    #[test]
    fn long_labels() {
        let h = Heuristics::default();
        let mut out = Vec::new();
        h.dns_query(&query(0), "aaaaaaaaaaaaaaaaaaaaaaaa.example.com", &mut out);
        assert!(out.is_empty(), "24 is not longer than 24");
        h.dns_query(&query(0), "aaaaaaaaaaaaaaaaaaaaaaaaa.example.com", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].trail, "(aaaaaaaaaaaaaaaaaaaaaaaaa).example.com");
        h.dns_query(
            &query(0),
            "aaaaaaaaaaaaaaaaaaaaaaaaa-b.example.com",
            &mut out,
        );
        h.dns_query(
            &query(0),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaa.blogspot.com",
            &mut out,
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn entropy_and_consonants() {
        assert!((entropy("google") - 1.918_295_834_1).abs() < 1e-9);
        assert_eq!(entropy("aaaa"), 0.0);
        assert_eq!(consonants("abcdefghij"), 7);
        assert_eq!(consonant_run("cloudstartri"), 3);
        assert_eq!(consonant_run("xkqwzlvbnmfghjd"), 15);
    }
}
