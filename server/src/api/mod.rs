//! The HTTP API. One warp filter hands every request (method, path, query, headers,
//! body read up to `max_body`, client address) to [`route`], whose `match` is the route
//! table; each area has its file. Errors are JSON `{"error": CODE, "message": TEXT}` with
//! a precise status ([`ApiError`]). docs/API.md documents every endpoint.

pub mod agent;
pub mod events;
pub mod ingest;
pub mod live;
pub mod ops;
pub mod query;
pub mod session;
pub mod summary;
pub mod triage;
pub mod users;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures_util::StreamExt;
use ipnet::IpNet;
use serde::Serialize;
use warp::Filter;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::{Reply, Response};

use crate::auth::throttle::LoginThrottle;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::privacy::Pseudonymiser;
use crate::store::{Store, StoreError};

/// Everything a request handler may need.
#[derive(Debug)]
pub struct AppState {
    pub config: ServerConfig,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// SHA-256 of each sensor token → the sensor's name.
    pub sensor_tokens: Vec<([u8; 32], String)>,
    /// SHA-256 of each agent token → the agent's name.
    pub agent_tokens: Vec<([u8; 32], String)>,
    pub throttle: LoginThrottle,
    pub pseudonymiser: Option<Pseudonymiser>,
    /// Cookies get `Secure` when the listener speaks TLS.
    pub secure_cookies: bool,
    /// The responders, when the server was given `[respond]`.
    pub responders: Option<Arc<crate::respond::Responders>>,
}

/// The client's address, put into each request by the listener.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// One request, read whole.
#[derive(Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub client: Option<IpAddr>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn params(&self) -> Result<Vec<(String, String)>, ApiError> {
        query::parse(&self.query)
    }
    /// The body as JSON of type `T`, or a precise 400/422.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(json_error)
    }
}

