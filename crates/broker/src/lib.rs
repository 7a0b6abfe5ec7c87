//! The Kafka-compatible broker: listeners, connections, API handlers, hosted
//! partitions and the group-commit flusher.
//!
//! ```text
//! TcpListener ─▶ connection task (owns its buffer; frames ≤ socket.request.max.bytes)
//!                  │ handle_frame: decode (protocol crate) ─▶ handler per API
//!                  │    Produce: validate ─▶ Partition.log().append ─▶ Flusher.mark_dirty
//!                  │             reply deferred until the partition's high watermark passes it
//!                  │    Fetch:   read below the high watermark; long-poll on watermark changes
//!                  │    Admin:   validate ─▶ propose a metadata command (fsync, apply) ─▶ the
//!                  │             reconciler changes local partitions ─▶ registry published
//!                  ▼
//!                responses in request order
//! Flusher thread: dirty partitions ─▶ fsync (no lock) ─▶ publish high watermark
//! Cleaner thread: compacts `cleanup.policy=compact` partitions (snapshot, clean, swap in)
//! Schema tailer: reads the registry's storage topic into the index that topics with
//!                `confluent.*.schema.validation=true` check produced schema ids against
//! ```
//!
//! [`Broker::start`] binds every listener, opens the data directory
//! (recovering logs after an unclean stop) and serves until [`Broker::shutdown`],
//! which stops accepting, drains in-flight requests, flushes and closes every
//! segment and marks the stop clean.

pub mod admin;
pub mod backend;
pub mod cleaner;
pub mod cluster;
pub mod cluster_mode;
mod coordinator_load;
pub mod cpu;
mod death_watch;
pub mod elections;
pub mod error;
pub mod flusher;
pub mod groups;
pub mod handlers;
pub mod image;
mod internal;
pub mod isr_change;
pub mod leader_lease;
mod limits;
pub mod node;
pub mod outgoing;
pub mod partition;
pub mod placement;
pub mod read_replica;
pub mod reassign;
pub mod reconciler;
pub mod registry;
pub mod replica_driver;
pub mod replica_fetch;
pub mod replicas;
pub mod replication;
pub mod replication_quota;
pub mod routing;
pub mod schema_validation;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tributary_config::{BrokerConfig, Listener};
use tributary_types::now_ms;

pub use cluster::{Cluster, StartError};

/// How long shutdown waits for in-flight requests before closing anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cluster member's controlled shutdown may take.
const CONTROLLED_SHUTDOWN_LIMIT: Duration = Duration::from_secs(15);

/// A running broker.
#[derive(Debug)]
pub struct Broker {
    cluster: Arc<Cluster>,
    bound: Vec<(Listener, SocketAddr)>,
    /// Stops the listeners, connections and background loops.
    shutdown: watch::Sender<bool>,
    /// Stops a KRaft node's own tasks (heartbeats, the controller's duties)
    /// before its controlled shutdown, while clients are still served.
    cluster_tasks: watch::Sender<bool>,
    alive: mpsc::Receiver<()>,
    alive_sender: Option<mpsc::Sender<()>>,
    cleaner: Option<cleaner::LogCleaner>,
}

