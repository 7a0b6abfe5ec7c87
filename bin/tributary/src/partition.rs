//! `tributary partition ...`: commands on partitions across the cluster.
//! Each subcommand lives in its own module (`partition_reassign.rs`, ...);
//! this one only routes.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::cli::KafkaArgs;
use crate::partition_reassign::ReassignArgs;

const PARTITION_HELP: &str = "\
Connection flags (--brokers, --profile, --timeout, -o) may come before or after the subcommand.

Examples:
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
    /// Move partitions between brokers (KIP-455): generate a plan, execute it with a throttle,
    /// verify it (removing the throttles once done), or cancel it.
    Reassign(ReassignArgs),
}

/// Runs a partition command.
pub fn run(args: PartitionArgs) -> ExitCode {
    let PartitionArgs { connection, command } = args;
    match command {
        PartitionCommand::Reassign(reassign) => crate::partition_reassign::run(&connection, reassign),
    }
}
