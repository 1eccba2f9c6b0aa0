//! HTTP/1.x request and response heads (RFC 9112), recognised on any port.
//!
//! [`parse_request`] accepts a payload only if it starts with a request line of a known
//! method, so binary traffic on odd ports is rejected within a few octets. Header lines are
//! scanned once (bounded by [`MAX_HEADERS`] and [`MAX_LINE_LEN`]) to pick out the fields a
//! detector needs; [`HttpRequest::headers`] walks them again lazily. Everything borrows the
//! payload except the lower-cased host, which lives inline in a [`LowerName`].
//!
//! A head may arrive over several segments: [`HttpRequest::complete`] says whether the blank
//! line ending the header block was seen, so reassembly can wait for more bytes.

use super::LowerName;

/// Longest request, status or header line read. Servers commonly refuse more than 8 KiB
/// per line; anything longer is an attack or not HTTP.
pub const MAX_LINE_LEN: usize = 8 * 1024;
/// Header lines read per head: browsers send 10-20; servers commonly refuse over 100.
pub const MAX_HEADERS: usize = 100;
/// Longest method token in [`METHODS`].
const MAX_METHOD_LEN: usize = 16;

/// Methods recognised at the start of a payload: RFC 9110, PATCH (RFC 5789) and WebDAV
/// (RFC 4918, 3253, 5323). A fixed list keeps recognition on arbitrary ports strict.
pub const METHODS: &[&str] = &[
    "GET",
    "POST",
    "HEAD",
    "PUT",
    "DELETE",
    "OPTIONS",
    "PATCH",
    "CONNECT",
    "TRACE",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "MKCALENDAR",
    "CHECKOUT",
    "MERGE",
];

/// Why a payload is not (yet) an HTTP/1.x head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The bytes so far agree with a start line but it has not ended yet: wait for more.
    #[error("incomplete HTTP start line")]
    Incomplete,
    /// Not an HTTP/1.x request (or response): another protocol.
    #[error("not HTTP/1.x")]
    NotHttp,
    /// The start line is longer than [`MAX_LINE_LEN`].
    #[error("HTTP start line too long")]
    LineTooLong,
}

/// Oddities met in the header block that did not stop parsing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpAnomalies {
    /// Some line ended in a bare LF instead of CRLF.
    pub bare_lf: bool,
    /// A header line without a colon, with an empty name, or with space before the colon.
    pub malformed_header: bool,
    /// An obsolete folded continuation line (RFC 9112 §5.2); ignored.
    pub obs_fold: bool,
    /// More than [`MAX_HEADERS`] lines; parsing stopped there.
    pub too_many_headers: bool,
    /// A header line longer than [`MAX_LINE_LEN`]; parsing stopped there.
    pub line_too_long: bool,
    /// More than one Host header (a request-smuggling sign); the first is used.
    pub duplicate_host: bool,
    /// The host is longer than a DNS name can be; [`HttpRequest::host`] is `None`.
    pub host_too_long: bool,
}

/// A request head. Slices borrow the payload.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The method token, e.g. `GET`.
    pub method: &'a str,
    /// The request-target exactly as sent (origin, absolute, authority or asterisk form).
    pub target: &'a [u8],
    /// Minor version: 0 or 1 for `HTTP/1.0` and `HTTP/1.1`.
    pub minor_version: u8,
    /// Path and query as sent (from the absolute form, the part after the authority);
    /// empty for `CONNECT`'s authority form.
    pub uri: &'a [u8],
    /// Host lower-cased, port stripped: from an absolute-form target, else the Host header.
    /// IPv6 literals keep their brackets.
    pub host: Option<LowerName>,
    /// `User-Agent`.
    pub user_agent: Option<&'a [u8]>,
    /// `X-Forwarded-For`.
    pub x_forwarded_for: Option<&'a [u8]>,
    /// `Content-Type`.
    pub content_type: Option<&'a [u8]>,
    /// `Referer`.
    pub referer: Option<&'a [u8]>,
    /// `Content-Length` if it parses as a number.
    pub content_length: Option<u64>,
    /// True when the blank line ending the header block was seen.
    pub complete: bool,
    /// Octets of the head (start line through the blank line), or of what was read if
    /// incomplete; the body starts here.
    pub head_len: usize,
    /// What was odd about the header block.
    pub anomalies: HttpAnomalies,
    headers: &'a [u8],
}

