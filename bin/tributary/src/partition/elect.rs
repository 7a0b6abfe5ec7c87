//! `tributary partition elect-leaders`: preferred or unclean leader
//! elections through ElectLeaders, with each partition's outcome and, for
//! an error, what to do next. Argument parsing and rendering only; the
//! request is the client crate's.

use clap::{Args, ValueEnum};
use serde::Serialize;
use tributary_client::{Client, ClientError, ELECTION_NOT_NEEDED, ElectionKind, PartitionElection};

use crate::cli::{ErrorJson, Exit, KafkaTarget};
use crate::output::Format;
use crate::table::Table;

pub(super) const ELECT_HELP: &str = "\
preferred moves each partition's leadership to its first replica when that replica is alive and in
the ISR. unclean gives a partition without a leader any live replica, in sync or not (records only
the old in-sync replicas had are lost); a partition that has a leader needs no unclean election.

Which partitions: --topic T (all of its partitions), --topic T --partition P, or --all (every
partition of the cluster; only partitions where something was elected, or failed to be, are
listed).

Results: elected (the new leader is shown), not-needed (the partition already has the leader
asked for; exit status 0), or an error with what to do next (exit status 1; 4 for a partition that
does not exist).

JSON output:
  {\"type\": \"preferred\"|\"unclean\",
   \"partitions\": [{\"topic\": str, \"partition\": int, \"result\": \"elected\"|\"not-needed\"|\"error\",
                   \"leader\": int|null, \"error\": {\"code\": int|null, \"name\": str|null, \"message\": str}|null}]}
leader is the partition's leader after the election, as the cluster's metadata reports it.

Examples:
  tributary partition elect-leaders --type preferred --all
  tributary partition elect-leaders --type preferred --topic orders --partition 0
  tributary partition elect-leaders --type unclean --topic orders -o json";

/// The kind of election, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ElectionType {
    /// The first replica, when alive and in sync.
    Preferred,
    /// Any live replica, for partitions without a leader.
    Unclean,
}

impl ElectionType {
    fn kind(self) -> ElectionKind {
        match self {
            ElectionType::Preferred => ElectionKind::Preferred,
            ElectionType::Unclean => ElectionKind::Unclean,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ElectionType::Preferred => "preferred",
            ElectionType::Unclean => "unclean",
        }
    }
}

/// `tributary partition elect-leaders` arguments.
#[derive(Debug, Args)]
pub(super) struct ElectArgs {
    /// preferred or unclean.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    election: ElectionType,
    /// Elect for this topic's partitions.
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    topic: Option<String>,
    /// Only this partition of --topic.
    #[arg(long, requires = "topic")]
    partition: Option<i32>,
    /// Elect for every partition of the cluster.
    #[arg(long)]
    all: bool,
}

#[derive(Serialize)]
struct ResultJson {
    topic: String,
    partition: i32,
    result: &'static str,
    leader: Option<i32>,
    error: Option<ErrorJson>,
}

/// The partitions to name in the request, or `None` for all of the cluster's.
async fn targets(client: &mut Client, args: &ElectArgs) -> Result<Option<Vec<(String, Vec<i32>)>>, ClientError> {
    let Some(topic) = &args.topic else { return Ok(None) };
    let partitions = match args.partition {
        Some(p) => vec![p],
        None => {
            let metadata = client.metadata(Some(std::slice::from_ref(topic))).await?;
            let t = metadata
                .topics
                .get(topic)
                .filter(|t| t.error_code == 0)
                .ok_or_else(|| crate::topic::not_found(topic))?;
            t.partitions.keys().copied().collect()
        }
    };
    Ok(Some(vec![(topic.clone(), partitions)]))
}

fn outcome(e: &PartitionElection) -> &'static str {
    match &e.error {
        None => "elected",
        Some(k) if k.code == ELECTION_NOT_NEEDED => "not-needed",
        Some(_) => "error",
    }
}

pub(super) async fn run(args: ElectArgs, target: KafkaTarget, format: Format) -> Result<Exit, ClientError> {
    let mut client = crate::cli::connect(&target).await?;
    let named = targets(&mut client, &args).await?;
    let results = client.elect_leaders(args.election.kind(), named.as_deref()).await?;
    // Leaders after the election, for the partitions listed.
    let mut topics: Vec<String> = results.iter().map(|r| r.topic.clone()).collect();
    topics.dedup();
    let metadata = if topics.is_empty() { None } else { client.metadata(Some(&topics)).await.ok() };
    let leader_of = |topic: &str, partition: i32| {
        metadata.as_ref().and_then(|m| m.topics.get(topic)).and_then(|t| t.partitions.get(&partition)).map(|p| p.leader)
    };
    let mut exit = Exit::Success;
    let mut rows = Vec::new();
    for r in &results {
        let result = outcome(r);
        if result == "error"
            && let Some(e) = &r.error
        {
            let error = ClientError::Kafka(e.clone());
            eprintln!("error: {error}");
            exit = exit.or(Exit::of(&error));
        }
        rows.push(ResultJson {
            topic: r.topic.clone(),
            partition: r.partition,
            result,
            leader: leader_of(&r.topic, r.partition),
            error: r
                .error
                .as_ref()
                .filter(|e| e.code != ELECTION_NOT_NEEDED)
                .map(|e| ErrorJson::from(&ClientError::Kafka(e.clone()))),
        });
    }
    match format {
        Format::Json | Format::Yaml => {
            format.emit(&serde_json::json!({"type": args.election.name(), "partitions": rows}))
        }
        Format::Table if rows.is_empty() => println!("No partition needed a {} election", args.election.name()),
        Format::Table => {
            let mut table = Table::new(&["TOPIC", "PARTITION", "RESULT", "LEADER", "NEXT"]);
            for (row, r) in rows.iter().zip(&results) {
                let next = match &r.error {
                    Some(e) if e.code != ELECTION_NOT_NEEDED => e.hint().to_string(),
                    _ => "-".to_string(),
                };
                let result = match &r.error {
                    Some(e) if e.code != ELECTION_NOT_NEEDED => e.name.clone(),
                    _ => row.result.to_string(),
                };
                let leader = row.leader.map_or("-".to_string(), |l| l.to_string());
                table.row(vec![row.topic.clone(), row.partition.to_string(), result, leader, next]);
            }
            print!("{}", table.render());
        }
    }
    Ok(exit)
}
