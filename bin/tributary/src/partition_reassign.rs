//! `tributary partition reassign`: Kafka's `kafka-reassign-partitions.sh`
//! over AlterPartitionReassignments and ListPartitionReassignments.
//!
//! - `--generate --topics a,b --broker-list 1,2,3` prints the topics'
//!   current assignment and a proposed one placing each partition's
//!   replicas over the brokers given as the broker places a new topic's
//!   (same replication factor; leaders round-robin; when the brokers have
//!   `broker.rack`, replicas on distinct racks first, unless
//!   `--disable-rack-aware`), both in Kafka's reassignment JSON.
//! - `--execute --plan FILE [--throttle BYTES_PER_S] [--wait]
//!   [--disallow-replication-factor-change]` prints the current assignment
//!   (keep it to roll back), sets the throttles as Kafka's tool does, and
//!   starts every partition's reassignment (refusing, with the last flag,
//!   those that change the replication factor).
//! - `--verify --plan FILE [--wait]` says per partition whether it is
//!   complete or in progress; once every one is complete it removes the
//!   throttles.
//! - `--cancel --plan FILE` cancels the reassignments in progress (each
//!   partition goes back to its replicas before the move) and removes the
//!   throttles.
//!
//! Throttles, as Kafka's tool sets them: for each partition that moves, the
//! topic's `leader.replication.throttled.replicas` lists its current
//! replicas and `follower.replication.throttled.replicas` its new ones; the
//! brokers taking part get `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate`. They throttle only replicas out of
//! the ISR, so the partition's own traffic is never held back.
//!
//! Progress is in bytes, from DescribeLogDirs as `kafka-log-dirs.sh` shows
//! it: each adding replica has to copy the leader's log (its size on the
//! leader) and lacks what its own log is short of it. `--verify` says so per
//! partition and in total (`bytes_total`, `bytes_left`); with `--wait`, a
//! progress bar on stderr (a terminal only) counts the bytes copied.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args};
use indicatif::HumanBytes;
use serde::{Deserialize, Serialize};
use tributary_broker::placement::{Candidate, place};
use tributary_client::{Client, ClientError, ConfigChange, ConfigResource, KafkaError, TopicPartition};

use crate::cli::{Exit, KafkaArgs, KafkaTarget};
use crate::output::Format;
use crate::table::Table;

const LEADER_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";
/// How often `--wait` looks at the reassignments.
const POLL: Duration = Duration::from_secs(1);