/// Why the broker could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Opening the data directory or logs failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A listener could not be bound.
    #[error("cannot listen on {address} (listener {listener}): {source}; free the port or choose another one")]
    Bind {
        /// Listener name.
        listener: String,
        /// host:port.
        address: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The startup task failed.
    #[error("startup failed: {0}")]
    Internal(String),
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The Kafka listeners of a broker, bound but not yet serving.
#[derive(Debug)]
pub struct BoundListeners {
    sockets: Vec<(Listener, TcpListener, SocketAddr)>,
}

impl BoundListeners {
    /// Binds every listener of `config` (controller listeners excluded).
    pub async fn bind(config: &BrokerConfig) -> Result<BoundListeners, BrokerError> {
        let mut sockets = Vec::new();
        for l in &config.listeners {
            let host = if l.host.is_empty() { "0.0.0.0" } else { l.host.as_str() };
            let address =
                if host.contains(':') { format!("[{host}]:{}", l.port) } else { format!("{host}:{}", l.port) };
            let socket = TcpListener::bind(&address).await.map_err(|source| BrokerError::Bind {
                listener: l.name.clone(),
                address: address.clone(),
                source,
            })?;
            let local = socket.local_addr().map_err(|e| BrokerError::Internal(e.to_string()))?;
            sockets.push((l.clone(), socket, local));
        }
        Ok(BoundListeners { sockets })
    }

    /// Each listener and the address it is bound to (port 0 resolved).
    pub fn addresses(&self) -> Vec<(Listener, SocketAddr)> {
        self.sockets.iter().map(|(l, _, a)| (l.clone(), *a)).collect()
    }
}

impl Broker {
    /// Binds every listener, opens the data directory and starts serving.
    pub async fn start(config: BrokerConfig) -> Result<Broker, BrokerError> {
        let listeners = BoundListeners::bind(&config).await?;
        Broker::start_bound(config, listeners).await
    }

    /// Opens the data directory (recovering logs after an unclean stop) and
    /// serves on listeners bound beforehand with [`BoundListeners::bind`], so
    /// a caller can report a busy port before anything else starts.
    pub async fn start_bound(config: BrokerConfig, listeners: BoundListeners) -> Result<Broker, BrokerError> {
        let kraft = tributary_quorum::config::KraftConfig::from_properties(&config.properties)
            .map_err(|e| BrokerError::Start(StartError::Config(e.0)))?;
        let cluster = match kraft {
            None => tokio::task::spawn_blocking(move || Cluster::open(config))
                .await
                .map_err(|e| BrokerError::Internal(e.to_string()))??,
            Some(kraft) => {
                if kraft.node_id != config.node_id {
                    return Err(BrokerError::Start(StartError::Config(format!(
                        "node.id {} and broker.id {} disagree",
                        kraft.node_id, config.node_id
                    ))));
                }
                let (data_dir, backend) = cluster_mode::start_quorum(&config, kraft).await?;
                tokio::task::spawn_blocking(move || Cluster::open_quorum(config, data_dir, backend))
                    .await
                    .map_err(|e| BrokerError::Internal(e.to_string()))??
            }
        };
        let cluster = Arc::new(cluster);
        cluster.groups.attach(&cluster);
        let mut bound = Vec::new();
        let mut sockets = Vec::new();
        for (l, socket, local) in listeners.sockets {
            tracing::info!(listener = %l.name, address = %local, "listening for Kafka clients");
            sockets.push((l.name.clone(), socket));
            bound.push((l, local));
        }
        // Advertise what was actually bound: port 0 becomes the real port, an empty host the hostname.
        let advertised = cluster
            .advertised_listeners()
            .into_iter()
            .map(|mut a| {
                if let Some((_, local)) = bound.iter().find(|(l, _)| l.name == a.name)
                    && a.port == 0
                {
                    a.port = local.port();
                }
                if a.host.is_empty() || a.host == "0.0.0.0" {
                    a.host = hostname();
                }
                a
            })
            .collect();
        cluster.set_advertised_listeners(advertised);

        let (shutdown, shutdown_rx) = watch::channel(false);
        let (alive_sender, alive) = mpsc::channel(1);
        for (name, socket) in sockets {
            tokio::spawn(server::accept_loop(cluster.clone(), socket, name, shutdown_rx.clone(), alive_sender.clone()));
        }
        let (cluster_tasks, cluster_tasks_rx) = watch::channel(false);
        tokio::spawn(retention_loop(cluster.clone(), shutdown_rx.clone(), alive_sender.clone()));
        tokio::spawn(schema_validation::tail_loop(cluster.clone(), shutdown_rx.clone(), alive_sender.clone()));
        // Group state loads in the background; until then group requests get COORDINATOR_LOAD_IN_PROGRESS.
        let loading = cluster.clone();
        tokio::spawn(async move {
            let c = loading.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || c.groups.load(&c)).await {
                tracing::error!(error = %e, "group coordinator load failed");
            }
            groups::timer_loop(loading, shutdown_rx).await;
        });
        replica_driver::spawn(&cluster, cluster_tasks_rx.clone());
        cluster_mode::spawn(&cluster, cluster_tasks_rx);
        let cleaner = cleaner::LogCleaner::start(cluster.clone());
        Ok(Broker { cluster, bound, shutdown, cluster_tasks, alive, alive_sender: Some(alive_sender), cleaner })
    }

    /// The shared state (for embedding and tests).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Each listener and the address it is bound to.
    pub fn bound_addresses(&self) -> &[(Listener, SocketAddr)] {
        &self.bound
    }

    /// Resolves with one line once the node must stop on its own (its data
    /// directory belongs to another cluster, the quorum refuses it).
    pub async fn failed(&self) -> String {
        let mut fatal = self.cluster.fatal();
        match fatal.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops accepting, drains in-flight requests, then flushes and closes
    /// every log and marks the data directory cleanly stopped. In a cluster
    /// the broker first hands its leaderships over and unregisters
    /// (controlled shutdown) while it still serves, as Kafka's brokers do:
    /// a client that sends a partition here meanwhile is answered
    /// NOT_LEADER_OR_FOLLOWER with the new leader (KIP-951) instead of
    /// losing its connection; the quorum member stops last.
    pub async fn shutdown(mut self) {
        let _ = self.cluster_tasks.send(true);
        if self.cluster.quorum().is_some() && self.cluster.fatal().borrow().is_none() {
            tracing::info!("shutting down: controlled shutdown while still serving clients");
            cluster_mode::controlled_shutdown(&self.cluster, CONTROLLED_SHUTDOWN_LIMIT).await;
        }
        tracing::info!("shutting down: no new connections, draining in-flight requests");
        let _ = self.shutdown.send(true);
        drop(self.alive_sender.take());
        if tokio::time::timeout(DRAIN_TIMEOUT, self.alive.recv()).await.is_err() {
            tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; closing anyway");
        }
        let cluster = self.cluster.clone();
        let cleaner = self.cleaner.take();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(c) = cleaner {
                c.stop();
            }
            cluster.close()
        })
        .await;
        cluster_mode::stop(&self.cluster).await;
        tracing::info!("shutdown complete: segments flushed and closed");
    }
}

/// Applies retention every `log.retention.check.interval.ms`.
async fn retention_loop(cluster: Arc<Cluster>, mut shutdown: watch::Receiver<bool>, _alive: mpsc::Sender<()>) {
    let period = Duration::from_millis(cluster.config.retention_check_interval_ms);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        let c = cluster.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            for topic in c.registry().topics.values() {
                for p in &topic.partitions {
                    let hw = p.high_watermark();
                    // The lock is released at the end of the statement; the files are unlinked after it.
                    let result = p.log().apply_retention(now, hw);
                    match result {
                        Ok((0, retired)) => retired.remove(),
                        Ok((n, retired)) => {
                            retired.remove();
                            tracing::info!(topic = %topic.name, partition = p.index, segments = n, "retention deleted segments");
                        }
                        Err(e) => tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "retention failed"),
                    }
                }
            }
        })
        .await;
    }
}
