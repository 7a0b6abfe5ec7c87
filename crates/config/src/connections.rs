//! The connection limits of the broker's listeners, typed and checked:
//! `max.connections`, `max.connections.per.ip`,
//! `max.connections.per.ip.overrides`, `max.connection.creation.rate` (all
//! changeable at runtime) and `queued.max.request.bytes` (static).
//!
//! Values are read through a lookup so the same checks serve the static
//! configuration at startup and a dynamic update before it is stored.

use crate::value::split_list;

/// `max.connections`.
pub const MAX_CONNECTIONS: &str = "max.connections";
/// `max.connections.per.ip`.
pub const MAX_CONNECTIONS_PER_IP: &str = "max.connections.per.ip";
/// `max.connections.per.ip.overrides`.
pub const MAX_CONNECTIONS_PER_IP_OVERRIDES: &str = "max.connections.per.ip.overrides";
/// `max.connection.creation.rate`.
pub const MAX_CONNECTION_CREATION_RATE: &str = "max.connection.creation.rate";
/// `queued.max.request.bytes`.
pub const QUEUED_MAX_REQUEST_BYTES: &str = "queued.max.request.bytes";

/// The keys [`ConnectionLimits`] is built from: a change to any of them
/// reconfigures the listeners.
pub const CONNECTION_LIMIT_KEYS: &[&str] =
    &[MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP, MAX_CONNECTIONS_PER_IP_OVERRIDES, MAX_CONNECTION_CREATION_RATE];

/// Kafka's "no limit" for these keys (`Integer.MAX_VALUE`).
pub const UNLIMITED: u32 = i32::MAX as u32;

/// One `host:count` entry of `max.connections.per.ip.overrides`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerIpOverride {
    /// An IP address literal or a host name (resolved by the broker).
    pub host: String,
    /// Connections allowed from that host.
    pub max: u32,
}

/// The connection limits in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections the broker holds at once; the next accept waits for one to close.
    pub max_connections: u32,
    /// Connections one address may hold; the next one is closed right after accept.
    pub max_connections_per_ip: u32,
    /// Per-address exceptions to `max_connections_per_ip`.
    pub per_ip_overrides: Vec<PerIpOverride>,
    /// New connections per second, broker-wide.
    pub max_connection_creation_rate: u32,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: UNLIMITED,
            max_connections_per_ip: UNLIMITED,
            per_ip_overrides: Vec::new(),
            max_connection_creation_rate: UNLIMITED,
        }
    }
}

impl ConnectionLimits {
    /// Builds the limits from effective values (`lookup` returns the value a
    /// key has, or `None` for its default). The error names the key and is
    /// what a client sees with INVALID_CONFIG.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ConnectionLimits, String> {
        let count = |key: &str| -> Result<u32, String> {
            match lookup(key) {
                None => Ok(UNLIMITED),
                Some(v) => parse_count(key, &v),
            }
        };
        let per_ip_overrides = match lookup(MAX_CONNECTIONS_PER_IP_OVERRIDES) {
            Some(v) => parse_per_ip_overrides(&v)?,
            None => Vec::new(),
        };
        let limits = ConnectionLimits {
            max_connections: count(MAX_CONNECTIONS)?,
            max_connections_per_ip: count(MAX_CONNECTIONS_PER_IP)?,
            per_ip_overrides,
            max_connection_creation_rate: count(MAX_CONNECTION_CREATION_RATE)?,
        };
        if limits.max_connections_per_ip == 0 && limits.per_ip_overrides.is_empty() {
            return Err(format!(
                "{MAX_CONNECTIONS_PER_IP} can be set to zero only if {MAX_CONNECTIONS_PER_IP_OVERRIDES} is set"
            ));
        }
        Ok(limits)
    }
}