const REASSIGN_HELP: &str = "\
The plan is Kafka's reassignment JSON, as kafka-reassign-partitions.sh reads and writes it:
  {\"version\": 1, \"partitions\": [{\"topic\": \"orders\", \"partition\": 0, \"replicas\": [2, 3]}]}
(\"log_dirs\" entries are accepted and ignored). --generate prints one to start from.

--disallow-replication-factor-change (AlterPartitionReassignments v1, KIP-860) has the controller
refuse each partition whose planned replicas are more or fewer than it has, with
INVALID_REPLICATION_FACTOR; the other partitions of the plan still move.

--throttle caps, in bytes per second, what each broker taking part sends and fetches for the
moving replicas while they catch up (replicas already in sync are never throttled). --verify
removes the throttles once every partition is complete; --cancel removes them too.

JSON output:
  --generate: {\"current\": PLAN, \"proposed\": PLAN}
  --execute:  {\"current\": PLAN, \"throttle\": int|null, \"partitions\": [RESULT], \"complete\": bool|null}
  --verify:   {\"partitions\": [STATUS], \"complete\": bool, \"throttles_removed\": bool,
               \"bytes_total\": int, \"bytes_left\": int}
  --cancel:   {\"partitions\": [RESULT], \"throttles_removed\": bool}
  RESULT: {\"topic\": str, \"partition\": int, \"status\": \"started\"|\"cancelled\"|\"not_in_progress\"|\"failed\",
           \"error\": {\"code\": int, \"name\": str, \"message\": str}|null}
  STATUS: {\"topic\": str, \"partition\": int, \"status\": \"complete\"|\"in_progress\"|\"failed\",
           \"replicas\": [int], \"target\": [int], \"adding\": [int], \"removing\": [int],
           \"bytes_total\": int|null, \"bytes_left\": int|null, \"message\": str|null}
bytes_total is what the adding replicas have to copy (the leader's log size, as DescribeLogDirs
gives it, once per adding replica), bytes_left what they still lack of it (kafka-log-dirs' sizes);
both are 0 once nothing is being added, null when the leader did not answer; the top-level ones
are the sums.
\"complete\" of --execute is null without --wait.

Exit status: 0 on success; 1 when a partition's reassignment was refused or ended elsewhere than
planned; 2 for an invalid plan or arguments; 4 when a topic or partition does not exist; 5 when no
broker answered.

Examples:
  tributary partition reassign --generate --topics orders,payments --broker-list 1,2,3 -o json \\
    | jq .proposed > plan.json
  tributary partition reassign --execute --plan plan.json --throttle 10000000 > rollback.txt
  tributary partition reassign --verify --plan plan.json --wait
  tributary partition reassign --cancel --plan plan.json";

/// `tributary partition reassign`
#[derive(Debug, Args)]
#[command(after_long_help = REASSIGN_HELP)]
#[command(group(ArgGroup::new("mode").required(true).args(["generate", "execute", "verify", "cancel"])))]
pub struct ReassignArgs {
    /// Print the current assignment of --topics and a proposed one over --broker-list.
    #[arg(long)]
    generate: bool,
    /// Start the reassignments of --plan.
    #[arg(long)]
    execute: bool,
    /// Say whether the reassignments of --plan are complete; remove the throttles once they all are.
    #[arg(long)]
    verify: bool,
    /// Cancel the reassignments of --plan in progress and remove the throttles.
    #[arg(long)]
    cancel: bool,
    /// Topics to plan for (--generate).
    #[arg(long, value_delimiter = ',', value_name = "TOPIC,...")]
    topics: Vec<String>,
    /// Broker ids to spread the replicas over (--generate).
    #[arg(long = "broker-list", visible_alias = "broker-ids", value_delimiter = ',', value_name = "ID,...")]
    broker_list: Vec<i32>,
    /// Ignore the brokers' racks (--generate); otherwise, when they have
    /// `broker.rack`, each partition's replicas go to distinct racks first.
    #[arg(long)]
    disable_rack_aware: bool,
    /// The reassignment plan (Kafka's reassignment JSON) for --execute, --verify and --cancel.
    #[arg(long, visible_alias = "reassignment-json-file", value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Replication throttle for the moving replicas, bytes per second (--execute).
    #[arg(long, value_name = "BYTES_PER_SECOND", value_parser = clap::value_parser!(u64).range(1..))]
    throttle: Option<u64>,
    /// Refuse (per partition) a plan that changes a partition's replication factor (--execute; KIP-860).
    #[arg(long)]
    disallow_replication_factor_change: bool,
    /// Wait until every reassignment of the plan is complete (--execute, --verify), with a progress bar.
    #[arg(long)]
    wait: bool,
}

/// Kafka's reassignment JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    version: i32,
    partitions: Vec<PlanPartition>,
}

/// One partition of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PlanPartition {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
    #[serde(default, skip_serializing)]
    log_dirs: Option<Vec<String>>,
}

impl PlanPartition {
    fn tp(&self) -> TopicPartition {
        TopicPartition::new(&self.topic, self.partition)
    }
}

/// Reads and checks a plan: version 1, at least one partition, each named
/// once, each with a non-empty list of distinct broker ids.
fn parse_plan(text: &str) -> Result<Plan, String> {
    let plan: Plan = serde_json::from_str(text).map_err(|e| format!("the plan is not reassignment JSON: {e}"))?;
    if plan.version != 1 {
        return Err(format!("the plan has version {}; only version 1 exists", plan.version));
    }
    if plan.partitions.is_empty() {
        return Err("the plan lists no partitions".to_string());
    }
    let mut seen = BTreeSet::new();
    for p in &plan.partitions {
        if !seen.insert((p.topic.as_str(), p.partition)) {
            return Err(format!("the plan lists {}-{} twice", p.topic, p.partition));
        }
        if p.replicas.is_empty() {
            return Err(format!("the plan gives {}-{} no replicas", p.topic, p.partition));
        }
        let distinct: BTreeSet<_> = p.replicas.iter().collect();
        if distinct.len() != p.replicas.len() {
            return Err(format!("the plan names a broker twice for {}-{}: {:?}", p.topic, p.partition, p.replicas));
        }
    }
    Ok(plan)
}

fn plan_of(assignment: &BTreeMap<TopicPartition, Vec<i32>>) -> Plan {
    Plan {
        version: 1,
        partitions: assignment
            .iter()
            .map(|(tp, replicas)| PlanPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
                replicas: replicas.clone(),
                log_dirs: None,
            })
            .collect(),
    }
}

/// The brokers of `--broker-list` as placement sees them: with their racks
/// unless rack awareness is off. As Kafka's tool, a list where some brokers
/// have a rack and others none is refused while rack awareness is on.
fn candidates(brokers: &[i32], racks: &BTreeMap<i32, String>, rack_aware: bool) -> Result<Vec<Candidate>, String> {
    let ids: BTreeSet<i32> = brokers.iter().copied().collect();
    let out: Vec<Candidate> =
        ids.into_iter().map(|id| Candidate { id, rack: racks.get(&id).filter(|_| rack_aware).cloned() }).collect();
    let rackless = out.iter().filter(|c| c.rack.is_none()).count();
    if rackless != 0 && rackless != out.len() {
        let without: Vec<i32> = out.iter().filter(|c| c.rack.is_none()).map(|c| c.id).collect();
        return Err(format!(
            "not all brokers have rack information (none for {without:?}); set broker.rack on them or add \
             --disable-rack-aware to plan without racks"
        ));
    }
    Ok(out)
}

/// Each partition's replicas placed over `brokers` as the broker places a
/// new topic's (`placement::place`: leaders round-robin, and with racks one
/// replica per rack before any rack gets a second), keeping each
/// partition's replication factor; successive partitions (across topics)
/// continue the rotation, so leaders spread too.
fn propose(current: &BTreeMap<TopicPartition, Vec<i32>>, brokers: &[Candidate]) -> Result<Plan, String> {
    let mut proposed = BTreeMap::new();
    for (start, (tp, replicas)) in current.iter().enumerate() {
        let rf = replicas.len();
        if rf > brokers.len() {
            let ids: Vec<i32> = brokers.iter().map(|c| c.id).collect();
            return Err(format!(
                "{tp} has replication factor {rf}, more than the {} brokers given ({ids:?})",
                ids.len()
            ));
        }
        let rf = i16::try_from(rf).map_err(|_| format!("{tp} has {rf} replicas"))?;
        let mut placed = place(brokers, 1, rf, start).map_err(|e| format!("{tp}: {}", e.message))?;
        proposed.insert(tp.clone(), placed.pop().unwrap_or_default());
    }
    Ok(plan_of(&proposed))
}

/// The throttled-replicas values Kafka's tool sets, per topic: (leader,
/// follower). Only partitions whose replicas change are listed.
fn throttled_replicas(plan: &Plan, current: &BTreeMap<TopicPartition, Vec<i32>>) -> BTreeMap<String, (String, String)> {
    let mut lists: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for p in &plan.partitions {
        let Some(now) = current.get(&p.tp()) else { continue };
        if *now == p.replicas {
            continue;
        }
        let entry = lists.entry(p.topic.clone()).or_default();
        entry.0.extend(now.iter().map(|b| format!("{}:{b}", p.partition)));
        entry.1.extend(p.replicas.iter().filter(|b| !now.contains(b)).map(|b| format!("{}:{b}", p.partition)));
    }
    lists.into_iter().map(|(topic, (leader, follower))| (topic, (leader.join(","), follower.join(",")))).collect()
}

#[derive(Serialize)]
struct ErrorOut {
    code: i16,
    name: String,
    message: String,
}

impl From<&KafkaError> for ErrorOut {
    fn from(e: &KafkaError) -> ErrorOut {
        ErrorOut { code: e.code, name: e.name.clone(), message: e.to_string() }
    }
}

#[derive(Serialize)]
struct ResultOut {
    topic: String,
    partition: i32,
    status: &'static str,
    error: Option<ErrorOut>,
}

#[derive(Serialize)]
struct StatusOut {
    topic: String,
    partition: i32,
    status: &'static str,
    replicas: Vec<i32>,
    target: Vec<i32>,
    adding: Vec<i32>,
    removing: Vec<i32>,
    /// What the adding replicas have to copy (the leader's log size once
    /// per adding replica); 0 once nothing is being added; null when the
    /// leader did not say its size.
    bytes_total: Option<u64>,
    /// What the adding replicas still lack of `bytes_total`.
    bytes_left: Option<u64>,
    message: Option<String>,
}

/// Runs `tributary partition reassign`.
pub fn run(connection: &KafkaArgs, args: ReassignArgs) -> ExitCode {
    crate::cli::run(connection, |target, format| execute(args, target, format))
}

async fn execute(args: ReassignArgs, target: KafkaTarget, format: Format) -> Result<Exit, ClientError> {
    if args.generate {
        return generate(&args, &target, format).await;
    }
    let Some(path) = &args.plan else {
        eprintln!(
            "error: --execute, --verify and --cancel need --plan FILE (`tributary partition reassign --generate` \
             prints one)"
        );
        return Ok(Exit::Usage);
    };
    let plan = match std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display())) {
        Ok(text) => match parse_plan(&text) {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return Ok(Exit::Usage);
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Usage);
        }
    };
    if (args.throttle.is_some() || args.disallow_replication_factor_change) && !args.execute {
        eprintln!("error: --throttle and --disallow-replication-factor-change go with --execute");
        return Ok(Exit::Usage);
    }
    let mut client = crate::cli::connect(&target).await?;
    if args.execute {
        let allow_rf_change = !args.disallow_replication_factor_change;
        start(&mut client, &plan, args.throttle, allow_rf_change, args.wait, format).await
    } else if args.verify {
        verify(&mut client, &plan, args.wait, format).await
    } else {
        cancel(&mut client, &plan, format).await
    }
}

/// Every partition of `topics` and its replicas; topics that do not exist are an error.
async fn assignment(
    client: &mut Client,
    topics: &[String],
) -> Result<Result<BTreeMap<TopicPartition, Vec<i32>>, String>, ClientError> {
    let metadata = client.metadata(Some(topics)).await?;
    let mut out = BTreeMap::new();
    for name in topics {
        match metadata.topics.get(name) {
            Some(t) if t.error_code == 0 => {
                for (index, p) in &t.partitions {
                    out.insert(TopicPartition::new(name, *index), p.replicas.clone());
                }
            }
            _ => return Ok(Err(format!("topic \"{name}\" does not exist; `tributary topic list` shows the topics"))),
        }
    }
    Ok(Ok(out))
}

fn print_plan_text(title: &str, plan: &Plan) {
    println!("{title}");
    println!("{}", serde_json::to_string(plan).unwrap_or_default());
}

async fn generate(args: &ReassignArgs, target: &KafkaTarget, format: Format) -> Result<Exit, ClientError> {
    if args.topics.is_empty() || args.broker_list.is_empty() {
        eprintln!("error: --generate needs --topics TOPIC,... and --broker-list ID,...");
        return Ok(Exit::Usage);
    }
    let mut client = crate::cli::connect(target).await?;
    let current = match assignment(&mut client, &args.topics).await? {
        Ok(current) => current,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::NotFound);
        }
    };
    let metadata = client.metadata(Some(&[])).await?;
    let brokers: BTreeSet<i32> = metadata.brokers.keys().copied().collect();
    if let Some(unknown) = args.broker_list.iter().find(|b| !brokers.contains(b)) {
        eprintln!("error: broker {unknown} is not a live broker of the cluster (live: {brokers:?})");
        return Ok(Exit::Usage);
    }
    let candidates = match candidates(&args.broker_list, &metadata.racks, !args.disable_rack_aware) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Usage);
        }
    };
    let proposed = match propose(&current, &candidates) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}; give more brokers with --broker-list");
            return Ok(Exit::Usage);
        }
    };
    let current = plan_of(&current);
    if !format.print(&serde_json::json!({"current": current, "proposed": proposed})) {
        print_plan_text("Current partition replica assignment", &current);
        println!();
        print_plan_text("Proposed partition reassignment configuration", &proposed);
    }
    Ok(Exit::Success)
}

