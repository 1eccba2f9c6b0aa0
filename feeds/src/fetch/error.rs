//! Why a feed download was not accepted. Each message says what happened and, where the
//! admin can do something about it, what.

use std::path::PathBuf;

use spoor_core::{ByteSize, Duration};

/// One feed's download failed or its body was rejected; the last good copy stays in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with a non-success status.
    #[error("HTTP {status} {reason}")]
    Http { status: u16, reason: String },
    /// The whole request (connect, headers and body) took longer than `[feeds] timeout`.
    #[error("timed out after {after} (raise [feeds] timeout if the provider is slow)")]
    Timeout { after: Duration },
    /// No connection could be made (DNS, refused, TLS...).
    #[error("cannot connect ({detail})")]
    Connect { detail: String },
    /// The connection ended before the announced body was complete.
    #[error("truncated download: connection closed after {received} of {} bytes ({detail})",
        expected.map_or_else(|| "the announced".to_string(), |n| n.to_string()))]
    Truncated {
        received: u64,
        expected: Option<u64>,
        detail: String,
    },
    /// The body is larger than `[feeds] max_size`; the download was stopped at the cap.
    #[error("body is larger than [feeds] max_size = {limit}{} (raise max_size if this feed \
             really is that large)",
        announced.map_or_else(String::new, |n| format!(" (Content-Length {n})")))]
    Oversize {
        limit: ByteSize,
        announced: Option<u64>,
    },
    /// The body is a web page (an error, login or parking page), not a list.
    #[error("got an HTML page instead of a list{}",
        content_type.as_ref().map_or_else(String::new, |c| format!(" (Content-Type {c})")))]
    Html { content_type: Option<String> },
    /// The server sent nothing.
    #[error("empty body")]
    Empty,
    /// Nothing in the body parsed as a trail in the feed's format.
    #[error("no trails in {bytes} bytes read as format `{format}` ({malformed} malformed lines{})",
        first_malformed.as_ref().map_or_else(String::new, |m| format!(", first: {m}")))]
    NoTrails {
        bytes: u64,
        format: &'static str,
        malformed: u64,
        first_malformed: Option<String>,
    },
    /// Far fewer trails than the last good copy: more likely a broken export than a real
    /// clean-up. Accepted once several downloads in a row agree.
    #[error(
        "only {trails} trails where the last good copy has {previous} (under {percent}%); \
             accepted if the next {remaining} download(s) agree"
    )]
    Shrunk {
        trails: u64,
        previous: u64,
        percent: u64,
        remaining: u32,
    },
    /// The server said 304 Not Modified although no copy was asked about.
    #[error("HTTP 304 Not Modified to an unconditional request, and there is no local copy")]
    UnexpectedNotModified,
    /// The new copy could not be written.
    #[error("cannot write {}: {detail}", path.display())]
    Write { path: PathBuf, detail: String },
    /// Any other request failure (bad URL, redirect loop, HTTP protocol error...).
    #[error("request failed ({detail})")]
    Request { detail: String },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot set up the HTTP client ({detail})")]
    Client { detail: String },
    /// The download task died; a bug.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

/// `error: cause: cause...`: reqwest's own message alone says little ("error sending request").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
