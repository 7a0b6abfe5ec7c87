//! `tributary start`: the whole platform on this machine, in dependency
//! order (broker, then schema registry, then REST proxy), in the
//! foreground or `--detach`ed; and `tributary broker`, a broker alone from
//! a `server.properties`.
//!
//! ```text
//! start ─▶ settings: flags > <data-dir>/tributary.properties > defaults
//!   │      data dir in use? (the broker's lock) ─▶ running: "already running" (--detach) or refused
//!   ├─ foreground ─▶ serve: bind every port ─▶ data dir writable ─▶ save settings
//!   │                  ─▶ broker ─▶ run file (starting) ─▶ registry ─▶ proxy ─▶ run file (running)
//!   │                  ─▶ table ─▶ Ctrl-C/SIGTERM ─▶ stop in reverse order ─▶ run file removed
//!   └─ --detach ─▶ same checks here, then the same binary re-executed as
//!                  `start --detached-child` in its own process group, its output
//!                  appended to <data-dir>/logs/tributary.log; this process echoes
//!                  its progress from the log, waits for the run file to say
//!                  running and for every port to accept, prints the table, exits
//! ```

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use tributary_broker::{BoundListeners, Broker, BrokerError};
use tributary_config::BrokerConfig;
use tributary_http::{Limits, limits};
use tributary_rest_proxy::RestProxy;
use tributary_schema_registry::SchemaRegistry;

use crate::cli::{Exit, Failure, parse_duration};
use crate::local::{self, DirState, RunFile, RunService, RunState, Service, Settings};
use crate::logging;
use crate::output::{Format, to_yaml};
use crate::table::{Table, pairs};

const DEFAULT_DATA_DIR: &str = "./tributary-data";

