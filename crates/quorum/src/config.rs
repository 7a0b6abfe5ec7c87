//! Kafka's KRaft settings, read from the broker's properties and checked:
//!
//! | key | form |
//! |---|---|
//! | `process.roles` | `broker`, `controller` or `broker,controller` |
//! | `node.id` | a non-negative integer |
//! | `controller.quorum.voters` | static voters: `1@host:9093,2@host:9093` (`[::1]` for IPv6) |
//! | `controller.quorum.bootstrap.servers` | dynamic voters: `host:9093,host:9093` |
//! | `controller.listener.names` | listener names, e.g. `CONTROLLER` |
//! | `controller.quorum.fetch.timeout.ms`, `.election.timeout.ms`, `.election.backoff.max.ms`, `.retry.backoff.ms` | milliseconds ([`Timing`], which says what each does) |
//!
//! Every error is one line naming the key and the problem. What one node's
//! settings cannot show (voters that differ between nodes, a data
//! directory of another cluster) is caught at run time: every controller
//! message carries the cluster id and the normalized static voters, and a
//! node refuses messages that do not match its own (`quorum.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::quorum::Voters;
use crate::timing::Timing;
use crate::types::NodeId;

/// Default controller listener port.
pub const CONTROLLER_PORT_DEFAULT: u16 = 9093;

/// A process role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Serves clients.
    Broker,
    /// Takes part in the metadata quorum as a voter.
    Controller,
}

/// `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Endpoint {
    /// `host:port`, with brackets around an IPv6 address.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How the quorum's voters are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumVoters {
    /// `controller.quorum.voters`.
    Static(BTreeMap<NodeId, Endpoint>),
    /// `controller.quorum.bootstrap.servers`.
    Bootstrap(Vec<Endpoint>),
}

/// The KRaft settings of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KraftConfig {
    /// `process.roles`.
    pub roles: BTreeSet<Role>,
    /// `node.id`.
    pub node_id: NodeId,
    /// The voters.
    pub voters: QuorumVoters,
    /// `controller.listener.names`.
    pub controller_listener_names: Vec<String>,
    /// `controller.quorum.*.ms`: the quorum's timeouts.
    pub timing: Timing,
}

/// A settings error: one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(message: String) -> Result<T, ConfigError> {
    Err(ConfigError(message))
}

fn list(value: &str) -> Vec<&str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
}

/// Parses `host:port` (`[v6]:port`).
pub fn parse_endpoint(key: &str, entry: &str) -> Result<Endpoint, ConfigError> {
    let Some((host, port)) = entry.rsplit_once(':') else {
        return err(format!("{key}: {entry:?} is not host:port"));
    };
    let host = match host.strip_prefix('[') {
        Some(inner) => match inner.strip_suffix(']') {
            Some(v6) if v6.contains(':') => v6,
            _ => return err(format!("{key}: {entry:?} has a malformed [IPv6] host")),
        },
        None if host.contains(':') => return err(format!("{key}: {entry:?} needs brackets around an IPv6 host")),
        None => host,
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return err(format!("{key}: {entry:?} has no valid host"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(Endpoint { host: host.to_string(), port }),
        _ => err(format!("{key}: {entry:?} has an invalid port {port:?} (1-65535)")),
    }
}

/// Reads Kafka's `controller.quorum.*.ms` timeouts (unset: [`Timing`]'s
/// defaults) and checks them together.
pub fn parse_timing(props: &BTreeMap<String, String>) -> Result<Timing, ConfigError> {
    let defaults = Timing::default();
    let ms = |key: &str, default: Duration| -> Result<Duration, ConfigError> {
        match props.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .map(|ms| Duration::from_millis(u64::from(ms)))
                .map_err(|_| ConfigError(format!("{key}: {v:?} is not a number of milliseconds"))),
        }
    };
    let timing = Timing {
        fetch_timeout: ms("controller.quorum.fetch.timeout.ms", defaults.fetch_timeout)?,
        election_timeout: ms("controller.quorum.election.timeout.ms", defaults.election_timeout)?,
        election_backoff_max: ms("controller.quorum.election.backoff.max.ms", defaults.election_backoff_max)?,
        retry_backoff: ms("controller.quorum.retry.backoff.ms", defaults.retry_backoff)?,
        propose_timeout: defaults.propose_timeout,
    };
    timing.validate().map_err(ConfigError)?;
    Ok(timing)
}

/// Parses `controller.quorum.voters` (`id@host:port,...`).
pub fn parse_voters(value: &str) -> Result<BTreeMap<NodeId, Endpoint>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    let mut voters = BTreeMap::new();
    let mut endpoints = BTreeSet::new();
    for entry in list(value) {
        let Some((id, endpoint)) = entry.split_once('@') else {
            return err(format!("{KEY}: {entry:?} is not id@host:port"));
        };
        let id: NodeId = match id.trim().parse() {
            Ok(id) if id >= 0 => id,
            _ => return err(format!("{KEY}: {entry:?} has an invalid node id {id:?}")),
        };
        let endpoint = parse_endpoint(KEY, endpoint.trim())?;
        if !endpoints.insert(endpoint.clone()) {
            return err(format!("{KEY}: {} is listed for two voters", endpoint.address()));
        }
        if voters.insert(id, endpoint).is_some() {
            return err(format!("{KEY}: node id {id} is listed twice"));
        }
    }
    if voters.is_empty() {
        return err(format!("{KEY} is empty"));
    }
    Ok(voters)
}

