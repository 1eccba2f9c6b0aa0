//! Shared by the integration tests: a server on a free loopback port in a temp dir, a
//! signed-in client, and event builders.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
use std::path::Path;

use spoor_core::{
    Context, Event, EventBatch, EventId, EventKind, Micros, Proto, SensorStatus, Severity,
};
use spoor_server::Server;
use spoor_server::config::{SensorAuth, ServerConfig, TokenSource};

pub const TOKEN: &str = "sensor-one-token-0123456789";
pub const TOKEN2: &str = "sensor-two-token-0123456789";
/// 2026-01-01T00:00:00Z in µs.
pub const DAY0: i64 = 1_767_225_600_000_000;

pub fn config(dir: &Path) -> ServerConfig {
    let mut c = ServerConfig::with_data_dir(dir);
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.retention.events = std::time::Duration::from_secs(100 * 365 * 86_400);
    c.sensors = vec![
        SensorAuth {
            name: "s1".into(),
            token: TokenSource::Sha256(spoor_server::auth::sha256(TOKEN.as_bytes())),
        },
        SensorAuth {
            name: "s2".into(),
            token: TokenSource::Sha256(spoor_server::auth::sha256(TOKEN2.as_bytes())),
        },
    ];
    c
}

pub struct Running {
    pub server: Server,
    pub base: String,
    pub admin_password: String,
    pub http: reqwest::Client,
    pub _dir: tempfile::TempDir,
}

pub async fn start_with(f: impl FnOnce(&mut ServerConfig)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    f(&mut c);
    let server = Server::start(c).await.unwrap();
    let base = format!("http://{}", server.local_addr);
    let admin_password = server.initial_admin_password.clone().unwrap();
    Running {
        server,
        base,
        admin_password,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

pub async fn start() -> Running {
    start_with(|_| {}).await
}

pub fn event(
    n: u128,
    sensor: &str,
    src: &str,
    dst: &str,
    trail: &str,
    sev: Severity,
    time: i64,
) -> Event {
    Event {
        id: EventId(n),
        time: Micros(time),
        sensor: sensor.into(),
        src: src.parse::<IpAddr>().unwrap(),
        src_port: Some(40000),
        dst: dst.parse::<IpAddr>().unwrap(),
        dst_port: Some(443),
        proto: Proto::TCP,
        kind: EventKind::Ip,
        trail: trail.into(),
        info: "test (malware)".into(),
        reference: "(test)".into(),
        severity: sev,
        offender: Some(dst.parse().unwrap()),
        answers: vec![],
        count: 1,
        first_seen: Micros(time),
        last_seen: Micros(time),
        context: Context::default(),
    }
}

pub fn batch(sensor: &str, events: Vec<Event>) -> EventBatch {
    EventBatch {
        status: SensorStatus {
            name: sensor.into(),
            version: "0.1.0".into(),
            uptime_secs: 10,
            packets: 1000,
            drops: 1,
            trails_age_secs: Some(60),
            spool_dropped: 0,
        },
        events,
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn ingest(&self, token: &str, body: &EventBatch) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/events"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, user: &str, password: &str) -> Session {
        let r = self
            .http
            .post(self.url("/api/v1/login"))
            .json(&serde_json::json!({"user": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login as {user}");
        let cookie = r
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let body: serde_json::Value = r.json().await.unwrap();
        Session {
            cookie,
            csrf: body["csrf"].as_str().unwrap().to_string(),
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    pub async fn admin(&self) -> Session {
        self.login("admin", &self.admin_password).await
    }
}

/// A signed-in dashboard client.
#[derive(Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub base: String,
    pub http: reqwest::Client,
}

impl Session {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, body).await
    }
}
