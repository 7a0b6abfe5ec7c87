//! The `tributary` binary: subcommands, config loading and wiring; no logic
//! of its own.
//!
//! - `tributary start` runs the platform on one machine with embedded
//!   defaults (Kafka on 127.0.0.1:9092, data in ./tributary-data).
//! - `tributary broker --config server.properties` runs a broker from Kafka's
//!   own config keys, with `KAFKA_*` environment and `--override` on top.
//! - `tributary group list|describe|seek|delete` administers consumer groups
//!   of any Kafka-compatible cluster (`group.rs`).
//! - `tributary topic list|describe|create|alter-config|add-partitions|delete`
//!   administers its topics (`topic.rs`).
//! - `tributary schema-registry --bootstrap-servers host:port` runs a schema
//!   registry on its own against any Kafka-compatible cluster; `start` runs
//!   one in-process on port 8081 unless told otherwise (`registry.rs`).
//! - `tributary rest-proxy --bootstrap-servers host:port` runs Confluent's
//!   REST Proxy API (v3) on its own; `start` runs one in-process on port 8082
//!   unless told otherwise (`restproxy.rs`).
//! - `tributary schema create|list|describe|delete|check-compatibility` and
//!   `tributary subject list|describe|update` drive any Confluent-compatible
//!   schema registry over its REST API (`schema.rs`, through `tributary-registry-client`).

mod cli;
mod consume;
mod group;
mod output;
mod produce;
mod profile;
mod progress;
mod registry;
mod restproxy;
mod schema;
mod serdes;
mod table;
mod template;
mod topic;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{CommandFactory, Parser, Subcommand};
use serde::Serialize;
use tributary_broker::Broker;
use tributary_config::BrokerConfig;

use crate::output::Format;

