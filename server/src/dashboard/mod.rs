//! The dashboard: a small single-page app (HTML, CSS, JavaScript modules in
//! `server/assets/`) compiled into the binary, so it works on a firewall without internet
//! access. No build step, no third-party code: charts are SVG drawn by `charts.js`.
//!
//! Everything the pages show comes from the JSON API (`docs/API.md`); the pages only
//! draw. Aggregation happens in the server (`/api/v1/summary`), so a busy day is a few
//! kilobytes for the browser, never the day's events. Besides the files, this module adds
//! the one API the dashboard needs that the rest of the server has no use for: the feeds'
//! status ([`feeds`]).

pub mod feeds;

use warp::reply::Response;

/// Content Security Policy of every page: nothing from elsewhere, no inline script or
/// style, no framing. The app needs nothing more.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $ctype:expr) => {
        Asset {
            path: $path,
            content_type: $ctype,
            body: include_bytes!(concat!("../../assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The files under `/assets/`.
const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("charts.js", JS),
    asset!("dom.js", JS),
    asset!("overview.js", JS),
    asset!("events.js", JS),
    asset!("detail.js", JS),
    asset!("triage.js", JS),
    asset!("status.js", JS),
    asset!("blocks.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

const INDEX: &[u8] = include_bytes!("../../assets/index.html");

fn response(content_type: &str, body: &'static [u8]) -> Response {
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    h.insert("content-type", content_type.parse().expect("valid"));
    h.insert("content-security-policy", CSP.parse().expect("valid"));
    h.insert("x-frame-options", "DENY".parse().expect("valid"));
    h.insert("referrer-policy", "no-referrer".parse().expect("valid"));
    r
}

/// The dashboard's answer to `GET path` outside `/api/`: the page itself at `/` (the app
/// routes with `#/...`), a file under `/assets/`, or `None` (not ours: 404).
pub fn page(path: &str) -> Option<Response> {
    match path {
        "" | "/" | "/index.html" => Some(response("text/html; charset=utf-8", INDEX)),
        _ => {
            let name = path.strip_prefix("/assets/")?;
            let a = ASSETS.iter().find(|a| a.path == name)?;
            Some(response(a.content_type, a.body))
        }
    }
}