/// A response head.
#[derive(Debug, Clone, Copy)]
pub struct HttpResponse<'a> {
    /// Minor version: 0 or 1.
    pub minor_version: u8,
    /// The three-digit status code.
    pub status: u16,
    /// The reason phrase as sent (may be empty).
    pub reason: &'a [u8],
    /// `Server`.
    pub server: Option<&'a [u8]>,
    /// `Content-Type`.
    pub content_type: Option<&'a [u8]>,
    /// `Location`.
    pub location: Option<&'a [u8]>,
    /// `Content-Length` if it parses as a number.
    pub content_length: Option<u64>,
    /// True when the blank line ending the header block was seen.
    pub complete: bool,
    /// Octets of the head, as for [`HttpRequest::head_len`].
    pub head_len: usize,
    /// What was odd about the header block.
    pub anomalies: HttpAnomalies,
    headers: &'a [u8],
}

/// Splits off one line, looking for its LF only in the first [`MAX_LINE_LEN`] + 2 octets
/// (room for CRLF). Returns (line without CR/LF, everything after the LF, ended with a bare
/// LF), or `None` if no LF is in that window.
fn split_line(buf: &[u8]) -> Option<(&[u8], &[u8], bool)> {
    let window = &buf[..buf.len().min(MAX_LINE_LEN + 2)];
    let lf = window.iter().position(|&b| b == b'\n')?;
    let (line, bare) = match buf[..lf].strip_suffix(b"\r") {
        Some(l) => (l, false),
        None => (&buf[..lf], true),
    };
    Some((line, &buf[lf + 1..], bare))
}

/// `HTTP/1.x` → x.
fn parse_version(v: &[u8]) -> Option<u8> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', d] if d.is_ascii_digit() => Some(d - b'0'),
        _ => None,
    }
}

/// Parses a request head:
///
/// ```text
/// request-line   = method SP request-target SP HTTP-version CRLF
/// *( field-line CRLF )
/// CRLF
/// field-line     = field-name ":" OWS field-value OWS
/// ```
///
/// Bare LF line ends are accepted (and flagged). Returns [`HttpError::Incomplete`] only while
/// the request line itself is unfinished; an unfinished header block is `Ok` with
/// `complete == false`.
pub fn parse_request(buf: &[u8]) -> Result<HttpRequest<'_>, HttpError> {
    // Fast reject: the method must be one we know, followed by a space.
    let sp = buf.iter().take(MAX_METHOD_LEN + 1).position(|&b| b == b' ');
    let method = match sp {
        Some(n) => {
            let m = &buf[..n];
            METHODS
                .iter()
                .find(|k| k.as_bytes() == m)
                .ok_or(HttpError::NotHttp)?
        }
        None => {
            let partial = buf.len() <= MAX_METHOD_LEN
                && METHODS.iter().any(|k| k.as_bytes().starts_with(buf));
            return Err(if partial {
                HttpError::Incomplete
            } else {
                HttpError::NotHttp
            });
        }
    };
    let (line, rest, bare_lf) = match split_line(buf) {
        Some(x) => x,
        None => {
            return Err(check_partial_request_line(
                &buf[method.len() + 1..],
                buf.len(),
            ));
        }
    };
    let after_method = &line[method.len() + 1..];
    let sp2 = after_method
        .iter()
        .rposition(|&b| b == b' ')
        .ok_or(HttpError::NotHttp)?;
    let target = &after_method[..sp2];
    let minor_version = parse_version(&after_method[sp2 + 1..]).ok_or(HttpError::NotHttp)?;
    if target.is_empty() || !target.iter().all(|&b| is_target_octet(b)) {
        return Err(HttpError::NotHttp);
    }

    let mut anomalies = HttpAnomalies {
        bare_lf,
        ..HttpAnomalies::default()
    };
    let (uri, mut host) = split_target(method, target, &mut anomalies);
    let from_target = host.is_some();
    let mut req = HttpRequest {
        method,
        target,
        minor_version,
        uri,
        host: None,
        user_agent: None,
        x_forwarded_for: None,
        content_type: None,
        referer: None,
        content_length: None,
        complete: false,
        head_len: 0,
        anomalies,
        headers: rest,
    };
    let mut seen_host = false;
    let scan = scan_headers(rest, &mut req.anomalies, |name, value, anomalies| {
        if name.eq_ignore_ascii_case(b"host") {
            if seen_host {
                anomalies.duplicate_host = true;
            } else if !from_target {
                host = Some(host_from_authority(value, anomalies));
            }
            seen_host = true;
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            req.user_agent.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            req.x_forwarded_for.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content-type") {
            req.content_type.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"referer") {
            req.referer.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            req.content_length = req.content_length.or_else(|| parse_u64(value));
        }
    });
    req.host = host.flatten();
    req.complete = scan.complete;
    req.headers = &rest[..scan.block_len];
    req.head_len = buf.len() - rest.len() + scan.consumed;
    Ok(req)
}

