//! Spoor's server: sensors send their events here, the dashboard asks here.
//!
//! - [`api`]: the HTTP API (route table in `api/mod.rs`, one file per area)
//! - [`store`]: the SQLite event store (schema, the one writer, queries, triage, users)
//! - [`auth`]: passwords, sessions, login throttling
//! - [`privacy`]: pseudonymisation of local addresses at ingest
//! - [`webhook`]: delivery of new events to webhooks
//! - [`tls`]: the listener's certificate
//! - [`config`]: the `[server]` config section
//! - [`dashboard`]: the web pages (embedded files) and the feeds' status
//! - [`respond`]: the responders (decisions ledger, policy on ingest, expiry, the
//!   in-process backend) when `[respond]` is passed in
//!
//! [`Server::start`] opens the store, makes the first admin if there is none, and serves
//! until [`Server::stop`]. Events flow: `POST /api/v1/events` → checks → (pseudonyms) →
//! writer (one transaction per group of batches) → ack; after the commit the newly stored
//! ones are handed to the responders' policy (losslessly, [`store::Store::follow`]) and
//! broadcast to live streams and webhooks.

pub mod api;
pub mod auth;
pub mod config;
pub mod dashboard;
pub mod metrics;
pub mod privacy;
pub mod respond;
pub mod store;
pub mod tls;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{AppState, ClientAddr};
use crate::auth::throttle::LoginThrottle;
use crate::config::{ServerConfig, TokenSource};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::retention;

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "spoor.db";
/// Name of the admin made on first start.
pub const FIRST_ADMIN: &str = "admin";
/// How often retention runs.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(600);
/// A TLS handshake taking longer than this is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// `who` is "sensor `NAME`" or "agent `NAME`".
    #[error("cannot read the token of {who} from {path}: {source}")]
    TokenFile {
        who: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file of {who} ({path}) is empty")]
    EmptyToken { who: String, path: PathBuf },
    #[error(
        "sensor `{sensor}` and agent `{agent}` have the same token: give the agent a token of its own (a sensor's token must never move firewall blocks)"
    )]
    SharedToken { sensor: String, agent: String },
    #[error(transparent)]
    InProcess(#[from] respond::in_process::InProcessError),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot open the decisions ledger in {path}: {source}")]
    Ledger {
        path: PathBuf,
        source: spoor_responders::LedgerError,
    },
}

/// The database path for a data dir.
pub fn db_path(config: &ServerConfig) -> PathBuf {
    config.data_dir.join(DB_FILE)
}

/// Make the first admin with a random password when there are no users; returns the
/// password (to be shown once; only its hash is stored).
pub fn ensure_admin(store: &Store) -> Result<Option<String>, store::StoreError> {
    let none = store.read_blocking(store::users::count_users)? == 0;
    if !none {
        return Ok(None);
    }
    let pw = auth::password::generate();
    let hash = auth::password::hash(&pw);
    store.write_blocking(move |tx| {
        store::users::upsert_user(
            tx,
            FIRST_ADMIN,
            Some(&hash),
            Some(store::users::Role::Admin),
            None,
        )
    })?;
    Ok(Some(pw))
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// Where it listens (the real port when the config said 0).
    pub local_addr: SocketAddr,
    /// SHA-256 fingerprint of the TLS certificate, when TLS is on.
    pub fingerprint: Option<String>,
    /// The first admin's password, when this start made it.
    pub initial_admin_password: Option<String>,
    store: Store,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// SHA-256 of each token → its owner's name; `what` is "sensor" or "agent".
fn token_hashes(
    what: &str,
    entries: &[config::SensorAuth],
) -> Result<Vec<([u8; 32], String)>, ServerError> {
    let mut out = Vec::new();
    for s in entries {
        let hash = match &s.token {
            TokenSource::Sha256(h) => *h,
            TokenSource::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ServerError::TokenFile {
                        who: format!("{what} `{}`", s.name),
                        path: path.clone(),
                        source,
                    })?;
                let token = text.lines().next().unwrap_or("").trim();
                if token.is_empty() {
                    return Err(ServerError::EmptyToken {
                        who: format!("{what} `{}`", s.name),
                        path: path.clone(),
                    });
                }
                auth::sha256(token.as_bytes())
            }
        };
        out.push((hash, s.name.clone()));
    }
    Ok(out)
}

