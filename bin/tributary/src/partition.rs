//! `tributary partition`: partition operations on any Kafka-compatible
//! cluster. Each subcommand lives in its own module under `partition/`.
//!
//! ```text
//! tributary partition elect-leaders --type preferred|unclean [--topic T [--partition P]] [--all]
//!                                   ElectLeaders (partition/elect.rs)
//! ```

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::cli::KafkaArgs;

mod elect;

const PARTITION_HELP: &str = "\
Connection flags (--brokers, --profile, --timeout, -o) may come before or after the subcommand.

Exit status: 0 on success; 1 when the cluster refused the request or a partition's election
failed (the reason is on stderr as `error: ...`, with the Kafka error name); 2 for invalid
arguments; 4 when a topic or partition does not exist; 5 when no broker answered.

Examples:
  tributary partition elect-leaders --type preferred --all
  tributary partition elect-leaders --type preferred --topic orders --partition 3
  tributary partition elect-leaders --type unclean --topic orders -o json";

/// `tributary partition ...`
#[derive(Debug, Args)]
#[command(after_long_help = PARTITION_HELP)]
pub struct PartitionArgs {
    #[command(flatten)]
    connection: KafkaArgs,
    #[command(subcommand)]
    command: PartitionCommand,
}

#[derive(Debug, Subcommand)]
enum PartitionCommand {
    /// Elect leaders: move leadership back to preferred replicas, or give leaderless partitions any live replica.
    #[command(name = "elect-leaders", after_long_help = elect::ELECT_HELP)]
    ElectLeaders(elect::ElectArgs),
}

/// Runs a partition command; the exit status says whether it succeeded.
pub fn run(args: PartitionArgs) -> ExitCode {
    let PartitionArgs { connection, command } = args;
    crate::cli::run(&connection, |target, format| async move {
        match command {
            PartitionCommand::ElectLeaders(args) => elect::run(args, target, format).await,
        }
    })
}
