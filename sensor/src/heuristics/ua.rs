//! User agents: attack tools and scanners that announce themselves, requests without a
//! User-Agent, and the updater agents never to report.
//!
//! The long list of suspicious User-Agent patterns is a feed (Maltrail's `ua.txt`, the
//! `maltrail-ua` catalog entry) matched by the trail store; this module adds what a feed
//! does not give: a short built-in list of tools that name themselves (so a sensor without
//! that feed still sees sqlmap and masscan), the missing-User-Agent check, and an
//! allowlist of security-software updaters applied before either.

use std::net::IpAddr;
use std::sync::LazyLock;

use regex::bytes::{Regex, RegexBuilder};

use super::content::{ContentConfig, Heuristic, Verdict, evidence};

/// Octets of a User-Agent examined: tools name themselves early, and the bound keeps the
/// lower-cased copy on the stack.
pub const MAX_UA_SCAN: usize = 512;

/// Spoor's own tool patterns, matched on the lower-cased agent (so that the engine can
/// search for the literal names at once): scanners, injection and brute-force tools, and
/// bare tool names without a version (bots copying `Wget` or `curl`).
const TOOL_PATTERNS: &[&str] = &[
    r"\Amasscan|\bzmap/",
    r"sqlmap|\bhavij\b|\bpangolin\b|\bbsqlbf\b",
    r"\bnikto\b|\bnmap\b|\bnessus\b|\bopenvas\b|\bw3af\b|\barachni\b|\bskipfish\b|\bwapiti\b",
    r"acunetix|netsparker|\bappscan\b|burp\s?(?:suite|collaborator)|\bqualys\s?was\b",
    r"\bwpscan\b|\bjoomscan\b|\bdroopescan\b|\bcmsmap\b",
    r"\bdirbuster\b|\bgobuster\b|\bferoxbuster\b|\bdirb\b|\bwfuzz\b|\bffuf\b|\bnuclei\b",
    r"\bhydra\b|\bmedusa\b|\bncrack\b|\bfimap\b|\bcommix\b|\bxsser\b|\bmorfeus\b",
];

/// Tool and library names sent bare, without a version: bots copying a real client's
/// name. Compared whole, ignoring case.
const BARE_NAMES: &[&str] = &[
    "wget", "curl", "python", "perl", "java", "ruby", "php", "go", "lwp", "libwww",
];

/// Security-software and OS updaters: their agents are never reported (Maltrail keeps a
/// similar allowlist). Written by Spoor; matched on the lower-cased agent.
const UPDATER_PATTERNS: &[&str] = &[
    r"\bsophos|\bsymantec|\bnorton\b|\bmcafee|\bkaspersky|\bavast|\bavg\b|\beset\b|\bbitdefender|\btrend\s?micro|\bf-secure|\bmalwarebytes|\bclamav|\bwindows-update-agent|\bmicrosoft-cryptoapi|\bmicrosoft\sbits",
];

/// The compiled tool and updater patterns.
#[derive(Debug, Clone)]
pub struct UaClassifier {
    /// Every tool pattern in one alternation: one literal search finds any of them.
    tools: Regex,
    updaters: Regex,
}

static SHARED: LazyLock<UaClassifier> = LazyLock::new(UaClassifier::compile);

fn alternation(patterns: &[&str]) -> Regex {
    let joined = patterns
        .iter()
        .map(|p| format!("(?:{p})"))
        .collect::<Vec<_>>()
        .join("|");
    RegexBuilder::new(&joined)
        .unicode(false)
        .build()
        .expect("the built-in user-agent patterns compile")
}

/// The first [`MAX_UA_SCAN`] octets of `ua`, ASCII lower-cased, on the stack.
fn lower(ua: &[u8]) -> ([u8; MAX_UA_SCAN], usize) {
    let mut buf = [0u8; MAX_UA_SCAN];
    let n = ua.len().min(MAX_UA_SCAN);
    for (d, s) in buf[..n].iter_mut().zip(ua) {
        *d = s.to_ascii_lowercase();
    }
    (buf, n)
}

