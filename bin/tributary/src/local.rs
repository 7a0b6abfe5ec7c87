//! The files `tributary start` keeps in its data directory, beside the
//! broker's own, and what they tell the other platform commands
//! (`status`, `stop`, `logs`, `destroy`):
//!
//! | file | written by | holds |
//! |---|---|---|
//! | `tributary.properties` | `start`, before the services start | host, ports and broker config (the dev defaults, and whatever a person added), read back by every `start`; `--override` applies on top for one start only |
//! | `tributary-run.json` | the running platform | pid, state, services with ports and URLs, start time; removed at a clean stop |
//! | `logs/tributary.log` | the running platform | its log, each line tagged with the service that wrote it |
//! | `.lock` | the broker | an advisory lock (`flock`) held while a broker uses the directory |
//! | `node-N/` | `start --nodes N` | one cluster node's own data directory (`server.properties` generated from `tributary.properties` on every start, its `.lock`, `meta.properties`, topics, `__cluster_metadata`); the root `.lock` is then held by the process that supervises the nodes |
//!
//! Whether a platform runs is decided by the lock, not by the run file: a
//! run file left by a killed process names a pid that may since belong to
//! someone else, while the lock goes away with the process that held it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tributary_config::properties::{format_property, parse_properties};

/// Settings of the platform in a data directory.
pub const PROPERTIES_FILE: &str = "tributary.properties";
/// The running platform's description.
pub const RUN_FILE: &str = "tributary-run.json";
/// The broker's lock file.
const LOCK_FILE: &str = ".lock";
/// Where the platform's log goes, under the data directory.
pub const LOG_DIR: &str = "logs";
/// The platform's log file, in [`LOG_DIR`].
pub const LOG_FILE: &str = "tributary.log";

/// Where `start` listens when neither a flag nor the data directory says otherwise.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Kafka's port by default.
pub const DEFAULT_KAFKA_PORT: u16 = 9092;
/// The schema registry's port by default.
pub const DEFAULT_SCHEMA_REGISTRY_PORT: u16 = 8081;
/// The REST proxy's port by default.
pub const DEFAULT_REST_PROXY_PORT: u16 = 8082;

const KEY_HOST: &str = "tributary.start.host";
const KEY_KAFKA_PORT: &str = "tributary.start.kafka.port";
const KEY_REGISTRY_PORT: &str = "tributary.start.schema.registry.port";
const KEY_PROXY_PORT: &str = "tributary.start.rest.proxy.port";
const KEY_NODES: &str = "tributary.start.nodes";
const KEY_NODE_KAFKA_PORTS: &str = "tributary.start.nodes.kafka.ports";
const KEY_NODE_CONTROLLER_PORTS: &str = "tributary.start.nodes.controller.ports";
/// The most nodes `start --nodes` runs on one machine.
pub const MAX_NODES: u16 = 9;
/// The name of the controller listener of a local cluster's nodes.
pub const CONTROLLER_LISTENER: &str = "CONTROLLER";
const START_PREFIX: &str = "tributary.start.";

/// The services of the local platform, in the order they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    /// The Kafka broker.
    Broker,
    /// The schema registry.
    SchemaRegistry,
    /// The REST proxy.
    RestProxy,
}

impl Service {
    /// Every service, in start order.
    pub const ALL: [Service; 3] = [Service::Broker, Service::SchemaRegistry, Service::RestProxy];

    /// The name used in output, in log lines and by `tributary logs`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Broker => "broker",
            Service::SchemaRegistry => "schema-registry",
            Service::RestProxy => "rest-proxy",
        }
    }

    /// The `tributary start` flag that moves its port.
    pub fn port_flag(self) -> &'static str {
        match self {
            Service::Broker => "--kafka-port",
            Service::SchemaRegistry => "--schema-registry-port",
            Service::RestProxy => "--rest-proxy-port",
        }
    }

    /// What a person calls it.
    pub fn title(self) -> &'static str {
        match self {
            Service::Broker => "Kafka",
            Service::SchemaRegistry => "the schema registry",
            Service::RestProxy => "the REST proxy",
        }
    }

    /// How a client reaches it at `host:port`: a bootstrap address for
    /// Kafka, a URL for the HTTP services.
    pub fn url(self, host: &str, port: u16) -> String {
        let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        match self {
            Service::Broker => format!("{host}:{port}"),
            Service::SchemaRegistry | Service::RestProxy => format!("http://{host}:{port}"),
        }
    }
}

