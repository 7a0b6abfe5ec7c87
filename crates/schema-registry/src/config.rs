//! Registry configuration from Confluent's keys, as a properties file, the
//! `SCHEMA_REGISTRY_*` environment (`.` → `_`, `_` → `__`, `-` → `___`,
//! upper case) and command-line flags, later ones winning.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `listeners` | `http://0.0.0.0:8081` | where the REST API listens (the first entry is used) |
//! | `kafkastore.bootstrap.servers` | — | the Kafka cluster (a `PLAINTEXT://` prefix is accepted) |
//! | `kafkastore.topic` | `_schemas` | the store topic |
//! | `kafkastore.topic.replication.factor` | 3 | for a new store topic, capped by the live brokers (with a warning); -1 = the broker's `default.replication.factor` |
//! | `kafkastore.timeout.ms` | 10000 | one Kafka operation, and waiting for the reader |
//! | `schema.compatibility.level` | `backward` | level when no config is set |
//! | `schema.registry.group.id` | `schema-registry` | election group |
//! | `leader.eligibility` | `true` | whether this instance may write |
//! | `host.name` | the listener host, or `localhost` for 0.0.0.0 | advertised to the other instances |
//! | `request.max.bytes` | 20971520 | largest request body |
//! | `header.read.timeout.ms` | 30000 | a request head must arrive within this of its first byte (Tributary's key) |
//! | `idle.timeout.ms` | 30000 | a connection making no progress this long is closed |
//! | `server.connection.limit` | 1000 | connections served at once; more wait to be accepted (0 or less: none) |
//! | `shutdown.graceful.ms` | 5000 | on shutdown, how long requests in flight may take |
//! | `max.request.header.size` | 8192 | largest request head in bytes; a larger one gets 431 |
//!
//! The last five are the HTTP server's ([`tributary_http::limits`]).

use std::collections::BTreeMap;
use std::time::Duration;

use tributary_schema::CompatibilityLevel;

/// The settings of one registry instance.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Host and port to listen on.
    pub listen_host: String,
    /// Port to listen on (0 = any free port).
    pub listen_port: u16,
    /// Kafka bootstrap addresses.
    pub bootstrap: String,
    /// Store topic.
    pub topic: String,
    /// Replication factor of a new store topic, capped by the live brokers
    /// (-1 = the broker's default).
    pub replication_factor: i16,
    /// Kafka operation timeout.
    pub timeout: Duration,
    /// Level when no config is set.
    pub compatibility: CompatibilityLevel,
    /// Election group.
    pub group_id: String,
    /// Whether this instance may write.
    pub leader_eligibility: bool,
    /// Advertised host (`None` = derived from the listener).
    pub host_name: Option<String>,
    /// Largest request body.
    pub body_limit: usize,
    /// The HTTP server's timeouts and connection cap.
    pub http: tributary_http::Limits,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            listen_host: "0.0.0.0".to_string(),
            listen_port: 8081,
            bootstrap: String::new(),
            topic: "_schemas".to_string(),
            replication_factor: 3,
            timeout: Duration::from_secs(10),
            compatibility: CompatibilityLevel::Backward,
            group_id: "schema-registry".to_string(),
            leader_eligibility: true,
            host_name: None,
            body_limit: 20 * 1024 * 1024,
            http: tributary_http::Limits::default(),
        }
    }
}

/// `SCHEMA_REGISTRY_KAFKASTORE_TOPIC` → `kafkastore.topic`.
pub fn env_to_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix("SCHEMA_REGISTRY_")?;
    if rest.is_empty() {
        return None;
    }
    Some(
        rest.to_ascii_lowercase()
            .replace("___", "\u{1}")
            .replace("__", "\u{2}")
            .replace('_', ".")
            .replace('\u{1}', "-")
            .replace('\u{2}', "_"),
    )
}

