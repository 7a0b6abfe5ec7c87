//! `tributary cluster info`: what a Kafka-compatible cluster says about
//! itself: its id and controller, its brokers (rack, endpoints, fenced or
//! not) from DescribeCluster, its metadata quorum (leader, epoch, high
//! watermark, voters and observers with their lag) from DescribeQuorum, and
//! its topic and partition counts from Metadata. Argument parsing and
//! rendering only; the requests are the client crate's.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use tributary_client::{ClientError, QuorumDescription, QuorumEndpoint, QuorumReplica};

use crate::cli::{ErrorJson, Exit, KafkaArgs, KafkaTarget};
use crate::output::Format;
use crate::table::{Table, pairs};

const CLUSTER_HELP: &str = "\
Connection flags (--brokers, --profile, --timeout, -o) may come before or after the subcommand.

Exit status: 0 on success; 1 when the cluster refused a request (what could be read is still
printed); 2 for invalid arguments; 5 when no broker answered.

Examples:
  tributary cluster info
  tributary cluster info --brokers kafka-1:9092 -o json";

const INFO_HELP: &str = "\
Brokers come from DescribeCluster (fenced ones too, from a Kafka 4 or Tributary broker), the
quorum from DescribeQuorum, answered by any broker with the quorum leader's account. A node started
alone (`tributary start`) is a quorum of one voter, itself. A cluster without a metadata quorum
(ZooKeeper-based Kafka) has \"quorum\": null and a note on stderr; exit status 0.

Lag is how many metadata log entries a replica is behind the leader (the leader's log end offset
minus its own, as kafka-metadata-quorum.sh reports it); timestamps are milliseconds since the epoch,
null when never.