impl UaClassifier {
    fn compile() -> UaClassifier {
        UaClassifier {
            tools: alternation(TOOL_PATTERNS),
            updaters: alternation(UPDATER_PATTERNS),
        }
    }

    /// The process-wide compiled patterns, cloned (own match cache per worker).
    pub fn shared() -> UaClassifier {
        SHARED.clone()
    }

    /// A security-software updater: never reported, by this module or by UA trails.
    pub fn is_allowlisted(&self, ua: &[u8]) -> bool {
        let (buf, n) = lower(ua);
        self.updaters.is_match(&buf[..n])
    }

    /// The tool a User-Agent names: the matched text's range, if any.
    pub fn tool_match(&self, ua: &[u8]) -> Option<std::ops::Range<usize>> {
        if BARE_NAMES
            .iter()
            .any(|b| b.as_bytes().eq_ignore_ascii_case(ua))
        {
            return Some(0..ua.len());
        }
        let (buf, n) = lower(ua);
        let found = self.tools.find(&buf[..n])?.range();
        (!self.updaters.is_match(&buf[..n])).then_some(found)
    }

    /// The verdict on a request's User-Agent: a named tool, or none at all (to a public
    /// server only: devices on the local network often send none).
    pub fn classify(
        &self,
        ua: Option<&[u8]>,
        host: &str,
        uri: &[u8],
        dst: IpAddr,
        config: &ContentConfig,
    ) -> Option<Verdict> {
        let ua = ua.map(<[u8]>::trim_ascii).filter(|u| !u.is_empty());
        let Some(ua) = ua else {
            if !config.enabled(Heuristic::MissingUserAgent) || super::http::is_local(dst) {
                return None;
            }
            let uri = String::from_utf8_lossy(uri);
            return Some(Verdict {
                heuristic: Heuristic::MissingUserAgent,
                trail: format!("{host}({uri})"),
                info: format!("{} (suspicious)", Heuristic::MissingUserAgent.label()),
                reason: format!("no User-Agent header in a request to public address {dst}"),
            });
        };
        if !config.enabled(Heuristic::SuspiciousUserAgent) {
            return None;
        }
        let range = self.tool_match(ua)?;
        let text = String::from_utf8_lossy(ua);
        Some(Verdict {
            heuristic: Heuristic::SuspiciousUserAgent,
            trail: maltrail_ua_trail(ua, range.clone()),
            info: format!("{} (suspicious)", Heuristic::SuspiciousUserAgent.label()),
            reason: format!(
                "`{}` names an attack tool in User-Agent `{}`",
                evidence(&ua[range]),
                evidence(text.as_bytes())
            ),
        })
    }
}