/// A serde_json error as the right 4xx: 400 for bytes that are not JSON, 422 for JSON of
/// the wrong shape (unknown fields, wrong types, out-of-range numbers).
pub fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the JSON does not fit: {e}"),
        ),
        _ => ApiError::bad_request("malformed_json", format!("the body is not JSON: {e}")),
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra headers (e.g. `WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }
    pub fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        let mut r = warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        for (k, v) in self.headers {
            if let Ok(v) = v.parse() {
                r.headers_mut().insert(k, v);
            }
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m),
            StoreError::NotFound(m) => ApiError::not_found(format!("{m} not found")),
            other => {
                tracing::error!("{other}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_failed",
                    format!("the event store failed: {other}"),
                )
            }
        }
    }
}

pub type Answer = Result<Response, ApiError>;

pub fn json<T: Serialize>(v: &T) -> Answer {
    Ok(warp::reply::json(v).into_response())
}

pub fn json_status<T: Serialize>(v: &T, status: StatusCode) -> Answer {
    Ok(warp::reply::with_status(warp::reply::json(v), status).into_response())
}

/// `addr` is in one of `nets`.
pub fn allowed(addr: Option<IpAddr>, nets: &[IpNet]) -> bool {
    addr.is_some_and(|a| {
        let a = match a {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a),
            v4 => v4,
        };
        nets.iter().any(|n| n.contains(&a))
    })
}

/// The route table.
async fn route(state: &Arc<AppState>, req: Req) -> Answer {
    let path = req.path.trim_end_matches('/').to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let m = req.method.clone();
    let api = segs.first() == Some(&"api") && segs.get(1) == Some(&"v1");
    let rest: &[&str] = if api { &segs[2..] } else { &[] };
    match (api, m, rest, segs.as_slice()) {
        (false, Method::GET, _, ["metrics"]) => ops::metrics(state, &req).await,
        (false, Method::GET, _, ["fail2ban"]) => ops::fail2ban(state, &req).await,
        (true, Method::GET, ["health"], _) => json(&serde_json::json!({"status": "ok"})),
        (true, Method::POST, ["events"], _) => ingest::post(state, req).await,
        (true, Method::GET, ["events"], _) => events::search(state, &req).await,
        (true, Method::GET, ["events", "export"], _) => events::export(state, &req).await,
        (true, Method::GET, ["events", id], _) => events::detail(state, &req, id).await,
        (true, Method::POST, ["events", id, "triage"], _) => events::triage(state, &req, id).await,
        (true, Method::GET, ["summary"], _) => summary::get(state, &req).await,
        (true, Method::POST, ["login"], _) => session::login(state, &req).await,
        (true, Method::POST, ["logout"], _) => session::logout(state, &req).await,
        (true, Method::GET, ["session"], _) => session::get(state, &req).await,
        (true, Method::GET, ["suppressions"], _) => triage::list_suppressions(state, &req).await,
        (true, Method::POST, ["suppressions"], _) => triage::add_suppression(state, &req).await,
        (true, Method::DELETE, ["suppressions", id], _) => {
            triage::delete_suppression(state, &req, id).await
        }
        (true, Method::GET, ["hidden-trails"], _) => triage::list_hidden(state, &req).await,
        (true, Method::POST, ["hidden-trails"], _) => triage::hide(state, &req).await,
        (true, Method::DELETE, ["hidden-trails"], _) => triage::unhide(state, &req).await,
        (true, Method::GET, ["sensors"], _) => ops::sensors(state, &req).await,
        (true, Method::GET, ["live"], _) => live::stream(state, &req).await,
        (true, Method::GET, ["users"], _) => users::list(state, &req).await,
        (true, Method::POST, ["users"], _) => users::create(state, &req).await,
        (true, Method::PUT, ["users", name], _) => users::update(state, &req, name).await,
        (true, Method::DELETE, ["users", name], _) => users::delete(state, &req, name).await,
        (true, Method::GET, ["audit"], _) => users::audit(state, &req).await,
        (true, Method::GET, ["agent", "decisions"], _) => agent::decisions(state, &req).await,
        (true, Method::POST, ["agent", "report"], _) => agent::report(state, &req).await,
        (true, Method::GET, ["feeds"], _) => crate::dashboard::feeds::list(state, &req).await,
        (false, Method::GET, _, _) => crate::dashboard::page(&req.path)
            .ok_or_else(|| ApiError::not_found(format!("no page {}", req.path))),
        _ => Err(ApiError::not_found(format!(
            "no endpoint {} {}",
            req.method, req.path
        ))),
    }
}

/// Read the body up to `limit` bytes; past it, 413.
async fn read_body<S, B>(stream: S, limit: u64) -> Result<Vec<u8>, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    let mut body = Vec::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| {
            ApiError::bad_request("bad_body", format!("cannot read the request body: {e}"))
        })?;
        if body.len() as u64 + chunk.remaining() as u64 > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than max_body ({limit} bytes)"),
            ));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(body)
}

/// The whole API as one warp filter.
pub fn filter(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<ClientAddr>())
        .and(warp::body::stream())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: HeaderMap,
                  client: Option<ClientAddr>,
                  body| {
                let state = Arc::clone(&state);
                async move {
                    let body = match read_body(body, state.config.max_body).await {
                        Ok(b) => b,
                        Err(e) => {
                            if path.as_str() == "/api/v1/events" {
                                crate::metrics::inc(&state.metrics.ingest_rejected_too_large);
                            }
                            return e.into_response();
                        }
                    };
                    let req = Req {
                        method,
                        path: path.as_str().to_string(),
                        query,
                        headers,
                        body,
                        client: client.map(|c| c.0.ip()),
                    };
                    let mut response = route(&state, req)
                        .await
                        .unwrap_or_else(ApiError::into_response);
                    let h = response.headers_mut();
                    h.insert("x-content-type-options", "nosniff".parse().expect("valid"));
                    h.insert("cache-control", "no-store".parse().expect("valid"));
                    response
                }
            },
        )
        .recover(|_| async { Ok::<_, Infallible>(StatusCode::NOT_FOUND.into_response()) })
        .unify()
}

/// Pairs of a query string as a map of lists (keys may repeat).
pub fn multimap(pairs: Vec<(String, String)>) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        m.entry(k).or_default().push(v);
    }
    m
}