/// Broker config `tributary start` uses unless told otherwise: one node, so
/// replication factors of 1, topics created on first use, and groups that
/// rebalance at once.
pub fn dev_defaults() -> BTreeMap<String, String> {
    dev_defaults_for(1)
}

/// The broker config of a local platform of `nodes` nodes: on one node,
/// replication factors of 1; on a cluster, Kafka's production defaults as
/// far as the node count allows: three replicas of every new topic and of
/// the internal topics, and acks=all needing two of them in sync (so a
/// write acknowledged survives the loss of any one broker).
pub fn dev_defaults_for(nodes: u16) -> BTreeMap<String, String> {
    let replicas = nodes.clamp(1, 3).to_string();
    let min_isr = if nodes >= 3 { "2" } else { "1" };
    [
        ("auto.create.topics.enable", "true"),
        ("default.replication.factor", replicas.as_str()),
        ("min.insync.replicas", min_isr),
        ("offsets.topic.replication.factor", replicas.as_str()),
        ("transaction.state.log.replication.factor", replicas.as_str()),
        ("transaction.state.log.min.isr", min_isr),
        ("group.initial.rebalance.delay.ms", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The settings of the platform in one data directory, as
/// `tributary.properties` stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Host to listen on and advertise.
    pub host: String,
    /// Kafka's port (0 before a first start that asked for any free port).
    pub kafka_port: u16,
    /// The schema registry's port.
    pub schema_registry_port: u16,
    /// The REST proxy's port.
    pub rest_proxy_port: u16,
    /// How many broker processes: 1 runs the broker in the platform's
    /// process, more run a local KRaft cluster (`start --nodes`).
    pub nodes: u16,
    /// With more than one node: each node's (Kafka, controller) ports, once
    /// known (empty before a first start: derived from `kafka_port`).
    pub node_ports: Vec<(u16, u16)>,
    /// Broker config in `server.properties` keys (`listeners` and `log.dirs`
    /// come from the host, port and directory, unless set here).
    pub broker: BTreeMap<String, String>,
    /// `--override`s of this start: applied over `broker`, never stored (as
    /// Kafka's own `kafka-server-start.sh --override` leaves server.properties alone).
    pub overrides: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            host: DEFAULT_HOST.to_string(),
            kafka_port: DEFAULT_KAFKA_PORT,
            schema_registry_port: DEFAULT_SCHEMA_REGISTRY_PORT,
            rest_proxy_port: DEFAULT_REST_PROXY_PORT,
            nodes: 1,
            node_ports: Vec::new(),
            broker: dev_defaults(),
            overrides: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// Settings from the key/value pairs of a `tributary.properties`; keys
    /// missing there take their defaults (the broker's dev defaults are not
    /// added back: the file is the whole broker config).
    pub fn from_properties(mut props: BTreeMap<String, String>) -> Result<Settings, String> {
        let port = |props: &BTreeMap<String, String>, key: &str, default: u16| -> Result<u16, String> {
            match props.get(key) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| format!("{key}={v} is not a port number")),
            }
        };
        let settings = Settings {
            host: props.get(KEY_HOST).map_or_else(|| DEFAULT_HOST.to_string(), |h| h.trim().to_string()),
            kafka_port: port(&props, KEY_KAFKA_PORT, DEFAULT_KAFKA_PORT)?,
            schema_registry_port: port(&props, KEY_REGISTRY_PORT, DEFAULT_SCHEMA_REGISTRY_PORT)?,
            rest_proxy_port: port(&props, KEY_PROXY_PORT, DEFAULT_REST_PROXY_PORT)?,
            nodes: match props.get(KEY_NODES) {
                None => 1,
                Some(v) => v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_NODES).contains(n))
                    .ok_or_else(|| format!("{KEY_NODES}={v} is not a node count from 1 to {MAX_NODES}"))?,
            },
            node_ports: Vec::new(),
            broker: BTreeMap::new(),
            overrides: BTreeMap::new(),
        };
        let list = |key: &str| -> Result<Vec<u16>, String> {
            match props.get(key) {
                None => Ok(Vec::new()),
                Some(v) => v
                    .split(',')
                    .map(|p| p.trim().parse().map_err(|_| format!("{key}={v} is not a list of port numbers")))
                    .collect(),
            }
        };
        let (kafka, controller) = (list(KEY_NODE_KAFKA_PORTS)?, list(KEY_NODE_CONTROLLER_PORTS)?);
        let node_ports = if kafka.len() == usize::from(settings.nodes) && controller.len() == kafka.len() {
            kafka.into_iter().zip(controller).collect()
        } else {
            Vec::new()
        };
        props.retain(|k, _| !k.starts_with(START_PREFIX));
        Ok(Settings { broker: props, node_ports, ..settings })
    }

    /// Applies `--override key=value` items to the broker config of this start.
    pub fn apply_overrides(&mut self, overrides: &[String]) -> Result<(), String> {
        for item in overrides {
            let (k, v) =
                item.split_once('=').ok_or_else(|| format!("override {item:?} is not of the form key=value"))?;
            let key = k.trim();
            if key.is_empty() {
                return Err(format!("override {item:?} has no key"));
            }
            if key.starts_with(START_PREFIX) {
                return Err(format!("{key} is set with the flags of `tributary start`, not with --override"));
            }
            self.overrides.insert(key.to_string(), v.trim().to_string());
        }
        Ok(())
    }

    /// The broker's properties for `data_dir`: the stored config and this
    /// start's overrides, with `listeners` and `log.dirs` filled in unless
    /// they set them.
    pub fn broker_properties(&self, data_dir: &Path) -> BTreeMap<String, String> {
        let mut props = self.broker.clone();
        props.extend(self.overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        props.entry("listeners".to_string()).or_insert_with(|| format!("PLAINTEXT://{host}:{}", self.kafka_port));
        props.entry("log.dirs".to_string()).or_insert_with(|| data_dir.display().to_string());
        props
    }

    /// Each node's (Kafka, controller) ports: the stored ones, else from
    /// `kafka_port` on (node 1 on it and the next, node 2 two further, ...),
    /// else 0 (any free port) for every one.
    pub fn node_ports(&self) -> Vec<(u16, u16)> {
        if self.node_ports.len() == usize::from(self.nodes) {
            return self.node_ports.clone();
        }
        (0..self.nodes)
            .map(|i| match self.kafka_port {
                0 => (0, 0),
                base => {
                    let kafka = base.saturating_add(2 * i);
                    (kafka, kafka.saturating_add(1))
                }
            })
            .collect()
    }

    /// `node-<id>` under the platform's data directory.
    pub fn node_dir(data_dir: &Path, node_id: u16) -> PathBuf {
        data_dir.join(format!("node-{node_id}"))
    }

    /// The `server.properties` of node `node_id` (from 1) of a local cluster
    /// whose nodes listen on `ports`: the stored broker config with each
    /// node's KRaft keys over it (its id, both roles, its listeners, the
    /// voters, its own directory). Overrides are not in it: they go to the
    /// node's process for one start.
    pub fn node_properties(&self, data_dir: &Path, node_id: u16, ports: &[(u16, u16)]) -> BTreeMap<String, String> {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let (kafka, controller) = ports.get(usize::from(node_id) - 1).copied().unwrap_or((0, 0));
        let voters: Vec<String> = ports.iter().zip(1..).map(|((_, c), id)| format!("{id}@{host}:{c}")).collect();
        let mut props = self.broker.clone();
        props.remove("advertised.listeners");
        for (key, value) in [
            ("process.roles", "broker,controller".to_string()),
            ("node.id", node_id.to_string()),
            ("controller.quorum.voters", voters.join(",")),
            ("listeners", format!("PLAINTEXT://{host}:{kafka},{CONTROLLER_LISTENER}://{host}:{controller}")),
            ("controller.listener.names", CONTROLLER_LISTENER.to_string()),
            ("log.dirs", Settings::node_dir(data_dir, node_id).display().to_string()),
        ] {
            props.insert(key.to_string(), value);
        }
        props
    }

    /// The text of `tributary.properties`.
    pub fn to_properties_text(&self) -> String {
        let mut text = String::from(
            "# Settings of the Tributary platform in this data directory, in Kafka's server.properties\n\
             # format. `tributary start` wrote them on its first start here and reads them back on\n\
             # every start: ports and --host given to a later start update them; --override applies\n\
             # to that one start only (as with Kafka's kafka-server-start.sh), so a setting meant to\n\
             # stay belongs here.\n\
             # Edit this file while the platform is stopped; delete a line to get the default back.\n\
             #\n\
             # Where the services listen (tributary start --host, --kafka-port,\n\
             # --schema-registry-port, --rest-proxy-port).\n",
        );
        for (key, value) in [
            (KEY_HOST, self.host.clone()),
            (KEY_KAFKA_PORT, self.kafka_port.to_string()),
            (KEY_REGISTRY_PORT, self.schema_registry_port.to_string()),
            (KEY_PROXY_PORT, self.rest_proxy_port.to_string()),
        ] {
            text.push_str(&format_property(key, &value));
            text.push('\n');
        }
        if self.nodes > 1 {
            text.push_str(
                "#\n# A local cluster of this many nodes (tributary start --nodes), each node's Kafka and\n\
                 # controller ports; every node's server.properties is made from this file on each start.\n",
            );
            let ports = self.node_ports();
            let join = |f: fn(&(u16, u16)) -> u16| ports.iter().map(|p| f(p).to_string()).collect::<Vec<_>>().join(",");
            for (key, value) in [
                (KEY_NODES, self.nodes.to_string()),
                (KEY_NODE_KAFKA_PORTS, join(|p| p.0)),
                (KEY_NODE_CONTROLLER_PORTS, join(|p| p.1)),
            ] {
                text.push_str(&format_property(key, &value));
                text.push('\n');
            }
        }
        text.push_str("#\n# Broker config: the development defaults, and what you add.\n");
        for (key, value) in &self.broker {
            text.push_str(&format_property(key, value));
            text.push('\n');
        }
        text
    }

    /// The settings stored in `data_dir`, or `None` when it has none yet.
    pub fn load(data_dir: &Path) -> Result<Option<Settings>, String> {
        let path = data_dir.join(PROPERTIES_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Settings::from_properties(parse_properties(&text))
                .map(Some)
                .map_err(|e| format!("{}: {e} (fix or delete the line)", path.display())),
            // No directory (yet), or not a directory: whoever creates it says why it cannot.
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Stores the settings in `data_dir` (written whole, then renamed into place).
    pub fn save(&self, data_dir: &Path) -> io::Result<()> {
        write_atomically(&data_dir.join(PROPERTIES_FILE), self.to_properties_text().as_bytes())
    }
}

/// Whether the platform is still starting or serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Some services are not up yet.
    Starting,
    /// Every service is up.
    Running,
}

/// One service of a running platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunService {
    /// Which service.
    pub service: Service,
    /// The address a client connects to.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Bootstrap address (Kafka) or URL (HTTP services).
    pub url: String,
    /// A node of a local cluster (`start --nodes`): its node id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i32>,
    /// A node of a local cluster: its own process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// A node of a local cluster: its controller listener, `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// A node of a local cluster: its data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
}

