//! The client: a bootstrap connection, the cluster's brokers from Metadata,
//! one connection per broker address, and group coordinators from
//! FindCoordinator. Retriable errors (a coordinator still loading, a leader
//! moving) are retried with backoff within the configured timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::admin::TopicPartition;
use crate::connection::{ClientConfig, Connection};
use crate::error::{ClientError, KafkaError};

/// Most attempts of one operation that keeps hitting retriable errors.
const ATTEMPTS_MAX: u32 = 10;

/// A broker: id and advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `node.id`.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
}

impl Node {
    /// `host:port` (IPv6 hosts in brackets).
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition in Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Leader's node id, -1 if none.
    pub leader: i32,
    /// Error code for the partition (0 = none).
    pub error_code: i16,
    /// Node ids of the replicas, the preferred leader first.
    pub replicas: Vec<i32>,
    /// Node ids of the in-sync replicas.
    pub isr: Vec<i32>,
}

/// One topic in Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Error code for the topic (0 = none; 3 = it does not exist).
    pub error_code: i16,
    /// Whether it is an internal topic such as `__consumer_offsets`.
    pub is_internal: bool,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionMetadata>,
}

/// What Metadata says about the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterMetadata {
    /// Brokers by node id.
    pub brokers: BTreeMap<i32, Node>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicMetadata>,
    /// The cluster id (Metadata v2+).
    pub cluster_id: Option<String>,
    /// The controller's node id, -1 when unknown.
    pub controller_id: i32,
    /// Rack of each broker that has one.
    pub racks: BTreeMap<i32, String>,
}

/// Backoff between attempts of one operation, bounded by attempts and time.
#[derive(Debug)]
pub(crate) struct Retry {
    deadline: Instant,
    attempt: u32,
}

impl Retry {
    pub(crate) fn new(budget: Duration) -> Retry {
        Retry { deadline: Instant::now() + budget, attempt: 0 }
    }

    /// Waits before the next attempt; false when attempts or time are used up.
    pub(crate) async fn again(&mut self) -> bool {
        self.attempt += 1;
        if self.attempt >= ATTEMPTS_MAX {
            return false;
        }
        let pause = Duration::from_millis(50u64 << self.attempt.min(5)).min(Duration::from_secs(1));
        if Instant::now() + pause > self.deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        true
    }
}

/// Codes after which a group request is sent again, to a freshly looked-up coordinator.
pub(crate) fn coordinator_retriable(code: i16) -> bool {
    matches!(code, 14..=16)
}

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// An async Kafka client for admin work. Not for concurrent use: one request
/// at a time, which is all a command-line tool or a console action needs.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    /// Connections by the address they were opened to.
    conns: BTreeMap<String, Connection>,
    /// The connection used for cluster-wide requests (Metadata, FindCoordinator).
    bootstrap_addr: String,
    /// Brokers from the latest Metadata.
    brokers: BTreeMap<i32, Node>,
    /// Coordinators by group id.
    coordinators: BTreeMap<String, Node>,
    /// Partition leaders by partition, for produce and fetch.
    pub(crate) leaders: BTreeMap<TopicPartition, Node>,
}

