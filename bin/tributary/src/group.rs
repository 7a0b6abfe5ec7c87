//! `tributary group`: consumer-group administration from the command line.
//! Argument parsing and rendering only; the work is in `tributary-client`.
//!
//! ```text
//! tributary group list                     ListGroups on every broker
//! tributary group describe <group>...      DescribeGroups + OffsetFetch + ListOffsets → lag
//! tributary group seek <group> --to ...    plan (dry run) or commit (--execute)
//! tributary group delete <group>...        DeleteGroups
//! ```

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use tributary_client::seek::parse_topic_selection;
use tributary_client::{Client, ClientError, GroupDescription, PartitionLag, SeekPlan, SeekTarget, TopicPartitions};

use crate::cli::{ErrorJson, Exit, KafkaArgs, KafkaTarget};
use crate::output::Format;
use crate::table::{Table, pairs};

const GROUP_HELP: &str = "\
Connection flags (--brokers, --profile, --timeout, -o) may come before or after the subcommand.

Exit status: 0 on success; 1 when the command failed or a group in it failed (the reason is
on stderr as `error: ...`, with the Kafka error name when the broker returned one); 2 for
invalid arguments; 4 when a group does not exist; 5 when no broker answered.

JSON output (-o json) is one object on one line; -o yaml prints the same fields as YAML. Field
names are stable: fields may be added, never renamed or removed. `--help` of each subcommand
shows its shape.

Examples:
  tributary group list --states stable,empty
  tributary group describe billing
  tributary group seek billing --to earliest                 # dry run: prints the plan
  tributary group seek billing --to shift-by:-100 --topics orders:0,1 --execute
  tributary group delete billing -o json";

