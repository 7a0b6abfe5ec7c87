//! The cluster behind the proxy: one shared `tributary-client` connection
//! set for admin requests, connected on first use and dropped after a
//! connection failure so the next request starts afresh; and the producer
//! (`producer.rs`), with connections of its own.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};
use tributary_client::{Client, ClientConfig, ClientError, ClusterMetadata, KafkaError, TopicMetadata};

use crate::consumer::Instances;
use crate::error::RestError;
use crate::producer::Producer;
use crate::schemas::Schemas;

/// `name` in `metadata`: 404 (40403) when it does not exist, the broker's
/// error when it gave another one.
pub fn topic_in(metadata: &ClusterMetadata, name: &str) -> Result<TopicMetadata, RestError> {
    match metadata.topics.get(name) {
        Some(t) if t.error_code == 0 => Ok(t.clone()),
        Some(t) if t.error_code != 3 => {
            Err(RestError::from(ClientError::Kafka(KafkaError::new(t.error_code, format!("look up topic {name}")))))
        }
        _ => Err(RestError::topic_not_found(name)),
    }
}

/// The cluster behind the proxy, through one shared client.
#[derive(Debug)]
pub struct Kafka {
    config: ClientConfig,
    client: Mutex<Option<Client>>,
    /// Where produced records go.
    pub producer: Producer,
    /// The schema registry AVRO keys and values are resolved with, if configured.
    pub schemas: Option<Schemas>,
    /// v2 consumer instances.
    pub consumers: Arc<Instances>,
}

impl Kafka {
    /// Connects on first use. Starts the producer task, so it must be called
    /// inside a Tokio runtime.
    pub fn new(config: ClientConfig, schemas: Option<Schemas>) -> Arc<Kafka> {
        let mut producer_config = config.clone();
        producer_config.client_id = format!("{}-producer", config.client_id);
        Arc::new(Kafka {
            config,
            client: Mutex::new(None),
            producer: Producer::spawn(producer_config, tributary_client::ProducerConfig::default()),
            schemas,
            consumers: Arc::new(Instances::default()),
        })
    }

    /// The longest wait for one Kafka operation.
    pub fn timeout(&self) -> std::time::Duration {
        self.config.timeout
    }

    /// Client settings for a connection of its own (a consumer instance's).
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = self.config.clone();
        config.client_id = client_id.to_string();
        config
    }

    async fn connected(&self) -> Result<MutexGuard<'_, Option<Client>>, RestError> {
        let mut guard = self.client.lock().await;
        if guard.is_none() {
            *guard = Some(Client::connect(self.config.clone()).await?);
        }
        Ok(guard)
    }

    /// Runs one client call; a failure other than a Kafka error code drops the
    /// client, so the next request starts from a fresh connection.
    pub async fn call<T>(&self, op: impl AsyncFnOnce(&mut Client) -> Result<T, ClientError>) -> Result<T, RestError> {
        let mut guard = self.connected().await?;
        let Some(client) = guard.as_mut() else {
            return Err(RestError::status(500, "no connection to the Kafka cluster"));
        };
        let result = op(client).await;
        if result.as_ref().is_err_and(|e| e.kafka().is_none()) {
            *guard = None;
        }
        result.map_err(RestError::from)
    }

    pub async fn metadata(&self, topics: Option<Vec<String>>) -> Result<ClusterMetadata, RestError> {
        self.call(async move |c: &mut Client| c.metadata(topics.as_deref()).await).await
    }

    /// The cluster's metadata (for `topics`), or 404 when `cluster_id` is not this cluster's.
    pub async fn cluster(&self, cluster_id: &str, topics: Option<Vec<String>>) -> Result<ClusterMetadata, RestError> {
        let metadata = self.metadata(topics).await?;
        if metadata.cluster_id.as_deref() != Some(cluster_id) {
            return Err(RestError::cluster_not_found(cluster_id));
        }
        Ok(metadata)
    }

    /// One topic of the cluster, which must exist (see [`topic_in`]); 404 for another cluster id.
    pub async fn topic(&self, cluster_id: &str, name: &str) -> Result<TopicMetadata, RestError> {
        topic_in(&self.cluster(cluster_id, Some(vec![name.to_string()])).await?, name)
    }
}