/// Maltrail's way of showing a suspicious User-Agent: the matched text with the rest in
/// parentheses (`masscan(/1.0)`, `(Mozilla/5.0 )nikto`), or `match (whole agent)` when
/// text surrounds the match on both sides; parentheses inside are escaped with `\`.
pub fn maltrail_ua_trail(ua: &[u8], matched: std::ops::Range<usize>) -> String {
    let esc = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .trim_end_matches('\\')
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    let (before, m, after) = (
        &ua[..matched.start],
        &ua[matched.clone()],
        &ua[matched.end..],
    );
    if !before.is_empty() && !after.is_empty() {
        return format!("{} ({})", esc(m), esc(ua));
    }
    let mut out = String::new();
    if !before.is_empty() {
        out.push_str(&format!("({})", esc(before)));
    }
    out.push_str(&esc(m));
    if !after.is_empty() {
        out.push_str(&format!("({})", esc(after)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::vectors::read_vectors;

    fn public() -> IpAddr {
        "203.0.113.5".parse().unwrap()
    }

    /// Rows where Spoor's built-in list deliberately differs from Maltrail's `ua.txt`
    /// (which reaches Spoor as the `maltrail-ua` feed, matched by the trail store).
    const DIFFERENT: &[(&str, &str)] = &[(
        "() { :;}; /bin/bash",
        "shellshock is reported as potential remote code execution (any header), not as a user agent",
    )];

    #[test]
    fn maltrail_vectors_agree() {
        let c = UaClassifier::shared();
        let rows = read_vectors("suspicious_ua.tsv");
        assert!(rows.len() >= 12);
        let mut agreed = 0;
        for row in &rows {
            let (ua, whitelisted, want) = (&row[0], row[1] == "1", &row[2]);
            assert_eq!(
                c.is_allowlisted(ua.as_bytes()),
                whitelisted,
                "allowlist for {ua:?}"
            );
            if DIFFERENT.iter().any(|(d, _)| d == ua) {
                continue;
            }
            let got = c
                .tool_match(ua.as_bytes())
                .map(|r| ua[r].to_string())
                .unwrap_or_default();
            assert!(
                got.eq_ignore_ascii_case(want),
                "{ua:?}: Maltrail matched {want:?}, Spoor {got:?}"
            );
            agreed += 1;
        }
        assert_eq!(agreed + DIFFERENT.len(), rows.len());
    }

    #[test]
    fn trail_shows_the_match_and_the_rest() {
        assert_eq!(maltrail_ua_trail(b"masscan/1.0", 0..7), "masscan(/1.0)");
        assert_eq!(
            maltrail_ua_trail(b"Mozilla/4.75 (Nikto/2.1.4)", 14..19),
            r"Nikto (Mozilla/4.75 \(Nikto/2.1.4\))"
        );
        assert_eq!(maltrail_ua_trail(b"x sqlmap", 2..8), "(x )sqlmap");
        assert_eq!(maltrail_ua_trail(b"Wget", 0..4), "Wget");
    }

    #[test]
    fn verdicts() {
        let c = UaClassifier::shared();
        let on = ContentConfig::default();
        let v = c
            .classify(Some(b"sqlmap/1.7#stable"), "h", b"/", public(), &on)
            .unwrap();
        assert_eq!(v.heuristic, Heuristic::SuspiciousUserAgent);
        assert_eq!(v.info, "user agent (suspicious)");
        assert_eq!(v.trail, "sqlmap(/1.7#stable)");
        let v = c.classify(None, "h.example", b"/x", public(), &on).unwrap();
        assert_eq!(v.heuristic, Heuristic::MissingUserAgent);
        assert_eq!(v.trail, "h.example(/x)");
        // Blank counts as missing; a local server is not reported.
        assert!(c.classify(Some(b"  "), "h", b"/", public(), &on).is_some());
        let local: IpAddr = "192.168.1.1".parse().unwrap();
        assert!(c.classify(None, "h", b"/", local, &on).is_none());
        let off = on.without(Heuristic::MissingUserAgent);
        assert!(c.classify(None, "h", b"/", public(), &off).is_none());
    }

    #[test]
    fn ordinary_agents_pass() {
        let c = UaClassifier::shared();
        let on = ContentConfig::default();
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "curl/8.5.0",
            "Wget/1.21.4",
            "python-requests/2.31.0",
            "Debian APT-HTTP/1.3 (2.6.1)",
            "Go-http-client/1.1",
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
            "Dirbble app 2.0",
        ] {
            assert!(
                c.classify(Some(ua.as_bytes()), "h", b"/", public(), &on)
                    .is_none(),
                "{ua}"
            );
        }
    }

    #[test]
    fn hostile_agents_do_not_break_it() {
        let c = UaClassifier::shared();
        let on = ContentConfig::default();
        let long = vec![b'A'; 100_000];
        assert!(c.classify(Some(&long), "h", b"/", public(), &on).is_none());
        let binary: Vec<u8> = (0..=255u8).collect();
        let _ = c.classify(Some(&binary), "h", b"/", public(), &on);
        let mut tail = vec![0xffu8; 50];
        tail.extend_from_slice(b"nikto");
        let v = c.classify(Some(&tail), "h", b"/", public(), &on).unwrap();
        assert!(v.trail.ends_with("nikto"));
    }
}
