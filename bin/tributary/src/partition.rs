//! `tributary partition`: partition operations on any Kafka-compatible
//! cluster. This module only routes; each subcommand lives in its own module.
//!
//! ```text
//! tributary partition elect-leaders --type preferred|unclean [--topic T [--partition P]] [--all]
//!                                   ElectLeaders (partition/elect.rs)
//! tributary partition reassign --generate|--execute|--verify|--cancel ...
//!                                   AlterPartitionReassignments, ListPartitionReassignments
//!                                   (partition_reassign.rs)
//! ```

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::cli::KafkaArgs;
use crate::partition_reassign::ReassignArgs;

mod elect;

const PARTITION_HELP: &str = "\
Connection flags (--brokers, --profile, --timeout, -o) may come before or after the subcommand.

Exit status: 0 on success; 1 when the cluster refused the request or a partition's election
failed (the reason is on stderr as `error: ...`, with the Kafka error name); 2 for invalid
arguments; 4 when a topic or partition does not exist; 5 when no broker answered.

Examples:
  tributary partition elect-leaders --type preferred --all
  tributary partition elect-leaders --type preferred --topic orders --partition 3
  tributary partition elect-leaders --type unclean --topic orders -o json
  tributary partition reassign --generate --topics orders --broker-list 1,2,3
  tributary partition reassign --execute --plan plan.json --throttle 10000000
  tributary partition reassign --verify --plan plan.json --wait";

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
    /// Move partitions between brokers (KIP-455): generate a plan, execute it with a throttle,
    /// verify it (removing the throttles once done), or cancel it.
    Reassign(ReassignArgs),
}

/// Runs a partition command; the exit status says whether it succeeded.
pub fn run(args: PartitionArgs) -> ExitCode {
    let PartitionArgs { connection, command } = args;
    match command {
        PartitionCommand::ElectLeaders(args) => {
            crate::cli::run(&connection, |target, format| async move { elect::run(args, target, format).await })
        }
        PartitionCommand::Reassign(reassign) => crate::partition_reassign::run(&connection, reassign),
    }
}
