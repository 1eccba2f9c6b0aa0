//! One HTTP GET: conditional headers out, a capped body in.
//!
//! The body is streamed and the download stops as soon as it passes `max_size`, so a
//! runaway or hostile server costs at most `max_size` of memory. The whole exchange runs
//! under one deadline (`timeout`), including a server that trickles bytes.

use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_TYPE, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use spoor_core::{ByteSize, Duration};

use super::error::{FetchError, error_chain};

/// Validators of the copy we already have.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Conditional<'a> {
    pub(crate) etag: Option<&'a str>,
    pub(crate) last_modified: Option<&'a str>,
}

/// What the server gave us.
#[derive(Debug)]
pub(crate) enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        content_type: Option<String>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    conditional: Conditional<'_>,
    max_size: ByteSize,
    timeout: Duration,
) -> Result<Fetched, FetchError> {
    match tokio::time::timeout(
        timeout.as_std(),
        get_inner(client, url, conditional, max_size, timeout),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout { after: timeout }),
    }
}

async fn get_inner(
    client: &reqwest::Client,
    url: &str,
    conditional: Conditional<'_>,
    max_size: ByteSize,
    timeout: Duration,
) -> Result<Fetched, FetchError> {
    let mut request = client.get(url).timeout(timeout.as_std());
    if let Some(etag) = conditional.etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    if let Some(date) = conditional.last_modified {
        request = request.header(IF_MODIFIED_SINCE, date);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| request_error(&e, timeout))?;

    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(FetchError::Http {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_string(),
        });
    }

    let headers = response.headers();
    let content_type = header(headers, CONTENT_TYPE);
    let etag = header(headers, ETAG);
    let last_modified = header(headers, LAST_MODIFIED);
    let announced = response.content_length();
    if announced.is_some_and(|n| n > max_size.0) {
        return Err(FetchError::Oversize {
            limit: max_size,
            announced,
        });
    }

    // Pre-size for what the server announced (already known to be under the cap).
    let mut bytes = Vec::with_capacity(announced.unwrap_or(0) as usize);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() as u64 + chunk.len() as u64 > max_size.0 {
                    return Err(FetchError::Oversize {
                        limit: max_size,
                        announced,
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(FetchError::Timeout { after: timeout }),
            Err(e) => {
                return Err(FetchError::Truncated {
                    received: bytes.len() as u64,
                    expected: announced,
                    detail: error_chain(&e),
                });
            }
        }
    }
    // Belt and braces: a client that did not notice a short body.
    if let Some(expected) = announced
        && (bytes.len() as u64) < expected
    {
        return Err(FetchError::Truncated {
            received: bytes.len() as u64,
            expected: Some(expected),
            detail: "body shorter than Content-Length".into(),
        });
    }
    Ok(Fetched::Body {
        bytes,
        content_type,
        etag,
        last_modified,
    })
}

fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn request_error(e: &reqwest::Error, timeout: Duration) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout { after: timeout }
    } else if e.is_connect() {
        FetchError::Connect {
            detail: error_chain(e),
        }
    } else {
        FetchError::Request {
            detail: error_chain(e),
        }
    }
}
