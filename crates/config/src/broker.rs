//! The broker's static configuration: Kafka `server.properties` keys, with
//! `KAFKA_*` environment overrides mapped the way Confluent's images map them
//! and `--override key=value` on top.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::connections::{ConnectionLimits, request_bytes_budget};
use crate::defs::broker_config;
use crate::properties::parse_properties;
use crate::value::{split_list, validate};

/// A configuration the broker cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value fails its type or range.
    #[error("{0}")]
    Invalid(String),
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An `--override` is not `key=value`.
    #[error("override {0:?} is not of the form key=value")]
    BadOverride(String),
}

/// One listener: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Listener name (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    /// Host; empty means all interfaces.
    pub host: String,
    /// Port; 0 means any free port.
    pub port: u16,
    /// Security protocol from `listener.security.protocol.map`.
    pub security_protocol: String,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.name, self.host, self.port)
    }
}

/// Parses `NAME://host:port` lists (IPv6 hosts in brackets).
pub fn parse_listeners(value: &str, protocol_map: &BTreeMap<String, String>) -> Result<Vec<Listener>, ConfigError> {
    let mut out = Vec::new();
    for item in split_list(value) {
        let (name, rest) = item
            .split_once("://")
            .ok_or_else(|| ConfigError::Invalid(format!("listener {item:?} must look like NAME://host:port")))?;
        let (host, port) =
            rest.rsplit_once(':').ok_or_else(|| ConfigError::Invalid(format!("listener {item:?} has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| ConfigError::Invalid(format!("listener {item:?} has an invalid port {port:?}")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let name = name.to_string();
        let security_protocol = protocol_map.get(&name).cloned().unwrap_or_else(|| name.clone());
        if out.iter().any(|l: &Listener| l.name == name) {
            return Err(ConfigError::Invalid(format!("listener name {name} appears twice")));
        }
        out.push(Listener { name, host, port, security_protocol });
    }
    Ok(out)
}

/// Maps a Confluent-image environment variable to a property key:
/// `KAFKA_LOG_RETENTION_HOURS` → `log.retention.hours` (`___` → `-`,
/// `__` → `_`, `_` → `.`). Variables the images reserve for the JVM and
/// scripts are not config keys.
pub fn env_to_property(name: &str) -> Option<String> {
    const NOT_CONFIG: &[&str] = &[
        "KAFKA_HEAP_OPTS",
        "KAFKA_OPTS",
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_GC_LOG_OPTS",
        "KAFKA_LOG4J_OPTS",
        "KAFKA_JMX_OPTS",
        "KAFKA_JMX_PORT",
        "KAFKA_JMX_HOSTNAME",
        "KAFKA_DEBUG",
        "KAFKA_VERSION",
        "KAFKA_HOME",
        "KAFKA_LOG4J_ROOT_LOGLEVEL",
        "KAFKA_LOG4J_LOGGERS",
        "KAFKA_TOOLS_LOG4J_LOGLEVEL",
        "KAFKA_CLUSTER_ID",
    ];
    let rest = name.strip_prefix("KAFKA_")?;
    if rest.is_empty() || NOT_CONFIG.contains(&name) {
        return None;
    }
    let lower = rest.to_ascii_lowercase();
    let mut out = String::with_capacity(lower.len());
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let run = bytes[i..].iter().take_while(|&&b| b == b'_').count();
            match run {
                1 => out.push('.'),
                2 => out.push('_'),
                3 => out.push('-'),
                _ => return None,
            }
            i += run;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    Some(out)
}

/// The broker's configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`.
    pub node_id: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Kafka listeners to bind (controller listeners excluded).
    pub listeners: Vec<Listener>,
    /// The listeners named in `controller.listener.names` (the metadata
    /// quorum's; bound only in KRaft mode, by a node with the controller role).
    pub controller_listeners: Vec<Listener>,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`.
    pub broker_session_timeout_ms: u64,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: u64,
    /// `metadata.log.max.snapshot.interval.entries`.
    pub metadata_snapshot_interval: u64,
    /// What Metadata returns per listener name.
    pub advertised_listeners: Vec<Listener>,
    /// The data directory (first of `log.dirs`, else `log.dir`).
    pub data_dir: PathBuf,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `max.partitions`: the most partitions the cluster holds.
    pub max_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
    /// `fetch.max.bytes`: cap on a Fetch response's size.
    pub fetch_max_bytes: usize,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `connections.max.idle.ms`; `None` (a negative value) never closes idle connections.
    pub connections_max_idle_ms: Option<u64>,
    /// The connection limits at startup (`max.connections*`,
    /// `max.connection.creation.rate`); dynamic configs may change them.
    pub connection_limits: ConnectionLimits,
    /// `queued.max.request.bytes` as a budget; `None` means unbounded.
    pub queued_max_request_bytes: Option<u64>,
    /// `producer.id.expiration.ms`.
    pub producer_id_expiration_ms: i64,
    /// `tributary.schema.registry.topic`: the registry's storage topic,
    /// read for topic schema validation.
    pub schema_registry_topic: String,
    /// Every key set in the file, environment or overrides (the static layer
    /// of DescribeConfigs and topic-config defaults).
    pub properties: BTreeMap<String, String>,
    /// Keys that were set but are not used, for a startup warning.
    pub unknown_keys: Vec<String>,
}

impl BrokerConfig {
    /// Reads `server.properties` (if given), then `KAFKA_*` variables from
    /// `env`, then `overrides`, and builds the config.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[String],
    ) -> Result<BrokerConfig, ConfigError> {
        let mut props = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
                parse_properties(&text)
            }
            None => BTreeMap::new(),
        };
        for (name, value) in env {
            if let Some(key) = env_to_property(&name) {
                props.insert(key, value);
            }
        }
        for item in overrides {
            let (k, v) = item.split_once('=').ok_or_else(|| ConfigError::BadOverride(item.clone()))?;
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
        BrokerConfig::from_properties(props)
    }

    /// Builds the config from explicit key/value pairs.
    pub fn from_properties(props: BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        let mut unknown_keys = Vec::new();
        for (k, v) in &props {
            match broker_config(k) {
                Some(def) => {
                    if !(v.is_empty()
                        && matches!(def.ty, crate::value::ConfigType::List | crate::value::ConfigType::String))
                    {
                        validate(k, def.ty, def.validator, v).map_err(ConfigError::Invalid)?;
                    }
                }
                None => unknown_keys.push(k.clone()),
            }
        }
        let get = |key: &str| -> Option<String> {
            props.get(key).cloned().or_else(|| broker_config(key).and_then(|d| d.default.map(str::to_string)))
        };
        let parse_i64 = |key: &str| -> i64 { get(key).and_then(|v| v.trim().parse().ok()).unwrap_or(0) };
        let parse_bool = |key: &str| -> bool { get(key).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) };

        let protocol_map: BTreeMap<String, String> = get("listener.security.protocol.map")
            .map(|m| {
                split_list(&m)
                    .iter()
                    .filter_map(|pair| pair.split_once(':'))
                    .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let controller_names: Vec<String> = get("controller.listener.names")
            .map(|v| split_list(&v).iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        let all_listeners = parse_listeners(&get("listeners").unwrap_or_default(), &protocol_map)?;
        let (controller_listeners, listeners): (Vec<Listener>, Vec<Listener>) =
            all_listeners.into_iter().partition(|l| controller_names.contains(&l.name));
        if listeners.is_empty() {
            return Err(ConfigError::Invalid(
                "listeners holds no Kafka listener (only controller listeners); add e.g. PLAINTEXT://:9092".to_string(),
            ));
        }
        for l in &listeners {
            if l.security_protocol != "PLAINTEXT" {
                return Err(ConfigError::Invalid(format!(
                    "listener {l} uses security protocol {}; this build serves PLAINTEXT listeners only",
                    l.security_protocol
                )));
            }
        }
        let advertised_listeners = match props.get("advertised.listeners") {
            Some(v) if !v.trim().is_empty() => {
                let adv = parse_listeners(v, &protocol_map)?;
                for a in &adv {
                    if !listeners.iter().any(|l| l.name == a.name) {
                        return Err(ConfigError::Invalid(format!(
                            "advertised listener {a} has no matching entry in listeners"
                        )));
                    }
                }
                adv
            }
            _ => listeners.clone(),
        };
        let data_dir = match props.get("log.dirs") {
            Some(dirs) if !dirs.trim().is_empty() => PathBuf::from(split_list(dirs)[0]),
            _ => PathBuf::from(get("log.dir").unwrap_or_default()),
        };
        let connection_limits = ConnectionLimits::from_lookup(get).map_err(ConfigError::Invalid)?;
        let socket_request_max_bytes = parse_i64("socket.request.max.bytes").max(1024) as usize;
        let queued_max_request_bytes =
            request_bytes_budget(parse_i64("queued.max.request.bytes"), socket_request_max_bytes)
                .map_err(ConfigError::Invalid)?;
        let node_id =
            props.get("node.id").or_else(|| props.get("broker.id")).and_then(|v| v.trim().parse().ok()).unwrap_or(1);
        Ok(BrokerConfig {
            node_id,
            rack: props.get("broker.rack").cloned().filter(|r| !r.trim().is_empty()),
            listeners,
            controller_listeners,
            broker_heartbeat_interval_ms: parse_i64("broker.heartbeat.interval.ms").max(1) as u64,
            broker_session_timeout_ms: parse_i64("broker.session.timeout.ms").max(1) as u64,
            replica_lag_time_max_ms: parse_i64("replica.lag.time.max.ms").max(1) as u64,
            metadata_snapshot_interval: parse_i64("metadata.log.max.snapshot.interval.entries").max(1) as u64,
            advertised_listeners,
            data_dir,
            num_partitions: parse_i64("num.partitions") as i32,
            max_partitions: parse_i64("max.partitions").clamp(1, i64::from(i32::MAX)) as i32,
            default_replication_factor: parse_i64("default.replication.factor") as i16,
            auto_create_topics: parse_bool("auto.create.topics.enable"),
            delete_topic_enable: parse_bool("delete.topic.enable"),
            socket_request_max_bytes,
            fetch_max_bytes: parse_i64("fetch.max.bytes").max(1024) as usize,
            retention_check_interval_ms: parse_i64("log.retention.check.interval.ms").max(1) as u64,
            connections_max_idle_ms: u64::try_from(parse_i64("connections.max.idle.ms")).ok().map(|ms| ms.max(1)),
            connection_limits,
            queued_max_request_bytes,
            producer_id_expiration_ms: parse_i64("producer.id.expiration.ms"),
            schema_registry_topic: get("tributary.schema.registry.topic")
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "_schemas".to_string()),
            properties: props,
            unknown_keys,
        })
    }

    /// The default of a broker key, when it has one.
    pub fn default_of(key: &str) -> Option<&'static str> {
        broker_config(key).and_then(|d| d.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::ConnectionLimits;

    #[test]
    fn kraft_combined_server_properties() {
        let text = "process.roles=broker,controller\nnode.id=3\ncontroller.quorum.voters=3@localhost:9093\n\
                    listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ninter.broker.listener.name=PLAINTEXT\n\
                    advertised.listeners=PLAINTEXT://localhost:9092\ncontroller.listener.names=CONTROLLER\n\
                    listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
                    log.dirs=/tmp/kraft-combined-logs\nnum.partitions=3\nlog.retention.hours=24\nfuture.key=1\n";
        let dir = std::env::temp_dir().join(format!("tributary-config-test-{}", std::process::id()));
        std::fs::write(&dir, text).expect("write");
        let c = BrokerConfig::load(Some(&dir), vec![], &[]).expect("load");
        let _ = std::fs::remove_file(&dir);
        assert_eq!(c.node_id, 3);
        assert_eq!(c.listeners.len(), 1, "controller listener is not a Kafka listener");
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.listeners[0].host, "");
        assert_eq!(c.advertised_listeners[0].host, "localhost");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/kraft-combined-logs"));
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.unknown_keys, vec!["future.key".to_string()]);
    }

    #[test]
    fn env_and_overrides_apply_in_order() {
        let env = vec![
            ("KAFKA_NUM_PARTITIONS".to_string(), "4".to_string()),
            ("KAFKA_LOG_DIRS".to_string(), "/data/env".to_string()),
            ("KAFKA_HEAP_OPTS".to_string(), "-Xmx1G".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let c = BrokerConfig::load(None, env, &["num.partitions=6".to_string()]).expect("load");
        assert_eq!(c.num_partitions, 6);
        assert_eq!(c.data_dir, PathBuf::from("/data/env"));
        assert!(c.unknown_keys.is_empty());
    }

    #[test]
    fn env_name_mapping() {
        assert_eq!(env_to_property("KAFKA_ADVERTISED_LISTENERS").as_deref(), Some("advertised.listeners"));
        assert_eq!(
            env_to_property("KAFKA_LISTENER_NAME_INTERNAL_SSL__CLIENT__AUTH").as_deref(),
            Some("listener.name.internal.ssl_client_auth")
        );
        assert_eq!(env_to_property("KAFKA_A___B").as_deref(), Some("a-b"));
        assert_eq!(env_to_property("KAFKA_HEAP_OPTS"), None);
        assert_eq!(env_to_property("CONNECT_X"), None);
    }

    #[test]
    fn invalid_values_are_refused_with_the_key_named() {
        let err = BrokerConfig::load(None, vec![], &["num.partitions=many".to_string()]).expect_err("invalid");
        assert!(err.to_string().contains("num.partitions"), "{err}");
        assert!(BrokerConfig::load(None, vec![], &["nonsense".to_string()]).is_err());
        let err = BrokerConfig::load(None, vec![], &["listeners=SSL://:9093".to_string()]).expect_err("ssl");
        assert!(err.to_string().contains("PLAINTEXT"), "{err}");
    }

    #[test]
    fn connection_limits_idle_and_request_budget() {
        let c = BrokerConfig::load(None, vec![], &[]).expect("defaults");
        assert_eq!(c.connection_limits, ConnectionLimits::default());
        assert_eq!(c.queued_max_request_bytes, None);
        assert_eq!(c.connections_max_idle_ms, Some(600_000));
        let set =
            |items: &[&str]| BrokerConfig::load(None, vec![], &items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let c = set(&[
            "max.connections.per.ip=50",
            "max.connections.per.ip.overrides=127.0.0.1:200",
            "max.connections=1000",
            "connections.max.idle.ms=-1",
            "queued.max.request.bytes=104857600",
        ])
        .expect("valid");
        assert_eq!(c.connection_limits.max_connections_per_ip, 50);
        assert_eq!(c.connection_limits.max_connections, 1000);
        assert_eq!(c.connection_limits.per_ip_overrides[0].max, 200);
        assert_eq!(c.connections_max_idle_ms, None, "-1 disables the idle timeout, as in Kafka");
        assert_eq!(c.queued_max_request_bytes, Some(104_857_600));
        for bad in ["max.connections.per.ip.overrides=127.0.0.1", "queued.max.request.bytes=1000", "max.connections=-1"]
        {
            let err = set(&[bad]).expect_err(bad);
            assert!(err.to_string().contains(bad.split('=').next().unwrap_or_default()), "{bad}: {err}");
        }
    }

    #[test]
    fn listener_parsing() {
        let map = BTreeMap::new();
        let l = parse_listeners("PLAINTEXT://[::1]:9092, INTERNAL://host:0", &map).expect("parse");
        assert_eq!(l[0].host, "::1");
        assert_eq!(l[1].port, 0);
        assert!(parse_listeners("PLAINTEXT://host", &map).is_err());
        assert!(parse_listeners("A://h:1,A://h:2", &map).is_err());
    }
}