/// Without an LF yet: is what we have still a plausible request line?
fn check_partial_request_line(after_method: &[u8], total: usize) -> HttpError {
    if total > MAX_LINE_LEN {
        return HttpError::LineTooLong;
    }
    let plausible = after_method
        .iter()
        .all(|&b| is_target_octet(b) || b == b' ' || b == b'\r');
    if plausible {
        HttpError::Incomplete
    } else {
        HttpError::NotHttp
    }
}

/// Octets allowed in a request-target: visible ASCII, plus raw non-ASCII that real clients
/// send unescaped. Controls and spaces are never allowed.
fn is_target_octet(b: u8) -> bool {
    b > 0x20 && b != 0x7f
}

/// Splits the target into (path+query, host-from-target). Host is `Some(..)` only for the
/// absolute and authority forms (RFC 9112 §3.2), where it overrides the Host header.
fn split_target<'a>(
    method: &str,
    target: &'a [u8],
    anomalies: &mut HttpAnomalies,
) -> (&'a [u8], Option<Option<LowerName>>) {
    if method == "CONNECT" {
        return (&[], Some(host_from_authority(target, anomalies)));
    }
    let scheme_end = target.windows(3).position(|w| w == b"://");
    match scheme_end {
        Some(i)
            if target[..i]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b)) =>
        {
            let after = &target[i + 3..];
            let path_start = after
                .iter()
                .position(|&b| b == b'/' || b == b'?')
                .unwrap_or(after.len());
            let authority = &after[..path_start];
            // Drop any userinfo: it is not part of the host.
            let authority = match authority.iter().rposition(|&b| b == b'@') {
                Some(at) => &authority[at + 1..],
                None => authority,
            };
            let uri = &after[path_start..];
            (
                if uri.is_empty() { b"/" } else { uri },
                Some(host_from_authority(authority, anomalies)),
            )
        }
        _ => (target, None),
    }
}

/// `host[:port]` or `[v6]:port` → lower-cased host without the port.
fn host_from_authority(value: &[u8], anomalies: &mut HttpAnomalies) -> Option<LowerName> {
    let value = value.trim_ascii();
    let host = if value.first() == Some(&b'[') {
        match value.iter().position(|&b| b == b']') {
            Some(close) => &value[..=close],
            None => value,
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) => &value[..colon],
            None => value,
        }
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    let name = LowerName::from_bytes(host);
    if name.is_none() {
        anomalies.host_too_long = true;
    }
    name
}

fn parse_u64(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value.trim_ascii()).ok()?.parse().ok()
}

struct HeaderScan {
    /// The blank line was seen.
    complete: bool,
    /// Octets of header lines before the blank line (what `headers()` walks).
    block_len: usize,
    /// Octets consumed including the blank line.
    consumed: usize,
}

