//! `tributary topic`: topics of any Kafka-compatible cluster from the
//! command line. Argument parsing and rendering only; the work is in
//! `tributary-client` (Metadata, CreateTopics, DeleteTopics,
//! CreatePartitions, DescribeConfigs, IncrementalAlterConfigs).
//!
//! ```text
//! tributary topic list                          Metadata (all topics)
//! tributary topic list --under-replicated       Metadata: partitions whose ISR is smaller than their replicas
//! tributary topic list --unavailable            Metadata: partitions without a leader
//! tributary topic describe <topic>...           Metadata + DescribeConfigs
//! tributary topic create <topic> -p 6 -c k=v    CreateTopics
//! tributary topic alter-config <topic> --set k=v --delete k
//! tributary topic add-partitions <topic> --num 12
//! tributary topic delete <topic>...             DeleteTopics
//! tributary topic produce <topic>               Produce (produce.rs, through tributary_client::Producer)
//! tributary topic consume <topic>...            Fetch, groups (consume.rs, through tributary_client::Consumer)
//! ```

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use tributary_client::{Client, ClientError, ConfigChange, ConfigResource, NewTopic, TopicCreated, TopicMetadata};

use crate::cli::{ErrorJson, Exit, KafkaArgs, KafkaTarget};
use crate::output::Format;
use crate::table::{Table, pairs};

const TOPIC_HELP: &str = "\
Connection flags (--brokers, --profile, --timeout, -o) may come before or after the subcommand.

Exit status: 0 on success; 1 when the command or a topic in it failed (the reason is on stderr
as `error: ...`, with the Kafka error name when the broker returned one); 2 for invalid arguments;
4 when a topic does not exist; 5 when no broker answered.

JSON output (-o json) is one object on one line; -o yaml prints the same fields as YAML. Fields
may be added, never renamed or removed.

Examples:
  tributary topic create orders -p 6 -c cleanup.policy=compact
  tributary topic list -o json
  tributary topic describe orders
  tributary topic alter-config orders --set retention.ms=86400000 --delete cleanup.policy
  tributary topic add-partitions orders --num 12
  tributary topic delete orders
  seq 1 1000 | tributary topic produce orders
  tributary topic consume orders --from-beginning -e";