/// Sets (or, with `None`, removes) the throttle configs.
async fn set_throttles(
    client: &mut Client,
    topics: &BTreeMap<String, (String, String)>,
    brokers: &BTreeSet<i32>,
    rate: Option<u64>,
) -> Result<(), ClientError> {
    for (topic, (leader, follower)) in topics {
        let changes = match rate {
            Some(_) => vec![
                ConfigChange::Set { name: LEADER_REPLICAS.to_string(), value: leader.clone() },
                ConfigChange::Set { name: FOLLOWER_REPLICAS.to_string(), value: follower.clone() },
            ],
            None => vec![
                ConfigChange::Delete { name: LEADER_REPLICAS.to_string() },
                ConfigChange::Delete { name: FOLLOWER_REPLICAS.to_string() },
            ],
        };
        client.alter_configs(&ConfigResource::Topic(topic.clone()), &changes, false).await?;
    }
    for broker in brokers {
        let changes: Vec<ConfigChange> = [LEADER_RATE, FOLLOWER_RATE]
            .into_iter()
            .map(|name| match rate {
                Some(r) => ConfigChange::Set { name: name.to_string(), value: r.to_string() },
                None => ConfigChange::Delete { name: name.to_string() },
            })
            .collect();
        client.alter_configs(&ConfigResource::Broker(*broker), &changes, false).await?;
    }
    Ok(())
}