impl RunService {
    /// A service at `host:port`, not a cluster node.
    pub fn new(service: Service, host: String, port: u16) -> RunService {
        RunService {
            service,
            url: service.url(&host, port),
            host,
            port,
            node_id: None,
            pid: None,
            controller: None,
            data_dir: None,
        }
    }
}

/// `tributary-run.json`: what runs on a data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFile {
    /// The platform's process.
    pub pid: u32,
    /// Starting or running.
    pub state: RunState,
    /// Started with `--detach`.
    pub detached: bool,
    /// When the process started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// Tributary's version.
    pub version: String,
    /// The data directory, absolute.
    pub data_dir: String,
    /// The log file.
    pub log_file: String,
    /// The Kafka cluster id.
    pub cluster_id: String,
    /// The broker's node id.
    pub node_id: i32,
    /// Each service started so far, in start order.
    pub services: Vec<RunService>,
}

impl RunFile {
    /// The run file of `data_dir`, or `None` when there is none.
    pub fn load(data_dir: &Path) -> Result<Option<RunFile>, String> {
        let path = data_dir.join(RUN_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{} is not a Tributary run file: {e}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes it to `data_dir` (whole, then renamed into place, so a reader
    /// never sees half a file).
    pub fn save(&self, data_dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomically(&data_dir.join(RUN_FILE), &json)
    }

    /// Removes the run file of `data_dir` if it is still `pid`'s (a newer
    /// platform may have written its own meanwhile).
    pub fn remove_if_owned(data_dir: &Path, pid: u32) {
        if let Ok(Some(run)) = RunFile::load(data_dir)
            && run.pid == pid
        {
            let _ = fs::remove_file(data_dir.join(RUN_FILE));
        }
    }

    /// The entry of `service`, if it runs.
    pub fn service(&self, service: Service) -> Option<&RunService> {
        self.services.iter().find(|s| s.service == service)
    }

    /// Every broker's bootstrap address (one, or each node of a cluster).
    pub fn brokers(&self) -> Vec<&str> {
        self.services.iter().filter(|s| s.service == Service::Broker).map(|s| s.url.as_str()).collect()
    }

    /// Kafka's bootstrap list (comma-separated), if a broker runs.
    pub fn bootstrap(&self) -> Option<String> {
        let brokers = self.brokers();
        (!brokers.is_empty()).then(|| brokers.join(","))
    }
}

/// What holds a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirState {
    /// Nothing: no process holds its lock.
    Free,
    /// A process holds the lock; its run file, if it wrote one (a
    /// `tributary broker` or a platform still opening does not).
    InUse(Option<RunFile>),
}

/// Whether a process holds the broker lock of `data_dir`. Takes the lock for
/// an instant when it is free, so never call it in a tight loop beside a
/// starting broker.
pub fn lock_held(data_dir: &Path) -> bool {
    let Ok(file) = File::open(data_dir.join(LOCK_FILE)) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(_) => true,
    }
}

/// Takes the lock of `data_dir` for as long as the returned file is open
/// (the supervisor of a local cluster holds it, as a single broker does).
pub fn hold_lock(data_dir: &Path) -> Result<File, String> {
    let path = data_dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.try_lock().map_err(|_| format!("{} is in use by another Tributary process", data_dir.display()))?;
    Ok(file)
}

/// What holds `data_dir` now.
pub fn dir_state(data_dir: &Path) -> DirState {
    if !lock_held(data_dir) {
        return DirState::Free;
    }
    DirState::InUse(RunFile::load(data_dir).ok().flatten())
}

/// `<data_dir>/logs/tributary.log`.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOG_DIR).join(LOG_FILE)
}

