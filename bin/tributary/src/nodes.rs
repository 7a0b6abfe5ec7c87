//! `tributary start --nodes N`: a local KRaft cluster on one machine. This
//! process supervises N `tributary broker` processes (each a broker and a
//! controller, `process.roles=broker,controller`) and runs the schema
//! registry and the REST proxy itself against the whole cluster.
//!
//! ```text
//! serve ─▶ node ports (stored, from --kafka-port on, or any free ones) and the HTTP ports bound
//!   ─▶ data dir writable, its .lock held by this process, settings saved with the ports
//!   ─▶ node-N/server.properties written from tributary.properties ─▶ N `tributary broker`
//!      processes (own process group; each stops when this process is gone), their stderr
//!      appended to logs/tributary.log with each line tagged broker-N
//!   ─▶ each node up when its Metadata lists all N brokers ─▶ registry ─▶ proxy ─▶ run file
//!   ─▶ Ctrl-C/SIGTERM ─▶ proxy, registry, then SIGTERM every node and wait (SIGKILL after 30 s)
//! ```
//!
//! Each node is an ordinary `tributary broker --config node-N/server.properties`:
//! what runs here is what runs on three machines with three Kafka config files.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tributary_client::{Client, ClientConfig};
use tributary_config::properties::format_property;

use crate::local::{self, RunFile, RunService, RunState, Service, Settings};
use crate::logging;
use crate::start::{
    Printer, Signals, StartArgs, Started, connect_host, host_port, http_limits, label, log_as, port_error, run_service,
    save_run,
};

/// The longest wait for every node to see the whole cluster.
const NODES_UP_WITHIN: Duration = Duration::from_secs(180);
/// The longest wait for a node to stop on SIGTERM before it is killed.
const NODE_STOP_WITHIN: Duration = Duration::from_secs(30);

/// One node's process.
struct NodeProcess {
    id: u16,
    child: Child,
    host: String,
    kafka_port: u16,
    controller_port: u16,
    dir: PathBuf,
}

impl NodeProcess {
    fn entry(&self) -> RunService {
        RunService {
            node_id: Some(i32::from(self.id)),
            pid: Some(self.child.id()),
            controller: Some(host_port(&self.host, self.controller_port)),
            data_dir: Some(self.dir.display().to_string()),
            ..RunService::new(Service::Broker, self.host.clone(), self.kafka_port)
        }
    }
}

/// The nodes started so far; whatever still runs when this is dropped is killed.
#[derive(Default)]
struct Nodes(Vec<NodeProcess>);