const START_HELP: &str = "\
Services start in dependency order, each reported as it comes up (`Starting broker`, `broker is up
at ...`), then a table of their URLs and next steps. Every port is checked before anything starts:
a busy one is a one-line error naming the port and the flag that moves it (exit status 1).

Settings persist in the data directory: the first start writes <data-dir>/tributary.properties
(Kafka's server.properties format) with the development defaults (replication factor 1,
auto.create.topics.enable=true, group.initial.rebalance.delay.ms=0), the host and the ports in
use (a port of 0 is stored as the one picked). A later plain `tributary start` on that directory
reads them back: same ports, same config; ports and --host given then update the file. An
--override applies to that one start, as with Kafka's kafka-server-start.sh: to keep a setting,
add its line to the file while the platform is stopped.

--detach runs the platform in the background: its log goes to <data-dir>/logs/tributary.log
(`tributary logs`), a run file <data-dir>/tributary-run.json names its pid, ports and URLs
(`tributary status`), and `tributary stop` ends it. Starting again on a data directory whose
platform runs says so and exits 0 with --detach, and is refused (exit 1) in the foreground.

In the foreground the log goes to the same file and warnings also to stderr; Ctrl-C or SIGTERM
stops every service cleanly.

The schema registry and the REST proxy close a connection whose request head does not arrive
within --http-header-read-timeout-ms of its first byte, or that makes no progress for
--http-idle-timeout-ms (no request, a body that stopped arriving, a response not read; time a
service spends working never counts), and each stops accepting while --http-connection-limit
connections are open. These flags apply to that one start, like --override.

--nodes 3 runs a local KRaft cluster instead of one broker: three `tributary broker` processes, each
a broker and a controller (process.roles=broker,controller) with its own directory
<data-dir>/node-N and its own Kafka and controller ports (from --kafka-port on: node 1 on 9092 and
9093, node 2 on 9094 and 9095, ...; 0 picks free ones), supervised by this process, which runs the
schema registry and the REST proxy against the whole cluster. Each node's server.properties is
written from tributary.properties on every start; its log lines are tagged broker-N. The count and
the ports are stored: a later plain `tributary start` starts the same cluster again, and `status`,
`stop`, `logs` and `destroy` cover every node. A data directory keeps its node count (a different
--nodes is refused).

Exit status: 0 once everything is up (--detach) or after a clean stop; 1 when a port is busy, the
data directory cannot be used or a service fails to start; 2 for invalid arguments or config.

-o json prints one event per line as it happens: {\"event\": \"starting\", \"service\": str},
{\"event\": \"up\", \"service\": str, \"url\": str, \"ms\": int}, then {\"event\": \"started\",
\"already_running\": bool, \"pid\": int, \"detached\": bool, \"kafka\": [str], \"schema_registry\": str|null,
\"rest_proxy\": str|null, \"services\": [{\"service\": str, \"host\": str, \"port\": int, \"url\": str}],
\"data_dir\": str, \"log_file\": str, \"node_id\": int, \"cluster_id\": str, \"startup_ms\": int}, and at
the end {\"event\": \"stopping\", \"service\": str} per service and {\"event\": \"stopped\"}. -o yaml prints
the same events as YAML documents. With --nodes, each node's events and its entry in services also
have \"node_id\": int, and its entry \"pid\": int, \"controller\": str (host:port) and \"data_dir\": str;
\"kafka\" lists every node.

Examples:
  tributary start                                   # Kafka :9092, registry :8081, REST proxy :8082
  tributary start --detach && tributary status      # in the background
  tributary start --kafka-port 19092 --no-rest-proxy --data-dir /tmp/dev
  tributary start --override num.partitions=3 --override log.retention.hours=1
  tributary start --kafka-port 0 --schema-registry-port 0 --rest-proxy-port 0 -o json   # any free ports
  tributary start --nodes 3 --detach && tributary cluster info --brokers 127.0.0.1:9092,127.0.0.1:9094";

const BROKER_HELP: &str = "\
Reads Kafka's own keys (listeners, advertised.listeners, log.dirs, num.partitions,
log.retention.*, ...); KAFKA_* environment variables override the file (KAFKA_LOG_RETENTION_HOURS
sets log.retention.hours) and --override overrides both. Logs go to stderr (RUST_LOG=debug for
more); Ctrl-C or SIGTERM stops it cleanly.

Examples:
  tributary broker --config config/server.properties
  KAFKA_NUM_PARTITIONS=3 tributary broker --config server.properties --override log.dirs=/var/lib/kafka";

/// `--data-dir`, shared by `start`, `status`, `stop`, `logs` and `destroy`.
#[derive(Debug, Args)]
pub struct DataDirArg {
    /// The platform's data directory.
    #[arg(long, env = "TRIBUTARY_DATA_DIR", default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
}

impl DataDirArg {
    /// The directory as an absolute path.
    pub fn absolute(&self) -> PathBuf {
        std::path::absolute(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone())
    }

    /// ` --data-dir DIR` when a plain command in this shell would not find
    /// this directory by itself, else nothing: for the hints printed.
    pub fn hint(&self) -> String {
        let implicit =
            std::env::var_os("TRIBUTARY_DATA_DIR").map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), PathBuf::from);
        if std::path::absolute(&implicit).ok() == Some(self.absolute()) {
            String::new()
        } else {
            format!(" --data-dir {}", self.absolute().display())
        }
    }
}

/// Flags of `tributary start`.
#[derive(Debug, Args)]
#[command(after_long_help = START_HELP)]
pub struct StartArgs {
    /// Port of the Kafka listener (0 = any free port) [default: the data dir's, else 9092].
    #[arg(long, env = "TRIBUTARY_KAFKA_PORT", value_name = "PORT")]
    pub(crate) kafka_port: Option<u16>,
    /// Host to listen on and advertise [default: the data dir's, else 127.0.0.1].
    #[arg(long, value_name = "HOST")]
    pub(crate) host: Option<String>,
    #[command(flatten)]
    pub(crate) data_dir: DataDirArg,
    /// Broker config, as in server.properties (repeatable), for this start (the data dir's file keeps settings).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    /// Port of the schema registry (0 = any free port) [default: the data dir's, else 8081].
    #[arg(long, env = "TRIBUTARY_SCHEMA_REGISTRY_PORT", value_name = "PORT")]
    pub(crate) schema_registry_port: Option<u16>,
    /// Do not run the schema registry.
    #[arg(long)]
    pub(crate) no_schema_registry: bool,
    /// Port of the REST proxy (0 = any free port) [default: the data dir's, else 8082].
    #[arg(long, env = "TRIBUTARY_REST_PROXY_PORT", value_name = "PORT")]
    pub(crate) rest_proxy_port: Option<u16>,
    /// Do not run the REST proxy.
    #[arg(long)]
    pub(crate) no_rest_proxy: bool,
    /// Registry and REST proxy: longest time for a request head, from its first byte (0: no limit).
    #[arg(long, value_name = "MS", default_value_t = limits::DEFAULT_HEADER_READ_TIMEOUT_MS)]
    pub(crate) http_header_read_timeout_ms: u64,
    /// Registry and REST proxy: close a connection making no progress this long (idle.timeout.ms; 0: never).
    #[arg(long, value_name = "MS", default_value_t = limits::DEFAULT_IDLE_TIMEOUT_MS)]
    pub(crate) http_idle_timeout_ms: u64,
    /// Registry and REST proxy, each: connections served at once (server.connection.limit; 0: no limit).
    #[arg(long, value_name = "COUNT", default_value_t = limits::DEFAULT_SERVER_CONNECTION_LIMIT)]
    pub(crate) http_connection_limit: u64,
    /// Run a local KRaft cluster of this many broker processes (each a controller too), each node
    /// in <data-dir>/node-N [default: the data dir's, else 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=i64::from(local::MAX_NODES)))]
    pub(crate) nodes: Option<u16>,
    /// Run in the background; `tributary status|logs|stop` follow it.
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// With --detach: longest wait for every service to come up.
    #[arg(long, value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub(crate) timeout: Duration,
    /// Output format: a table for people, or one JSON/YAML event per step.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Format,
    /// Internal: this process is the platform a `start --detach` spawned.
    #[arg(long, hide = true)]
    pub(crate) detached_child: bool,
}

/// Flags of `tributary broker`.
#[derive(Debug, Args)]
#[command(after_long_help = BROKER_HELP)]
pub struct BrokerArgs {
    /// server.properties to read.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Config key=value applied after the file and KAFKA_* variables (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Output format of the startup summary (json and yaml also print a `stopped` event at the end).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: Format,
    /// Internal: a node of `start --nodes`; log to stderr with every line tagged with this name.
    #[arg(long, hide = true, value_name = "NAME")]
    log_tag: Option<String>,
    /// Internal: a node of `start --nodes`; stop cleanly when this process (the platform) is gone.
    #[arg(long, hide = true, value_name = "PID")]
    parent_pid: Option<u32>,
}

fn fail((exit, message): Failure) -> ExitCode {
    eprintln!("error: {message}");
    exit.code()
}

/// Runs `tributary start`.
pub fn run(args: StartArgs, started: Instant) -> ExitCode {
    let dir = args.data_dir.absolute();
    let settings = match resolve(&args, &dir) {
        Ok(s) => s,
        Err(f) => return fail(f),
    };
    let printer = Printer { format: args.output, quiet: args.detached_child };
    if args.detached_child {
        return serve(&args, &dir, settings, started, &printer);
    }
    match local::dir_state(&dir) {
        DirState::Free => {}
        DirState::InUse(Some(run)) if args.detach && run.state == RunState::Running => {
            let headline = format!(
                "Tributary is already running on {} (pid {}, up {})",
                dir.display(),
                run.pid,
                local::human_duration(local::now_ms().saturating_sub(run.started_at_ms))
            );
            printer.started(&run, &headline, true, None, &args.data_dir.hint());
            return Exit::Success.code();
        }
        DirState::InUse(Some(run)) => {
            let how = if run.detached { "in the background" } else { "in the foreground" };
            return fail((
                Exit::Failed,
                format!(
                    "Tributary is already running on {} (pid {}, {how}): `tributary status{hint}` shows it, \
                     `tributary stop{hint}` stops it; or pick another --data-dir",
                    dir.display(),
                    run.pid,
                    hint = args.data_dir.hint()
                ),
            ));
        }
        DirState::InUse(None) => {
            return fail((
                Exit::Failed,
                format!(
                    "{} is in use by another Tributary process (a `tributary broker`, or a platform still \
                     starting); stop it or pick another --data-dir",
                    dir.display()
                ),
            ));
        }
    }
    if args.detach {
        detach(&args, &dir, &settings, started, &printer)
    } else {
        serve(&args, &dir, settings, started, &printer)
    }
}

/// The settings of this start: the flags, over what the data directory
/// stored, over the defaults; checked as the broker would check them.
fn resolve(args: &StartArgs, dir: &Path) -> Result<Settings, Failure> {
    let stored = Settings::load(dir).map_err(|e| (Exit::Failed, e))?;
    let mut settings = match (&stored, args.nodes) {
        (Some(s), Some(n)) if s.nodes != n => {
            return Err((Exit::Failed, node_count_mismatch(dir, s.nodes, n)));
        }
        // A directory a single broker has used holds its data at the top, not in node-N.
        (None, Some(n)) if n > 1 && local::looks_like_data_dir(dir) => {
            return Err((Exit::Failed, node_count_mismatch(dir, 1, n)));
        }
        (Some(s), _) => s.clone(),
        (None, nodes) => {
            let nodes = nodes.unwrap_or(1);
            Settings { nodes, broker: local::dev_defaults_for(nodes), ..Settings::default() }
        }
    };
    if let Some(host) = &args.host {
        settings.host = host.trim().to_string();
    }
    if let Some(port) = args.kafka_port {
        settings.kafka_port = port;
    }
    if let Some(port) = args.schema_registry_port {
        settings.schema_registry_port = port;
    }
    if let Some(port) = args.rest_proxy_port {
        settings.rest_proxy_port = port;
    }
    settings.apply_overrides(&args.overrides).map_err(|e| (Exit::Usage, e))?;
    let props = if settings.nodes > 1 {
        let mut props = settings.node_properties(dir, 1, &settings.node_ports());
        props.extend(settings.overrides.clone());
        props
    } else {
        settings.broker_properties(dir)
    };
    BrokerConfig::from_properties(props).map_err(|e| (Exit::Usage, e.to_string()))?;
    Ok(settings)
}

fn node_count_mismatch(dir: &Path, stored: u16, asked: u16) -> String {
    let what = |n: u16| if n == 1 { "a single node".to_string() } else { format!("a {n}-node cluster") };
    format!(
        "{} holds {} and --nodes {asked} asks for {}; pick another --data-dir, or `tributary destroy --data-dir {}` first",
        dir.display(),
        what(stored),
        what(asked),
        dir.display()
    )
}

/// The HTTP limits of this start's schema registry and REST proxy.
pub(crate) fn http_limits(args: &StartArgs) -> Limits {
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Limits {
        header_read_timeout: limits::timeout_from_ms(signed(args.http_header_read_timeout_ms)),
        idle_timeout: limits::timeout_from_ms(signed(args.http_idle_timeout_ms)),
        max_connections: limits::connections_from(signed(args.http_connection_limit)),
        ..Limits::default()
    }
}

/// The one-line error for a port a service cannot listen on.
pub fn port_error(service: Service, address: &str, error: &io::Error) -> String {
    let port = address.rsplit(':').next().unwrap_or(address);
    let what = if error.kind() == io::ErrorKind::AddrInUse {
        format!("port {port} for {} is already in use ({address})", service.title())
    } else {
        format!("{} cannot listen on {address}: {error}", service.title())
    };
    let off = match service {
        Service::Broker => "",
        Service::SchemaRegistry => " or --no-schema-registry",
        Service::RestProxy => " or --no-rest-proxy",
    };
    let what = capitalize(&what);
    format!("{what}; pass {} <port> (0 picks a free one){off}", service.port_flag())
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// The host a local client connects to for a listener bound to `addr`.
pub(crate) fn connect_host(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() }
}

pub(crate) fn run_service(service: Service, addr: SocketAddr) -> RunService {
    RunService::new(service, connect_host(addr), addr.port())
}

// ---------------------------------------------------------------- output

/// Prints start's progress: lines for people or one event per step.
#[derive(Debug)]
pub(crate) struct Printer {
    format: Format,
    /// The detached platform itself: its stdout is the log file, so it prints nothing.
    quiet: bool,
}

impl Printer {
    fn event<T: serde::Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.quiet {
            return;
        }
        let text = match self.format {
            Format::Table => human() + "\n",
            Format::Json => match serde_json::to_string(value) {
                Ok(line) => line + "\n",
                Err(_) => return,
            },
            Format::Yaml => match to_yaml(value) {
                Ok(doc) => format!("---\n{doc}"),
                Err(_) => return,
            },
        };
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn starting(&self, service: Service) {
        self.starting_node(service, None);
    }

    /// `Starting broker-2`: a node of a local cluster (`node_id` in JSON).
    pub(crate) fn starting_node(&self, service: Service, node: Option<i32>) {
        let mut event = json!({"event": "starting", "service": service});
        with_node(&mut event, node);
        self.event(&event, || format!("Starting {}", label(service, node)));
    }

    fn up(&self, service: Service, url: &str, ms: u128) {
        self.up_node(service, None, url, ms);
    }

    pub(crate) fn up_node(&self, service: Service, node: Option<i32>, url: &str, ms: u128) {
        let mut event = json!({"event": "up", "service": service, "url": url, "ms": ms});
        with_node(&mut event, node);
        self.event(&event, || format!("{} is up at {url} ({ms} ms)", label(service, node)));
    }

    fn stopping(&self, service: Service) {
        self.stopping_node(service, None);
    }

    pub(crate) fn stopping_node(&self, service: Service, node: Option<i32>) {
        let mut event = json!({"event": "stopping", "service": service});
        with_node(&mut event, node);
        self.event(&event, || format!("Stopping {}", label(service, node)));
    }

    pub(crate) fn stopped(&self) {
        self.event(&json!({"event": "stopped"}), || "Tributary stopped".to_string());
    }

    /// The started event, or for people the headline, the table of services and next steps.
    pub(crate) fn started(&self, run: &RunFile, headline: &str, already: bool, startup_ms: Option<u128>, hint: &str) {
        let url = |s: Service| run.service(s).map(|r| r.url.as_str());
        let event = StartedEvent {
            event: "started",
            already_running: already,
            pid: run.pid,
            detached: run.detached,
            kafka: run.brokers(),
            schema_registry: url(Service::SchemaRegistry),
            rest_proxy: url(Service::RestProxy),
            services: &run.services,
            data_dir: &run.data_dir,
            log_file: &run.log_file,
            node_id: run.node_id,
            cluster_id: &run.cluster_id,
            startup_ms,
        };
        self.event(&event, || render_started(run, headline, hint));
    }
}

/// `broker`, or `broker-2` for node 2 of a local cluster.
pub(crate) fn label(service: Service, node: Option<i32>) -> String {
    match node {
        Some(id) => format!("{}-{id}", service.name()),
        None => service.name().to_string(),
    }
}

fn with_node(event: &mut serde_json::Value, node: Option<i32>) {
    if let (Some(id), Some(map)) = (node, event.as_object_mut()) {
        map.insert("node_id".to_string(), json!(id));
    }
}

/// The `started` event (`-o json`), its fields in this order.
#[derive(Debug, serde::Serialize)]
struct StartedEvent<'a> {
    event: &'static str,
    already_running: bool,
    pid: u32,
    detached: bool,
    kafka: Vec<&'a str>,
    schema_registry: Option<&'a str>,
    rest_proxy: Option<&'a str>,
    services: &'a [RunService],
    data_dir: &'a str,
    log_file: &'a str,
    node_id: i32,
    cluster_id: &'a str,
    startup_ms: Option<u128>,
}

fn render_started(run: &RunFile, headline: &str, hint: &str) -> String {
    let cluster = run.services.iter().any(|s| s.node_id.is_some());
    let table = if cluster {
        // A local cluster: each node's own process and controller listener.
        let mut table = Table::new(&["SERVICE", "URL", "CONTROLLER", "PID"]);
        for s in &run.services {
            let dash = || "-".to_string();
            table.row(vec![
                label(s.service, s.node_id),
                s.url.clone(),
                s.controller.clone().unwrap_or_else(dash),
                s.pid.map_or_else(dash, |p| p.to_string()),
            ]);
        }
        table
    } else {
        let mut table = Table::new(&["SERVICE", "URL"]);
        for s in &run.services {
            table.row(vec![s.service.name().to_string(), s.url.clone()]);
        }
        table
    };
    let mut out = format!("{headline}\n\n{}\n", table.render());
    let mut facts =
        vec![("Data dir", run.data_dir.clone()), ("Log", run.log_file.clone()), ("Cluster id", run.cluster_id.clone())];
    if cluster {
        facts.push(("Bootstrap", run.bootstrap().unwrap_or_default()));
    }
    out.push_str(&pairs(&facts));
    out.push_str("\nNext steps:\n");
    let mut exports = Vec::new();
    if let Some(b) = run.bootstrap() {
        exports.push(format!("TRIBUTARY_BROKERS={b}"));
    }
    if let Some(r) = run.service(Service::SchemaRegistry) {
        exports.push(format!("TRIBUTARY_SCHEMA_REGISTRY_URL={}", r.url));
    }
    if !hint.is_empty() {
        exports.push(format!("TRIBUTARY_DATA_DIR={}", run.data_dir));
    }
    if !exports.is_empty() {
        out.push_str(&format!("  export {}\n", exports.join(" ")));
    }
    if cluster {
        out.push_str("  tributary cluster info\n");
    }
    out.push_str("  tributary topic create demo --partitions 3\n");
    if let Some(p) = run.service(Service::RestProxy) {
        out.push_str(&format!("  curl {}/v3/clusters\n", p.url));
    }
    if run.detached {
        out.push_str(&format!("  tributary status{hint}    tributary logs{hint} -f    tributary stop{hint}"));
    } else {
        out.push_str("Ctrl-C stops the platform.");
    }
    out
}

/// Logs a line under a service's name (the tag `tributary logs` filters on).
pub(crate) fn log_as(service: Service, message: &str) {
    match service {
        Service::Broker => tracing::info!(target: "broker", "{message}"),
        Service::SchemaRegistry => tracing::info!(target: "schema-registry", "{message}"),
        Service::RestProxy => tracing::info!(target: "rest-proxy", "{message}"),
    }
}

// ---------------------------------------------------------------- the platform process

/// SIGINT and SIGTERM, caught from the start so that one arriving while the
/// services start still stops them cleanly.
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// What has started so far, stopped in reverse order.
#[derive(Default)]
pub(crate) struct Started {
    pub(crate) broker: Option<Broker>,
    pub(crate) registry: Option<SchemaRegistry>,
    pub(crate) proxy: Option<RestProxy>,
}

impl Started {
    pub(crate) async fn stop(self, printer: &Printer) {
        if let Some(p) = self.proxy {
            printer.stopping(Service::RestProxy);
            log_as(Service::RestProxy, "Stopping rest-proxy");
            p.shutdown().await;
        }
        if let Some(r) = self.registry {
            printer.stopping(Service::SchemaRegistry);
            log_as(Service::SchemaRegistry, "Stopping schema-registry");
            r.shutdown().await;
        }
        if let Some(b) = self.broker {
            printer.stopping(Service::Broker);
            log_as(Service::Broker, "Stopping broker");
            b.shutdown().await;
        }
    }
}

/// Runs the platform in this process until a signal.
fn serve(args: &StartArgs, dir: &Path, settings: Settings, started: Instant, printer: &Printer) -> ExitCode {
    let runtime = match crate::runtime(crate::Threads::Many) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let served = if settings.nodes > 1 {
        runtime.block_on(crate::nodes::serve(args, dir, settings, started, printer))
    } else {
        runtime.block_on(serve_async(args, dir, settings, started, printer))
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            // A detached platform's stderr is its log; `start --detach` reports this line.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_async(
    args: &StartArgs,
    dir: &Path,
    mut settings: Settings,
    started: Instant,
    printer: &Printer,
) -> Result<(), String> {
    let mut signals = Signals::new().map_err(|e| format!("cannot handle signals: {e}"))?;
    let config = BrokerConfig::from_properties(settings.broker_properties(dir)).map_err(|e| e.to_string())?;

    // Every port first: a busy one is reported before anything starts.
    let http = http_limits(args);
    let kafka = BoundListeners::bind(&config).await.map_err(|e| match e {
        BrokerError::Bind { address, source, .. } => port_error(Service::Broker, &address, &source),
        other => other.to_string(),
    })?;
    let registry = match args.no_schema_registry {
        true => None,
        false => Some(crate::registry::bind_embedded(&settings.host, settings.schema_registry_port, http).await?),
    };
    let proxy = match args.no_rest_proxy {
        true => None,
        false => Some(crate::restproxy::bind_embedded(&settings.host, settings.rest_proxy_port, http).await?),
    };

    // Then the directory, the log and the settings, with the ports actually bound.
    local::ensure_writable_dir(dir)?;
    let log_file = local::log_path(dir);
    if args.detached_child {
        logging::init_detached();
    } else {
        let log = logging::open_log(&log_file)?;
        logging::init_foreground(log);
    }
    for key in &config.unknown_keys {
        tracing::warn!(key = %key, "config key is not used by Tributary");
    }
    let kafka_addrs = kafka.addresses();
    let Some(&(_, kafka_addr)) = kafka_addrs.first() else {
        return Err("the broker config has no Kafka listener (listeners=...)".to_string());
    };
    if !settings.broker.contains_key("listeners") {
        settings.kafka_port = kafka_addr.port();
    }
    if let Some((_, l)) = &registry {
        settings.schema_registry_port = l.local_addr().map_or(settings.schema_registry_port, |a| a.port());
    }
    if let Some((_, l)) = &proxy {
        settings.rest_proxy_port = l.local_addr().map_or(settings.rest_proxy_port, |a| a.port());
    }
    settings.save(dir).map_err(|e| format!("cannot write {}: {e}", dir.join(local::PROPERTIES_FILE).display()))?;

    let mut running = Started::default();
    let result = start_services(args, dir, config, kafka, registry, proxy, &mut running, started, printer).await;
    let pid = std::process::id();
    if let Err(e) = result {
        running.stop(printer).await;
        RunFile::remove_if_owned(dir, pid);
        return Err(e);
    }
    signals.recv().await;
    tracing::info!("stopping on a signal");
    running.stop(printer).await;
    RunFile::remove_if_owned(dir, pid);
    tracing::info!("Tributary stopped");
    printer.stopped();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn start_services(
    args: &StartArgs,
    dir: &Path,
    config: BrokerConfig,
    kafka: BoundListeners,
    registry: Option<(tributary_schema_registry::RegistryConfig, tokio::net::TcpListener)>,
    proxy: Option<(tributary_rest_proxy::RestProxyConfig, tokio::net::TcpListener)>,
    running: &mut Started,
    started: Instant,
    printer: &Printer,
) -> Result<(), String> {
    let step = |service: Service| {
        printer.starting(service);
        log_as(service, &format!("Starting {}", service.name()));
        Instant::now()
    };
    let up = |service: &RunService, since: Instant| {
        let ms = since.elapsed().as_millis();
        printer.up(service.service, &service.url, ms);
        log_as(service.service, &format!("{} is up at {} ({ms} ms)", service.service.name(), service.url));
    };

    let t = step(Service::Broker);
    let broker = Broker::start_bound(config, kafka).await.map_err(|e| e.to_string())?;
    let kafka_addr = broker.bound_addresses().first().map(|(_, a)| *a);
    let mut run = RunFile {
        pid: std::process::id(),
        state: RunState::Starting,
        detached: args.detached_child,
        started_at_ms: local::now_ms().saturating_sub(u64::try_from(started.elapsed().as_millis()).unwrap_or(0)),
        version: env!("CARGO_PKG_VERSION").to_string(),
        data_dir: dir.display().to_string(),
        log_file: local::log_path(dir).display().to_string(),
        cluster_id: broker.cluster().cluster_id().to_string(),
        node_id: broker.cluster().node_id,
        services: Vec::new(),
    };
    running.broker = Some(broker);
    let Some(kafka_addr) = kafka_addr else {
        return Err("the broker listens nowhere".to_string());
    };
    let entry = run_service(Service::Broker, kafka_addr);
    up(&entry, t);
    run.services.push(entry);
    save_run(&run, dir)?;

    let mut registry_addr = None;
    if let Some((mut config, listener)) = registry {
        let t = step(Service::SchemaRegistry);
        // One broker: `_schemas` takes the broker's replication factor (1) without a warning.
        config.replication_factor = -1;
        let r = crate::registry::start_embedded(config, listener, &kafka_addr.to_string()).await?;
        registry_addr = Some(r.local_addr());
        let entry = run_service(Service::SchemaRegistry, r.local_addr());
        running.registry = Some(r);
        up(&entry, t);
        run.services.push(entry);
        save_run(&run, dir)?;
    }
    if let Some((config, listener)) = proxy {
        let t = step(Service::RestProxy);
        let p = crate::restproxy::start_embedded(config, listener, &kafka_addr.to_string(), registry_addr)?;
        let entry = run_service(Service::RestProxy, p.local_addr());
        running.proxy = Some(p);
        up(&entry, t);
        run.services.push(entry);
    }
    run.state = RunState::Running;
    save_run(&run, dir)?;
    let ms = started.elapsed().as_millis();
    tracing::info!(pid = run.pid, "Tributary is up in {ms} ms");
    printer.started(&run, &format!("Tributary is up in {ms} ms"), false, Some(ms), &args.data_dir.hint());
    Ok(())
}

pub(crate) fn save_run(run: &RunFile, dir: &Path) -> Result<(), String> {
    run.save(dir).map_err(|e| format!("cannot write {}: {e}", dir.join(local::RUN_FILE).display()))
}

// ---------------------------------------------------------------- --detach

/// Checks in this process that every port is free (binding and releasing
/// it), so `--detach` fails before spawning anything.
fn check_ports(args: &StartArgs, settings: &Settings, dir: &Path) -> Result<(), String> {
    let mut wanted: Vec<(Service, String)> = if settings.nodes > 1 {
        let ports = settings.node_ports();
        ports.iter().flat_map(|&(k, c)| [k, c]).map(|p| (Service::Broker, host_port(&settings.host, p))).collect()
    } else {
        let config = BrokerConfig::from_properties(settings.broker_properties(dir)).map_err(|e| e.to_string())?;
        config
            .listeners
            .iter()
            .map(|l| {
                let host = if l.host.is_empty() { "0.0.0.0" } else { l.host.as_str() };
                (Service::Broker, host_port(host, l.port))
            })
            .collect()
    };
    if !args.no_schema_registry {
        wanted.push((Service::SchemaRegistry, host_port(&settings.host, settings.schema_registry_port)));
    }
    if !args.no_rest_proxy {
        wanted.push((Service::RestProxy, host_port(&settings.host, settings.rest_proxy_port)));
    }
    let mut held = Vec::new();
    for (service, address) in wanted {
        if address.ends_with(":0") {
            continue;
        }
        let listener = std::net::TcpListener::bind(&address).map_err(|e| port_error(service, &address, &e))?;
        held.push(listener);
    }
    Ok(())
}

pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

fn detach(args: &StartArgs, dir: &Path, settings: &Settings, started: Instant, printer: &Printer) -> ExitCode {
    if let Err(e) = check_ports(args, settings, dir).and_then(|()| local::ensure_writable_dir(dir)) {
        return fail((Exit::Failed, e));
    }
    let log_path = local::log_path(dir);
    let log = match logging::open_log(&log_path) {
        Ok(f) => f,
        Err(e) => return fail((Exit::Failed, e)),
    };
    let offset = log.metadata().map_or(0, |m| m.len());
    let (out, err) = match (log.try_clone(), log.try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return fail((Exit::Failed, format!("cannot use {}: {e}", log_path.display()))),
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail((Exit::Failed, format!("cannot find this program to run it in the background: {e}"))),
    };
    let mut cmd = Command::new(exe);
    cmd.arg("start").arg("--detached-child").arg("--data-dir").arg(dir);
    // The settings were resolved here; the child reads the same file and gets the same flags.
    if let Some(h) = &args.host {
        cmd.arg("--host").arg(h);
    }
    for (flag, port) in [
        ("--kafka-port", args.kafka_port),
        ("--schema-registry-port", args.schema_registry_port),
        ("--rest-proxy-port", args.rest_proxy_port),
    ] {
        if let Some(p) = port {
            cmd.arg(flag).arg(p.to_string());
        }
    }
    for o in &args.overrides {
        cmd.arg("--override").arg(o);
    }
    for (flag, value) in [
        ("--http-header-read-timeout-ms", args.http_header_read_timeout_ms),
        ("--http-idle-timeout-ms", args.http_idle_timeout_ms),
        ("--http-connection-limit", args.http_connection_limit),
    ] {
        cmd.arg(flag).arg(value.to_string());
    }
    if let Some(n) = args.nodes {
        cmd.arg("--nodes").arg(n.to_string());
    }
    if args.no_schema_registry {
        cmd.arg("--no-schema-registry");
    }
    if args.no_rest_proxy {
        cmd.arg("--no-rest-proxy");
    }
    use std::os::unix::process::CommandExt;
    cmd.current_dir(dir).stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err)).process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail((Exit::Failed, format!("cannot start the platform in the background: {e}"))),
    };
    drop(log);
    let pid = child.id();
    let deadline = Instant::now() + args.timeout;
    let mut follower = logging::Follower::at(&log_path, offset);
    let mut last_error: Option<String> = None;
    let echo = |lines: Vec<String>, last_error: &mut Option<String>| {
        for line in lines {
            if let Some(e) = line.strip_prefix("error: ") {
                *last_error = Some(e.to_string());
            }
            if let Some(progress) = logging::Progress::parse(&line) {
                match progress {
                    logging::Progress::Starting(s, node) => printer.starting_node(s, node),
                    logging::Progress::Up { service, node, url, ms } => printer.up_node(service, node, &url, ms),
                }
            }
        }
    };
    let run = loop {
        echo(follower.read_lines(), &mut last_error);
        match child.try_wait() {
            Ok(Some(status)) => {
                echo(follower.read_lines(), &mut last_error);
                let reason = last_error.unwrap_or_else(|| {
                    format!("the platform exited ({status}) while starting; see {}", log_path.display())
                });
                return fail((Exit::Failed, reason));
            }
            Ok(None) => {}
            Err(e) => return fail((Exit::Failed, format!("cannot watch the platform's process {pid}: {e}"))),
        }
        if let Ok(Some(run)) = RunFile::load(dir)
            && run.pid == pid
            && run.state == RunState::Running
        {
            break run;
        }
        if Instant::now() >= deadline {
            let _ = local::signal(pid, rustix::process::Signal::TERM);
            let stop_by = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < stop_by {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            return fail((
                Exit::Failed,
                format!(
                    "the platform did not come up within {:?} and was stopped; see {}",
                    args.timeout,
                    log_path.display()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Up by its own account; now every port must take a connection from here.
    for s in &run.services {
        loop {
            if accepts(&s.host, s.port) {
                break;
            }
            if Instant::now() >= deadline {
                return fail((
                    Exit::Failed,
                    format!(
                        "{} at {} does not accept connections (pid {pid} runs; see {})",
                        s.service.name(),
                        s.url,
                        log_path.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let ms = started.elapsed().as_millis();
    let headline = format!("Tributary is up in {ms} ms, in the background (pid {pid})");
    printer.started(&run, &headline, false, Some(ms), &args.data_dir.hint());
    Exit::Success.code()
}

/// Whether `host:port` accepts a TCP connection within a second.
pub fn accepts(host: &str, port: u16) -> bool {
    use std::net::ToSocketAddrs;
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs.into_iter().any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

// ---------------------------------------------------------------- tributary broker

/// Runs `tributary broker` until Ctrl-C or SIGTERM.
pub fn run_broker(args: BrokerArgs, started: Instant) -> ExitCode {
    let config = match BrokerConfig::load(args.config.as_deref(), std::env::vars(), &args.overrides) {
        Ok(c) => c,
        Err(e) => return fail((Exit::Usage, e.to_string())),
    };
    match &args.log_tag {
        Some(tag) => logging::init_node(tag),
        None => crate::init_logging(),
    }
    let runtime = match crate::runtime(crate::Threads::Many) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let output = args.output;
    let result: Result<(), String> = runtime.block_on(async move {
        for key in &config.unknown_keys {
            tracing::warn!(key = %key, "config key is not used by Tributary");
        }
        let data_dir = config.data_dir.clone();
        let stop = crate::wait_for_signal();
        let broker = Broker::start(config).await.map_err(|e| e.to_string())?;
        let kafka: Vec<String> = broker.bound_addresses().iter().map(|(l, a)| format!("{}://{a}", l.name)).collect();
        let data_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir).display().to_string();
        let ms = started.elapsed().as_millis();
        let summary = json!({
            "event": "started",
            "kafka": kafka,
            "data_dir": data_dir,
            "node_id": broker.cluster().node_id,
            "cluster_id": broker.cluster().cluster_id().to_string(),
            "startup_ms": ms,
        });
        if !output.print(&summary) {
            println!("Broker is up ({ms} ms)");
            for k in &kafka {
                println!("  Kafka      {k}");
            }
            println!("  Data dir   {data_dir}");
            println!("  Cluster id {}", broker.cluster().cluster_id());
        }
        let failed = tokio::select! {
            _ = stop => None,
            () = parent_gone(args.parent_pid) => {
                tracing::warn!("the platform that started this node is gone; stopping");
                None
            }
            reason = broker.failed() => Some(reason),
        };
        broker.shutdown().await;
        if let Some(reason) = failed {
            return Err(reason);
        }
        output.emit(&json!({"event": "stopped"}));
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail((Exit::Failed, e)),
    }
}

/// Completes when `parent` is no longer this process's parent (it exited
/// and this process was adopted); never without one.
async fn parent_gone(parent: Option<u32>) {
    let Some(parent) = parent else {
        return std::future::pending().await;
    };
    loop {
        let current = rustix::process::getppid().map(|p| p.as_raw_pid().unsigned_abs());
        if current != Some(parent) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_errors_name_the_port_and_the_flag() {
        let busy = io::Error::from(io::ErrorKind::AddrInUse);
        let e = port_error(Service::Broker, "127.0.0.1:9092", &busy);
        assert_eq!(
            e,
            "Port 9092 for Kafka is already in use (127.0.0.1:9092); pass --kafka-port <port> (0 picks a free one)"
        );
        let e = port_error(Service::RestProxy, "127.0.0.1:8082", &busy);
        assert!(e.contains("8082") && e.contains("--rest-proxy-port") && e.contains("--no-rest-proxy"), "{e}");
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let e = port_error(Service::SchemaRegistry, "0.0.0.0:81", &denied);
        assert!(e.starts_with("The schema registry cannot listen on 0.0.0.0:81"), "{e}");
        assert!(e.contains("--schema-registry-port"), "{e}");
    }

    #[test]
    fn the_table_lists_every_service_and_next_steps() {
        let run = RunFile {
            pid: 7,
            state: RunState::Running,
            detached: true,
            started_at_ms: 0,
            version: "0".into(),
            data_dir: "/d".into(),
            log_file: "/d/logs/tributary.log".into(),
            cluster_id: "c".into(),
            node_id: 1,
            services: vec![
                run_service(Service::Broker, "127.0.0.1:9092".parse().expect("addr")),
                run_service(Service::SchemaRegistry, "0.0.0.0:8081".parse().expect("addr")),
                run_service(Service::RestProxy, "127.0.0.1:8082".parse().expect("addr")),
            ],
        };
        let text = render_started(&run, "Tributary is up", " --data-dir /d");
        for needle in [
            "broker           127.0.0.1:9092",
            "schema-registry  http://127.0.0.1:8081",
            "rest-proxy       http://127.0.0.1:8082",
            "export TRIBUTARY_BROKERS=127.0.0.1:9092 TRIBUTARY_SCHEMA_REGISTRY_URL=http://127.0.0.1:8081",
            "tributary topic create demo",
            "curl http://127.0.0.1:8082/v3/clusters",
            "tributary stop --data-dir /d",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        assert!(!text.contains("CONTROLLER") && !text.contains("cluster info"), "{text}");
    }

    #[test]
    fn a_local_cluster_table_lists_every_node_with_its_controller_and_pid() {
        let node = |id: i32, port: u16| RunService {
            node_id: Some(id),
            pid: Some(100 + id.unsigned_abs()),
            controller: Some(format!("127.0.0.1:{}", port + 1)),
            data_dir: Some(format!("/d/node-{id}")),
            ..RunService::new(Service::Broker, "127.0.0.1".into(), port)
        };
        let run = RunFile {
            pid: 7,
            state: RunState::Running,
            detached: true,
            started_at_ms: 0,
            version: "0".into(),
            data_dir: "/d".into(),
            log_file: "/d/logs/tributary.log".into(),
            cluster_id: "c".into(),
            node_id: 1,
            services: vec![
                node(1, 9092),
                node(2, 9094),
                node(3, 9096),
                run_service(Service::SchemaRegistry, "127.0.0.1:8081".parse().expect("addr")),
            ],
        };
        let text = render_started(&run, "Tributary is up", "");
        for needle in [
            "broker-2         127.0.0.1:9094         127.0.0.1:9095  102",
            "schema-registry  http://127.0.0.1:8081  -               -",
            "Bootstrap   127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096",
            "export TRIBUTARY_BROKERS=127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096 ",
            "tributary cluster info",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }
}
