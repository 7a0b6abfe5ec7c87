//! Tributary's REST Proxy: Confluent's kafka-rest API over HTTP, for callers
//! that cannot embed a Kafka client. Like Confluent's, it is a Kafka client of
//! the broker (through `tributary-client`), never a reader of broker
//! internals, so it runs next to any Kafka-compatible cluster.
//!
//! ```text
//! HTTP ──▶ api.rs ──▶ v3/ (under /v3/... and /kafka/v3/..., Confluent Cloud's
//!            │          prefix; one module per resource family; the cluster id
//!            │          checked against Metadata)
//!            │            ├─ admin ──▶ kafka.rs: one shared client, reconnected
//!            │            │            after a connection failure
//!            │            └─ records ─▶ schemas.rs (AVRO via the registry)
//!            │                          ──▶ producer.rs (batched, acks=all)
//!            └──────▶ v2/ (at the root): produce ──▶ producer.rs;
//!                       consumer instances ──▶ consumer.rs (own clients)
//! errors ──▶ error.rs: {"error_code", "message"} with kafka-rest's codes
//! bodies ──▶ body.rs: read as kafka-rest's JSON mapper reads them (unknown
//!            fields 422, Jackson's coercions); instant.rs: its times
//! ```
//!
//! Served: v3 clusters; topics (list, describe, create with configs, delete,
//! grow); topic, broker and cluster-wide broker configs (DescribeConfigs,
//! IncrementalAlterConfigs); partitions and replicas; brokers; consumer
//! groups with members, assignments and lag (read-only); records (produce,
//! streamed, BINARY/JSON/STRING/AVRO through the schema registry). v2:
//! produce (binary, json, avro) and consumer instances (`consumer.rs`).
//!
//! The HTTP connections are served by `tributary-http`, with its timeouts and
//! connection cap ([`RestProxyConfig::http`]).

pub mod api;
pub mod body;
pub mod consumer;
pub mod error;
pub mod fuzzing;
pub mod instant;
pub mod kafka;
pub mod producer;
pub mod schemas;
mod v2;
mod v3;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tributary_client::ClientConfig;

pub use error::RestError;

/// The settings of one REST Proxy.
#[derive(Debug, Clone)]
pub struct RestProxyConfig {
    /// Host to listen on.
    pub listen_host: String,
    /// Port to listen on (0 = any free port).
    pub listen_port: u16,
    /// Kafka bootstrap addresses.
    pub bootstrap: String,
    /// Longest wait for one Kafka operation.
    pub timeout: Duration,
    /// The schema registry for AVRO keys and values (`http://host:port`), if any.
    pub schema_registry_url: Option<String>,
    /// `consumer.instance.timeout.ms`: a v2 consumer instance idle this long is closed.
    pub consumer_instance_timeout: Duration,
    /// The HTTP server's timeouts and connection cap.
    pub http: tributary_http::Limits,
}

impl RestProxyConfig {
    /// Defaults (port 8082 on every interface) for the cluster at `bootstrap`.
    pub fn new(bootstrap: &str) -> RestProxyConfig {
        RestProxyConfig {
            listen_host: "0.0.0.0".to_string(),
            listen_port: 8082,
            bootstrap: bootstrap.to_string(),
            timeout: Duration::from_secs(30),
            schema_registry_url: None,
            consumer_instance_timeout: Duration::from_secs(300),
            http: tributary_http::Limits::default(),
        }
    }
}

/// Beyond `shutdown.graceful.ms`, how long stopping the HTTP server may take.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(3);

/// The HTTP port could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address.
    pub addr: String,
    /// The cause.
    pub source: std::io::Error,
}

/// Binds the HTTP listener: done first, so a busy port is reported before anything else starts.
pub async fn bind(config: &RestProxyConfig) -> Result<TcpListener, BindError> {
    let addr = if config.listen_host.contains(':') {
        format!("[{}]:{}", config.listen_host, config.listen_port)
    } else {
        format!("{}:{}", config.listen_host, config.listen_port)
    };
    TcpListener::bind(&addr).await.map_err(|source| BindError { addr, source })
}

/// Why the proxy did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listener's address could not be read.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A setting cannot be used.
    #[error("{0}")]
    Config(String),
}

/// A running REST Proxy.
#[derive(Debug)]
pub struct RestProxy {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    /// How long stopping the HTTP server may take: its grace period and a margin.
    shutdown_wait: Duration,
    consumers: std::sync::Arc<consumer::Instances>,
    maintenance: JoinHandle<()>,
}

impl RestProxy {
    /// Serves the API on `listener`. The cluster is first contacted by the first request.
    pub fn start(config: RestProxyConfig, listener: TcpListener) -> Result<RestProxy, StartError> {
        let addr = listener
            .local_addr()
            .map_err(|source| BindError { addr: format!("{}:{}", config.listen_host, config.listen_port), source })?;
        let mut client = ClientConfig::new(&config.bootstrap);
        client.timeout = config.timeout;
        client.client_id = "rest-proxy".to_string();
        let schemas = match &config.schema_registry_url {
            Some(url) => Some(
                schemas::Schemas::new(url, config.timeout)
                    .map_err(|e| StartError::Config(format!("schema registry URL: {e}")))?,
            ),
            None => None,
        };
        let kafka = kafka::Kafka::new(client, schemas);
        let consumers = kafka.consumers.clone();
        let maintenance = tokio::spawn(consumers.clone().maintain(config.consumer_instance_timeout));
        let app = api::router(kafka);
        let (shutdown, mut stop) = watch::channel(false);
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let server = tokio::spawn(tributary_http::serve(listener, app, stopped, config.http, "rest-proxy"));
        let shutdown_wait = config.http.shutdown_grace + SHUTDOWN_MARGIN;
        tracing::info!(
            listen = %addr,
            bootstrap = %config.bootstrap,
            schema_registry = config.schema_registry_url.as_deref().unwrap_or("none"),
            "REST proxy listening on http://{addr}"
        );
        Ok(RestProxy { addr, shutdown, server, shutdown_wait, consumers, maintenance })
    }

    /// The address the HTTP API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving; v2 consumer instances leave their groups.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        self.maintenance.abort();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.consumers.close_all()).await;
        let server = self.server;
        let abort = server.abort_handle();
        if tokio::time::timeout(self.shutdown_wait, server).await.is_err() {
            abort.abort();
        }
    }
}