impl Nodes {
    /// SIGTERM to every node, then waits for each (SIGKILL after [`NODE_STOP_WITHIN`]).
    async fn stop(&mut self, printer: &Printer) {
        for n in self.0.iter_mut().rev() {
            if matches!(n.child.try_wait(), Ok(None)) {
                printer.stopping_node(Service::Broker, Some(i32::from(n.id)));
                log_as(Service::Broker, &format!("Stopping {}", label(Service::Broker, Some(i32::from(n.id)))));
                let _ = local::signal(n.child.id(), rustix::process::Signal::TERM);
            }
        }
        let deadline = Instant::now() + NODE_STOP_WITHIN;
        for n in &mut self.0 {
            while matches!(n.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if matches!(n.child.try_wait(), Ok(None)) {
                tracing::warn!(node = n.id, "node did not stop within {NODE_STOP_WITHIN:?} of SIGTERM; killing it");
                let _ = n.child.kill();
            }
            let _ = n.child.wait();
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for n in &mut self.0 {
            if matches!(n.child.try_wait(), Ok(None)) {
                let _ = n.child.kill();
                let _ = n.child.wait();
            }
        }
    }
}

/// Each node's (Kafka, controller) ports: the settings' own, or free ones
/// picked for a port of 0; every port checked free first.
fn resolve_ports(settings: &Settings) -> Result<Vec<(u16, u16)>, String> {
    let mut held = Vec::new();
    let mut take = |port: u16| -> Result<u16, String> {
        let address = host_port(&settings.host, port);
        let listener = std::net::TcpListener::bind(&address).map_err(|e| port_error(Service::Broker, &address, &e))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?.port();
        held.push(listener);
        Ok(bound)
    };
    // Held until every port is picked, so no two nodes get the same free port.
    settings.node_ports().into_iter().map(|(k, c)| Ok((take(k)?, take(c)?))).collect()
}

fn write_node_config(settings: &Settings, dir: &Path, id: u16, ports: &[(u16, u16)]) -> Result<PathBuf, String> {
    let node_dir = Settings::node_dir(dir, id);
    std::fs::create_dir_all(&node_dir).map_err(|e| format!("cannot create {}: {e}", node_dir.display()))?;
    let mut text = format!(
        "# Node {id} of the local cluster `tributary start --nodes {}` runs on {}.\n\
         # Written from ../tributary.properties on every start: edit that file instead.\n\
         # The same node outside `tributary start`: tributary broker --config {}\n",
        settings.nodes,
        dir.display(),
        node_dir.join("server.properties").display()
    );
    for (key, value) in settings.node_properties(dir, id, ports) {
        text.push_str(&format_property(&key, &value));
        text.push('\n');
    }
    let path = node_dir.join("server.properties");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Starts node `id` as `tributary broker --config ...`, its stderr appended to the platform's log.
fn spawn_node(args: &StartArgs, log_file: &Path, config: &Path) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program to run the nodes: {e}"))?;
    let log = logging::open_log(log_file)?;
    let tag = config
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("node-"))
        .map_or_else(|| "broker".to_string(), |id| format!("broker-{id}"));
    let mut cmd = Command::new(exe);
    cmd.arg("broker").arg("--config").arg(config).arg("--log-tag").arg(&tag);
    for o in &args.overrides {
        cmd.arg("--override").arg(o);
    }
    // The node stops by itself when this process is gone, however it ended.
    cmd.arg("--parent-pid").arg(std::process::id().to_string());
    // Its own process group: Ctrl-C reaches this process, which stops the nodes in order.
    cmd.process_group(0).env_remove("TRIBUTARY_DATA_DIR").stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    cmd.spawn().map_err(|e| format!("cannot start {tag}: {e}"))
}

/// Whether the node at `bootstrap` answers Metadata listing `nodes` brokers
/// (all registered and unfenced) and a leader for every partition (after a
/// restart, leaderships come back once the brokers are unfenced); the
/// cluster id when it does.
async fn sees_the_cluster(bootstrap: &str, nodes: usize) -> Option<String> {
    let mut config = ClientConfig::new(bootstrap);
    config.client_id = "tributary-start".to_string();
    config.timeout = Duration::from_secs(5);
    let mut client = Client::connect(config).await.ok()?;
    let metadata = client.metadata(None).await.ok()?;
    let led = metadata.topics.values().flat_map(|t| t.partitions.values()).all(|p| p.leader >= 0);
    (metadata.brokers.len() == nodes && led).then(|| metadata.cluster_id.unwrap_or_default())
}

/// Runs a local cluster in this process until a signal.
pub(crate) async fn serve(
    args: &StartArgs,
    dir: &Path,
    mut settings: Settings,
    started: Instant,
    printer: &Printer,
) -> Result<(), String> {
    let mut signals = Signals::new().map_err(|e| format!("cannot handle signals: {e}"))?;
    let http = http_limits(args);
    let ports = resolve_ports(&settings)?;
    let registry = match args.no_schema_registry {
        true => None,
        false => Some(crate::registry::bind_embedded(&settings.host, settings.schema_registry_port, http).await?),
    };
    let proxy = match args.no_rest_proxy {
        true => None,
        false => Some(crate::restproxy::bind_embedded(&settings.host, settings.rest_proxy_port, http).await?),
    };

    local::ensure_writable_dir(dir)?;
    let _lock = local::hold_lock(dir)?;
    let log_file = local::log_path(dir);
    if args.detached_child {
        logging::init_detached();
    } else {
        let log = logging::open_log(&log_file)?;
        logging::init_foreground(log);
    }
    settings.node_ports = ports.clone();
    if let Some((_, l)) = &registry {
        settings.schema_registry_port = l.local_addr().map_or(settings.schema_registry_port, |a| a.port());
    }
    if let Some((_, l)) = &proxy {
        settings.rest_proxy_port = l.local_addr().map_or(settings.rest_proxy_port, |a| a.port());
    }
    settings.save(dir).map_err(|e| format!("cannot write {}: {e}", dir.join(local::PROPERTIES_FILE).display()))?;

    let mut nodes = Nodes::default();
    let mut running = Started::default();
    let pid = std::process::id();
    let result = tokio::select! {
        r = start_everything(args, dir, &settings, &ports, registry, proxy, &mut nodes, &mut running, started, printer) => r,
        _ = signals.recv() => Err("stopped on a signal while starting".to_string()),
    };
    if let Err(e) = result {
        running.stop(printer).await;
        nodes.stop(printer).await;
        RunFile::remove_if_owned(dir, pid);
        return Err(e);
    }
    signals.recv().await;
    tracing::info!("stopping on a signal");
    running.stop(printer).await;
    nodes.stop(printer).await;
    RunFile::remove_if_owned(dir, pid);
    tracing::info!("Tributary stopped");
    printer.stopped();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn start_everything(
    args: &StartArgs,
    dir: &Path,
    settings: &Settings,
    ports: &[(u16, u16)],
    registry: Option<(tributary_schema_registry::RegistryConfig, tokio::net::TcpListener)>,
    proxy: Option<(tributary_rest_proxy::RestProxyConfig, tokio::net::TcpListener)>,
    nodes: &mut Nodes,
    running: &mut Started,
    started: Instant,
    printer: &Printer,
) -> Result<(), String> {
    let log_file = local::log_path(dir);
    // Where clients on this machine reach the nodes (a wildcard host is reached on loopback).
    let host = match settings.host.parse::<std::net::IpAddr>() {
        Ok(ip) => connect_host(std::net::SocketAddr::new(ip, 0)),
        Err(_) => settings.host.clone(),
    };
    let mut run = RunFile {
        pid: std::process::id(),
        state: RunState::Starting,
        detached: args.detached_child,
        started_at_ms: local::now_ms().saturating_sub(u64::try_from(started.elapsed().as_millis()).unwrap_or(0)),
        version: env!("CARGO_PKG_VERSION").to_string(),
        data_dir: dir.display().to_string(),
        log_file: log_file.display().to_string(),
        cluster_id: String::new(),
        node_id: 1,
        services: Vec::new(),
    };
    let t = Instant::now();
    for id in 1..=settings.nodes {
        let node = Some(i32::from(id));
        printer.starting_node(Service::Broker, node);
        log_as(Service::Broker, &format!("Starting {}", label(Service::Broker, node)));
        let config = write_node_config(settings, dir, id, ports)?;
        let child = spawn_node(args, &log_file, &config)?;
        let (kafka_port, controller_port) = ports[usize::from(id) - 1];
        nodes.0.push(NodeProcess {
            id,
            child,
            host: host.clone(),
            kafka_port,
            controller_port,
            dir: Settings::node_dir(dir, id),
        });
    }
    // Named in the run file from now on, so `stop` finds every process even while they start.
    run.services = nodes.0.iter().map(NodeProcess::entry).collect();
    save_run(&run, dir)?;
    // Every node up: each one's Metadata lists the whole cluster.
    let deadline = Instant::now() + NODES_UP_WITHIN;
    let mut up = vec![false; nodes.0.len()];
    while up.contains(&false) {
        for (i, n) in nodes.0.iter_mut().enumerate() {
            if up[i] {
                continue;
            }
            if let Ok(Some(status)) = n.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) while starting; see {}",
                    label(Service::Broker, Some(i32::from(n.id))),
                    log_file.display()
                ));
            }
            let entry = n.entry();
            if let Some(cluster_id) = sees_the_cluster(&entry.url, usize::from(settings.nodes)).await {
                up[i] = true;
                run.cluster_id = cluster_id;
                let ms = t.elapsed().as_millis();
                let node = Some(i32::from(n.id));
                printer.up_node(Service::Broker, node, &entry.url, ms);
                log_as(Service::Broker, &format!("{} is up at {} ({ms} ms)", label(Service::Broker, node), entry.url));
                save_run(&run, dir)?;
            }
        }
        if up.contains(&false) {
            if Instant::now() >= deadline {
                return Err(format!(
                    "the cluster's nodes did not all come up within {NODES_UP_WITHIN:?}; see {}",
                    log_file.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let bootstrap = run.bootstrap().unwrap_or_default();

    let mut registry_addr = None;
    if let Some((config, listener)) = registry {
        printer.starting_node(Service::SchemaRegistry, None);
        log_as(Service::SchemaRegistry, "Starting schema-registry");
        let t = Instant::now();
        let r = crate::registry::start_embedded(config, listener, &bootstrap).await?;
        registry_addr = Some(r.local_addr());
        let entry = run_service(Service::SchemaRegistry, r.local_addr());
        running.registry = Some(r);
        let ms = t.elapsed().as_millis();
        printer.up_node(Service::SchemaRegistry, None, &entry.url, ms);
        log_as(Service::SchemaRegistry, &format!("schema-registry is up at {} ({ms} ms)", entry.url));
        run.services.push(entry);
        save_run(&run, dir)?;
    }
    if let Some((config, listener)) = proxy {
        printer.starting_node(Service::RestProxy, None);
        log_as(Service::RestProxy, "Starting rest-proxy");
        let t = Instant::now();
        let p = crate::restproxy::start_embedded(config, listener, &bootstrap, registry_addr)?;
        let entry = run_service(Service::RestProxy, p.local_addr());
        running.proxy = Some(p);
        let ms = t.elapsed().as_millis();
        printer.up_node(Service::RestProxy, None, &entry.url, ms);
        log_as(Service::RestProxy, &format!("rest-proxy is up at {} ({ms} ms)", entry.url));
        run.services.push(entry);
    }
    run.state = RunState::Running;
    save_run(&run, dir)?;
    let ms = started.elapsed().as_millis();
    let headline = format!("Tributary is up in {ms} ms: a cluster of {} nodes", settings.nodes);
    tracing::info!(pid = run.pid, "{headline}");
    printer.started(&run, &headline, false, Some(ms), &args.data_dir.hint());
    Ok(())
}

/// The run file's nodes whose process may still run: each node's lock is
/// held. For `stop` when the supervisor is gone but a node is not.
pub(crate) fn nodes_still_running(run: &RunFile) -> Vec<(PathBuf, u32)> {
    run.services
        .iter()
        .filter_map(|s| Some((PathBuf::from(s.data_dir.as_ref()?), s.pid?)))
        .filter(|(dir, _)| local::lock_held(dir))
        .collect()
}