JSON output:
  {\"cluster_id\": str|null, \"controller_id\": int,
   \"brokers\": [{\"node_id\": int, \"host\": str, \"port\": int, \"rack\": str|null, \"fenced\": bool,
                \"endpoints\": [{\"role\": \"broker\"|\"controller\", \"listener\": str|null, \"host\": str, \"port\": int}]}],
   \"quorum\": {\"leader_id\": int, \"leader_epoch\": int, \"high_watermark\": int,
              \"voters\": [REPLICA], \"observers\": [REPLICA]} | null,
   \"topics\": int, \"internal_topics\": int, \"partitions\": int}
  REPLICA: {\"node_id\": int, \"role\": \"leader\"|\"follower\"|\"observer\", \"log_end_offset\": int,
            \"lag\": int|null, \"last_fetch_timestamp\": int|null, \"last_caught_up_timestamp\": int|null,
            \"endpoints\": [{\"listener\": str, \"host\": str, \"port\": int}]}
topics and partitions count every topic, internal ones (__consumer_offsets, ...) included. In the
table, * marks the controller.

Examples:
  tributary cluster info
  tributary cluster info --brokers 127.0.0.1:9092,127.0.0.1:9094 -o yaml
  tributary cluster info -o json | jq '.quorum.leader_id'";

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
    /// The cluster's id, controller, brokers (fenced or not), metadata quorum, and topic and partition counts.
    #[command(after_long_help = INFO_HELP)]
    Info,
}

#[derive(Serialize)]
struct EndpointJson {
    role: &'static str,
    listener: Option<String>,
    host: String,
    port: i32,
}

#[derive(Serialize)]
struct BrokerJson {
    node_id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    fenced: bool,
    endpoints: Vec<EndpointJson>,
}

#[derive(Serialize)]
struct ControllerEndpointJson {
    listener: String,
    host: String,
    port: u16,
}

#[derive(Serialize)]
struct ReplicaJson {
    node_id: i32,
    role: &'static str,
    log_end_offset: i64,
    lag: Option<i64>,
    last_fetch_timestamp: Option<i64>,
    last_caught_up_timestamp: Option<i64>,
    endpoints: Vec<ControllerEndpointJson>,
}

#[derive(Serialize)]
struct QuorumJson {
    leader_id: i32,
    leader_epoch: i32,
    high_watermark: i64,
    voters: Vec<ReplicaJson>,
    observers: Vec<ReplicaJson>,
}

#[derive(Serialize)]
struct InfoJson {
    cluster_id: Option<String>,
    controller_id: i32,
    brokers: Vec<BrokerJson>,
    quorum: Option<QuorumJson>,
    topics: usize,
    internal_topics: usize,
    partitions: usize,
}

/// Runs a cluster command.
pub fn run(args: ClusterArgs) -> ExitCode {
    let ClusterArgs { connection, command } = args;
    crate::cli::run(&connection, |target, format| execute(command, target, format))
}

fn controller_endpoints(endpoints: &[QuorumEndpoint]) -> Vec<ControllerEndpointJson> {
    endpoints
        .iter()
        .map(|e| ControllerEndpointJson { listener: e.listener.clone(), host: e.host.clone(), port: e.port })
        .collect()
}

fn quorum_json(q: &QuorumDescription) -> QuorumJson {
    let leader_end = q.voters.iter().find(|v| v.replica_id == q.leader_id).map(|v| v.log_end_offset);
    let replica = |r: &QuorumReplica, observer: bool| ReplicaJson {
        node_id: r.replica_id,
        role: match (observer, r.replica_id == q.leader_id) {
            (true, _) => "observer",
            (false, true) => "leader",
            (false, false) => "follower",
        },
        log_end_offset: r.log_end_offset,
        lag: leader_end.filter(|_| r.log_end_offset >= 0).map(|end| (end - r.log_end_offset).max(0)),
        last_fetch_timestamp: r.last_fetch_timestamp,
        last_caught_up_timestamp: r.last_caught_up_timestamp,
        endpoints: controller_endpoints(q.endpoints.get(&r.replica_id).map_or(&[], Vec::as_slice)),
    };
    // The leader first, as kafka-metadata-quorum.sh lists them.
    let mut voters: Vec<&QuorumReplica> = q.voters.iter().collect();
    voters.sort_by_key(|v| (v.replica_id != q.leader_id, v.replica_id));
    QuorumJson {
        leader_id: q.leader_id,
        leader_epoch: q.leader_epoch,
        high_watermark: q.high_watermark,
        voters: voters.into_iter().map(|v| replica(v, false)).collect(),
        observers: q.observers.iter().map(|o| replica(o, true)).collect(),
    }
}

async fn execute(command: ClusterCommand, target: KafkaTarget, format: Format) -> Result<Exit, ClientError> {
    let ClusterCommand::Info = command;
    let mut client = crate::cli::connect(&target).await?;
    let metadata = client.metadata(None).await?;
    let described = client.describe_cluster().await?;
    let mut exit = Exit::Success;
    let quorum = match client.describe_quorum().await {
        Ok(q) => Some(q),
        Err(ClientError::Unsupported { .. }) => {
            eprintln!("note: this cluster reports no metadata quorum (DescribeQuorum): it is not a KRaft cluster");
            None
        }
        Err(e) => {
            if format == Format::Table {
                eprintln!("error: {e}");
            } else {
                eprintln!("{}", serde_json::to_string(&ErrorJson::from(&e)).unwrap_or_else(|_| e.to_string()));
            }
            exit = Exit::Failed;
            None
        }
    };
    let topics: Vec<_> = metadata.topics.values().filter(|t| t.error_code == 0).collect();
    let quorum_endpoints: BTreeMap<i32, Vec<QuorumEndpoint>> =
        quorum.as_ref().map(|q| q.endpoints.clone()).unwrap_or_default();
    let info = InfoJson {
        cluster_id: described.cluster_id.clone().or_else(|| metadata.cluster_id.clone()),
        controller_id: described.controller_id,
        brokers: described
            .brokers
            .iter()
            .map(|b| {
                let mut endpoints =
                    vec![EndpointJson { role: "broker", listener: None, host: b.host.clone(), port: b.port }];
                endpoints.extend(quorum_endpoints.get(&b.node_id).into_iter().flatten().map(|e| EndpointJson {
                    role: "controller",
                    listener: Some(e.listener.clone()),
                    host: e.host.clone(),
                    port: i32::from(e.port),
                }));
                BrokerJson {
                    node_id: b.node_id,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                    fenced: b.fenced,
                    endpoints,
                }
            })
            .collect(),
        quorum: quorum.as_ref().map(quorum_json),
        topics: topics.len(),
        internal_topics: topics.iter().filter(|t| t.is_internal).count(),
        partitions: topics.iter().map(|t| t.partitions.len()).sum(),
    };
    if !format.print(&info) {
        print!("{}", render(&info, crate::local::now_ms()));
    }
    Ok(exit)
}

/// `3s ago`, `120ms ago`, `never`.
fn ago(timestamp: Option<i64>, now_ms: u64) -> String {
    match timestamp {
        None => "never".to_string(),
        Some(t) => {
            let elapsed = u64::try_from(i64::try_from(now_ms).unwrap_or(i64::MAX).saturating_sub(t)).unwrap_or(0);
            if elapsed < 1000 {
                format!("{elapsed}ms ago")
            } else {
                format!("{} ago", crate::local::human_duration(elapsed))
            }
        }
    }
}

fn endpoint_text(e: &EndpointJson) -> String {
    let host = if e.host.contains(':') { format!("[{}]", e.host) } else { e.host.clone() };
    match &e.listener {
        Some(listener) => format!("{listener}://{host}:{}", e.port),
        None => format!("{host}:{}", e.port),
    }
}

fn render(info: &InfoJson, now_ms: u64) -> String {
    let mut out = pairs(&[
        ("CLUSTER", info.cluster_id.clone().unwrap_or_else(|| "-".to_string())),
        ("CONTROLLER", info.controller_id.to_string()),
        ("TOPICS", format!("{} ({} internal)", info.topics, info.internal_topics)),
        ("PARTITIONS", info.partitions.to_string()),
    ]);
    if let Some(q) = &info.quorum {
        out.push_str(&format!(
            "\nQUORUM  leader {}, epoch {}, high watermark {}\n",
            q.leader_id, q.leader_epoch, q.high_watermark
        ));
        let mut table = Table::new(&["NODE", "ROLE", "LOG END", "LAG", "LAST FETCH", "LAST CAUGHT UP"]);
        for r in q.voters.iter().chain(&q.observers) {
            table.row(vec![
                r.node_id.to_string(),
                r.role.to_string(),
                r.log_end_offset.to_string(),
                r.lag.map_or_else(|| "-".to_string(), |l| l.to_string()),
                ago(r.last_fetch_timestamp, now_ms),
                ago(r.last_caught_up_timestamp, now_ms),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push('\n');
    let mut table = Table::new(&["BROKER", "RACK", "STATE", "ENDPOINTS"]);
    for b in &info.brokers {
        let id = if b.node_id == info.controller_id { format!("{}*", b.node_id) } else { b.node_id.to_string() };
        table.row(vec![
            id,
            b.rack.clone().unwrap_or_else(|| "-".to_string()),
            if b.fenced { "fenced" } else { "unfenced" }.to_string(),
            b.endpoints.iter().map(endpoint_text).collect::<Vec<_>>().join(", "),
        ]);
    }
    out.push_str(&table.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(id: i32, end: i64, fetched: Option<i64>) -> QuorumReplica {
        QuorumReplica {
            replica_id: id,
            log_end_offset: end,
            last_fetch_timestamp: fetched,
            last_caught_up_timestamp: fetched,
        }
    }

    #[test]
    fn the_leader_comes_first_and_lag_is_behind_its_log_end() {
        let endpoint = |port| QuorumEndpoint { listener: "CONTROLLER".into(), host: "127.0.0.1".into(), port };
        let q = QuorumDescription {
            leader_id: 2,
            leader_epoch: 4,
            high_watermark: 100,
            voters: vec![replica(1, 97, Some(1_000)), replica(2, 101, Some(2_000)), replica(3, -1, None)],
            observers: vec![replica(9, 90, Some(1_500))],
            endpoints: BTreeMap::from([(2, vec![endpoint(9095)])]),
        };
        let json = quorum_json(&q);
        let rows: Vec<(i32, &str, Option<i64>)> =
            json.voters.iter().chain(&json.observers).map(|r| (r.node_id, r.role, r.lag)).collect();
        assert_eq!(
            rows,
            vec![(2, "leader", Some(0)), (1, "follower", Some(4)), (3, "follower", None), (9, "observer", Some(11))]
        );
        assert_eq!(json.voters[0].endpoints[0].port, 9095);
        let info = InfoJson {
            cluster_id: Some("c".into()),
            controller_id: 2,
            brokers: vec![BrokerJson {
                node_id: 2,
                host: "127.0.0.1".into(),
                port: 9094,
                rack: None,
                fenced: true,
                endpoints: vec![
                    EndpointJson { role: "broker", listener: None, host: "127.0.0.1".into(), port: 9094 },
                    EndpointJson {
                        role: "controller",
                        listener: Some("CONTROLLER".into()),
                        host: "::1".into(),
                        port: 9095,
                    },
                ],
            }],
            quorum: Some(json),
            topics: 1,
            internal_topics: 0,
            partitions: 3,
        };
        let text = render(&info, 2_500);
        for needle in [
            "QUORUM  leader 2, epoch 4, high watermark 100",
            "2     leader    101      0    500ms ago",
            "3     follower  -1       -    never",
            "2*      -     fenced  127.0.0.1:9094, CONTROLLER://[::1]:9095",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }
}
