//! Suspicious HTTP responses: sinkhole servers, law-enforcement seizure pages, and
//! script or executable content types.
//!
//! Read from the response head (status line, `Server`, `Location`, `Content-Type`, any
//! header naming a sinkhole) and the first [`MAX_BODY_SCAN`] octets of the body in the
//! same segment (the `<title>`, a "sinkholed by" notice). A response is checked only in
//! the packet that starts it.

use std::sync::LazyLock;

use memchr::memmem;

use super::content::{ContentConfig, Heuristic, Verdict, evidence};
use crate::proto::http::HttpResponse;

/// Octets of a response body searched for a title or a sinkhole notice: sinkhole and
/// seizure pages are small and say so at the top.
pub const MAX_BODY_SCAN: usize = 2048;
/// Longest `<title>` read.
pub const MAX_TITLE_LEN: usize = 200;

/// Content types that serve shell scripts, HTML applications, scriptlets, compiled help
/// and Windows executables: what a dropper fetches, rarely what a site serves a browser.
const SUSPICIOUS_CONTENT_TYPES: &[&str] = &[
    "application/x-sh",
    "application/x-shellscript",
    "text/x-sh",
    "text/x-shellscript",
    "application/x-bsh",
    "application/x-csh",
    "application/hta",
    "text/x-scriptlet",
    "application/x-chm",
    "application/vnd.ms-htmlhelp",
    "application/x-msdownload",
    "application/x-msdos-program",
    "application/x-dosexec",
    "application/vnd.microsoft.portable-executable",
    "application/x-ms-shortcut",
];

/// Host-name suffixes of sinkhole operators seen in `Location` redirects.
const SINKHOLE_HOST_WORDS: &[&str] = &["sinkhole", "sinkdns.org", "sinkhole.tech"];

/// "sinkholed by" without its first letter (either case), built once.
static NOTICE_LOWER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"inkholed by").into_owned());
static NOTICE_UPPER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"INKHOLED BY").into_owned());

/// Phrases of seizure notices, lower case.
const SEIZURE_PHRASES: &[&str] = &[
    "has been seized",
    "domain seized",
    "domain seizure",
    "website seized",
    "site has been seized",
    "seized by the",
];

/// The first suspicious trait of a response: sinkhole, then seizure, then content type.
/// `payload` is the whole segment (head and the body's start).
pub fn classify(
    response: &HttpResponse<'_>,
    payload: &[u8],
    config: &ContentConfig,
) -> Option<Verdict> {
    let body_start = response.head_len.min(payload.len());
    let body = &payload[body_start..payload.len().min(body_start + MAX_BODY_SCAN)];
    let title = if response.complete { title(body) } else { None };
    if config.enabled(Heuristic::SinkholeResponse)
        && let Some(found) = sinkhole(response, body, title)
    {
        return Some(Verdict {
            heuristic: Heuristic::SinkholeResponse,
            info: format!("{} (malware)", Heuristic::SinkholeResponse.label()),
            reason: format!("sinkhole marker `{found}` in the response"),
            trail: found,
        });
    }
    if config.enabled(Heuristic::SeizedDomain)
        && let Some(title) = title
        && SEIZURE_PHRASES.iter().any(|p| contains_ci(title, p))
    {
        let text = evidence(title);
        return Some(Verdict {
            heuristic: Heuristic::SeizedDomain,
            info: format!("{} (suspicious)", Heuristic::SeizedDomain.label()),
            reason: format!("page title `{text}` announces a seizure"),
            trail: text,
        });
    }
    if config.enabled(Heuristic::SuspiciousContentType)
        && let Some(ct) = response.content_type
    {
        let essence = ct.split(|&b| b == b';').next().unwrap_or(ct).trim_ascii();
        if let Some(known) = SUSPICIOUS_CONTENT_TYPES
            .iter()
            .find(|t| t.as_bytes().eq_ignore_ascii_case(essence))
        {
            return Some(Verdict {
                heuristic: Heuristic::SuspiciousContentType,
                info: format!("{} (suspicious)", Heuristic::SuspiciousContentType.label()),
                reason: format!("response served as `{known}`"),
                trail: (*known).to_string(),
            });
        }
    }
    None
}

/// The sinkhole marker, as `Header: value` or the body text that names it.
fn sinkhole(response: &HttpResponse<'_>, body: &[u8], title: Option<&[u8]>) -> Option<String> {
    let has = contains_ci;
    for (name, value) in response.headers() {
        let shown = || format!("{}: {}", evidence(name), evidence(value));
        if has(name, "sinkhole") {
            return Some(shown());
        }
        if name.eq_ignore_ascii_case(b"server") && has(value, "sinkhole") {
            return Some(shown());
        }
        if name.eq_ignore_ascii_case(b"location") && location_is_sinkhole(value) {
            return Some(shown());
        }
    }
    // `<title>Sinkhole...` or "sinkholed by" near the top of the page.
    if let Some(title) = title {
        let t = title.trim_ascii();
        if t.len() >= 8 && t[..8].eq_ignore_ascii_case(b"sinkhole") {
            return Some(format!("<title>{}</title>", evidence(t)));
        }
    }
    let at = NOTICE_LOWER
        .find(body)
        .or_else(|| NOTICE_UPPER.find(body))?;
    let start = at.saturating_sub(1);
    if !body[start].eq_ignore_ascii_case(&b's') {
        return None;
    }
    let end = body[start..]
        .iter()
        .position(|&b| b == b'<' || b == b'\n' || b == b'\r')
        .map_or(body.len(), |e| start + e)
        .min(start + 80);
    Some(evidence(&body[start..end]))
}