impl KraftConfig {
    /// Reads the KRaft settings from `props`; `Ok(None)` when
    /// `process.roles` is absent (a single node, no quorum).
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Option<KraftConfig>, ConfigError> {
        let Some(roles_value) = props.get("process.roles") else {
            return Ok(None);
        };
        let mut roles = BTreeSet::new();
        for role in list(roles_value) {
            match role {
                "broker" => roles.insert(Role::Broker),
                "controller" => roles.insert(Role::Controller),
                other => return err(format!("process.roles: unknown role {other:?} (broker, controller)")),
            };
        }
        if roles.is_empty() {
            return err("process.roles is empty (broker, controller or broker,controller)".into());
        }
        let node_id: NodeId = match props.get("node.id").map(|s| s.trim().parse::<NodeId>()) {
            None => return err("node.id is required when process.roles is set".into()),
            Some(Ok(id)) if id >= 0 => id,
            Some(_) => return err(format!("node.id {:?} is not a non-negative integer", props["node.id"])),
        };
        let static_voters = props.get("controller.quorum.voters").filter(|v| !list(v).is_empty());
        let bootstrap = props.get("controller.quorum.bootstrap.servers").filter(|v| !list(v).is_empty());
        let voters = match (static_voters, bootstrap) {
            (Some(_), Some(_)) => {
                return err("set controller.quorum.voters or controller.quorum.bootstrap.servers, not both".into());
            }
            (None, None) => {
                return err("controller.quorum.voters or controller.quorum.bootstrap.servers is required".into());
            }
            (Some(v), None) => QuorumVoters::Static(parse_voters(v)?),
            (None, Some(b)) => QuorumVoters::Bootstrap(
                list(b)
                    .into_iter()
                    .map(|e| parse_endpoint("controller.quorum.bootstrap.servers", e))
                    .collect::<Result<_, _>>()?,
            ),
        };
        if let QuorumVoters::Static(v) = &voters {
            let ids = v.keys().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
            if roles.contains(&Role::Controller) && !v.contains_key(&node_id) {
                return err(format!(
                    "node.id {node_id} has the controller role but is not in controller.quorum.voters ({ids})"
                ));
            }
            if !roles.contains(&Role::Controller) && v.contains_key(&node_id) {
                return err(format!(
                    "node.id {node_id} is in controller.quorum.voters ({ids}) but process.roles has no controller role"
                ));
            }
        }
        let controller_listener_names: Vec<String> = props
            .get("controller.listener.names")
            .map(|v| list(v).into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        if controller_listener_names.is_empty() {
            return err("controller.listener.names is required when process.roles is set (e.g. CONTROLLER)".into());
        }
        let timing = parse_timing(props)?;
        Ok(Some(KraftConfig { roles, node_id, voters, controller_listener_names, timing }))
    }

    /// Whether this node votes.
    pub fn is_controller(&self) -> bool {
        self.roles.contains(&Role::Controller)
    }

    /// The quorum's view of the voters. With bootstrap servers,
    /// `initial_voters` is the first voter set the data directory was
    /// formatted with (`storage format --standalone` or
    /// `--initial-controllers`; empty: join an existing quorum).
    pub fn quorum_voters(&self, initial_voters: BTreeMap<NodeId, String>) -> Voters {
        match &self.voters {
            QuorumVoters::Static(v) => Voters::Static(v.iter().map(|(id, e)| (*id, e.address())).collect()),
            QuorumVoters::Bootstrap(servers) => {
                let bootstrap_servers: Vec<String> = servers.iter().map(Endpoint::address).collect();
                Voters::Dynamic { bootstrap_servers, initial_voters }
            }
        }
    }

    /// For a data directory never formatted: a controller whose own
    /// listener is the only bootstrap server starts a quorum of itself, as
    /// if formatted with `--standalone`; any other node joins.
    pub fn unformatted_initial_voters(&self, own_listener: &str) -> BTreeMap<NodeId, String> {
        match &self.voters {
            QuorumVoters::Bootstrap(servers)
                if self.is_controller() && servers.len() == 1 && servers[0].address() == own_listener =>
            {
                BTreeMap::from([(self.node_id, own_listener.to_string())])
            }
            _ => BTreeMap::new(),
        }
    }
}

/// Parses Kafka's `--initial-controllers` value: `id@host:port:directory-id`
/// entries (the directory id, a base64url UUID, may be left out; it is not
/// modelled), comma-separated.
pub fn parse_initial_controllers(value: &str) -> Result<BTreeMap<NodeId, Endpoint>, ConfigError> {
    const KEY: &str = "--initial-controllers";
    let mut out = BTreeMap::new();
    for entry in list(value) {
        let Some((id, rest)) = entry.split_once('@') else {
            return err(format!("{KEY}: {entry:?} is not id@host:port:directory-id"));
        };
        let id: NodeId = match id.trim().parse() {
            Ok(id) if id >= 0 => id,
            _ => return err(format!("{KEY}: {entry:?} has an invalid node id {id:?}")),
        };
        // host:port or host:port:dirid ([v6]:port:dirid): the directory id
        // never contains ':' and is not all digits.
        let endpoint = match rest.rsplit_once(':') {
            Some((head, tail)) if !tail.is_empty() && !tail.chars().all(|c| c.is_ascii_digit()) => {
                if !tail.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return err(format!("{KEY}: {entry:?} has an invalid directory id {tail:?}"));
                }
                head
            }
            _ => rest,
        };
        let endpoint = parse_endpoint(KEY, endpoint.trim())?;
        if out.insert(id, endpoint).is_some() {
            return err(format!("{KEY}: node id {id} is listed twice"));
        }
    }
    if out.is_empty() {
        return err(format!("{KEY} is empty"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        KraftConfig::from_properties(&props(pairs)).expect_err("should be refused").0
    }

    const BASE: [(&str, &str); 3] =
        [("process.roles", "broker,controller"), ("node.id", "1"), ("controller.listener.names", "CONTROLLER")];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = BASE.to_vec();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn static_voters_parse() {
        let config = KraftConfig::from_properties(&props(&with(&[(
            "controller.quorum.voters",
            "1@ctl-1:9093, 2@10.0.0.2:9093,3@[::1]:9094",
        )])))
        .expect("test value")
        .expect("test value");
        assert!(config.is_controller() && config.roles.contains(&Role::Broker));
        let QuorumVoters::Static(v) = &config.voters else { panic!("static") };
        assert_eq!(v[&3], Endpoint { host: "::1".into(), port: 9094 });
        assert_eq!(
            config.quorum_voters(BTreeMap::new()),
            Voters::Static(BTreeMap::from([
                (1, "ctl-1:9093".to_string()),
                (2, "10.0.0.2:9093".to_string()),
                (3, "[::1]:9094".to_string())
            ]))
        );
    }

    #[test]
    fn no_roles_means_no_quorum() {
        assert_eq!(KraftConfig::from_properties(&props(&[("node.id", "1")])).expect("test value"), None);
    }

    #[test]
    fn a_controller_missing_from_its_own_voters_is_named() {
        let e = error(&with(&[("controller.quorum.voters", "2@a:9093,3@b:9093")]));
        assert_eq!(e, "node.id 1 has the controller role but is not in controller.quorum.voters (2,3)");
    }

    #[test]
    fn a_broker_only_node_listed_as_voter_is_named() {
        let mut p = with(&[("controller.quorum.voters", "1@a:9093")]);
        p[0] = ("process.roles", "broker");
        assert!(error(&p).contains("has no controller role"), "{}", error(&p));
    }

    #[test]
    fn duplicate_and_malformed_voters_are_named() {
        assert_eq!(
            error(&with(&[("controller.quorum.voters", "1@a:9093,1@b:9093")])),
            "controller.quorum.voters: node id 1 is listed twice"
        );
        assert!(error(&with(&[("controller.quorum.voters", "1@a:9093,2@a:9093")])).contains("listed for two voters"));
        for (value, says) in [
            ("1-a:9093", "is not id@host:port"),
            ("x@a:9093", "invalid node id"),
            ("1@a", "is not host:port"),
            ("1@a:0", "invalid port"),
            ("1@a:99999", "invalid port"),
            ("1@::1:9093", "needs brackets"),
            ("1@[::1:9093", "malformed [IPv6]"),
            ("1@:9093", "no valid host"),
        ] {
            let e = error(&with(&[("controller.quorum.voters", value)]));
            assert!(e.starts_with("controller.quorum.voters: ") && e.contains(says), "{value}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn roles_node_id_listeners_and_voter_source_are_required() {
        assert!(error(&[("process.roles", "broker,tamer")]).contains("unknown role \"tamer\""));
        assert!(error(&[("process.roles", " , ")]).contains("process.roles is empty"));
        assert!(error(&[("process.roles", "broker")]).contains("node.id is required"));
        assert!(error(&[("process.roles", "broker"), ("node.id", "-3")]).contains("not a non-negative integer"));
        assert!(error(&BASE).contains("is required"));
        assert!(
            error(&with(&[
                ("controller.quorum.voters", "1@a:9093"),
                ("controller.quorum.bootstrap.servers", "a:9093")
            ]))
            .contains("not both")
        );
        let no_listener = [("process.roles", "controller"), ("node.id", "1"), ("controller.quorum.voters", "1@a:9093")];
        assert!(error(&no_listener).contains("controller.listener.names is required"));
    }

    #[test]
    fn bootstrap_servers_give_dynamic_voters() {
        let config = KraftConfig::from_properties(&props(&with(&[("controller.quorum.bootstrap.servers", "a:9093")])))
            .expect("test value")
            .expect("test value");
        assert_eq!(config.unformatted_initial_voters("a:9093"), BTreeMap::from([(1, "a:9093".to_string())]));
        assert!(config.unformatted_initial_voters("b:9093").is_empty());
        let initial = BTreeMap::from([(1, "a:9093".to_string()), (2, "b:9093".to_string())]);
        assert_eq!(
            config.quorum_voters(initial.clone()),
            Voters::Dynamic { bootstrap_servers: vec!["a:9093".into()], initial_voters: initial }
        );
        assert!(
            error(&with(&[("controller.quorum.bootstrap.servers", "a:9093,b")]))
                .starts_with("controller.quorum.bootstrap.servers: \"b\"")
        );
    }

    #[test]
    fn quorum_timeouts_take_kafkas_keys() {
        let config = KraftConfig::from_properties(&props(&with(&[("controller.quorum.voters", "1@a:9093")])))
            .expect("test value")
            .expect("test value");
        assert_eq!(config.timing, Timing::default());
        let config = KraftConfig::from_properties(&props(&with(&[
            ("controller.quorum.voters", "1@a:9093"),
            ("controller.quorum.fetch.timeout.ms", "2000"),
            ("controller.quorum.election.timeout.ms", "1000"),
            ("controller.quorum.election.backoff.max.ms", "1000"),
            ("controller.quorum.retry.backoff.ms", " 50 "),
        ])))
        .expect("test value")
        .expect("test value");
        let ms = Duration::from_millis;
        assert_eq!(
            (config.timing.fetch_timeout, config.timing.election_timeout),
            (ms(2000), ms(1000)),
            "{:?}",
            config.timing
        );
        assert_eq!((config.timing.election_backoff_max, config.timing.retry_backoff), (ms(1000), ms(50)));
        assert_eq!(config.timing.heartbeat().as_millis(), 333);
        for (key, value, says) in [
            ("controller.quorum.fetch.timeout.ms", "59", "at least 60"),
            ("controller.quorum.fetch.timeout.ms", "soon", "not a number"),
            ("controller.quorum.election.timeout.ms", "0", "at least 1"),
            ("controller.quorum.retry.backoff.ms", "-1", "not a number"),
        ] {
            let e = error(&with(&[("controller.quorum.voters", "1@a:9093"), (key, value)]));
            assert!(e.starts_with(key) && e.contains(says), "{key}={value}: {e}");
        }
    }

    #[test]
    fn initial_controllers_take_kafkas_form() {
        let parsed =
            parse_initial_controllers("1@a:9093:MvDxzVmcRsaTz33bUuRU6A,2@[::1]:9094:xLa1OaVDQ7-e1tXBO8SWYQ,3@c:9095")
                .expect("valid");
        assert_eq!(parsed[&1], Endpoint { host: "a".into(), port: 9093 });
        assert_eq!(parsed[&2], Endpoint { host: "::1".into(), port: 9094 });
        assert_eq!(parsed[&3], Endpoint { host: "c".into(), port: 9095 });
        for (value, says) in [
            ("", "is empty"),
            ("a:9093", "is not id@host"),
            ("x@a:9093", "invalid node id"),
            ("1@a:9093,1@b:9093", "listed twice"),
            ("1@a:9093:bad!id", "invalid directory id"),
            ("1@a:0:MvDxzVmcRsaTz33bUuRU6A", "invalid port"),
        ] {
            let e = parse_initial_controllers(value).expect_err(value).0;
            assert!(e.contains(says), "{value}: {e}");
        }
    }
}