/// Removes every throttle this tool sets: on the plan's topics and every live broker.
async fn remove_throttles(client: &mut Client, plan: &Plan) -> Result<(), ClientError> {
    let topics: BTreeMap<String, (String, String)> =
        plan.partitions.iter().map(|p| (p.topic.clone(), (String::new(), String::new()))).collect();
    let metadata = client.metadata(Some(&[])).await?;
    let brokers: BTreeSet<i32> = metadata.brokers.keys().copied().collect();
    set_throttles(client, &topics, &brokers, None).await
}

fn plan_topics(plan: &Plan) -> Vec<String> {
    plan.partitions.iter().map(|p| p.topic.clone()).collect::<BTreeSet<_>>().into_iter().collect()
}

fn result_code(results: &[ResultOut]) -> Exit {
    results
        .iter()
        .filter_map(|r| r.error.as_ref())
        .fold(Exit::Success, |exit, e| exit.or(if e.code == 3 { Exit::NotFound } else { Exit::Failed }))
}

async fn start(
    client: &mut Client,
    plan: &Plan,
    throttle: Option<u64>,
    allow_rf_change: bool,
    wait: bool,
    format: Format,
) -> Result<Exit, ClientError> {
    let current = match assignment(client, &plan_topics(plan)).await? {
        Ok(current) => current,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::NotFound);
        }
    };
    if let Some(missing) = plan.partitions.iter().find(|p| !current.contains_key(&p.tp())) {
        eprintln!("error: {} does not exist; check the plan's partition numbers", missing.tp());
        return Ok(Exit::NotFound);
    }
    let before: BTreeMap<TopicPartition, Vec<i32>> =
        plan.partitions.iter().filter_map(|p| Some((p.tp(), current.get(&p.tp())?.clone()))).collect();
    let rollback = plan_of(&before);
    if format == Format::Table {
        print_plan_text("Current partition replica assignment", &rollback);
        println!("\nSave this to use as the --plan during rollback");
    }
    if let Some(rate) = throttle {
        let topics = throttled_replicas(plan, &before);
        let brokers: BTreeSet<i32> = plan
            .partitions
            .iter()
            .flat_map(|p| p.replicas.iter().chain(before.get(&p.tp()).into_iter().flatten()).copied())
            .collect();
        set_throttles(client, &topics, &brokers, Some(rate)).await?;
        if format == Format::Table {
            println!("Throttle set to {rate} B/s on brokers {brokers:?} for the moving replicas");
        }
    }
    let changes: Vec<(TopicPartition, Option<Vec<i32>>)> =
        plan.partitions.iter().map(|p| (p.tp(), Some(p.replicas.clone()))).collect();
    let outcomes = client.alter_reassignments(&changes, allow_rf_change).await?;
    let results: Vec<ResultOut> = outcomes
        .iter()
        .map(|(tp, r)| ResultOut {
            topic: tp.topic.clone(),
            partition: tp.partition,
            status: if r.is_ok() { "started" } else { "failed" },
            error: r.as_ref().err().map(ErrorOut::from),
        })
        .collect();
    let mut exit = result_code(&results);
    if format == Format::Table {
        let started: Vec<String> = outcomes.iter().filter(|(_, r)| r.is_ok()).map(|(tp, _)| tp.to_string()).collect();
        if !started.is_empty() {
            println!("Started the reassignment of {}", started.join(", "));
        }
    }
    for (tp, r) in &outcomes {
        if let Err(e) = r {
            eprintln!("error: {tp}: {e}");
        }
    }
    let mut complete = None;
    if wait && exit == Exit::Success {
        wait_until_done(client, plan).await?;
        complete = Some(true);
        if format == Format::Table {
            println!("Every reassignment of the plan is complete; run --verify to remove the throttles");
        }
    }
    let out =
        serde_json::json!({"current": rollback, "throttle": throttle, "partitions": results, "complete": complete});
    format.print(&out);
    if exit == Exit::Success && outcomes.len() < plan.partitions.len() {
        eprintln!("error: the controller answered for fewer partitions than the plan lists");
        exit = Exit::Failed;
    }
    Ok(exit)
}