const LIST_JSON: &str = "\
JSON output:
  {\"groups\": [{\"group\": str, \"state\": str|null, \"protocol_type\": str, \"group_type\": str|null}]}
state is null (and --states unsupported) on brokers older than ListGroups v4.

Examples:
  tributary group list
  tributary group list --states stable,empty -o json";

const DESCRIBE_JSON: &str = "\
Lag of a partition = log end offset - committed offset; \"-\" (null in JSON) when the group has
committed nothing for it. Partitions listed: every partition the group committed or has assigned.

JSON output:
  {\"groups\": [{
     \"group\": str, \"state\": str, \"protocol_type\": str, \"protocol\": str,
     \"coordinator\": {\"node_id\": int, \"host\": str, \"port\": int},
     \"members\": [{\"member_id\": str, \"group_instance_id\": str|null, \"client_id\": str,
                  \"client_host\": str, \"subscribed_topics\": [str],
                  \"assignments\": [{\"topic\": str, \"partitions\": [int]}], \"decode_error\": str|null}],
     \"partitions\": [{\"topic\": str, \"partition\": int, \"committed_offset\": int|null,
                     \"log_end_offset\": int|null, \"lag\": int|null, \"member_id\": str|null,
                     \"client_id\": str|null, \"client_host\": str|null,
                     \"error\": {\"code\": int|null, \"name\": str|null, \"message\": str}|null}],
     \"total_lag\": int}]}
A group that does not exist is an error (exit status 4) and is left out.

Examples:
  tributary group describe billing
  tributary group describe billing shipping -o json";

const SEEK_HELP: &str = "\
Targets (--to):
  earliest | start            the first offset still in the log
  latest | end                the log end offset (consumers then see only new records)
  <N>                         offset N (moved into the log's range if outside it)
  @<ms> | @<time> | <time>    the first record at or after a time: milliseconds since the epoch,
                              or RFC 3339 such as 2024-05-01T12:00:00Z (the log end if none is that new)
  shift-by:<N>                the committed offset plus N; N may be negative (shift-by:-100)

Without --topics, every partition the group has committed offsets for is moved. --topics takes
topics (orders,payments) and partitions (orders:0,1,2); repeat the flag to combine.

Nothing is committed without --execute: the command prints the plan. The group must have no
active members (stop its consumers first), as with Kafka's offset reset tool.

JSON output:
  {\"group\": str, \"target\": str, \"executed\": bool,
   \"partitions\": [{\"topic\": str, \"partition\": int, \"current_offset\": int|null,
                   \"new_offset\": int, \"log_start_offset\": int, \"log_end_offset\": int}]}

Examples:
  tributary group seek billing --to earliest                  # dry run: prints the plan
  tributary group seek billing --to 2024-05-01T12:00:00Z --execute
  tributary group seek billing --to shift-by:-100 --topics orders:0,1 --execute";

const DELETE_JSON: &str = "\
Groups with active members are refused (NON_EMPTY_GROUP). Each group is deleted on its own: the
exit status is that of the first failure (4 for a group that does not exist, else 1).

JSON output:
  {\"groups\": [{\"group\": str, \"deleted\": bool,
               \"error\": {\"code\": int|null, \"name\": str|null, \"message\": str}|null}]}

Example:
  tributary group delete billing old-billing";

/// `tributary group ...`
#[derive(Debug, Args)]
#[command(after_long_help = GROUP_HELP)]
pub struct GroupArgs {
    #[command(flatten)]
    connection: KafkaArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List consumer groups.
    #[command(after_long_help = LIST_JSON)]
    List {
        /// Only groups in these states (any case, comma-separated): stable, empty,
        /// preparingrebalance, completingrebalance, dead.
        #[arg(short = 's', long, value_delimiter = ',')]
        states: Vec<String>,
    },
    /// Describe groups: state, members, assigned partitions, committed offsets and lag.
    #[command(after_long_help = DESCRIBE_JSON)]
    Describe {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets (prints the plan; commits only with --execute).
    #[command(after_long_help = SEEK_HELP)]
    Seek {
        /// Group id.
        group: String,
        /// Where to: earliest, latest, <offset>, @<ms>, <RFC 3339 time>, shift-by:<N>.
        #[arg(long, value_name = "TARGET")]
        to: SeekTarget,
        /// Only these topics (t1,t2) or partitions (t:0,1); repeatable.
        #[arg(long, value_name = "TOPICS", value_parser = check_topics)]
        topics: Vec<String>,
        /// Commit the new offsets (without it, nothing changes).
        #[arg(long)]
        execute: bool,
    },
    /// Delete groups and their committed offsets.
    #[command(after_long_help = DELETE_JSON)]
    Delete {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

/// Checks one `--topics` value; the values are combined after parsing.
fn check_topics(value: &str) -> Result<String, String> {
    parse_topic_selection(&[value.to_string()]).map(|_| value.to_string())
}

/// Runs a group command; the exit status says whether it succeeded.
pub fn run(args: GroupArgs) -> ExitCode {
    let GroupArgs { connection, command } = args;
    crate::cli::run(&connection, |target, format| execute(command, target, format))
}

async fn execute(command: GroupCommand, target: KafkaTarget, format: Format) -> Result<Exit, ClientError> {
    let mut client = crate::cli::connect(&target).await?;
    match command {
        GroupCommand::List { states } => list(&mut client, &states, format).await,
        GroupCommand::Describe { groups } => describe(&mut client, &groups, format).await,
        GroupCommand::Seek { group, to, topics, execute } => {
            let selection = parse_topic_selection(&topics).map_err(ClientError::Refused)?;
            seek(&mut client, &group, to, &selection, execute, format).await
        }
        GroupCommand::Delete { groups } => delete(&mut client, &groups, format).await,
    }
}

fn dash(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

// ---- list

#[derive(Serialize)]
struct ListJson {
    groups: Vec<ListedJson>,
}

#[derive(Serialize)]
struct ListedJson {
    group: String,
    state: Option<String>,
    protocol_type: String,
    group_type: Option<String>,
}

async fn list(client: &mut Client, states: &[String], format: Format) -> Result<Exit, ClientError> {
    let groups = client.list_groups(states).await?;
    match format {
        Format::Json | Format::Yaml => format.emit(&ListJson {
            groups: groups
                .into_iter()
                .map(|g| ListedJson {
                    group: g.group_id,
                    state: g.state,
                    protocol_type: g.protocol_type,
                    group_type: g.group_type,
                })
                .collect(),
        }),
        Format::Table => {
            let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
            for g in groups {
                table.row(vec![g.group_id, g.state.unwrap_or_else(|| "-".to_string()), g.protocol_type]);
            }
            print!("{}", table.render());
        }
    }
    Ok(Exit::Success)
}

// ---- describe

#[derive(Serialize)]
struct DescribeJson {
    groups: Vec<GroupJson>,
}

#[derive(Serialize)]
struct GroupJson {
    group: String,
    state: String,
    protocol_type: String,
    protocol: String,
    coordinator: NodeJson,
    members: Vec<MemberJson>,
    partitions: Vec<PartitionJson>,
    total_lag: i64,
}

#[derive(Serialize)]
struct NodeJson {
    node_id: i32,
    host: String,
    port: i32,
}

#[derive(Serialize)]
struct MemberJson {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    subscribed_topics: Vec<String>,
    assignments: Vec<AssignmentJson>,
    decode_error: Option<String>,
}

#[derive(Serialize)]
struct AssignmentJson {
    topic: String,
    partitions: Vec<i32>,
}

#[derive(Serialize)]
struct PartitionJson {
    topic: String,
    partition: i32,
    committed_offset: Option<i64>,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    member_id: Option<String>,
    client_id: Option<String>,
    client_host: Option<String>,
    error: Option<ErrorJson>,
}

fn group_json(d: &GroupDescription, lag: &[PartitionLag]) -> GroupJson {
    let member = |l: &PartitionLag| l.member.and_then(|i| d.members.get(i));
    GroupJson {
        group: d.group_id.clone(),
        state: d.state.clone(),
        protocol_type: d.protocol_type.clone(),
        protocol: d.protocol.clone(),
        coordinator: NodeJson {
            node_id: d.coordinator.node_id,
            host: d.coordinator.host.clone(),
            port: d.coordinator.port,
        },
        members: d
            .members
            .iter()
            .map(|m| MemberJson {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topics: m.subscription.as_ref().map(|s| s.topics.clone()).unwrap_or_default(),
                assignments: m
                    .assignment
                    .iter()
                    .flat_map(|a| &a.partitions)
                    .map(|TopicPartitions { topic, partitions }| AssignmentJson {
                        topic: topic.clone(),
                        partitions: partitions.clone(),
                    })
                    .collect(),
                decode_error: m.decode_error.clone(),
            })
            .collect(),
        partitions: lag
            .iter()
            .map(|l| PartitionJson {
                topic: l.topic_partition.topic.clone(),
                partition: l.topic_partition.partition,
                committed_offset: l.committed.as_ref().map(|c| c.offset),
                log_end_offset: l.log_end_offset,
                lag: l.lag,
                member_id: member(l).map(|m| m.member_id.clone()),
                client_id: member(l).map(|m| m.client_id.clone()),
                client_host: member(l).map(|m| m.client_host.clone()),
                error: l.error.as_ref().map(|e| ErrorJson {
                    code: Some(e.code),
                    name: Some(e.name.clone()),
                    message: e.to_string(),
                }),
            })
            .collect(),
        total_lag: lag.iter().filter_map(|l| l.lag).sum(),
    }
}

/// `orders: 0,1 payments: 3`
fn assigned_text(topics: &[AssignmentJson]) -> String {
    let parts: Vec<String> = topics
        .iter()
        .map(|a| {
            let ps: Vec<String> = a.partitions.iter().map(ToString::to_string).collect();
            format!("{}: {}", a.topic, ps.join(","))
        })
        .collect();
    if parts.is_empty() { "-".to_string() } else { parts.join(" ") }
}

fn render_group(g: &GroupJson) -> String {
    let protocol = match (g.protocol_type.as_str(), g.protocol.as_str()) {
        ("", "") => "-".to_string(),
        (t, "") => t.to_string(),
        (t, p) => format!("{t} ({p})"),
    };
    let mut out = pairs(&[
        ("GROUP", g.group.clone()),
        ("COORDINATOR", format!("{} ({}:{})", g.coordinator.node_id, g.coordinator.host, g.coordinator.port)),
        ("STATE", g.state.clone()),
        ("PROTOCOL", protocol),
        ("MEMBERS", g.members.len().to_string()),
        ("TOTAL-LAG", g.total_lag.to_string()),
    ]);
    if !g.members.is_empty() {
        let mut members = Table::new(&["MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNED-PARTITIONS"]);
        for m in &g.members {
            let mut assigned = assigned_text(&m.assignments);
            if let Some(e) = &m.decode_error {
                assigned = format!("(unreadable: {e})");
            }
            members.row(vec![
                m.member_id.clone(),
                m.group_instance_id.clone().unwrap_or_else(|| "-".to_string()),
                m.client_id.clone(),
                m.client_host.clone(),
                assigned,
            ]);
        }
        out.push('\n');
        out.push_str(&members.render());
    }
    if !g.partitions.is_empty() {
        let mut offsets = Table::new(&[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "MEMBER-ID",
            "CLIENT-ID",
            "HOST",
        ]);
        for p in &g.partitions {
            offsets.row(vec![
                p.topic.clone(),
                p.partition.to_string(),
                dash(p.committed_offset),
                dash(p.log_end_offset),
                dash(p.lag),
                p.member_id.clone().unwrap_or_else(|| "-".to_string()),
                p.client_id.clone().unwrap_or_else(|| "-".to_string()),
                p.client_host.clone().unwrap_or_else(|| "-".to_string()),
            ]);
        }
        out.push('\n');
        out.push_str(&offsets.render());
    }
    out
}

async fn describe(client: &mut Client, groups: &[String], format: Format) -> Result<Exit, ClientError> {
    let mut described = Vec::new();
    let mut exit = Exit::Success;
    for group in groups {
        let spinner = crate::progress::Spinner::new(&format!("Describing group {group}"));
        let d = client.describe_group(group).await?;
        spinner.say(&format!("Reading committed and log end offsets of group {group}"));
        let lag = client.group_lag(&d).await?;
        drop(spinner);
        if d.state == "Dead" && d.members.is_empty() && lag.is_empty() {
            eprintln!(
                "error: group \"{group}\" does not exist: GROUP_ID_NOT_FOUND (69). List the groups with \
                 `tributary group list` to check the name"
            );
            exit = exit.or(Exit::NotFound);
            continue;
        }
        described.push(group_json(&d, &lag));
    }
    match format {
        Format::Json | Format::Yaml => format.emit(&DescribeJson { groups: described }),
        Format::Table => {
            let text: Vec<String> = described.iter().map(render_group).collect();
            print!("{}", text.join("\n"));
        }
    }
    Ok(exit)
}

// ---- seek

#[derive(Serialize)]
struct SeekJson {
    group: String,
    target: String,
    executed: bool,
    partitions: Vec<SeekPartitionJson>,
}

#[derive(Serialize)]
struct SeekPartitionJson {
    topic: String,
    partition: i32,
    current_offset: Option<i64>,
    new_offset: i64,
    log_start_offset: i64,
    log_end_offset: i64,
}

fn seek_json(plan: &SeekPlan, executed: bool) -> SeekJson {
    SeekJson {
        group: plan.group_id.clone(),
        target: plan.target.to_string(),
        executed,
        partitions: plan
            .partitions
            .iter()
            .map(|p| SeekPartitionJson {
                topic: p.topic_partition.topic.clone(),
                partition: p.topic_partition.partition,
                current_offset: p.current_offset,
                new_offset: p.new_offset,
                log_start_offset: p.log_start_offset,
                log_end_offset: p.log_end_offset,
            })
            .collect(),
    }
}

async fn seek(
    client: &mut Client,
    group: &str,
    target: SeekTarget,
    selection: &[tributary_client::TopicSelection],
    execute: bool,
    format: Format,
) -> Result<Exit, ClientError> {
    let spinner = crate::progress::Spinner::new(&format!("Planning new offsets for group {group}"));
    let plan = client.plan_seek(group, target, selection).await?;
    if plan.partitions.is_empty() {
        return Err(ClientError::Refused(format!(
            "group \"{group}\" has no committed offsets to move; name the partitions with --topics (orders or orders:0,1)"
        )));
    }
    if execute {
        spinner.say(&format!("Committing {} offsets of group {group}", plan.partitions.len()));
        client.execute_seek(&plan).await?;
    }
    drop(spinner);
    match format {
        Format::Json | Format::Yaml => format.emit(&seek_json(&plan, execute)),
        Format::Table => {
            let mut table = Table::new(&[
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "NEW-OFFSET",
                "LOG-START-OFFSET",
                "LOG-END-OFFSET",
            ]);
            for p in &plan.partitions {
                table.row(vec![
                    p.topic_partition.topic.clone(),
                    p.topic_partition.partition.to_string(),
                    dash(p.current_offset),
                    p.new_offset.to_string(),
                    p.log_start_offset.to_string(),
                    p.log_end_offset.to_string(),
                ]);
            }
            print!("{}", table.render());
            if execute {
                println!("\nCommitted new offsets for {} partition(s) of group \"{group}\".", plan.partitions.len());
            } else {
                println!("\nDry run: nothing was committed. Add --execute to move group \"{group}\" to these offsets.");
            }
        }
    }
    Ok(Exit::Success)
}

// ---- delete

#[derive(Serialize)]
struct DeleteJson {
    groups: Vec<DeletedJson>,
}

#[derive(Serialize)]
struct DeletedJson {
    group: String,
    deleted: bool,
    error: Option<ErrorJson>,
}

async fn delete(client: &mut Client, groups: &[String], format: Format) -> Result<Exit, ClientError> {
    let results = client.delete_groups(groups).await;
    let mut exit = Exit::Success;
    for (_, result) in &results {
        if let Err(e) = result {
            eprintln!("error: {e}");
            exit = exit.or(Exit::of(e));
        }
    }
    match format {
        Format::Json | Format::Yaml => format.emit(&DeleteJson {
            groups: results
                .iter()
                .map(|(group, r)| DeletedJson {
                    group: group.clone(),
                    deleted: r.is_ok(),
                    error: r.as_ref().err().map(ErrorJson::from),
                })
                .collect(),
        }),
        Format::Table => {
            let mut table = Table::new(&["GROUP", "STATUS"]);
            for (group, r) in &results {
                let status = match r {
                    Ok(()) => "deleted".to_string(),
                    Err(e) => e.kafka().map_or_else(|| "failed".to_string(), |k| format!("failed: {}", k.name)),
                };
                table.row(vec![group.clone(), status]);
            }
            print!("{}", table.render());
        }
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_read_as_topic_lists() {
        let a = |t: &str, p: &[i32]| AssignmentJson { topic: t.to_string(), partitions: p.to_vec() };
        assert_eq!(assigned_text(&[a("orders", &[0, 1]), a("pay", &[3])]), "orders: 0,1 pay: 3");
        assert_eq!(assigned_text(&[]), "-");
    }
}
