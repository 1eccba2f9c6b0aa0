//! Is a freshly downloaded body a list worth replacing the last good copy with?
//!
//! Checks, cheapest first: not empty, not an HTML page (sniffed from the bytes, not trusted
//! to the parser: a web page can contain lines that look like trails), at least one trail in
//! the feed's format, and not a sudden collapse against the last good copy.

use std::borrow::Cow;
use std::path::Path;

use crate::format::{ParseReport, Sink, parse_text};

use super::error::FetchError;

/// Only the start of a body is sniffed for HTML: a page announces itself in its first bytes.
const SNIFF_LEN: usize = 1024;

/// Markup that a plain list never contains.
const HTML_MARKERS: &[&str] = &["<!doctype html", "<html", "<head", "<body", "<title"];

/// A new copy with fewer than this percentage of the last good copy's trails is rejected...
pub(crate) const SHRINK_LIMIT_PERCENT: u64 = 10;
/// ...unless this many downloads in a row agree: feeds do shrink for real (a botnet taken
/// down), and a feed must not stay frozen on an old copy forever.
pub(crate) const SHRINK_CONFIRMATIONS: u32 = 3;

/// True if `body` is a web page rather than a list. A list never starts with `<`; a page
/// either starts with its doctype/`<html>` or is labelled `text/html` and carries page
/// markup. `text/html` alone is not enough: PHP-served lists are often labelled so.
pub(crate) fn looks_like_html(content_type: Option<&str>, body: &[u8]) -> bool {
    let head = &body[..body.len().min(SNIFF_LEN)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = head[start..].to_ascii_lowercase();
    let has_markup = HTML_MARKERS
        .iter()
        .any(|m| head.windows(m.len()).any(|w| w == m.as_bytes()));
    let labelled_html = content_type.is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        c.starts_with("text/html") || c.starts_with("application/xhtml")
    });
    has_markup && (head.first() == Some(&b'<') || labelled_html)
}

/// Bytes as text: feeds are ASCII in practice; stray Latin-1 in a comment must not cost the
/// whole feed.
pub(crate) fn decode(body: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(body)
}

/// Parse `text` in the feed's format, counting trails without keeping them.
pub(crate) fn count_trails(
    spec: &crate::format::FormatSpec,
    text: &str,
    file: &Path,
) -> ParseReport {
    let mut report = ParseReport::default();
    let mut ignore = |_| {};
    let mut sink = Sink::new(&mut report, &mut ignore);
    parse_text(spec, text, file, &mut sink);
    report
}

/// What the body of a new download is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Baseline {
    /// Trails in the last good copy, if there is one.
    pub(crate) previous_trails: Option<u64>,
    /// Shrink rejections in a row so far.
    pub(crate) shrink_rejections: u32,
}

/// Check a downloaded body; `Ok(trails)` if it may replace the last good copy.
pub(crate) fn validate(
    spec: &crate::format::FormatSpec,
    body: &[u8],
    content_type: Option<&str>,
    file: &Path,
    baseline: Baseline,
) -> Result<u64, FetchError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(FetchError::Empty);
    }
    if looks_like_html(content_type, body) {
        return Err(FetchError::Html {
            content_type: content_type.map(str::to_string),
        });
    }
    let report = count_trails(spec, &decode(body), file);
    let trails = report.accepted;
    if trails == 0 {
        return Err(FetchError::NoTrails {
            bytes: body.len() as u64,
            format: spec.name(),
            malformed: report.malformed_count,
            first_malformed: report.malformed.first().map(|m| m.to_string()),
        });
    }
    if let Some(previous) = baseline.previous_trails
        && trails * 100 < previous * SHRINK_LIMIT_PERCENT
        && baseline.shrink_rejections + 1 < SHRINK_CONFIRMATIONS
    {
        return Err(FetchError::Shrunk {
            trails,
            previous,
            percent: SHRINK_LIMIT_PERCENT,
            remaining: SHRINK_CONFIRMATIONS - baseline.shrink_rejections - 1,
        });
    }
    Ok(trails)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatSpec;

    const FRESH: Baseline = Baseline {
        previous_trails: None,
        shrink_rejections: 0,
    };

    fn check(body: &str, ct: Option<&str>, baseline: Baseline) -> Result<u64, FetchError> {
        validate(
            &FormatSpec::Ip,
            body.as_bytes(),
            ct,
            Path::new("t.list"),
            baseline,
        )
    }

    #[test]
    fn html_is_sniffed_from_the_bytes() {
        assert!(looks_like_html(None, b"\n  <!DOCTYPE html>\n<html>"));
        assert!(looks_like_html(
            None,
            b"\xEF\xBB\xBF<html><body>1.2.3.4</body>"
        ));
        assert!(looks_like_html(
            Some("text/html; charset=utf-8"),
            b"1.2.3.4\n<title>Error</title>"
        ));
        // a PHP-served list labelled text/html is still a list
        assert!(!looks_like_html(Some("text/html"), b"1.2.3.4\n5.6.7.8\n"));
        assert!(!looks_like_html(
            Some("text/plain"),
            b"# <html> in a comment\n1.2.3.4"
        ));
    }

    #[test]
    fn html_page_with_trail_like_lines_is_rejected() {
        let page = "<!doctype html>\n<html>\n1.2.3.4\n5.6.7.8\n</html>\n";
        assert!(matches!(
            check(page, Some("text/plain"), FRESH),
            Err(FetchError::Html { .. })
        ));
    }

    #[test]
    fn empty_and_comment_only_bodies_are_rejected() {
        assert_eq!(check(" \n\n", None, FRESH), Err(FetchError::Empty));
        assert!(matches!(
            check("# nothing today\n", None, FRESH),
            Err(FetchError::NoTrails { malformed: 0, .. })
        ));
    }

    #[test]
    fn collapse_is_rejected_until_confirmed() {
        let body = "1.2.3.4\n";
        let mut baseline = Baseline {
            previous_trails: Some(235),
            shrink_rejections: 0,
        };
        let err = check(body, None, baseline).unwrap_err();
        assert!(
            err.to_string()
                .contains("only 1 trails where the last good copy has 235")
        );
        baseline.shrink_rejections = SHRINK_CONFIRMATIONS - 1;
        assert_eq!(check(body, None, baseline), Ok(1));
        // 10% exactly is fine
        let ten: String = (0..24).map(|i| format!("10.0.0.{i}\n")).collect();
        let baseline = Baseline {
            previous_trails: Some(235),
            shrink_rejections: 0,
        };
        assert_eq!(check(&ten, None, baseline), Ok(24));
    }
}