/// Per-partition status of the plan, from the reassignments in progress and the metadata.
async fn statuses(client: &mut Client, plan: &Plan) -> Result<Vec<StatusOut>, ClientError> {
    let tps: Vec<TopicPartition> = plan.partitions.iter().map(PlanPartition::tp).collect();
    let ongoing = client.list_reassignments(Some(&tps)).await?;
    let copying = copying(client, &ongoing).await?;
    let metadata = client.metadata(Some(&plan_topics(plan))).await?;
    Ok(plan
        .partitions
        .iter()
        .map(|p| {
            let replicas = metadata
                .topics
                .get(&p.topic)
                .and_then(|t| t.partitions.get(&p.partition))
                .map(|m| m.replicas.clone())
                .unwrap_or_default();
            let mut out = StatusOut {
                topic: p.topic.clone(),
                partition: p.partition,
                status: "complete",
                replicas,
                target: p.replicas.clone(),
                adding: Vec::new(),
                removing: Vec::new(),
                bytes_total: Some(0),
                bytes_left: Some(0),
                message: None,
            };
            if let Some(r) = ongoing.get(&p.tp()) {
                out.status = "in_progress";
                out.replicas.clone_from(&r.replicas);
                out.adding.clone_from(&r.adding);
                out.removing.clone_from(&r.removing);
                let copying = copying.get(&p.tp());
                out.bytes_total = copying.map(|c| c.total);
                out.bytes_left = copying.map(|c| c.left);
            } else if out.replicas != p.replicas {
                out.status = "failed";
                out.message = Some(format!(
                    "no reassignment is in progress, but the replicas are {:?} rather than {:?}; it was cancelled \
                     or replaced: run --execute again to move it",
                    out.replicas, p.replicas
                ));
            }
            out
        })
        .collect())
}