impl Server {
    /// Open the store and serve. Must run inside a multi-threaded tokio runtime.
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        let store = Store::open(&db_path(&config))?;
        Self::start_with_store(config, store).await
    }

    /// Serve an already open store (`spoor up` shares it with the in-process sensor).
    pub async fn start_with_store(
        config: ServerConfig,
        store: Store,
    ) -> Result<Server, ServerError> {
        let s = store.clone();
        let initial_admin_password = tokio::task::spawn_blocking(move || ensure_admin(&s))
            .await
            .map_err(|e| store::StoreError::Invalid(e.to_string()))??;
        let sensor_tokens = token_hashes("sensor", &config.sensors)?;
        let agent_tokens = token_hashes("agent", &config.agents)?;
        for (h, agent) in &agent_tokens {
            if let Some((_, sensor)) = sensor_tokens.iter().find(|(s, _)| s == h) {
                return Err(ServerError::SharedToken {
                    sensor: sensor.clone(),
                    agent: agent.clone(),
                });
            }
        }
        let tls = tls::load(&config.tls, &config.data_dir, config.listen)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        let metrics = Arc::new(Metrics::default());
        webhook::start(&store, &config.webhooks, Arc::clone(&metrics));
        let responders = match config.respond.clone() {
            Some(rc) => {
                let path = store.path().to_path_buf();
                let facts = respond::ServerFacts {
                    listen: local_addr,
                    pseudonyms: config.privacy.pseudonymise,
                };
                let opened = tokio::task::spawn_blocking(move || {
                    let host = spoor_responders::system::discover();
                    respond::Responders::open(rc, &path, &host, facts)
                        .map_err(|source| ServerError::Ledger { path, source })
                })
                .await
                .map_err(|e| store::StoreError::Invalid(e.to_string()))??;
                Some(Arc::new(opened))
            }
            None => None,
        };
        let state = Arc::new(AppState {
            responders,
            throttle: LoginThrottle::new(config.login_max_failures, config.login_lockout),
            pseudonymiser: privacy::Pseudonymiser::new(&config.privacy),
            secure_cookies: tls.is_some(),
            sensor_tokens,
            agent_tokens,
            metrics: Arc::clone(&metrics),
            store: store.clone(),
            config,
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(retention_loop(Arc::clone(&state), stopped.clone()));
        if let Some(r) = &state.responders {
            respond::tasks::start_policy(r, &store, &metrics).map_err(ServerError::Thread)?;
            tokio::spawn(respond::tasks::expiry_loop(
                Arc::clone(r),
                Arc::clone(&metrics),
                stopped.clone(),
            ));
            if r.config().server_applies {
                respond::in_process::start(r, store.path(), &metrics, stopped.clone()).await?;
            }
            let c = r.config();
            tracing::info!(
                mode = ?c.mode,
                rules = c.rules.len(),
                allowlist = r.allowlist().entries().len(),
                "responders on; decisions applied by {}",
                if c.server_applies {
                    format!("this server ({} backend)", respond::in_process::kind_name(c.backend))
                } else {
                    "a `spoor agent`".to_string()
                }
            );
        }
        let fingerprint = tls.as_ref().map(|t| t.fingerprint.clone());
        let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
        let task = tokio::spawn(accept_loop(listener, acceptor, Arc::clone(&state), stopped));
        Ok(Server {
            local_addr,
            fingerprint,
            initial_admin_password,
            store,
            state,
            stop,
            task,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The responders, when the config passed `[respond]`.
    pub fn responders(&self) -> Option<&Arc<respond::Responders>> {
        self.state.responders.as_ref()
    }

    /// Store events from a sensor in this process (`spoor up`): no token or HTTP, but
    /// the same pseudonymisation, idempotence and broadcast as `POST /api/v1/events`.
    pub async fn ingest_local(
        &self,
        status: spoor_core::SensorStatus,
        events: Vec<spoor_core::Event>,
    ) -> Result<spoor_core::BatchAck, store::StoreError> {
        let key = match &self.state.pseudonymiser {
            Some(p) => Some(p.key(&self.store).await?),
            None => None,
        };
        let rows = api::ingest::rows(events, key.as_ref());
        let ack = self.store.ingest(status, rows).await?;
        metrics::inc(&self.state.metrics.ingest_batches);
        metrics::add(&self.state.metrics.ingest_accepted, ack.accepted);
        metrics::add(&self.state.metrics.ingest_duplicates, ack.duplicates);
        Ok(ack)
    }

    /// Stop accepting, then let the writer finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<AppState>,
    mut stopped: watch::Receiver<bool>,
) {
    let filter = api::filter(state);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(p) => p,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let svc = TowerToHyperService::new(warp::service(filter.clone()));
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    hyper::service::Service::call(&svc, req)
                },
            );
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                None => {
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                        .await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

async fn retention_loop(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    let r = state.config.retention;
    let policy = retention::Policy {
        max_event_age: r.events.as_micros() as i64,
        max_audit_age: r.audit.as_micros() as i64,
        max_size: r.max_size,
    };
    loop {
        loop {
            let step = state
                .store
                .write(move |tx| retention::step(tx, &policy, store::now_micros()))
                .await;
            match step {
                Ok(s) => {
                    metrics::add(&state.metrics.retention_deleted, s.events_deleted as u64);
                    if !s.more {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!("retention failed: {e}");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETENTION_INTERVAL) => {}
            _ = stopped.changed() => return,
        }
    }
}