const LIST_HELP: &str = "\
JSON output:
  {\"topics\": [{\"topic\": str, \"partitions\": int, \"replication_factor\": int, \"internal\": bool}]}
With --under-replicated or --unavailable (or both: partitions that are either), partitions instead:
  {\"partitions\": [{\"topic\": str, \"partition\": int, \"leader\": int, \"replicas\": [int], \"isr\": [int],
                   \"offline\": bool, \"under_replicated\": bool}]}
offline: no leader (-1): the partition takes no reads or writes. under_replicated: fewer in-sync
replicas than replicas.

Examples:
  tributary topic list
  tributary topic list --all -o json
  tributary topic list --under-replicated
  tributary topic list --unavailable -o json";

const DESCRIBE_HELP: &str = "\
JSON output:
  {\"topics\": [{\"topic\": str, \"internal\": bool,
               \"partitions\": [{\"partition\": int, \"leader\": int, \"replicas\": [int], \"isr\": [int],
                               \"offline\": bool, \"under_replicated\": bool}],
               \"configs\": {str: str}}]}
configs holds the values set on the topic itself (dynamic topic configs). offline: the partition
has no leader (-1); under_replicated: fewer in-sync replicas than replicas. The table's STATUS
column says offline, under-replicated or ok.

Examples:
  tributary topic describe orders
  tributary topic describe orders payments -o yaml";

const CREATE_HELP: &str = "\
JSON output:
  {\"topic\": str, \"created\": bool, \"partitions\": int}
created is false (exit status 0) only with --if-not-exists and an existing topic.

Examples:
  tributary topic create orders -p 6
  tributary topic create customers -p 3 -c cleanup.policy=compact -c min.compaction.lag.ms=60000
  tributary topic create orders --if-not-exists -o json";

const ALTER_HELP: &str = "\
JSON output:
  {\"topic\": str, \"set\": {str: str}, \"deleted\": [str]}

Examples:
  tributary topic alter-config orders --set retention.ms=86400000
  tributary topic alter-config orders --set cleanup.policy=compact --delete retention.ms";

const ADD_PARTITIONS_HELP: &str = "\
JSON output:
  {\"topic\": str, \"partitions\": int}

Example:
  tributary topic add-partitions orders --num 12";

const DELETE_HELP: &str = "\
JSON output:
  {\"topics\": [{\"topic\": str, \"deleted\": bool,
               \"error\": {\"code\": int|null, \"name\": str|null, \"message\": str}|null}]}

Example:
  tributary topic delete orders payments";

/// `tributary topic ...`
#[derive(Debug, Args)]
#[command(after_long_help = TOPIC_HELP)]
pub struct TopicArgs {
    #[command(flatten)]
    connection: KafkaArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    #[command(flatten)]
    Admin(AdminCommand),
    /// Write records to a topic: one per line of stdin or a file, plain or through a schema.
    #[command(after_long_help = crate::produce::PRODUCE_HELP)]
    Produce(Box<crate::produce::ProduceArgs>),
    /// Read records from topics, alone or as a group member; print them as text, JSON or YAML.
    #[command(after_long_help = crate::consume::CONSUME_HELP)]
    Consume(Box<crate::consume::ConsumeArgs>),
}

/// The commands that administer topics through one client connection.
#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// List topics with their partition counts.
    #[command(after_long_help = LIST_HELP)]
    List {
        /// Also list internal topics (__consumer_offsets, ...).
        #[arg(short = 'a', long)]
        all: bool,
        /// List only partitions with fewer in-sync replicas than replicas.
        #[arg(long)]
        under_replicated: bool,
        /// List only partitions without a leader (offline).
        #[arg(long)]
        unavailable: bool,
    },
    /// Describe topics: partitions with leader, replicas and in-sync replicas, and configs set on them.
    #[command(after_long_help = DESCRIBE_HELP)]
    Describe {
        /// Topic names.
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Create a topic.
    #[command(after_long_help = CREATE_HELP)]
    Create {
        /// Topic name.
        topic: String,
        /// Partitions (the broker's num.partitions when left out).
        #[arg(short = 'p', long)]
        partitions: Option<i32>,
        /// Replication factor (the broker's default.replication.factor when left out).
        #[arg(short = 'r', long)]
        replication_factor: Option<i16>,
        /// Topic config KEY=VALUE (repeatable).
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        configs: Vec<(String, String)>,
        /// Succeed without changing anything when the topic exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// Set or remove configs of a topic.
    #[command(name = "alter-config", after_long_help = ALTER_HELP)]
    AlterConfig {
        /// Topic name.
        topic: String,
        /// Config KEY=VALUE to set (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// Config to remove, so the broker default applies again (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Grow a topic to a number of partitions.
    #[command(name = "add-partitions", after_long_help = ADD_PARTITIONS_HELP)]
    AddPartitions {
        /// Topic name.
        topic: String,
        /// The new total number of partitions.
        #[arg(long)]
        num: i32,
    },
    /// Delete topics and their records.
    #[command(after_long_help = DELETE_HELP)]
    Delete {
        /// Topic names.
        #[arg(required = true)]
        topics: Vec<String>,
    },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("\"{s}\" is not KEY=VALUE")),
    }
}

/// Runs a topic command; the exit status says whether it succeeded.
pub fn run(args: TopicArgs) -> ExitCode {
    let TopicArgs { connection, command } = args;
    crate::cli::run(&connection, |target, format| execute(command, target, format))
}

async fn execute(command: TopicCommand, target: KafkaTarget, format: Format) -> Result<Exit, ClientError> {
    let command = match command {
        TopicCommand::Produce(args) => return crate::produce::run(*args, target, format).await,
        TopicCommand::Consume(args) => return crate::consume::run(*args, target, format).await,
        TopicCommand::Admin(command) => command,
    };
    let mut client = crate::cli::connect(&target).await?;
    match command {
        AdminCommand::List { all, under_replicated: false, unavailable: false } => list(&mut client, all, format).await,
        AdminCommand::List { all, under_replicated, unavailable } => {
            list_partitions(&mut client, all, under_replicated, unavailable, format).await
        }
        AdminCommand::Describe { topics } => describe(&mut client, &topics, format).await,
        AdminCommand::Create { topic, partitions, replication_factor, configs, if_not_exists } => {
            let mut new = NewTopic::new(&topic, partitions.unwrap_or(-1));
            new.replication_factor = replication_factor.unwrap_or(-1);
            new.configs = configs;
            create(&mut client, &new, if_not_exists, format).await
        }
        AdminCommand::AlterConfig { topic, set, delete } => alter(&mut client, &topic, set, delete, format).await,
        AdminCommand::AddPartitions { topic, num } => add_partitions(&mut client, &topic, num, format).await,
        AdminCommand::Delete { topics } => delete_topics(&mut client, &topics, format).await,
    }
}

/// UNKNOWN_TOPIC_OR_PARTITION for `topic` (exit status 4).
pub(crate) fn not_found(topic: &str) -> ClientError {
    ClientError::Kafka(tributary_client::KafkaError::new(3, format!("find topic \"{topic}\"")))
}

fn replication_factor(t: &TopicMetadata) -> usize {
    t.partitions.values().map(|p| p.replicas.len()).max().unwrap_or(0)
}

#[derive(Serialize)]
struct ListedJson {
    topic: String,
    partitions: usize,
    replication_factor: usize,
    internal: bool,
}

async fn list(client: &mut Client, all: bool, format: Format) -> Result<Exit, ClientError> {
    let metadata = client.metadata(None).await?;
    let topics: Vec<ListedJson> = metadata
        .topics
        .iter()
        .filter(|(_, t)| t.error_code == 0 && (all || !t.is_internal))
        .map(|(name, t)| ListedJson {
            topic: name.clone(),
            partitions: t.partitions.len(),
            replication_factor: replication_factor(t),
            internal: t.is_internal,
        })
        .collect();
    match format {
        Format::Json | Format::Yaml => format.emit(&serde_json::json!({ "topics": topics })),
        Format::Table => {
            let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICAS"]);
            for t in &topics {
                table.row(vec![t.topic.clone(), t.partitions.to_string(), t.replication_factor.to_string()]);
            }
            print!("{}", table.render());
        }
    }
    Ok(Exit::Success)
}

#[derive(Serialize)]
struct PartitionJson {
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    offline: bool,
    under_replicated: bool,
}

impl PartitionJson {
    fn new(partition: i32, p: &tributary_client::PartitionMetadata) -> PartitionJson {
        PartitionJson {
            partition,
            leader: p.leader,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            offline: p.leader < 0,
            under_replicated: p.isr.len() < p.replicas.len(),
        }
    }

    /// `offline`, `under-replicated` or `ok`, for tables.
    fn status(&self) -> &'static str {
        if self.offline {
            "offline"
        } else if self.under_replicated {
            "under-replicated"
        } else {
            "ok"
        }
    }
}

fn id_list(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

#[derive(Serialize)]
struct TopicPartitionJson {
    topic: String,
    #[serde(flatten)]
    partition: PartitionJson,
}

/// Partitions that are under-replicated or offline (as asked), of every
/// topic (internal ones with `all`).
async fn list_partitions(
    client: &mut Client,
    all: bool,
    under_replicated: bool,
    unavailable: bool,
    format: Format,
) -> Result<Exit, ClientError> {
    let metadata = client.metadata(None).await?;
    let partitions: Vec<TopicPartitionJson> = metadata
        .topics
        .iter()
        .filter(|(_, t)| t.error_code == 0 && (all || !t.is_internal))
        .flat_map(|(name, t)| {
            t.partitions
                .iter()
                .map(|(i, p)| TopicPartitionJson { topic: name.clone(), partition: PartitionJson::new(*i, p) })
        })
        .filter(|tp| (under_replicated && tp.partition.under_replicated) || (unavailable && tp.partition.offline))
        .collect();
    match format {
        Format::Json | Format::Yaml => format.emit(&serde_json::json!({ "partitions": partitions })),
        Format::Table if partitions.is_empty() => {
            let what = match (under_replicated, unavailable) {
                (true, true) => "under-replicated or offline",
                (true, false) => "under-replicated",
                _ => "offline",
            };
            println!("No {what} partitions");
        }
        Format::Table => {
            let mut table = Table::new(&["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "STATUS"]);
            for tp in &partitions {
                let p = &tp.partition;
                table.row(vec![
                    tp.topic.clone(),
                    p.partition.to_string(),
                    p.leader.to_string(),
                    id_list(&p.replicas),
                    id_list(&p.isr),
                    p.status().to_string(),
                ]);
            }
            print!("{}", table.render());
        }
    }
    Ok(Exit::Success)
}

#[derive(Serialize)]
struct DescribedJson {
    topic: String,
    internal: bool,
    partitions: Vec<PartitionJson>,
    configs: std::collections::BTreeMap<String, String>,
}

async fn describe(client: &mut Client, names: &[String], format: Format) -> Result<Exit, ClientError> {
    let metadata = client.metadata(Some(names)).await?;
    let mut described = Vec::new();
    let mut exit = Exit::Success;
    for name in names {
        let Some(t) = metadata.topics.get(name).filter(|t| t.error_code == 0) else {
            let e = not_found(name);
            eprintln!("error: {e}");
            exit = exit.or(Exit::of(&e));
            continue;
        };
        let resource = ConfigResource::Topic(name.clone());
        let mut found = client.describe_configs(std::slice::from_ref(&resource), None).await?;
        let configs = match found.remove(&resource) {
            Some(Ok(entries)) => entries
                .into_iter()
                .filter(|e| e.source == tributary_client::ConfigSource::DynamicTopic)
                .filter_map(|e| Some((e.name, e.value?)))
                .collect(),
            Some(Err(e)) => return Err(ClientError::Kafka(e)),
            None => Default::default(),
        };
        described.push(DescribedJson {
            topic: name.clone(),
            internal: t.is_internal,
            partitions: t.partitions.iter().map(|(i, p)| PartitionJson::new(*i, p)).collect(),
            configs,
        });
    }
    match format {
        Format::Json | Format::Yaml => format.emit(&serde_json::json!({ "topics": described })),
        Format::Table => {
            for (n, d) in described.iter().enumerate() {
                if n > 0 {
                    println!();
                }
                let configs = d.configs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
                print!(
                    "{}",
                    pairs(&[
                        ("TOPIC", d.topic.clone()),
                        ("PARTITIONS", d.partitions.len().to_string()),
                        ("INTERNAL", d.internal.to_string()),
                        ("CONFIGS", if configs.is_empty() { "-".to_string() } else { configs }),
                    ])
                );
                println!();
                let mut table = Table::new(&["PARTITION", "LEADER", "REPLICAS", "ISR", "STATUS"]);
                for p in &d.partitions {
                    table.row(vec![
                        p.partition.to_string(),
                        p.leader.to_string(),
                        id_list(&p.replicas),
                        id_list(&p.isr),
                        p.status().to_string(),
                    ]);
                }
                print!("{}", table.render());
            }
        }
    }
    Ok(exit)
}

async fn create(
    client: &mut Client,
    topic: &NewTopic,
    if_not_exists: bool,
    format: Format,
) -> Result<Exit, ClientError> {
    let created = client.create_topic(topic).await?;
    if created == TopicCreated::AlreadyExisted && !if_not_exists {
        return Err(ClientError::Kafka(tributary_client::KafkaError::new(
            36,
            format!("create topic \"{}\" (pass --if-not-exists to accept an existing one)", topic.name),
        )));
    }
    let metadata = client.metadata(Some(std::slice::from_ref(&topic.name))).await?;
    let partitions = metadata.topics.get(&topic.name).map_or(0, |t| t.partitions.len());
    let was_created = created != TopicCreated::AlreadyExisted;
    match format {
        Format::Json | Format::Yaml => {
            format.emit(&serde_json::json!({"topic": topic.name, "created": was_created, "partitions": partitions}))
        }
        Format::Table if was_created => println!("Created topic {} ({partitions} partitions)", topic.name),
        Format::Table => println!("Topic {} already exists ({partitions} partitions)", topic.name),
    }
    Ok(Exit::Success)
}

async fn alter(
    client: &mut Client,
    topic: &str,
    set: Vec<(String, String)>,
    delete: Vec<String>,
    format: Format,
) -> Result<Exit, ClientError> {
    if set.is_empty() && delete.is_empty() {
        return Err(ClientError::Refused("nothing to change: give --set KEY=VALUE or --delete KEY".to_string()));
    }
    let metadata = client.metadata(Some(&[topic.to_string()])).await?;
    if metadata.topics.get(topic).is_none_or(|t| t.error_code != 0) {
        return Err(not_found(topic));
    }
    let mut changes: Vec<ConfigChange> =
        set.iter().map(|(name, value)| ConfigChange::Set { name: name.clone(), value: value.clone() }).collect();
    changes.extend(delete.iter().map(|name| ConfigChange::Delete { name: name.clone() }));
    client.alter_configs(&ConfigResource::Topic(topic.to_string()), &changes, false).await?;
    match format {
        Format::Json | Format::Yaml => format.emit(&serde_json::json!({
            "topic": topic,
            "set": set.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "deleted": delete,
        })),
        Format::Table => println!("Updated configs of topic {topic}"),
    }
    Ok(Exit::Success)
}

async fn add_partitions(client: &mut Client, topic: &str, num: i32, format: Format) -> Result<Exit, ClientError> {
    let metadata = client.metadata(Some(&[topic.to_string()])).await?;
    if metadata.topics.get(topic).is_none_or(|t| t.error_code != 0) {
        return Err(not_found(topic));
    }
    client.create_partitions(topic, num, false).await?;
    match format {
        Format::Json | Format::Yaml => format.emit(&serde_json::json!({"topic": topic, "partitions": num})),
        Format::Table => println!("Topic {topic} now has {num} partitions"),
    }
    Ok(Exit::Success)
}

#[derive(Serialize)]
struct DeletedJson {
    topic: String,
    deleted: bool,
    error: Option<ErrorJson>,
}

async fn delete_topics(client: &mut Client, names: &[String], format: Format) -> Result<Exit, ClientError> {
    let metadata = client.metadata(Some(names)).await?;
    let mut results = Vec::new();
    let mut exit = Exit::Success;
    for name in names {
        // Asked first: DeleteTopics retries an unknown topic until the timeout.
        let result = if metadata.topics.get(name).is_none_or(|t| t.error_code != 0) {
            Err(not_found(name))
        } else {
            client.delete_topic(name).await
        };
        if let Err(e) = &result {
            eprintln!("error: {e}");
            exit = exit.or(Exit::of(e));
        }
        results.push(DeletedJson {
            topic: name.clone(),
            deleted: result.is_ok(),
            error: result.as_ref().err().map(ErrorJson::from),
        });
    }
    match format {
        Format::Json | Format::Yaml => format.emit(&serde_json::json!({ "topics": results })),
        Format::Table => {
            for r in results.iter().filter(|r| r.deleted) {
                println!("Deleted topic {}", r.topic);
            }
        }
    }
    Ok(exit)
}