#[derive(Debug, Parser)]
#[command(name = "tributary", version, about = "A Kafka-compatible data-streaming platform in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole platform on this machine with development defaults.
    Start {
        /// Port of the Kafka listener.
        #[arg(long, default_value_t = 9092)]
        kafka_port: u16,
        /// Host to listen on and advertise.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Where data lives.
        #[arg(long, env = "TRIBUTARY_DATA_DIR", default_value = "./tributary-data")]
        data_dir: PathBuf,
        /// Extra broker config, as in server.properties (repeatable).
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Port of the schema registry (0 = any free port).
        #[arg(long, default_value_t = 8081)]
        schema_registry_port: u16,
        /// Do not run the schema registry.
        #[arg(long)]
        no_schema_registry: bool,
        /// Port of the REST proxy (0 = any free port).
        #[arg(long, default_value_t = 8082)]
        rest_proxy_port: u16,
        /// Do not run the REST proxy.
        #[arg(long)]
        no_rest_proxy: bool,
        /// Output format of the startup summary (json and yaml also print a `stopped` event at the end).
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Run a broker from a Kafka server.properties file.
    Broker {
        /// server.properties to read.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Config key=value applied after the file and KAFKA_* variables (repeatable).
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Output format of the startup summary (json and yaml also print a `stopped` event at the end).
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Consumer groups: list, describe with lag, seek offsets, delete.
    Group(group::GroupArgs),
    /// Topics: list, describe, create, alter configs, add partitions, delete.
    Topic(topic::TopicArgs),
    /// Run a schema registry against a Kafka cluster.
    SchemaRegistry(registry::RegistryArgs),
    /// Run a REST proxy (Confluent's v3 API) against a Kafka cluster.
    RestProxy(restproxy::RestProxyArgs),
    /// Schemas in a schema registry: create, list, describe, delete, check compatibility.
    Schema(schema::SchemaArgs),
    /// Subjects in a schema registry: list, describe, set compatibility level and mode.
    Subject(schema::SubjectArgs),
    /// Profiles: named connection defaults (brokers, registry, timeout) for every command.
    Profile(profile::ProfileArgs),
    /// Print a shell completion script.
    #[command(after_long_help = COMPLETION_HELP)]
    Completion {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

const COMPLETION_HELP: &str = "\
Examples:
  tributary completion bash > /etc/bash_completion.d/tributary      # or: source <(tributary completion bash)
  tributary completion zsh > \"${fpath[1]}/_tributary\"
  tributary completion fish > ~/.config/fish/completions/tributary.fish";

#[derive(Serialize)]
struct Summary {
    event: &'static str,
    kafka: Vec<String>,
    schema_registry: Option<String>,
    rest_proxy: Option<String>,
    data_dir: String,
    node_id: i32,
    cluster_id: String,
    startup_ms: u128,
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn start_config(
    kafka_port: u16,
    host: &str,
    data_dir: &std::path::Path,
    overrides: &[String],
) -> Result<BrokerConfig, String> {
    let mut props = BTreeMap::new();
    props.insert("listeners".to_string(), format!("PLAINTEXT://{host}:{kafka_port}"));
    props.insert("log.dirs".to_string(), data_dir.display().to_string());
    props.insert("auto.create.topics.enable".to_string(), "true".to_string());
    props.insert("default.replication.factor".to_string(), "1".to_string());
    props.insert("offsets.topic.replication.factor".to_string(), "1".to_string());
    props.insert("transaction.state.log.replication.factor".to_string(), "1".to_string());
    props.insert("transaction.state.log.min.isr".to_string(), "1".to_string());
    props.insert("group.initial.rebalance.delay.ms".to_string(), "0".to_string());
    for item in overrides {
        let (k, v) = item.split_once('=').ok_or_else(|| format!("override {item:?} is not of the form key=value"))?;
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    BrokerConfig::from_properties(props).map_err(|e| e.to_string())
}

/// The HTTP services `tributary start` runs in-process next to the broker:
/// for each, the host and port to listen on, or `None` when turned off.
#[derive(Debug, Default)]
struct Embedded {
    schema_registry: Option<(String, u16)>,
    rest_proxy: Option<(String, u16)>,
}

async fn run(config: BrokerConfig, embedded: Embedded, output: Format, started: Instant) -> Result<(), String> {
    for key in &config.unknown_keys {
        tracing::warn!(key = %key, "config key is not used by Tributary");
    }
    let data_dir = config.data_dir.clone();
    // Bind the HTTP ports before anything starts, so a busy port is the first thing reported.
    let registry_listener = match &embedded.schema_registry {
        Some((host, port)) => Some(registry::bind_embedded(host, *port).await?),
        None => None,
    };
    let proxy_listener = match &embedded.rest_proxy {
        Some((host, port)) => Some(restproxy::bind_embedded(host, *port).await?),
        None => None,
    };
    let broker = Broker::start(config).await.map_err(|e| e.to_string())?;
    let kafka: Vec<String> = broker.bound_addresses().iter().map(|(l, a)| format!("{}://{a}", l.name)).collect();
    let kafka_addr = broker.bound_addresses().first().map(|(_, a)| *a);
    let schema_registry = match (registry_listener, kafka_addr) {
        (Some((config, listener)), Some(kafka_addr)) => {
            match registry::start_embedded(config, listener, kafka_addr).await {
                Ok(r) => Some(r),
                Err(e) => {
                    broker.shutdown().await;
                    return Err(e);
                }
            }
        }
        _ => None,
    };
    let rest_proxy = match (proxy_listener, kafka_addr) {
        (Some((config, listener)), Some(kafka_addr)) => match restproxy::start_embedded(
            config,
            listener,
            kafka_addr,
            schema_registry.as_ref().map(|r| r.local_addr()),
        ) {
            Ok(p) => Some(p),
            Err(e) => {
                if let Some(r) = schema_registry {
                    r.shutdown().await;
                }
                broker.shutdown().await;
                return Err(e);
            }
        },
        _ => None,
    };
    let summary = Summary {
        event: "started",
        schema_registry: schema_registry.as_ref().map(|r| format!("http://{}", r.local_addr())),
        rest_proxy: rest_proxy.as_ref().map(|p| format!("http://{}", p.local_addr())),
        kafka,
        data_dir: std::fs::canonicalize(&data_dir).unwrap_or(data_dir).display().to_string(),
        node_id: broker.cluster().node_id,
        cluster_id: broker.cluster().cluster_id().to_string(),
        startup_ms: started.elapsed().as_millis(),
    };
    match output {
        Format::Json | Format::Yaml => output.emit(&summary),
        Format::Table => {
            println!("Tributary is up ({} ms)", summary.startup_ms);
            for k in &summary.kafka {
                println!("  Kafka      {k}");
            }
            if let Some(url) = &summary.schema_registry {
                println!("  Schemas    {url}");
            }
            if let Some(url) = &summary.rest_proxy {
                println!("  REST       {url}/v3/clusters");
            }
            println!("  Data dir   {}", summary.data_dir);
            println!("  Cluster id {}", summary.cluster_id);
            if let Some(first) = summary.kafka.first() {
                let bootstrap = first.split_once("://").map_or(first.as_str(), |(_, a)| a);
                println!("Try it:  kcat -b {bootstrap} -L     (Ctrl-C stops the broker)");
            }
        }
    }
    wait_for_signal().await;
    if let Some(p) = rest_proxy {
        p.shutdown().await;
    }
    if let Some(r) = schema_registry {
        r.shutdown().await;
    }
    broker.shutdown().await;
    output.emit(&serde_json::json!({"event": "stopped"}));
    Ok(())
}

pub(crate) async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    let (config, embedded, output) = match cli.command {
        Command::Group(args) => return group::run(args),
        Command::Topic(args) => return topic::run(args),
        Command::Schema(args) => return schema::run_schema(args),
        Command::Subject(args) => return schema::run_subject(args),
        Command::Profile(args) => return profile::run(args),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tributary", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::SchemaRegistry(args) => {
            init_logging();
            return registry::run(args);
        }
        Command::RestProxy(args) => {
            init_logging();
            return restproxy::run(args);
        }
        Command::Start {
            kafka_port,
            host,
            data_dir,
            overrides,
            schema_registry_port,
            no_schema_registry,
            rest_proxy_port,
            no_rest_proxy,
            output,
        } => {
            let embedded = Embedded {
                schema_registry: (!no_schema_registry).then(|| (host.clone(), schema_registry_port)),
                rest_proxy: (!no_rest_proxy).then(|| (host.clone(), rest_proxy_port)),
            };
            (start_config(kafka_port, &host, &data_dir, &overrides), embedded, output)
        }
        Command::Broker { config, overrides, output } => (
            BrokerConfig::load(config.as_deref(), std::env::vars(), &overrides).map_err(|e| e.to_string()),
            Embedded::default(),
            output,
        ),
    };
    init_logging();
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match crate::runtime(Threads::Many) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(run(config, embedded, output, started)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How many worker threads a command's async runtime gets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Threads {
    /// One: a client command that makes a few requests and exits.
    One,
    /// One per core: a server.
    Many,
}

/// The async runtime of a command; when it cannot start, says so on stderr
/// and gives the exit code to return.
pub(crate) fn runtime(threads: Threads) -> Result<tokio::runtime::Runtime, ExitCode> {
    let built = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Threads::Many => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    };
    built.map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}