fn parse_count(key: &str, value: &str) -> Result<u32, String> {
    let v = value.trim();
    match v.parse::<i64>() {
        Ok(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(n as u32),
        Ok(_) => Err(format!("Invalid value {v} for configuration {key}: Value must be at least 0")),
        Err(_) => Err(format!("Invalid value {v} for configuration {key}: Not a number of type INT")),
    }
}

/// Parses `host:count,host:count` (IPv6 literals may be bracketed:
/// `[::1]:10`, or bare: `::1:10`, the count being after the last colon).
pub fn parse_per_ip_overrides(value: &str) -> Result<Vec<PerIpOverride>, String> {
    let key = MAX_CONNECTIONS_PER_IP_OVERRIDES;
    let mut out: Vec<PerIpOverride> = Vec::new();
    for item in split_list(value) {
        let (host, count) = item.rsplit_once(':').ok_or_else(|| {
            format!(
                "Invalid value {item} for configuration {key}: entries must look like host:count, e.g. 127.0.0.1:200"
            )
        })?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if !valid_host(host) {
            return Err(format!("{key} contains invalid addresses : {host}"));
        }
        let max = parse_count(key, count)?;
        if out.iter().any(|o| o.host.eq_ignore_ascii_case(host)) {
            return Err(format!("Invalid value {value} for configuration {key}: {host} appears twice"));
        }
        out.push(PerIpOverride { host: host.to_string(), max });
    }
    Ok(out)
}

/// An IP literal, or a host name made of letters, digits, '-' and '.'.
fn valid_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with(['-', '.'])
}

/// `queued.max.request.bytes` as a budget: `None` (unbounded) for 0 or
/// less, as Kafka treats them; otherwise at least `socket.request.max.bytes`,
/// as Kafka requires.
pub fn request_bytes_budget(
    queued_max_request_bytes: i64,
    socket_request_max_bytes: usize,
) -> Result<Option<u64>, String> {
    if queued_max_request_bytes <= 0 {
        return Ok(None);
    }
    if (queued_max_request_bytes as u64) < socket_request_max_bytes as u64 {
        return Err(format!(
            "{QUEUED_MAX_REQUEST_BYTES} ({queued_max_request_bytes}) must be larger or equal to socket.request.max.bytes \
             ({socket_request_max_bytes})"
        ));
    }
    Ok(Some(queued_max_request_bytes as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn limits(pairs: &[(&str, &str)]) -> Result<ConnectionLimits, String> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ConnectionLimits::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_unlimited() {
        assert_eq!(limits(&[]).expect("defaults"), ConnectionLimits::default());
    }

    #[test]
    fn overrides_parse_ipv4_ipv6_and_names() {
        let l = limits(&[
            (MAX_CONNECTIONS_PER_IP, "5"),
            (MAX_CONNECTIONS_PER_IP_OVERRIDES, "127.0.0.1:60, [::1]:7,::2:8 ,broker-1.example:9"),
        ])
        .expect("valid");
        let hosts: Vec<(&str, u32)> = l.per_ip_overrides.iter().map(|o| (o.host.as_str(), o.max)).collect();
        assert_eq!(hosts, vec![("127.0.0.1", 60), ("::1", 7), ("::2", 8), ("broker-1.example", 9)]);
        assert_eq!(l.max_connections_per_ip, 5);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (pairs, needle) in [
            (vec![(MAX_CONNECTIONS, "-1")], MAX_CONNECTIONS),
            (vec![(MAX_CONNECTIONS, "many")], MAX_CONNECTIONS),
            (vec![(MAX_CONNECTIONS_PER_IP_OVERRIDES, "127.0.0.1")], MAX_CONNECTIONS_PER_IP_OVERRIDES),
            (vec![(MAX_CONNECTIONS_PER_IP_OVERRIDES, "bad host!:3")], MAX_CONNECTIONS_PER_IP_OVERRIDES),
            (vec![(MAX_CONNECTIONS_PER_IP_OVERRIDES, "a:1,A:2")], MAX_CONNECTIONS_PER_IP_OVERRIDES),
            (vec![(MAX_CONNECTIONS_PER_IP_OVERRIDES, "a:-2")], MAX_CONNECTIONS_PER_IP_OVERRIDES),
            (vec![(MAX_CONNECTIONS_PER_IP, "0")], MAX_CONNECTIONS_PER_IP_OVERRIDES),
        ] {
            let err = limits(&pairs).expect_err("invalid");
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
        limits(&[(MAX_CONNECTIONS_PER_IP, "0"), (MAX_CONNECTIONS_PER_IP_OVERRIDES, "10.0.0.1:4")])
            .expect("zero with overrides is allowed");
    }

    #[test]
    fn request_budget_follows_kafka() {
        assert_eq!(request_bytes_budget(-1, 100), Ok(None));
        assert_eq!(request_bytes_budget(0, 100), Ok(None));
        assert_eq!(request_bytes_budget(100, 100), Ok(Some(100)));
        assert!(request_bytes_budget(99, 100).expect_err("too small").contains("socket.request.max.bytes"));
    }
}