/// Walks header lines, calling `field` for each well-formed `name: value`.
fn scan_headers<'a>(
    block: &'a [u8],
    anomalies: &mut HttpAnomalies,
    mut field: impl FnMut(&'a [u8], &'a [u8], &mut HttpAnomalies),
) -> HeaderScan {
    let mut rest = block;
    let mut lines = 0;
    loop {
        let consumed = block.len() - rest.len();
        let Some((line, next, bare_lf)) = split_line(rest) else {
            if rest.len() > MAX_LINE_LEN {
                anomalies.line_too_long = true;
            }
            return HeaderScan {
                complete: false,
                block_len: consumed,
                consumed,
            };
        };
        anomalies.bare_lf |= bare_lf;
        if line.is_empty() {
            let end = block.len() - next.len();
            return HeaderScan {
                complete: true,
                block_len: consumed,
                consumed: end,
            };
        }
        lines += 1;
        if lines > MAX_HEADERS {
            anomalies.too_many_headers = true;
            return HeaderScan {
                complete: false,
                block_len: consumed,
                consumed,
            };
        }
        match split_field(line) {
            Some((name, value)) => field(name, value, anomalies),
            None if line[0] == b' ' || line[0] == b'\t' => anomalies.obs_fold = true,
            None => anomalies.malformed_header = true,
        }
        rest = next;
    }
}

/// `name: value` with a token name and no space before the colon (RFC 9112 §5.1).
fn split_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
        return None;
    }
    Some((name, line[colon + 1..].trim_ascii()))
}

/// Iterates `name: value` pairs of a header block already bounded by [`scan_headers`].
fn header_pairs(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = block;
    std::iter::from_fn(move || {
        loop {
            let (line, next, _) = split_line(rest)?;
            rest = next;
            if let Some(pair) = split_field(line) {
                return Some(pair);
            }
        }
    })
}

impl<'a> HttpRequest<'a> {
    /// The path: [`uri`](Self::uri) without the query.
    pub fn path(&self) -> &'a [u8] {
        match self.uri.iter().position(|&b| b == b'?') {
            Some(q) => &self.uri[..q],
            None => self.uri,
        }
    }

    /// The query after `?`, if any.
    pub fn query(&self) -> Option<&'a [u8]> {
        self.uri
            .iter()
            .position(|&b| b == b'?')
            .map(|q| &self.uri[q + 1..])
    }

    /// Maltrail's URL: host then uri, no scheme (`example.com/a/b?c`). Lossy for non-UTF-8.
    /// Allocates: meant for events, not for every packet.
    pub fn url(&self) -> String {
        let mut url = String::new();
        if let Some(host) = &self.host {
            url.push_str(&String::from_utf8_lossy(host.as_bytes()));
        }
        url.push_str(&String::from_utf8_lossy(self.uri));
        url
    }

    /// Every well-formed header in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        header_pairs(self.headers)
    }

    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

impl<'a> HttpResponse<'a> {
    /// Every well-formed header in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        header_pairs(self.headers)
    }

    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// Parses a response head:
///
/// ```text
/// status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
/// *( field-line CRLF )
/// CRLF
/// ```
///
/// Same line rules and incompleteness as [`parse_request`].
pub fn parse_response(buf: &[u8]) -> Result<HttpResponse<'_>, HttpError> {
    const PREFIX: &[u8] = b"HTTP/1.";
    if buf.len() < PREFIX.len() + 1 {
        return Err(if PREFIX.starts_with(buf) {
            HttpError::Incomplete
        } else {
            HttpError::NotHttp
        });
    }
    if !buf.starts_with(PREFIX) {
        return Err(HttpError::NotHttp);
    }
    let Some((line, rest, bare_lf)) = split_line(buf) else {
        if buf.len() > MAX_LINE_LEN {
            return Err(HttpError::LineTooLong);
        }
        let plausible = buf
            .iter()
            .all(|&b| b >= 0x20 && b != 0x7f || b == b'\r' || b == b'\t');
        return Err(if plausible {
            HttpError::Incomplete
        } else {
            HttpError::NotHttp
        });
    };
    // "HTTP/1.x" SP 3DIGIT [SP reason]
    let minor_version = line
        .get(..8)
        .and_then(parse_version)
        .ok_or(HttpError::NotHttp)?;
    let status = match line.get(8..12) {
        Some([b' ', a, b, c]) if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(HttpError::NotHttp),
    };
    let reason = match line.get(12..) {
        Some([b' ', reason @ ..]) => reason,
        Some([]) | None => &[],
        Some(_) => return Err(HttpError::NotHttp),
    };
    let mut resp = HttpResponse {
        minor_version,
        status,
        reason,
        server: None,
        content_type: None,
        location: None,
        content_length: None,
        complete: false,
        head_len: 0,
        anomalies: HttpAnomalies {
            bare_lf,
            ..HttpAnomalies::default()
        },
        headers: rest,
    };
    let scan = scan_headers(rest, &mut resp.anomalies, |name, value, _| {
        if name.eq_ignore_ascii_case(b"server") {
            resp.server.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content-type") {
            resp.content_type.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"location") {
            resp.location.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            resp.content_length = resp.content_length.or_else(|| parse_u64(value));
        }
    });
    resp.complete = scan.complete;
    resp.headers = &rest[..scan.block_len];
    resp.head_len = buf.len() - rest.len() + scan.consumed;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"GET /download/file.exe?id=7&x=1 HTTP/1.1\r\n\
        Host: WWW.Example.COM:8080\r\n\
        user-agent: Mozilla/5.0 (evil)\r\n\
        X-FORWARDED-FOR: 203.0.113.9\r\n\
        Referer: http://ref.example/\r\n\
        Content-Length: 12\r\n\
        \r\nbody";

    #[test]
    fn request_fields() {
        let r = parse_request(REQ).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.minor_version, 1);
        assert_eq!(r.host.unwrap(), "www.example.com");
        assert_eq!(r.uri, b"/download/file.exe?id=7&x=1");
        assert_eq!(r.path(), b"/download/file.exe");
        assert_eq!(r.query(), Some(&b"id=7&x=1"[..]));
        assert_eq!(r.url(), "www.example.com/download/file.exe?id=7&x=1");
        assert_eq!(r.user_agent, Some(&b"Mozilla/5.0 (evil)"[..]));
        assert_eq!(r.x_forwarded_for, Some(&b"203.0.113.9"[..]));
        assert_eq!(r.referer, Some(&b"http://ref.example/"[..]));
        assert_eq!(r.content_length, Some(12));
        assert!(r.complete);
        assert_eq!(&REQ[r.head_len..], b"body");
        assert_eq!(r.headers().count(), 5);
        assert_eq!(r.header("HOST"), Some(&b"WWW.Example.COM:8080"[..]));
        assert_eq!(r.anomalies, HttpAnomalies::default());
    }

    #[test]
    fn absolute_form_overrides_host_header() {
        let r = parse_request(
            b"GET http://user@Proxy.Example:3128/a/b?q HTTP/1.0\r\nHost: other\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.host.unwrap(), "proxy.example");
        assert_eq!(r.uri, b"/a/b?q");
        assert_eq!(r.minor_version, 0);
        let r = parse_request(b"GET http://bare.example HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(r.url(), "bare.example/");
    }

    #[test]
    fn connect_and_ipv6_hosts() {
        let r = parse_request(b"CONNECT Tunnel.Example:443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(r.host.unwrap(), "tunnel.example");
        assert_eq!(r.uri, b"");
        let r = parse_request(b"GET / HTTP/1.1\r\nHost: [2001:DB8::1]:80\r\n\r\n").unwrap();
        assert_eq!(r.host.unwrap(), "[2001:db8::1]");
    }

    #[test]
    fn bare_lf_and_incomplete_block() {
        let r = parse_request(b"POST /x HTTP/1.1\nHost: a.example\nContent-Type: text/plain\n\n")
            .unwrap();
        assert!(r.complete);
        assert!(r.anomalies.bare_lf);
        assert_eq!(r.content_type, Some(&b"text/plain"[..]));

        let r = parse_request(b"GET / HTTP/1.1\r\nHost: a.example\r\nUser-Ag").unwrap();
        assert!(!r.complete);
        assert_eq!(r.host.unwrap(), "a.example");
        assert_eq!(r.user_agent, None);
    }

    #[test]
    fn unfinished_request_line_waits() {
        assert_eq!(parse_request(b"GE").unwrap_err(), HttpError::Incomplete);
        assert_eq!(
            parse_request(b"GET /abc").unwrap_err(),
            HttpError::Incomplete
        );
        assert_eq!(
            parse_request(b"GET /abc HTTP/1.1\r").unwrap_err(),
            HttpError::Incomplete
        );
    }

    #[test]
    fn every_prefix_is_safe() {
        for n in 0..REQ.len() {
            match parse_request(&REQ[..n]) {
                Ok(r) => assert!(!r.complete || n >= REQ.len() - 4),
                Err(e) => assert_eq!(e, HttpError::Incomplete, "prefix {n}"),
            }
        }
        let resp = b"HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\n";
        for n in 0..resp.len() {
            let _ = parse_response(&resp[..n]);
        }
    }

    // ---- hostile input ----

    #[test]
    fn binary_and_non_http_rejected_fast() {
        for junk in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            b"\x00\x00\x00\x00",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET  HTTP/1.1\r\n\r\n",
            b"GET /a\x01b HTTP/1.1\r\n\r\n",
            b"GETX / HTTP/1.1\r\n\r\n",
            b"GET /\x00",
        ] {
            assert_eq!(
                parse_request(junk).unwrap_err(),
                HttpError::NotHttp,
                "{junk:?}"
            );
        }
        assert_eq!(
            parse_response(b"\x16\x03\x03").unwrap_err(),
            HttpError::NotHttp
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 2x0 OK\r\n").unwrap_err(),
            HttpError::NotHttp
        );
    }

    #[test]
    fn huge_lines_and_many_headers() {
        let mut long = b"GET /".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_LINE_LEN + 10));
        assert_eq!(parse_request(&long).unwrap_err(), HttpError::LineTooLong);
        long.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(parse_request(&long).unwrap_err(), HttpError::LineTooLong);

        let mut big_header = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        big_header.extend(std::iter::repeat_n(b'b', MAX_LINE_LEN + 10));
        big_header.extend_from_slice(b"\r\nHost: late.example\r\n\r\n");
        let r = parse_request(&big_header).unwrap();
        assert!(r.anomalies.line_too_long, "{r:?}");
        assert!(!r.complete);
        assert!(r.host.is_none());

        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS + 50 {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let r = parse_request(&many).unwrap();
        assert!(r.anomalies.too_many_headers);
        assert!(!r.complete);
        assert_eq!(r.headers().count(), MAX_HEADERS);
    }

    #[test]
    fn odd_headers_are_flagged_not_fatal() {
        let r = parse_request(
            b"GET / HTTP/1.1\r\nHost: one.example\r\nHOST: two.example\r\nno colon here\r\n  folded\r\nHost : x\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.host.unwrap(), "one.example");
        assert!(r.anomalies.duplicate_host);
        assert!(r.anomalies.malformed_header);
        assert!(r.anomalies.obs_fold);
        assert!(r.complete);

        let mut long_host = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        long_host.extend(std::iter::repeat_n(b'h', 300));
        long_host.extend_from_slice(b"\r\n\r\n");
        let r = parse_request(&long_host).unwrap();
        assert!(r.host.is_none());
        assert!(r.anomalies.host_too_long);
    }

    #[test]
    fn response_fields() {
        let r = parse_response(
            b"HTTP/1.1 302 Found\r\nserver: Apache/2.4.1\r\nLOCATION: http://x.example/y\r\ncontent-type: text/html\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 302);
        assert_eq!(r.reason, b"Found");
        assert_eq!(r.server, Some(&b"Apache/2.4.1"[..]));
        assert_eq!(r.location, Some(&b"http://x.example/y"[..]));
        assert_eq!(r.content_type, Some(&b"text/html"[..]));
        assert!(r.complete);
        let r = parse_response(b"HTTP/1.0 204\r\n\r\n").unwrap();
        assert_eq!((r.status, r.reason), (204, &b""[..]));
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK").unwrap_err(),
            HttpError::Incomplete
        );
    }
}
