//! `tributary cluster info`: what a Kafka-compatible cluster says about
//! itself (one Metadata request): its id, controller, brokers and how many
//! topics and partitions it holds. Argument parsing and rendering only.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use tributary_client::ClientError;

use crate::cli::{Exit, KafkaArgs, KafkaTarget};
use crate::output::Format;
use crate::table::{Table, pairs};

const CLUSTER_HELP: &str = "\
Connection flags (--brokers, --profile, --timeout, -o) may come before or after the subcommand.

Exit status: 0 on success; 1 when the cluster refused the request; 2 for invalid arguments; 5 when
no broker answered.

Examples:
  tributary cluster info
  tributary cluster info --brokers kafka-1:9092 -o json";

const INFO_HELP: &str = "\
JSON output:
  {\"cluster_id\": str|null, \"controller_id\": int,
   \"brokers\": [{\"node_id\": int, \"host\": str, \"port\": int, \"rack\": str|null}],
   \"topics\": int, \"internal_topics\": int, \"partitions\": int}
topics and partitions count every topic, internal ones (__consumer_offsets, ...) included. In the
table, * marks the controller.

Examples:
  tributary cluster info
  tributary cluster info -o yaml";

/// `tributary cluster ...`
#[derive(Debug, Args)]
#[command(after_long_help = CLUSTER_HELP)]
pub struct ClusterArgs {
    #[command(flatten)]
    connection: KafkaArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// The cluster's id, controller, brokers, and its topic and partition counts.
    #[command(after_long_help = INFO_HELP)]
    Info,
}

#[derive(Serialize)]
struct BrokerJson {
    node_id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
}

#[derive(Serialize)]
struct InfoJson {
    cluster_id: Option<String>,
    controller_id: i32,
    brokers: Vec<BrokerJson>,
    topics: usize,
    internal_topics: usize,
    partitions: usize,
}

/// Runs a cluster command.
pub fn run(args: ClusterArgs) -> ExitCode {
    let ClusterArgs { connection, command } = args;
    crate::cli::run(&connection, |target, format| execute(command, target, format))
}

async fn execute(command: ClusterCommand, target: KafkaTarget, format: Format) -> Result<Exit, ClientError> {
    let ClusterCommand::Info = command;
    let mut client = crate::cli::connect(&target).await?;
    let metadata = client.metadata(None).await?;
    let topics: Vec<_> = metadata.topics.values().filter(|t| t.error_code == 0).collect();
    let info = InfoJson {
        cluster_id: metadata.cluster_id.clone(),
        controller_id: metadata.controller_id,
        brokers: metadata
            .brokers
            .values()
            .map(|b| BrokerJson {
                node_id: b.node_id,
                host: b.host.clone(),
                port: b.port,
                rack: metadata.racks.get(&b.node_id).cloned(),
            })
            .collect(),
        topics: topics.len(),
        internal_topics: topics.iter().filter(|t| t.is_internal).count(),
        partitions: topics.iter().map(|t| t.partitions.len()).sum(),
    };
    if format.print(&info) {
        return Ok(Exit::Success);
    }
    print!(
        "{}",
        pairs(&[
            ("CLUSTER", info.cluster_id.clone().unwrap_or_else(|| "-".to_string())),
            ("CONTROLLER", info.controller_id.to_string()),
            ("TOPICS", format!("{} ({} internal)", info.topics, info.internal_topics)),
            ("PARTITIONS", info.partitions.to_string()),
        ])
    );
    println!();
    let mut table = Table::new(&["BROKER", "HOST", "PORT", "RACK"]);
    for b in &info.brokers {
        let id = if b.node_id == info.controller_id { format!("{}*", b.node_id) } else { b.node_id.to_string() };
        table.row(vec![id, b.host.clone(), b.port.to_string(), b.rack.clone().unwrap_or_else(|| "-".to_string())]);
    }
    print!("{}", table.render());
    Ok(Exit::Success)
}