/// Whether a data directory looks like one Tributary made (so `destroy`
/// never deletes an arbitrary folder it was pointed at).
pub fn looks_like_data_dir(data_dir: &Path) -> bool {
    ["meta.properties", PROPERTIES_FILE, LOCK_FILE, RUN_FILE].iter().any(|f| data_dir.join(f).exists())
}

/// Whether a process with this pid exists.
pub fn pid_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        // It exists, but belongs to someone else.
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: rustix::process::Signal) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{pid} is not a process id")))?;
    rustix::process::kill_process(pid, signal).map_err(io::Error::from)
}

/// Creates `dir` (and its parents) and checks that a file can be written in
/// it; the error says which directory and what to do.
pub fn ensure_writable_dir(dir: &Path) -> Result<(), String> {
    let advice = "pick a directory you can write with --data-dir (or TRIBUTARY_DATA_DIR), or fix its permissions";
    fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the data directory {}: {e}; {advice}", dir.display()))?;
    let probe = dir.join(format!(".tributary-write-test-{}", std::process::id()));
    let written = File::create(&probe).and_then(|mut f| f.write_all(b"ok"));
    let _ = fs::remove_file(&probe);
    written.map_err(|e| format!("cannot write in the data directory {}: {e}; {advice}", dir.display()))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `2h05m`, `3m12s`, `42s`: a duration for people.
pub fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_file() -> RunFile {
        RunFile {
            pid: 4242,
            state: RunState::Running,
            detached: true,
            started_at_ms: 1_700_000_000_000,
            version: "0.1.0".to_string(),
            data_dir: "/data".to_string(),
            log_file: "/data/logs/tributary.log".to_string(),
            cluster_id: "abc".to_string(),
            node_id: 1,
            services: vec![
                RunService::new(Service::Broker, "127.0.0.1".to_string(), 9092),
                RunService::new(Service::RestProxy, "127.0.0.1".to_string(), 8082),
            ],
        }
    }

    #[test]
    fn run_file_round_trip_and_ownership() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(RunFile::load(dir.path()), Ok(None));
        let run = run_file();
        run.save(dir.path()).expect("save");
        let back = RunFile::load(dir.path()).expect("load").expect("present");
        assert_eq!(back, run);
        assert_eq!(back.bootstrap().as_deref(), Some("127.0.0.1:9092"));
        assert!(back.service(Service::SchemaRegistry).is_none());
        let text = fs::read_to_string(dir.path().join(RUN_FILE)).expect("read");
        assert!(text.contains("\"service\": \"rest-proxy\"") && text.contains("\"state\": \"running\""), "{text}");
        // A single node's run file has no node fields.
        assert!(text.matches("node_id").count() == 1 && !text.contains("controller"), "{text}");
        // Someone else's pid: left alone; our own: removed.
        RunFile::remove_if_owned(dir.path(), 1);
        assert!(dir.path().join(RUN_FILE).exists());
        RunFile::remove_if_owned(dir.path(), 4242);
        assert!(!dir.path().join(RUN_FILE).exists());
    }

    #[test]
    fn a_damaged_run_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        for junk in [&b""[..], b"{", b"\xff\xfe", b"{\"pid\": \"x\"}", b"[]"] {
            fs::write(dir.path().join(RUN_FILE), junk).expect("write");
            let err = RunFile::load(dir.path()).expect_err("junk must not load");
            assert!(err.contains(RUN_FILE), "{err}");
        }
    }

    #[test]
    fn settings_round_trip_through_the_properties_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Settings::load(dir.path()), Ok(None));
        let mut settings = Settings { kafka_port: 19092, rest_proxy_port: 0, ..Settings::default() };
        settings
            .apply_overrides(&["num.partitions=3".to_string(), " log.retention.ms = 1000 ".to_string()])
            .expect("overrides");
        assert_eq!(settings.broker_properties(dir.path())["log.retention.ms"], "1000");
        settings.save(dir.path()).expect("save");
        let back = Settings::load(dir.path()).expect("load").expect("present");
        // Overrides apply to one start; the rest comes back.
        assert_eq!(back, Settings { overrides: BTreeMap::new(), ..settings });
        assert!(!back.broker.contains_key("num.partitions") && !back.broker.contains_key("log.retention.ms"));
        assert_eq!(back.broker["group.initial.rebalance.delay.ms"], "0");
        // The ports are not broker config.
        assert!(!back.broker.keys().any(|k| k.starts_with("tributary.")));
        let text = fs::read_to_string(dir.path().join(PROPERTIES_FILE)).expect("read");
        assert!(text.contains("tributary.start.kafka.port=19092\n"), "{text}");
        assert!(!text.contains("num.partitions"), "{text}");
        // A line a person added stays, and an override wins over it for one start.
        fs::write(dir.path().join(PROPERTIES_FILE), format!("{text}num.partitions=4\n")).expect("edit");
        let mut later = Settings::load(dir.path()).expect("load").expect("present");
        later.apply_overrides(&["num.partitions=5".to_string()]).expect("override");
        assert_eq!(later.broker_properties(dir.path())["num.partitions"], "5");
        assert_eq!(later.broker["num.partitions"], "4");
    }

    #[test]
    fn hand_edited_files_and_bad_overrides() {
        // Missing lines take defaults; a removed dev default stays removed.
        let s = Settings::from_properties(parse_properties("num.partitions=2\n")).expect("parse");
        assert_eq!((s.host.as_str(), s.kafka_port, s.schema_registry_port), ("127.0.0.1", 9092, 8081));
        assert_eq!(s.broker.len(), 1);
        let err =
            Settings::from_properties(parse_properties("tributary.start.kafka.port=99999\n")).expect_err("not a port");
        assert!(err.contains("tributary.start.kafka.port"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(PROPERTIES_FILE), "tributary.start.rest.proxy.port=x\n").expect("write");
        let err = Settings::load(dir.path()).expect_err("bad port");
        assert!(err.contains(PROPERTIES_FILE), "{err}");
        let mut s = Settings::default();
        assert!(s.apply_overrides(&["no-equals".to_string()]).is_err());
        assert!(s.apply_overrides(&["=v".to_string()]).is_err());
        assert!(s.apply_overrides(&["tributary.start.kafka.port=1".to_string()]).is_err());
    }

    #[test]
    fn a_local_cluster_keeps_its_node_count_and_ports() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings { nodes: 3, ..Settings::default() };
        assert_eq!(s.node_ports(), vec![(9092, 9093), (9094, 9095), (9096, 9097)]);
        let props = s.node_properties(dir.path(), 2, &s.node_ports());
        assert_eq!(props["node.id"], "2");
        assert_eq!(props["process.roles"], "broker,controller");
        assert_eq!(props["controller.quorum.voters"], "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097");
        assert_eq!(props["listeners"], "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095");
        assert_eq!(props["controller.listener.names"], "CONTROLLER");
        assert_eq!(Path::new(&props["log.dirs"]), dir.path().join("node-2"));
        assert_eq!(props["group.initial.rebalance.delay.ms"], "0", "the shared broker config is in every node's");
        assert_eq!(Settings { kafka_port: 0, ..s.clone() }.node_ports(), vec![(0, 0); 3]);

        // The ports picked are stored and come back.
        let picked = Settings { node_ports: vec![(41, 42), (43, 44), (45, 46)], ..s };
        picked.save(dir.path()).expect("save");
        let back = Settings::load(dir.path()).expect("load").expect("present");
        assert_eq!((back.nodes, back.node_ports()), (3, vec![(41, 42), (43, 44), (45, 46)]));
        assert!(!back.broker.keys().any(|k| k.starts_with("tributary.")));

        // A single node's file says nothing about nodes.
        Settings::default().save(dir.path()).expect("save");
        let text = fs::read_to_string(dir.path().join(PROPERTIES_FILE)).expect("read");
        assert!(!text.contains("nodes"), "{text}");
        assert_eq!(Settings::load(dir.path()).expect("load").expect("present").nodes, 1);
        for bad in ["tributary.start.nodes=0\n", "tributary.start.nodes=10\n", "tributary.start.nodes=x\n"] {
            let err = Settings::from_properties(parse_properties(bad)).expect_err(bad);
            assert!(err.contains("tributary.start.nodes"), "{err}");
        }
        let err = Settings::from_properties(parse_properties(
            "tributary.start.nodes=2\ntributary.start.nodes.kafka.ports=1,x\n",
        ))
        .expect_err("not a port");
        assert!(err.contains("kafka.ports"), "{err}");
    }

    #[test]
    fn broker_properties_fill_listeners_and_log_dirs() {
        let s = Settings { host: "::1".to_string(), kafka_port: 0, ..Settings::default() };
        let props = s.broker_properties(Path::new("/d"));
        assert_eq!(props["listeners"], "PLAINTEXT://[::1]:0");
        assert_eq!(props["log.dirs"], "/d");
        let mut own = Settings::default();
        own.apply_overrides(&["listeners=PLAINTEXT://0.0.0.0:1234".to_string()]).expect("override");
        assert_eq!(own.broker_properties(Path::new("/d"))["listeners"], "PLAINTEXT://0.0.0.0:1234");
    }

    #[test]
    fn lock_and_writability() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!lock_held(dir.path()));
        assert_eq!(dir_state(dir.path()), DirState::Free);
        let lock = File::create(dir.path().join(LOCK_FILE)).expect("lock file");
        lock.try_lock().expect("lock");
        assert!(lock_held(dir.path()));
        assert_eq!(dir_state(dir.path()), DirState::InUse(None));
        drop(lock);
        assert!(!lock_held(dir.path()));
        assert!(looks_like_data_dir(dir.path()));
        ensure_writable_dir(&dir.path().join("a/b")).expect("nested dirs are created");
        let file = dir.path().join("plain-file");
        fs::write(&file, "x").expect("write");
        let err = ensure_writable_dir(&file.join("data")).expect_err("under a file");
        assert!(err.contains("plain-file/data") && err.contains("--data-dir"), "{err}");
    }

    #[test]
    fn durations_and_urls() {
        assert_eq!(human_duration(999), "0s");
        assert_eq!(human_duration(192_000), "3m12s");
        assert_eq!(human_duration(7_500_000), "2h05m");
        assert_eq!(human_duration(90_000_000), "1d01h");
        assert_eq!(Service::Broker.url("127.0.0.1", 9092), "127.0.0.1:9092");
        assert_eq!(Service::RestProxy.url("::1", 8082), "http://[::1]:8082");
        assert!(pid_alive(std::process::id()));
    }
}