async fn verify(client: &mut Client, plan: &Plan, wait: bool, format: Format) -> Result<Exit, ClientError> {
    let mut statuses = statuses(client, plan).await?;
    if wait && statuses.iter().any(|s| s.status == "in_progress") {
        wait_until_done(client, plan).await?;
        statuses = statuses_after_wait(client, plan).await?;
    }
    let complete = statuses.iter().all(|s| s.status == "complete");
    let mut throttles_removed = false;
    if complete {
        remove_throttles(client, plan).await?;
        throttles_removed = true;
    }
    let failed = statuses.iter().any(|s| s.status == "failed");
    let bytes_total: u64 = statuses.iter().filter_map(|s| s.bytes_total).sum();
    let bytes_left: u64 = statuses.iter().filter_map(|s| s.bytes_left).sum();
    let out = serde_json::json!({"partitions": statuses, "complete": complete, "throttles_removed": throttles_removed,
                                 "bytes_total": bytes_total, "bytes_left": bytes_left});
    if !format.print(&out) {
        let mut table = Table::new(&["TOPIC", "PARTITION", "STATUS", "REPLICAS", "TARGET", "COPIED", "LEFT"]);
        let human = |bytes: Option<u64>| bytes.map_or_else(|| "-".to_string(), |b| HumanBytes(b).to_string());
        for s in &statuses {
            let copied = s.bytes_total.zip(s.bytes_left).map(|(total, left)| total - left);
            table.row(vec![
                s.topic.clone(),
                s.partition.to_string(),
                s.status.replace('_', " "),
                format!("{:?}", s.replicas),
                format!("{:?}", s.target),
                human(copied),
                human(s.bytes_left),
            ]);
        }
        print!("{}", table.render());
        if bytes_left > 0 {
            println!(
                "{} of {} copied, {} left",
                HumanBytes(bytes_total - bytes_left),
                HumanBytes(bytes_total),
                HumanBytes(bytes_left)
            );
        }
        for s in statuses.iter().filter_map(|s| s.message.as_ref().map(|m| (s, m))) {
            eprintln!("error: {}-{}: {}", s.0.topic, s.0.partition, s.1);
        }
        if throttles_removed {
            println!("Every reassignment is complete; the throttles are removed");
        } else if !failed {
            println!("Reassignments are in progress; run --verify again (or with --wait) to remove the throttles");
        }
    }
    Ok(if failed { Exit::Failed } else { Exit::Success })
}

/// The statuses once the wait saw nothing in progress (the metadata a
/// broker answers with may trail the controller by a moment).
async fn statuses_after_wait(client: &mut Client, plan: &Plan) -> Result<Vec<StatusOut>, ClientError> {
    let mut statuses = statuses(client, plan).await?;
    for _ in 0..20 {
        if !statuses.iter().any(|s| s.status == "failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        statuses = self::statuses(client, plan).await?;
    }
    Ok(statuses)
}

async fn cancel(client: &mut Client, plan: &Plan, format: Format) -> Result<Exit, ClientError> {
    let changes: Vec<(TopicPartition, Option<Vec<i32>>)> = plan.partitions.iter().map(|p| (p.tp(), None)).collect();
    let outcomes = client.alter_reassignments(&changes, true).await?;
    let results: Vec<ResultOut> = outcomes
        .iter()
        .map(|(tp, r)| {
            let (status, error) = match r {
                Ok(()) => ("cancelled", None),
                Err(e) if e.code == 85 => ("not_in_progress", None),
                Err(e) => ("failed", Some(ErrorOut::from(e))),
            };
            ResultOut { topic: tp.topic.clone(), partition: tp.partition, status, error }
        })
        .collect();
    let exit = result_code(&results);
    remove_throttles(client, plan).await?;
    if !format.print(&serde_json::json!({"partitions": results, "throttles_removed": true})) {
        let mut table = Table::new(&["TOPIC", "PARTITION", "STATUS"]);
        for r in &results {
            table.row(vec![r.topic.clone(), r.partition.to_string(), r.status.replace('_', " ")]);
        }
        print!("{}", table.render());
        println!("The throttles are removed");
    }
    for (tp, r) in &outcomes {
        if let Err(e) = r
            && e.code != 85
        {
            eprintln!("error: {tp}: {e}");
        }
    }
    Ok(exit)
}

/// What a reassignment's new replicas have to copy: the leader's log size
/// once per adding replica, and what they still lack of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Copying {
    total: u64,
    left: u64,
}

