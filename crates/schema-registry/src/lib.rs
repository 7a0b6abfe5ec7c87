//! A Confluent-compatible Schema Registry: the REST API Confluent's
//! serializers, tools and UIs call, over a store kept in a Kafka topic.
//! It talks to the broker only through the Kafka protocol, so it runs inside
//! `tributary start` or on its own against any Kafka-compatible cluster.
//!
//! ```text
//!  HTTP :8081 ──▶ api.rs (axum) ── reads ──▶ registry.rs ──▶ index.rs (in memory)
//!                   │                              ▲
//!                   │ writes: this instance writes? │ reader task tails _schemas (store.rs)
//!                   │   yes ─▶ registry.rs ─▶ store.rs: Produce acks=all ─▶ wait until read back
//!                   │   no  ─▶ forward.rs ─▶ the writer's HTTP API
//!                   ▼
//!              election.rs: Kafka group `schema-registry`, one eligible member writes
//! ```
//!
//! Modules: [`format`] (the `_schemas` record format), [`index`] (what the
//! reader builds), [`store`] (topic, reader, writes), [`election`],
//! [`registry`] (the operations), [`api`] (HTTP), [`forward`], [`error`],
//! [`config`]. Schema parsing, canonical forms and compatibility rules live
//! in the `tributary-schema` crate. The HTTP connections are served by
//! `tributary-http`, with its timeouts and connection cap
//! ([`RegistryConfig::http`]).

pub mod api;
pub mod config;
pub mod election;
pub mod error;
pub mod fields;
pub mod format;
pub mod forward;
pub mod fuzzing;
pub mod index;
pub mod registry;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tributary_client::{Client, ClientConfig};
use tributary_schema::ParseOptions;

pub use config::RegistryConfig;
pub use error::ApiError;

use crate::api::AppState;
use crate::election::{ElectionConfig, Identity, Leadership};
use crate::registry::{Registry, RegistrySettings};
use crate::store::{Store, StoreConfig, StoreError};

/// Beyond `shutdown.graceful.ms`, how long stopping the HTTP server may take.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(3);

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP port is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A running registry instance.
#[derive(Debug)]
pub struct SchemaRegistry {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    /// How long stopping the HTTP server may take: its grace period and a margin.
    shutdown_wait: Duration,
    election: JoinHandle<()>,
    leadership: watch::Receiver<Leadership>,
}

/// Binds the HTTP listener: done first, so a busy port is reported before anything else starts.
pub async fn bind(config: &RegistryConfig) -> Result<TcpListener, StartError> {
    let addr = if config.listen_host.contains(':') {
        format!("[{}]:{}", config.listen_host, config.listen_port)
    } else {
        format!("{}:{}", config.listen_host, config.listen_port)
    };
    TcpListener::bind(&addr).await.map_err(|source| StartError::Bind { addr, source })
}

impl SchemaRegistry {
    /// Opens the store (creating `_schemas` if needed and reading it to the
    /// end), joins the election group and serves HTTP on `listener`.
    pub async fn start(config: RegistryConfig, listener: TcpListener) -> Result<SchemaRegistry, StartError> {
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: format!("{}:{}", config.listen_host, config.listen_port),
            source,
        })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let store_config = StoreConfig {
            bootstrap: config.bootstrap.clone(),
            topic: config.topic.clone(),
            replication_factor: config.replication_factor,
            timeout: config.timeout,
        };
        let store = Store::open(store_config, shutdown_rx.clone()).await?;
        let kafka_cluster_id = cluster_id(&config).await.unwrap_or_default();
        let registry = Arc::new(Registry::new(
            store,
            RegistrySettings { default_compatibility: config.compatibility, parse_limits: ParseOptions::default() },
        ));
        let (leadership_tx, leadership) = watch::channel(Leadership::default());
        let election_config = ElectionConfig {
            bootstrap: config.bootstrap.clone(),
            group_id: config.group_id.clone(),
            identity: Identity {
                version: 1,
                host: config.advertised_host(),
                port: addr.port(),
                leader_eligibility: config.leader_eligibility,
                scheme: "http".to_string(),
                leader: false,
            },
            session_timeout: Duration::from_secs(10),
            timeout: config.timeout,
        };
        let election = tokio::spawn(election::run(election_config, leadership_tx, shutdown_rx.clone()));
        let state = AppState {
            registry,
            leadership: leadership.clone(),
            kafka_cluster_id,
            group_id: config.group_id.clone(),
            forward_timeout: config.timeout + Duration::from_secs(20),
        };
        let app = api::router(state, config.body_limit);
        let mut stop = shutdown_rx;
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let server = tokio::spawn(tributary_http::serve(listener, app, stopped, config.http, "schema-registry"));
        let shutdown_wait = config.http.shutdown_grace + SHUTDOWN_MARGIN;
        tracing::info!(
            listen = %addr,
            store = %config.topic,
            group = %config.group_id,
            "schema registry listening on http://{addr}"
        );
        Ok(SchemaRegistry { addr, shutdown, server, shutdown_wait, election, leadership })
    }

    /// The address the HTTP API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Who writes, as this instance knows it now.
    pub fn leadership(&self) -> Leadership {
        self.leadership.borrow().clone()
    }

    /// Stops serving, leaves the election group and stops the reader.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        let server = self.server;
        let abort = server.abort_handle();
        if tokio::time::timeout(self.shutdown_wait, server).await.is_err() {
            abort.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.election).await;
    }
}

async fn cluster_id(config: &RegistryConfig) -> Option<String> {
    let mut c = ClientConfig::new(&config.bootstrap);
    c.timeout = config.timeout;
    c.client_id = "schema-registry".to_string();
    let mut client = Client::connect(c).await.ok()?;
    client.metadata(Some(&[])).await.ok()?.cluster_id
}