/// A redirect to a host whose name says sinkhole (`x.sinkdns.org`, `sinkhole.example`).
fn location_is_sinkhole(value: &[u8]) -> bool {
    let after_scheme = memmem::find(value, b"://").map_or(value, |i| &value[i + 3..]);
    let host_end = after_scheme
        .iter()
        .position(|&b| b == b'/' || b == b'?' || b == b'#')
        .unwrap_or(after_scheme.len());
    let host = &after_scheme[..host_end];
    SINKHOLE_HOST_WORDS.iter().any(|w| contains_ci(host, w))
}

/// `needle` (lower case ASCII) in `hay`, ignoring ASCII case; no allocation.
fn contains_ci(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The text of the first `<title>` in `body`, bounded by [`MAX_TITLE_LEN`].
fn title(body: &[u8]) -> Option<&[u8]> {
    let mut from = 0;
    while let Some(lt) = memchr::memchr(b'<', &body[from..]) {
        let at = from + lt;
        let tag = &body[at..];
        if tag.len() >= 7 && tag[..6].eq_ignore_ascii_case(b"<title") {
            let open_end = at + memchr::memchr(b'>', tag)? + 1;
            let rest = &body[open_end..];
            let close = memchr::memchr(b'<', rest).unwrap_or(rest.len());
            return Some(&rest[..close.min(MAX_TITLE_LEN)]);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::vectors::read_vectors;
    use crate::proto::http::parse_response;

    fn check(raw: &[u8]) -> Option<Verdict> {
        let r = parse_response(raw).unwrap();
        classify(&r, raw, &ContentConfig::default())
    }

    #[test]
    fn maltrail_sinkhole_vectors_agree() {
        let rows = read_vectors("sinkhole.tsv");
        assert!(rows.len() >= 6);
        for row in rows {
            let (raw, want) = (&row[0], &row[1]);
            let got = check(raw.as_bytes());
            if want.is_empty() {
                assert!(got.is_none(), "{raw:?}: {got:?}");
                continue;
            }
            let v = got.unwrap_or_else(|| panic!("{raw:?}: no verdict, Maltrail: {want:?}"));
            assert_eq!(v.heuristic, Heuristic::SinkholeResponse);
            assert!(
                v.trail.contains(want.trim_end()),
                "{raw:?}: trail {:?} does not show {want:?}",
                v.trail
            );
        }
    }

    #[test]
    fn seizure_and_content_type() {
        let v = check(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><head><TITLE>This domain name has been seized by the FBI</TITLE>").unwrap();
        assert_eq!(v.heuristic, Heuristic::SeizedDomain);
        assert_eq!(v.info, "seized domain (suspicious)");
        assert_eq!(v.trail, "This domain name has been seized by the FBI");
        let v =
            check(b"HTTP/1.1 200 OK\r\nContent-Type: Application/X-Sh; charset=x\r\n\r\n#!/bin/sh")
                .unwrap();
        assert_eq!(v.heuristic, Heuristic::SuspiciousContentType);
        assert_eq!(v.trail, "application/x-sh");
        assert_eq!(v.info, "content type (suspicious)");
        let v = check(b"HTTP/1.1 200 OK\r\nServer: Sinkhole\r\n\r\n").unwrap();
        assert_eq!(v.info, "sinkhole response (malware)");
    }

    #[test]
    fn ordinary_responses_pass() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello"[..],
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><title>What is a DNS sinkhole?</title>",
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\nMZ",
            b"HTTP/1.1 302 Found\r\nLocation: https://www.example.com/sinkholes-explained\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}",
        ] {
            assert!(check(raw).is_none(), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn hostile_bodies_do_not_break_it() {
        // A title that never closes, a lone `<`, binary, a huge body.
        for raw in [
            &b"HTTP/1.1 200 OK\r\n\r\n<title"[..],
            b"HTTP/1.1 200 OK\r\n\r\n<title>",
            b"HTTP/1.1 200 OK\r\n\r\n<",
            b"HTTP/1.1 200 OK\r\n\r\nkholed by",
            b"HTTP/1.1 200 OK\r\n\r\n\xff\xfe\x00<TiTlE\x00>",
        ] {
            let _ = check(raw);
        }
        let mut big = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'<', 100_000));
        assert!(check(&big).is_none());
        let mut late = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        late.extend(std::iter::repeat_n(b' ', MAX_BODY_SCAN));
        late.extend_from_slice(b"Sinkholed by x");
        assert!(
            check(&late).is_none(),
            "notices beyond the scan window are not read"
        );
    }
}
