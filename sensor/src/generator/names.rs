//! Realistic-looking host names, URL paths and user agents for benign traffic.
//!
//! Names are built from syllables so that a large capture holds many distinct names (a trail
//! lookup that only ever sees ten names would be flattered by caches), while a small pool of
//! "popular" names repeats the way real traffic does.

use super::rng::Rng;

const SYLLABLES: &[&str] = &[
    "ka", "lo", "tex", "mar", "vin", "so", "ra", "bel", "cor", "da", "fin", "gal", "hub", "io",
    "jet", "kin", "lum", "mo", "net", "ox", "pix", "quo", "ri", "sun", "tri", "ul", "ve", "wex",
    "yo", "zen", "nova", "cloud", "data", "shop", "news", "play", "byte", "star", "blue", "red",
];

/// Common top-level domains, the frequent ones listed more than once.
const TLDS: &[&str] = &[
    "com", "com", "com", "com", "net", "net", "org", "io", "de", "co.uk", "fr", "ru", "cn", "info",
    "xyz", "app", "dev", "nl", "br", "jp",
];

const SUBDOMAINS: &[&str] = &[
    "www", "www", "api", "cdn", "static", "img", "mail", "login", "app", "assets", "m", "edge",
];

const PATH_DIRS: &[&str] = &[
    "api",
    "v1",
    "v2",
    "static",
    "assets",
    "images",
    "img",
    "js",
    "css",
    "news",
    "products",
    "user",
    "search",
    "blog",
    "media",
    "download",
    "wp-content",
    "uploads",
];

const PATH_FILES: &[&str] = &[
    "index.html",
    "app.js",
    "main.css",
    "logo.png",
    "favicon.ico",
    "style.css",
    "photo.jpg",
    "items",
    "status",
    "feed.xml",
    "update.json",
    "bundle.min.js",
];

pub(crate) const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Microsoft-CryptoAPI/10.0",
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "Debian APT-HTTP/1.3 (2.6.1)",
    "Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.50",
];

/// A registrable name such as `kalotex.com` (one to three syllables and a TLD).
pub(crate) fn base_domain(rng: &mut Rng, out: &mut String) {
    out.clear();
    for _ in 0..rng.range(1, 3) {
        out.push_str(rng.pick(SYLLABLES));
    }
    if rng.chance(0.1) {
        out.push_str(&rng.below(100).to_string());
    }
    out.push('.');
    out.push_str(rng.pick(TLDS));
}

/// A host name: a base domain with zero to two subdomain labels in front.
pub(crate) fn host_name(rng: &mut Rng) -> String {
    let mut base = String::new();
    base_domain(rng, &mut base);
    let mut name = String::with_capacity(base.len() + 16);
    match rng.below(10) {
        0..=2 => {}
        3..=8 => {
            name.push_str(rng.pick(SUBDOMAINS));
            name.push('.');
        }
        _ => {
            name.push_str(rng.pick(SUBDOMAINS));
            name.push('-');
            name.push_str(&rng.below(20).to_string());
            name.push('.');
            name.push_str(rng.pick(SYLLABLES));
            name.push('.');
        }
    }
    name.push_str(&base);
    name
}

/// A URL path (with a query string now and then), always starting with `/`.
pub(crate) fn url_path(rng: &mut Rng) -> String {
    let mut path = String::with_capacity(48);
    if rng.chance(0.15) {
        path.push('/');
        return path;
    }
    for _ in 0..rng.range(0, 3) {
        path.push('/');
        path.push_str(rng.pick(PATH_DIRS));
    }
    path.push('/');
    path.push_str(rng.pick(PATH_FILES));
    if rng.chance(0.25) {
        path.push_str("?id=");
        path.push_str(&rng.below(100_000).to_string());
        if rng.chance(0.3) {
            path.push_str("&lang=en");
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_look_like_domains() {
        let mut rng = Rng::new(3);
        for _ in 0..500 {
            let name = host_name(&mut rng);
            assert!(name.contains('.') && name.len() < 64, "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b)),
                "{name}"
            );
            assert!(name.split('.').all(|label| !label.is_empty()));
            let path = url_path(&mut rng);
            assert!(path.starts_with('/') && !path.contains(' '));
        }
    }
}