impl Client {
    /// Connects to the first bootstrap address that answers and negotiates versions.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let conn = connect_bootstrap(&config).await?;
        let bootstrap_addr = conn.addr().to_string();
        let mut conns = BTreeMap::new();
        conns.insert(bootstrap_addr.clone(), conn);
        Ok(Client {
            config,
            conns,
            bootstrap_addr,
            brokers: BTreeMap::new(),
            coordinators: BTreeMap::new(),
            leaders: BTreeMap::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The connection for cluster-wide requests, reopened if it broke.
    pub async fn any_connection(&mut self) -> Result<&mut Connection, ClientError> {
        if self.conns.get(&self.bootstrap_addr).is_none_or(Connection::is_broken) {
            let conn = connect_bootstrap(&self.config).await?;
            self.bootstrap_addr = conn.addr().to_string();
            self.conns.insert(self.bootstrap_addr.clone(), conn);
        }
        self.conns.get_mut(&self.bootstrap_addr).ok_or_else(|| ClientError::Refused("no connection".to_string()))
    }

    /// A connection to `node` at its advertised address, opened if needed.
    pub async fn connection_to(&mut self, node: &Node) -> Result<&mut Connection, ClientError> {
        let addr = node.addr();
        if self.conns.get(&addr).is_none_or(Connection::is_broken) {
            let conn = Connection::connect(&addr, &self.config).await.map_err(|e| match e {
                e @ (ClientError::Connect { .. } | ClientError::Timeout { .. }) => {
                    ClientError::Advertised { node_id: node.node_id, addr: addr.clone(), source: Box::new(e) }
                }
                other => other,
            })?;
            self.conns.insert(addr.clone(), conn);
        }
        self.conns.get_mut(&addr).ok_or_else(|| ClientError::Refused("no connection".to_string()))
    }

    /// Metadata for `topics` (`None` = every topic; `Some(&[])` = brokers only).
    /// Never creates topics.
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata, ClientError> {
        let conn = self.any_connection().await?;
        let v = conn.version(ApiKey::Metadata)?;
        let requested = topics.map(|ts| {
            ts.iter().map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t)))).collect::<Vec<_>>()
        });
        let mut request = MetadataRequest::default().with_topics(requested);
        if v >= 4 {
            request = request.with_allow_auto_topic_creation(false);
        }
        let response = conn.call(&request, v).await?;
        if response.error_code != 0 {
            return Err(KafkaError::new(response.error_code, "read cluster metadata").into());
        }
        let brokers: BTreeMap<i32, Node> = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, Node { node_id: b.node_id.0, host: b.host.to_string(), port: b.port }))
            .collect();
        let topics = response
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.as_ref()?.0.to_string();
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let metadata = PartitionMetadata {
                            leader: p.leader_id.0,
                            error_code: p.error_code,
                            replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                            isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                        };
                        (p.partition_index, metadata)
                    })
                    .collect();
                Some((name, TopicMetadata { error_code: t.error_code, is_internal: t.is_internal, partitions }))
            })
            .collect();
        let racks =
            response.brokers.iter().filter_map(|b| Some((b.node_id.0, b.rack.as_deref()?.to_string()))).collect();
        self.brokers.clone_from(&brokers);
        let cluster_id = response.cluster_id.as_deref().map(str::to_string);
        Ok(ClusterMetadata { brokers, topics, cluster_id, controller_id: response.controller_id.0, racks })
    }

    /// The broker coordinating `group`, looked up once and then cached.
    pub async fn group_coordinator(&mut self, group: &str) -> Result<Node, ClientError> {
        if let Some(node) = self.coordinators.get(group) {
            return Ok(node.clone());
        }
        let mut retry = Retry::new(self.config.timeout);
        loop {
            let conn = self.any_connection().await?;
            let v = conn.version(ApiKey::FindCoordinator)?;
            let request = if v >= 4 {
                FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![str_bytes(group)])
            } else {
                FindCoordinatorRequest::default().with_key(str_bytes(group))
            };
            let response = conn.call(&request, v).await?;
            let (code, message, node) = if v >= 4 {
                let Some(c) = response.coordinators.iter().find(|c| c.key.as_str() == group) else {
                    return Err(ClientError::Malformed {
                        addr: conn.addr().to_string(),
                        api: "FindCoordinator".to_string(),
                        detail: format!("no coordinator entry for group \"{group}\""),
                    });
                };
                let node = Node { node_id: c.node_id.0, host: c.host.to_string(), port: c.port };
                (c.error_code, c.error_message.as_deref().map(str::to_string), node)
            } else {
                let node = Node { node_id: response.node_id.0, host: response.host.to_string(), port: response.port };
                (response.error_code, response.error_message.as_deref().map(str::to_string), node)
            };
            if code == 0 {
                self.coordinators.insert(group.to_string(), node.clone());
                return Ok(node);
            }
            let err = KafkaError::new(code, format!("find the coordinator of group \"{group}\""))
                .with_message(message.as_deref());
            if err.is_retriable() && retry.again().await {
                continue;
            }
            return Err(err.into());
        }
    }

    /// A connection to the coordinator of `group`.
    pub(crate) async fn coordinator_connection(&mut self, group: &str) -> Result<&mut Connection, ClientError> {
        let node = self.group_coordinator(group).await?;
        if let Err(e) = self.connection_to(&node).await {
            // The coordinator is gone (its broker stopped): look it up again next time.
            self.forget_coordinator(group);
            return Err(e);
        }
        self.connection_to(&node).await
    }

    /// Forgets the cached coordinator of `group` (after NOT_COORDINATOR and the like).
    pub(crate) fn forget_coordinator(&mut self, group: &str) {
        self.coordinators.remove(group);
    }

    /// Brokers known from the latest Metadata.
    pub fn brokers(&self) -> &BTreeMap<i32, Node> {
        &self.brokers
    }
}

async fn connect_bootstrap(config: &ClientConfig) -> Result<Connection, ClientError> {
    if config.bootstrap.is_empty() {
        return Err(ClientError::Refused("no bootstrap address given; pass host:port".to_string()));
    }
    let mut failures = Vec::new();
    for addr in &config.bootstrap {
        match Connection::connect(addr, config).await {
            Ok(conn) => return Ok(conn),
            // A broker that answered but cannot serve us: say so rather than trying the next one.
            Err(e @ (ClientError::Unsupported { .. } | ClientError::Kafka(_))) => return Err(e),
            Err(ClientError::Connect { addr, source }) => failures.push(format!("{addr}: {source}")),
            Err(ClientError::Timeout { addr, timeout, .. }) => {
                failures.push(format!("{addr}: no answer within {} ms", timeout.as_millis()))
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    Err(ClientError::NoBroker { bootstrap: config.bootstrap.join(","), details: failures.join("; ") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_bracket_ipv6() {
        let n = |host: &str| Node { node_id: 1, host: host.to_string(), port: 9092 };
        assert_eq!(n("broker-1").addr(), "broker-1:9092");
        assert_eq!(n("::1").addr(), "[::1]:9092");
    }

    #[tokio::test]
    async fn unreachable_bootstrap_names_every_address() {
        let mut config = ClientConfig::new("127.0.0.1:1,127.0.0.1:2");
        config.timeout = Duration::from_millis(500);
        let err = Client::connect(config).await.expect_err("nothing listens on ports 1 and 2");
        let text = err.to_string();
        assert!(text.contains("127.0.0.1:1:") && text.contains("127.0.0.1:2:"), "{text}");
        assert!(text.contains("broker is running"), "{text}");
    }
}
