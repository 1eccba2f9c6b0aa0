//! Sessions: a random token in an HttpOnly, SameSite=Strict cookie (Secure when the
//! server speaks TLS); the database keeps only its SHA-256. Each session has its own CSRF
//! token, which every state-changing request must echo in the `X-CSRF-Token` header.

use http_cookie::{cookie_value, set_cookie};

pub const COOKIE: &str = "spoor_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

mod http_cookie {
    /// The value of cookie `name` in a `Cookie` header.
    pub(crate) fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
        header.split(';').find_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    }

    pub(crate) fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> String {
        format!(
            "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
            if secure { "; Secure" } else { "" }
        )
    }
}

/// The session token in a `Cookie` header.
pub fn token_from_cookie(header: &str) -> Option<&str> {
    cookie_value(header, COOKIE).filter(|v| v.len() == 64)
}

pub fn cookie(token: &str, lifetime: std::time::Duration, secure: bool) -> String {
    set_cookie(COOKIE, token, lifetime.as_secs(), secure)
}

pub fn clear_cookie(secure: bool) -> String {
    set_cookie(COOKIE, "", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let t = "a".repeat(64);
        let h = format!("theme=dark; {COOKIE}={t}; x=y");
        assert_eq!(token_from_cookie(&h), Some(t.as_str()));
        assert_eq!(token_from_cookie("spoor_session=short"), None);
        let c = cookie(&t, std::time::Duration::from_secs(60), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!cookie(&t, std::time::Duration::from_secs(60), false).contains("Secure"));
    }
}