impl Copying {
    /// From the leader's log size and each adding replica's (0 for one that
    /// has not created its log yet, or whose broker did not answer).
    fn of(leader: u64, adding: impl IntoIterator<Item = u64>) -> Copying {
        adding.into_iter().fold(Copying::default(), |sum, size| Copying {
            total: sum.total + leader,
            left: sum.left + leader.saturating_sub(size),
        })
    }

    fn add(self, other: Copying) -> Copying {
        Copying { total: self.total + other.total, left: self.left + other.left }
    }
}

/// For each reassignment in progress, the bytes its adding replicas have to
/// copy and still lack, from the DescribeLogDirs of the leader and of each
/// adding replica, as `kafka-log-dirs` shows them. A partition whose leader
/// did not answer is left out.
async fn copying(
    client: &mut Client,
    ongoing: &BTreeMap<TopicPartition, tributary_client::Reassignment>,
) -> Result<BTreeMap<TopicPartition, Copying>, ClientError> {
    let topics: Vec<String> = ongoing.keys().map(|tp| tp.topic.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let metadata = client.metadata(Some(&topics)).await?;
    let mut asks: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
    let mut leaders = BTreeMap::new();
    for (tp, r) in ongoing {
        let Some(leader) =
            metadata.topics.get(&tp.topic).and_then(|t| t.partitions.get(&tp.partition)).map(|p| p.leader)
        else {
            continue;
        };
        leaders.insert(tp.clone(), leader);
        for broker in std::iter::once(leader).chain(r.adding.iter().copied()) {
            asks.entry(broker).or_default().push(tp.clone());
        }
    }
    let mut sizes: BTreeMap<(i32, TopicPartition), u64> = BTreeMap::new();
    for (broker, tps) in asks {
        // A broker that is down or has not created the replica yet has copied nothing.
        let Ok(answers) = client.replica_log_sizes(broker, &tps).await else { continue };
        sizes.extend(answers.into_iter().map(|(tp, size)| ((broker, tp), size)));
    }
    let mut out = BTreeMap::new();
    for (tp, r) in ongoing {
        let Some(leader) = leaders.get(tp).and_then(|l| sizes.get(&(*l, tp.clone()))) else { continue };
        let adding = r.adding.iter().map(|b| sizes.get(&(*b, tp.clone())).copied().unwrap_or(0));
        out.insert(tp.clone(), Copying::of(*leader, adding));
    }
    Ok(out)
}

/// Waits until none of the plan's partitions is being reassigned, with a
/// progress bar of the bytes the new replicas have copied.
async fn wait_until_done(client: &mut Client, plan: &Plan) -> Result<(), ClientError> {
    let tps: Vec<TopicPartition> = plan.partitions.iter().map(PlanPartition::tp).collect();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let (mut total, mut done) = (0u64, 0u64);
    loop {
        let ongoing = client.list_reassignments(Some(&tps)).await?;
        if ongoing.is_empty() {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            return Ok(());
        }
        let now = copying(client, &ongoing).await?.into_values().fold(Copying::default(), Copying::add);
        // A partition that finished leaves the sums: the bar keeps what it copied.
        done += total.saturating_sub(now.total);
        total = now.total;
        let progress = bar.get_or_insert_with(|| crate::progress::copying(done + total));
        progress.set_length((done + total).max(1));
        progress.set_position(done + total - now.left);
        progress.set_message(format!("{} partitions moving, {} left", ongoing.len(), HumanBytes(now.left)));
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(entries: &[(&str, i32, &[i32])]) -> BTreeMap<TopicPartition, Vec<i32>> {
        entries.iter().map(|(t, p, r)| (TopicPartition::new(t, *p), r.to_vec())).collect()
    }

    fn unracked(ids: &[i32]) -> Vec<Candidate> {
        candidates(ids, &BTreeMap::new(), true).expect("no racks")
    }

    #[test]
    fn plans_are_kafkas_json_and_bad_ones_say_why() {
        let text =
            r#"{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[2,3],"log_dirs":["any","any"]}]}"#;
        let plan = parse_plan(text).expect("valid");
        assert_eq!(plan.partitions[0].replicas, vec![2, 3]);
        assert_eq!(
            serde_json::to_string(&plan).expect("json"),
            r#"{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[2,3]}]}"#
        );
        for (bad, why) in [
            (r#"{"version":2,"partitions":[{"topic":"a","partition":0,"replicas":[1]}]}"#, "version 2"),
            (r#"{"version":1,"partitions":[]}"#, "no partitions"),
            (r#"{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[]}]}"#, "no replicas"),
            (r#"{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,1]}]}"#, "broker twice"),
            (
                r#"{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1]},{"topic":"a","partition":0,"replicas":[2]}]}"#,
                "twice",
            ),
            ("[]", "not reassignment JSON"),
        ] {
            let err = parse_plan(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn a_proposal_spreads_replicas_and_leaders_round_robin() {
        let current = assignment(&[("a", 0, &[1]), ("a", 1, &[1]), ("b", 0, &[1, 2])]);
        let plan = propose(&current, &unracked(&[3, 1, 2])).expect("enough brokers");
        let got: Vec<(String, i32, Vec<i32>)> =
            plan.partitions.iter().map(|p| (p.topic.clone(), p.partition, p.replicas.clone())).collect();
        assert_eq!(
            got,
            vec![("a".into(), 0, vec![1]), ("a".into(), 1, vec![2]), ("b".into(), 0, vec![3, 1])],
            "same replication factor, leaders 1, 2, 3"
        );
        let err = propose(&assignment(&[("c", 0, &[1, 2, 3])]), &unracked(&[1, 2])).expect_err("too few brokers");
        assert!(err.contains("replication factor 3"), "{err}");
    }

    #[test]
    fn with_racks_a_proposal_puts_replicas_on_distinct_racks() {
        // Racks A: 1, 2; B: 3. Round-robin without racks would put some partition on 1 and 2 only.
        let racks: BTreeMap<i32, String> = [(1, "A"), (2, "A"), (3, "B")].map(|(b, r)| (b, r.to_string())).into();
        let current = assignment(&[("a", 0, &[1, 2]), ("a", 1, &[1, 2]), ("a", 2, &[1, 2]), ("a", 3, &[1, 2])]);
        let aware = propose(&current, &candidates(&[1, 2, 3], &racks, true).expect("all racked")).expect("placed");
        for p in &aware.partitions {
            let on: BTreeSet<&str> = p.replicas.iter().map(|b| racks[b].as_str()).collect();
            assert_eq!(on, BTreeSet::from(["A", "B"]), "{p:?}");
        }
        let unaware =
            propose(&current, &candidates(&[1, 2, 3], &racks, false).expect("racks ignored")).expect("placed");
        assert!(unaware.partitions.iter().any(|p| !p.replicas.contains(&3)), "{unaware:?}");

        let partly: BTreeMap<i32, String> = [(1, "A".to_string())].into();
        let err = candidates(&[1, 2], &partly, true).expect_err("mixed");
        assert!(err.contains("not all brokers have rack information") && err.contains("--disable-rack-aware"), "{err}");
        assert!(candidates(&[1, 2], &partly, false).is_ok());
    }

    #[test]
    fn an_adding_replica_lacks_what_its_log_is_short_of_the_leaders() {
        assert_eq!(Copying::of(1000, [0, 400]), Copying { total: 2000, left: 1600 });
        // A follower whose log is longer than the leader's size (not yet cleaned) lacks nothing.
        assert_eq!(Copying::of(1000, [1200]), Copying { total: 1000, left: 0 });
        assert_eq!(Copying::of(1000, []), Copying::default(), "nothing added, nothing to copy");
    }

    #[test]
    fn throttles_list_the_current_replicas_as_leaders_and_the_new_ones_as_followers() {
        let current = assignment(&[("a", 0, &[1, 2]), ("a", 1, &[2, 3]), ("b", 0, &[1])]);
        let plan = parse_plan(
            r#"{"version":1,"partitions":[
                {"topic":"a","partition":0,"replicas":[1,3]},
                {"topic":"a","partition":1,"replicas":[2,3]},
                {"topic":"b","partition":0,"replicas":[2]}]}"#,
        )
        .expect("valid");
        let lists = throttled_replicas(&plan, &current);
        assert_eq!(lists["a"], ("0:1,0:2".to_string(), "0:3".to_string()), "a-1 does not move");
        assert_eq!(lists["b"], ("0:1".to_string(), "0:2".to_string()));
    }
}
