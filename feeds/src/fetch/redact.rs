//! Keeping credentials out of what is printed and logged.
//!
//! Some providers put an API key in the feed URL (`https://user:key@host/...`,
//! `...?auth-key=...`), and reqwest's error messages repeat the URL. Anything shown to an
//! admin or written to a log goes through [`redact_urls`] first: user info and query strings
//! are replaced by `***`, the host and path (what identifies the feed) stay.

/// Shown in place of a removed credential.
const REDACTED: &str = "***";

/// `url` without user info and query: `https://***@host/path?***`.
pub fn redact_url(url: &str) -> String {
    redact_urls(url)
}

/// `text` with every `http://` and `https://` URL in it redacted like [`redact_url`].
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_scheme(rest) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let scheme_len = from.find("://").map_or(0, |i| i + 3);
        let end = from[scheme_len..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ','))
            .map_or(from.len(), |i| scheme_len + i);
        out.push_str(&from[..scheme_len]);
        out.push_str(&redact_after_scheme(&from[scheme_len..end]));
        rest = &from[end..];
    }
    out.push_str(rest);
    out
}

/// Byte offset of the next `http://` or `https://` (any case).
fn find_scheme(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("http://"), lower.find("https://")]
        .into_iter()
        .flatten()
        .min()
}

/// `user:key@host/path?query#frag` → `***@host/path?***`.
fn redact_after_scheme(rest: &str) -> String {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = String::with_capacity(rest.len());
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(REDACTED);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            out.push_str(REDACTED);
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_removed_host_and_path_kept() {
        assert_eq!(
            redact_url("https://feodotracker.abuse.ch/downloads/ipblocklist.txt"),
            "https://feodotracker.abuse.ch/downloads/ipblocklist.txt"
        );
        assert_eq!(
            redact_url("https://user:s3cret@lists.example/a.txt?auth-key=abc&x=1"),
            "https://***@lists.example/a.txt?***"
        );
        assert_eq!(
            redact_urls(
                "error sending request for url (HTTP://h.example:8080/x?key=k): refused; \
                 see https://a@b.example"
            ),
            "error sending request for url (HTTP://h.example:8080/x?***): refused; \
             see https://***@b.example"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
    }
}
