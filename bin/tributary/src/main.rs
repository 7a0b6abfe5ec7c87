//! The `tributary` binary: subcommands, config loading and wiring; no logic
//! of its own.
//!
//! - `tributary start` runs the platform on one machine with development
//!   defaults (Kafka on 127.0.0.1:9092, the schema registry on :8081, the REST
//!   proxy on :8082, data in ./tributary-data), in the foreground or
//!   `--detach`ed (`start.rs`); `tributary status|stop|logs|destroy` follow
//!   the platform running on a data directory (`lifecycle.rs`) through the
//!   files it keeps there (`local.rs`); its log lines name their service
//!   (`logging.rs`). `start --nodes 3` runs a local KRaft cluster of three
//!   broker processes under one supervising process instead (`nodes.rs`).
//! - `tributary broker --config server.properties` runs a broker from Kafka's
//!   own config keys, with `KAFKA_*` environment and `--override` on top.
//! - `tributary cluster info` describes any Kafka-compatible cluster: brokers,
//!   fenced or not, and the metadata quorum (`cluster.rs`).
//! - `tributary group list|describe|seek|delete` administers consumer groups
//!   of any Kafka-compatible cluster (`group.rs`).
//! - `tributary topic list|describe|create|alter-config|add-partitions|delete`
//!   administers its topics (`topic.rs`); `topic produce|consume` write and
//!   read records (`produce.rs`, `consume.rs`, with `template.rs`,
//!   `serdes.rs`, `progress.rs`).
//! - `tributary profile ...` keeps named connection defaults (`profile.rs`);
//!   what every client command shares (flags, exit statuses, `-o
//!   table|json|yaml`) is in `cli.rs` and `output.rs`; `tributary completion`
//!   prints shell completions.
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
mod cluster;
mod consume;
mod debug;
mod group;
mod lifecycle;
mod local;
mod logging;
mod nodes;
mod output;
mod partition;
mod partition_reassign;
mod produce;
mod profile;
mod progress;
mod registry;
mod restproxy;
mod schema;
mod serdes;
mod start;
mod storage;
mod table;
mod template;
mod topic;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tributary",
    version,
    about = "A Kafka-compatible data-streaming platform in one binary",
    after_long_help = CLI_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole platform on this machine with development defaults.
    Start(start::StartArgs),
    /// Show the platform running on a data directory: each service's state, URL, pid and uptime.
    Status(lifecycle::StatusArgs),
    /// Stop the platform running on a data directory.
    Stop(lifecycle::StopArgs),
    /// Print the log of the platform on a data directory, or of one of its services.
    Logs(lifecycle::LogsArgs),
    /// Stop the platform on a data directory if it runs, and delete the directory.
    Destroy(lifecycle::DestroyArgs),
    /// Run a broker from a Kafka server.properties file.
    Broker(start::BrokerArgs),
    /// The cluster: its id, controller, brokers (fenced or not), metadata quorum, topic and partition counts.
    Cluster(cluster::ClusterArgs),
    /// A KRaft node's data directory: format it for a cluster id, or make a new id (kafka-storage.sh).
    Storage(storage::StorageArgs),
    /// Consumer groups: list, describe with lag, seek offsets, delete.
    Group(group::GroupArgs),
    /// Topics: list, describe, create, alter configs, add partitions, delete.
    Topic(topic::TopicArgs),
    /// Partitions: elect leaders (preferred or unclean), reassign (move replicas, change the replication factor).
    Partition(partition::PartitionArgs),
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
    /// Read-only views of a node's files for diagnosis: `dump-log` lists a partition's batches on disk.
    Debug(debug::DebugArgs),
    /// Print a shell completion script.
    #[command(after_long_help = COMPLETION_HELP)]
    Completion {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

const CLI_HELP: &str = "\
Examples:
  tributary start --detach                  # Kafka :9092, schema registry :8081, REST proxy :8082
  tributary status
  tributary topic create orders -p 3
  tributary logs broker -f
  tributary stop

`tributary <command> --help` shows each command's flags, exit statuses and JSON output.";

const COMPLETION_HELP: &str = "\
Examples:
  tributary completion bash > /etc/bash_completion.d/tributary      # or: source <(tributary completion bash)
  tributary completion zsh > \"${fpath[1]}/_tributary\"
  tributary completion fish > ~/.config/fish/completions/tributary.fish";

pub(crate) fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(logging::filter())
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Registers for Ctrl-C and SIGTERM at once (a signal arriving from this
/// call on is caught, never fatal) and returns a future that completes on the
/// first of them. Call it before announcing that a service is up, so a
/// supervisor that sends SIGTERM right after the announcement gets a clean
/// stop. Must be called inside the runtime.
pub(crate) fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => start::run(args, started),
        Command::Status(args) => lifecycle::status(args),
        Command::Stop(args) => lifecycle::stop(args),
        Command::Logs(args) => lifecycle::logs(args),
        Command::Destroy(args) => lifecycle::destroy(args),
        Command::Broker(args) => start::run_broker(args, started),
        Command::Cluster(args) => cluster::run(args),
        Command::Storage(args) => storage::run(args),
        Command::Group(args) => group::run(args),
        Command::Topic(args) => topic::run(args),
        Command::Partition(args) => partition::run(args),
        Command::Schema(args) => schema::run_schema(args),
        Command::Subject(args) => schema::run_subject(args),
        Command::Profile(args) => profile::run(args),
        Command::Debug(args) => debug::run(args),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tributary", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::SchemaRegistry(args) => {
            init_logging();
            registry::run(args)
        }
        Command::RestProxy(args) => {
            init_logging();
            restproxy::run(args)
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