/// Splits `http://host:port` into host and port.
pub fn parse_listener(listener: &str) -> Result<(String, u16), String> {
    let first = listener.split(',').map(str::trim).find(|s| !s.is_empty()).ok_or("listeners is empty")?;
    let rest = first
        .strip_prefix("http://")
        .ok_or_else(|| format!("listener {first:?} must start with http:// (https is not served yet)"))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| format!("listener {first:?} has no port"))?;
    let port = port.parse::<u16>().map_err(|_| format!("listener {first:?} has an invalid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((if host.is_empty() { "0.0.0.0".to_string() } else { host.to_string() }, port))
}

impl RegistryConfig {
    /// Settings from properties (file, then environment, then flags, merged by the caller).
    /// Unknown keys are returned for a warning.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<(RegistryConfig, Vec<String>), String> {
        let mut c = RegistryConfig::default();
        let mut unknown = Vec::new();
        for (key, value) in props {
            let value = value.trim();
            let bad = |what: &str| format!("{key}={value:?}: {what}");
            match key.as_str() {
                "listeners" => {
                    let (host, port) = parse_listener(value)?;
                    c.listen_host = host;
                    c.listen_port = port;
                }
                "kafkastore.bootstrap.servers" => {
                    c.bootstrap = value
                        .split(',')
                        .map(|s| s.trim())
                        .filter(|s| !s.is_empty())
                        .map(|s| s.split_once("://").map_or(s, |(_, a)| a))
                        .collect::<Vec<_>>()
                        .join(",");
                }
                "kafkastore.topic" => {
                    if value.is_empty() {
                        return Err(bad("the topic name is empty"));
                    }
                    c.topic = value.to_string();
                }
                "kafkastore.topic.replication.factor" => {
                    c.replication_factor = value.parse().map_err(|_| bad("not a number"))?;
                }
                "kafkastore.timeout.ms" => {
                    let ms: u64 = value.parse().map_err(|_| bad("not a number of milliseconds"))?;
                    c.timeout = Duration::from_millis(ms.max(100));
                }
                "schema.compatibility.level" | "avro.compatibility.level" => {
                    c.compatibility = value.parse().map_err(|_| {
                        bad("use none, backward, backward_transitive, forward, forward_transitive, full or full_transitive")
                    })?;
                }
                "schema.registry.group.id" => c.group_id = value.to_string(),
                "leader.eligibility" | "master.eligibility" => {
                    c.leader_eligibility = value.parse().map_err(|_| bad("use true or false"))?;
                }
                "host.name" => c.host_name = Some(value.to_string()).filter(|h| !h.is_empty()),
                "request.max.bytes" => c.body_limit = value.parse().map_err(|_| bad("not a number of bytes"))?,
                _ => {
                    if !c.http.set(key, value)? {
                        unknown.push(key.clone());
                    }
                }
            }
        }
        if c.bootstrap.is_empty() {
            return Err("kafkastore.bootstrap.servers is not set; pass --bootstrap-servers host:port".to_string());
        }
        Ok((c, unknown))
    }

    /// The host other instances reach this one at.
    pub fn advertised_host(&self) -> String {
        match &self.host_name {
            Some(h) => h.clone(),
            None if self.listen_host == "0.0.0.0" || self.listen_host == "::" => "localhost".to_string(),
            None => self.listen_host.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_environment() {
        assert_eq!(
            env_to_key("SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS").as_deref(),
            Some("kafkastore.bootstrap.servers")
        );
        assert_eq!(env_to_key("SCHEMA_REGISTRY_HOST_NAME").as_deref(), Some("host.name"));
        assert_eq!(env_to_key("KAFKA_X"), None);
        let props: BTreeMap<String, String> = [
            ("listeners", "http://0.0.0.0:18081"),
            ("kafkastore.bootstrap.servers", "PLAINTEXT://b1:9092, b2:9092"),
            ("schema.compatibility.level", "full_transitive"),
            ("idle.timeout.ms", "1500"),
            ("server.connection.limit", "0"),
            ("something.else", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (c, unknown) = RegistryConfig::from_properties(&props).expect("valid");
        assert_eq!((c.listen_host.as_str(), c.listen_port), ("0.0.0.0", 18081));
        assert_eq!(c.bootstrap, "b1:9092,b2:9092");
        assert_eq!(c.compatibility, CompatibilityLevel::FullTransitive);
        assert_eq!(unknown, vec!["something.else".to_string()]);
        assert_eq!(c.http.idle_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(c.http.max_connections, None);
        assert_eq!(c.http.header_read_timeout, tributary_http::Limits::default().header_read_timeout);
        assert_eq!(c.advertised_host(), "localhost");
        assert!(RegistryConfig::from_properties(&BTreeMap::new()).is_err());
        assert!(parse_listener("https://x:1").is_err());
        let mut bad = props.clone();
        bad.insert("header.read.timeout.ms".to_string(), "soon".to_string());
        let err = RegistryConfig::from_properties(&bad).expect_err("not a number");
        assert!(err.contains("header.read.timeout.ms"), "{err}");
    }
}
