//! Consumer groups, read-only: the groups (ListGroups + DescribeGroups),
//! their consumers and assignments, and lag (OffsetFetch against
//! ListOffsets latest), per partition and summed up.
//!
//! ```text
//! /consumer-groups[/{g}]                           KafkaConsumerGroup
//! /consumer-groups/{g}/consumers[/{c}]             KafkaConsumer
//! /consumers/{c}/assignments[/{t}/partitions/{p}]  KafkaConsumerAssignment
//! /consumer-groups/{g}/lags[/{t}/partitions/{p}]   KafkaConsumerLag (partitions with a committed offset)
//! /consumer-groups/{g}/lag-summary                 KafkaConsumerGroupLagSummary
//! ```

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tributary_client::{Client, GroupDescription, GroupListing, MemberDescription, PartitionLag};

use super::{AppState, Links, answer, list};
use crate::error::RestError;
use crate::kafka::Kafka;

pub(super) fn routes() -> Router<AppState> {
    let group = "/clusters/{cluster_id}/consumer-groups/{group_id}";
    Router::new()
        .route("/clusters/{cluster_id}/consumer-groups", get(groups))
        .route(group, get(group_one))
        .route(&format!("{group}/consumers"), get(consumers))
        .route(&format!("{group}/consumers/{{consumer_id}}"), get(consumer))
        .route(&format!("{group}/consumers/{{consumer_id}}/assignments"), get(assignments))
        .route(
            &format!("{group}/consumers/{{consumer_id}}/assignments/{{topic}}/partitions/{{partition_id}}"),
            get(assignment),
        )
        .route(&format!("{group}/lag-summary"), get(lag_summary))
        .route(&format!("{group}/lags"), get(lags))
        .route(&format!("{group}/lags/{{topic}}/partitions/{{partition_id}}"), get(lag))
}

/// kafka-rest's state name for a state Kafka reports (`Stable`, `PreparingRebalance`, `assigning`, ...).
fn state_name(state: &str) -> &'static str {
    let squashed: String = state.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    match squashed.as_str() {
        "stable" => "STABLE",
        "empty" => "EMPTY",
        "dead" => "DEAD",
        "preparingrebalance" => "PREPARING_REBALANCE",
        "completingrebalance" => "COMPLETING_REBALANCE",
        "assigning" => "ASSIGNING",
        "reconciling" => "RECONCILING",
        _ => "UNKNOWN",
    }
}

/// kafka-rest's type name for ListGroups' group type (`classic`, `consumer`, `share`).
fn type_name(group_type: Option<&str>) -> &'static str {
    match group_type.map(str::to_ascii_lowercase).as_deref() {
        Some("classic") => "CLASSIC",
        Some("consumer") => "CONSUMER",
        Some("share") => "SHARE",
        // Brokers before ListGroups v5 only have classic groups.
        None => "CLASSIC",
        Some(_) => "UNKNOWN",
    }
}

fn group_path(group: &str) -> String {
    format!("consumer-groups/{group}")
}

fn consumer_path(group: &str, consumer: &str) -> String {
    format!("consumer-groups/{group}/consumers/{consumer}")
}

fn group_body(links: &Links, cluster_id: &str, d: &GroupDescription, listing: Option<&GroupListing>) -> Value {
    let path = group_path(&d.group_id);
    json!({
        "kind": "KafkaConsumerGroup",
        "metadata": {
            "self": format!("{}/{path}", links.cluster(cluster_id)),
            "resource_name": format!("crn:///kafka={cluster_id}/consumer-group={}", d.group_id),
        },
        "cluster_id": cluster_id,
        "consumer_group_id": d.group_id,
        // A group that only commits offsets (assign(), no subscription) has no protocol type.
        "is_simple": d.protocol_type.is_empty(),
        "partition_assignor": d.protocol,
        "state": state_name(&d.state),
        "type": type_name(listing.and_then(|l| l.group_type.as_deref())),
        "is_mixed_consumer_group": false,
        "coordinator": links.related(cluster_id, &format!("brokers/{}", d.coordinator.node_id)),
        "consumers": links.related(cluster_id, &format!("{path}/consumers")),
        "lag_summary": links.related(cluster_id, &format!("{path}/lag-summary")),
    })
}

fn consumer_body(links: &Links, cluster_id: &str, group: &str, m: &MemberDescription) -> Value {
    let path = consumer_path(group, &m.member_id);
    json!({
        "kind": "KafkaConsumer",
        "metadata": {
            "self": format!("{}/{path}", links.cluster(cluster_id)),
            "resource_name": format!("crn:///kafka={cluster_id}/consumer-group={group}/consumer={}", m.member_id),
        },
        "cluster_id": cluster_id,
        "consumer_group_id": group,
        "consumer_id": m.member_id,
        "instance_id": m.group_instance_id,
        "client_id": m.client_id,
        "assignments": links.related(cluster_id, &format!("{path}/assignments")),
    })
}

fn assignment_body(links: &Links, cluster_id: &str, group: &str, consumer: &str, topic: &str, p: i32) -> Value {
    json!({
        "kind": "KafkaConsumerAssignment",
        "metadata": {
            "self": format!("{}/{}/assignments/{topic}/partitions/{p}", links.cluster(cluster_id), consumer_path(group, consumer)),
            "resource_name": format!(
                "crn:///kafka={cluster_id}/consumer-group={group}/consumer={consumer}/assignment={topic}/partition={p}"
            ),
        },
        "cluster_id": cluster_id,
        "consumer_group_id": group,
        "consumer_id": consumer,
        "topic_name": topic,
        "partition_id": p,
        "partition": links.related(cluster_id, &format!("topics/{topic}/partitions/{p}")),
        "lag": links.related(cluster_id, &format!("{}/lags/{topic}/partitions/{p}", group_path(group))),
    })
}

/// One partition's lag, for a partition the group has committed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lag {
    topic: String,
    partition: i32,
    current_offset: i64,
    log_end_offset: i64,
    lag: i64,
    consumer_id: String,
    instance_id: Option<String>,
    client_id: String,
}

/// Lags of the partitions with both a committed offset and a readable log
/// end; the owner is the member assigned the partition, if any ("" otherwise).
fn lags_of(d: &GroupDescription, partitions: &[PartitionLag]) -> Vec<Lag> {
    partitions
        .iter()
        .filter_map(|p| {
            let committed = p.committed.as_ref()?;
            let end = p.log_end_offset?;
            let owner = p.member.and_then(|i| d.members.get(i));
            Some(Lag {
                topic: p.topic_partition.topic.clone(),
                partition: p.topic_partition.partition,
                current_offset: committed.offset,
                log_end_offset: end,
                lag: p.lag.unwrap_or(end - committed.offset),
                consumer_id: owner.map(|m| m.member_id.clone()).unwrap_or_default(),
                instance_id: owner.and_then(|m| m.group_instance_id.clone()),
                client_id: owner.map(|m| m.client_id.clone()).unwrap_or_default(),
            })
        })
        .collect()
}

fn lag_body(links: &Links, cluster_id: &str, group: &str, l: &Lag) -> Value {
    json!({
        "kind": "KafkaConsumerLag",
        "metadata": {
            "self": format!("{}/{}/lags/{}/partitions/{}", links.cluster(cluster_id), group_path(group), l.topic, l.partition),
            "resource_name": format!("crn:///kafka={cluster_id}/consumer-group={group}/lag={}/partition={}", l.topic, l.partition),
        },
        "cluster_id": cluster_id,
        "consumer_group_id": group,
        "topic_name": l.topic,
        "partition_id": l.partition,
        "current_offset": l.current_offset,
        "log_end_offset": l.log_end_offset,
        "lag": l.lag,
        "consumer_id": l.consumer_id,
        "instance_id": l.instance_id,
        "client_id": l.client_id,
    })
}

/// The partition with the largest lag (the first in partition order on a tie)
/// and the total. Without any committed partition the maximum is absent.
fn lag_summary_body(links: &Links, cluster_id: &str, group: &str, lags: &[Lag]) -> Value {
    let total: i64 = lags.iter().map(|l| l.lag).sum();
    let max = lags.iter().reduce(|best, l| if l.lag > best.lag { l } else { best });
    let path = group_path(group);
    let mut body = json!({
        "kind": "KafkaConsumerGroupLagSummary",
        "metadata": {
            "self": format!("{}/{path}/lag-summary", links.cluster(cluster_id)),
            "resource_name": format!("crn:///kafka={cluster_id}/consumer-group={group}/lag-summary"),
        },
        "cluster_id": cluster_id,
        "consumer_group_id": group,
        "total_lag": total,
    });
    let fields = match max {
        Some(m) => json!({
            "max_lag_consumer_id": m.consumer_id,
            "max_lag_instance_id": m.instance_id,
            "max_lag_client_id": m.client_id,
            "max_lag_topic_name": m.topic,
            "max_lag_partition_id": m.partition,
            "max_lag": m.lag,
            "max_lag_consumer": if m.consumer_id.is_empty() {
                Value::Null
            } else {
                links.related(cluster_id, &consumer_path(group, &m.consumer_id))
            },
            "max_lag_partition": links.related(cluster_id, &format!("topics/{}/partitions/{}", m.topic, m.partition)),
        }),
        None => json!({
            "max_lag_consumer_id": "",
            "max_lag_instance_id": null,
            "max_lag_client_id": "",
            "max_lag_topic_name": "",
            "max_lag_partition_id": -1,
            "max_lag": 0,
            "max_lag_consumer": null,
            "max_lag_partition": null,
        }),
    };
    if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
        body.extend(fields.clone());
    }
    body
}

fn group_not_found(group: &str) -> RestError {
    RestError::status(404, format!("Consumer group {group} cannot be found."))
}

/// Describes `group`; 404 when the coordinator does not know it.
async fn describe(kafka: &Kafka, cluster_id: &str, group: &str) -> Result<GroupDescription, RestError> {
    kafka.cluster(cluster_id, Some(Vec::new())).await?;
    let id = group.to_string();
    let d = kafka.call(async move |c: &mut Client| c.describe_group(&id).await).await?;
    if state_name(&d.state) == "DEAD" && d.members.is_empty() {
        return Err(group_not_found(group));
    }
    Ok(d)
}

async fn listing(kafka: &Kafka, group: &str) -> Result<Option<GroupListing>, RestError> {
    let listed = kafka.call(async move |c: &mut Client| c.list_groups(&[]).await).await?;
    Ok(listed.into_iter().find(|l| l.group_id == group))
}

async fn member(kafka: &Kafka, cluster_id: &str, group: &str, consumer: &str) -> Result<MemberDescription, RestError> {
    let d = describe(kafka, cluster_id, group).await?;
    d.members
        .into_iter()
        .find(|m| m.member_id == consumer)
        .ok_or_else(|| RestError::status(404, format!("Consumer {consumer} cannot be found in group {group}.")))
}

async fn group_lags(kafka: &Kafka, cluster_id: &str, group: &str) -> Result<Vec<Lag>, RestError> {
    let d = describe(kafka, cluster_id, group).await?;
    let described = d.clone();
    let partitions = kafka.call(async move |c: &mut Client| c.group_lag(&described).await).await?;
    Ok(lags_of(&d, &partitions))
}

fn partition_id(raw: &str) -> Result<i32, RestError> {
    raw.parse().map_err(|_| RestError::status(400, format!("Partition id '{raw}' is not an integer.")))
}

async fn groups(
    State(kafka): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        kafka.cluster(&cluster_id, Some(Vec::new())).await?;
        let listed = kafka.call(async move |c: &mut Client| c.list_groups(&[]).await).await?;
        let mut data = Vec::new();
        // Consumer groups: the `consumer` protocol, or only committed offsets (no protocol).
        for l in listed.iter().filter(|l| l.protocol_type == "consumer" || l.protocol_type.is_empty()) {
            let id = l.group_id.clone();
            let d = kafka.call(async move |c: &mut Client| c.describe_group(&id).await).await?;
            // A group deleted since it was listed describes as Dead.
            if state_name(&d.state) != "DEAD" || !d.members.is_empty() {
                data.push(group_body(&links, &cluster_id, &d, Some(l)));
            }
        }
        Ok(list("KafkaConsumerGroupList", format!("{}/consumer-groups", links.cluster(&cluster_id)), data))
    };
    answer(result.await)
}

async fn group_one(
    State(kafka): State<AppState>,
    Path((cluster_id, group)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let d = describe(&kafka, &cluster_id, &group).await?;
        let l = listing(&kafka, &group).await?;
        Ok(group_body(&links, &cluster_id, &d, l.as_ref()))
    };
    answer(result.await)
}

async fn consumers(
    State(kafka): State<AppState>,
    Path((cluster_id, group)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(describe(&kafka, &cluster_id, &group).await.map(|d| {
        let data = d.members.iter().map(|m| consumer_body(&links, &cluster_id, &group, m)).collect();
        list("KafkaConsumerList", format!("{}/{}/consumers", links.cluster(&cluster_id), group_path(&group)), data)
    }))
}

async fn consumer(
    State(kafka): State<AppState>,
    Path((cluster_id, group, consumer)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let found = member(&kafka, &cluster_id, &group, &consumer).await;
    answer(found.map(|m| consumer_body(&links, &cluster_id, &group, &m)))
}

async fn assignments(
    State(kafka): State<AppState>,
    Path((cluster_id, group, consumer)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let found = member(&kafka, &cluster_id, &group, &consumer).await;
    answer(found.map(|m| {
        let data = m
            .assigned()
            .iter()
            .map(|tp| assignment_body(&links, &cluster_id, &group, &consumer, &tp.topic, tp.partition))
            .collect();
        let self_url = format!("{}/{}/assignments", links.cluster(&cluster_id), consumer_path(&group, &consumer));
        list("KafkaConsumerAssignmentList", self_url, data)
    }))
}

async fn assignment(
    State(kafka): State<AppState>,
    Path((cluster_id, group, consumer, topic, raw)): Path<(String, String, String, String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let p = partition_id(&raw)?;
        let m = member(&kafka, &cluster_id, &group, &consumer).await?;
        if !m.assigned().iter().any(|tp| tp.topic == topic && tp.partition == p) {
            return Err(RestError::status(
                404,
                format!("Consumer {consumer} of group {group} is not assigned partition {p} of topic {topic}."),
            ));
        }
        Ok(assignment_body(&links, &cluster_id, &group, &consumer, &topic, p))
    };
    answer(result.await)
}

async fn lags(
    State(kafka): State<AppState>,
    Path((cluster_id, group)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(group_lags(&kafka, &cluster_id, &group).await.map(|ls| {
        let data = ls.iter().map(|l| lag_body(&links, &cluster_id, &group, l)).collect();
        list("KafkaConsumerLagList", format!("{}/{}/lags", links.cluster(&cluster_id), group_path(&group)), data)
    }))
}

async fn lag(
    State(kafka): State<AppState>,
    Path((cluster_id, group, topic, raw)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let p = partition_id(&raw)?;
        let ls = group_lags(&kafka, &cluster_id, &group).await?;
        let l = ls.iter().find(|l| l.topic == topic && l.partition == p).ok_or_else(|| {
            RestError::status(404, format!("Group {group} has no committed offset for partition {p} of topic {topic}."))
        })?;
        Ok(lag_body(&links, &cluster_id, &group, l))
    };
    answer(result.await)
}

async fn lag_summary(
    State(kafka): State<AppState>,
    Path((cluster_id, group)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(group_lags(&kafka, &cluster_id, &group).await.map(|ls| lag_summary_body(&links, &cluster_id, &group, &ls)))
}

#[cfg(test)]
mod tests {
    use tributary_client::{Assignment, CommittedOffset, Node, TopicPartition, TopicPartitions};

    use super::*;

    fn links() -> Links {
        Links { base: "http://h/v3".to_string() }
    }

    fn member(id: &str, partitions: &[(&str, i32)]) -> MemberDescription {
        let mut by_topic: Vec<TopicPartitions> = Vec::new();
        for (t, p) in partitions {
            match by_topic.iter_mut().find(|x| x.topic == *t) {
                Some(x) => x.partitions.push(*p),
                None => by_topic.push(TopicPartitions { topic: t.to_string(), partitions: vec![*p] }),
            }
        }
        MemberDescription {
            member_id: id.to_string(),
            group_instance_id: None,
            client_id: format!("client-{id}"),
            client_host: "/127.0.0.1".to_string(),
            subscription: None,
            assignment: Some(Assignment { version: 0, partitions: by_topic, user_data: None }),
            decode_error: None,
        }
    }

    fn group(members: Vec<MemberDescription>) -> GroupDescription {
        GroupDescription {
            group_id: "g".to_string(),
            coordinator: Node { node_id: 1, host: "h".to_string(), port: 9092 },
            state: "Stable".to_string(),
            protocol_type: "consumer".to_string(),
            protocol: "range".to_string(),
            members,
        }
    }

    fn partition_lag(t: &str, p: i32, committed: Option<i64>, end: Option<i64>, member: Option<usize>) -> PartitionLag {
        PartitionLag {
            topic_partition: TopicPartition::new(t, p),
            committed: committed.map(|offset| CommittedOffset { offset, leader_epoch: None, metadata: String::new() }),
            log_end_offset: end,
            lag: committed.zip(end).map(|(c, e)| e - c),
            member,
            error: None,
        }
    }

    #[test]
    fn states_and_types_use_kafka_rest_names() {
        assert_eq!(state_name("Stable"), "STABLE");
        assert_eq!(state_name("PreparingRebalance"), "PREPARING_REBALANCE");
        assert_eq!(state_name("CompletingRebalance"), "COMPLETING_REBALANCE");
        assert_eq!(state_name("Reconciling"), "RECONCILING");
        assert_eq!(state_name("whatever"), "UNKNOWN");
        assert_eq!(type_name(Some("classic")), "CLASSIC");
        assert_eq!(type_name(Some("consumer")), "CONSUMER");
        assert_eq!(type_name(None), "CLASSIC");
    }

    #[test]
    fn group_body_links_coordinator_consumers_and_lag_summary() {
        let body = group_body(&links(), "c", &group(vec![]), None);
        assert_eq!(
            (&body["consumer_group_id"], &body["state"], &body["is_simple"]),
            (&json!("g"), &json!("STABLE"), &json!(false))
        );
        assert_eq!(body["partition_assignor"], "range");
        assert_eq!(body["coordinator"]["related"], "http://h/v3/clusters/c/brokers/1");
        assert_eq!(body["consumers"]["related"], "http://h/v3/clusters/c/consumer-groups/g/consumers");
        assert_eq!(body["lag_summary"]["related"], "http://h/v3/clusters/c/consumer-groups/g/lag-summary");
    }

    #[test]
    fn lags_cover_committed_partitions_with_their_owner() {
        let d = group(vec![member("m1", &[("t", 0)]), member("m2", &[("t", 1)])]);
        let partitions = vec![
            partition_lag("t", 0, Some(5), Some(10), Some(0)),
            partition_lag("t", 1, None, Some(7), Some(1)),
            partition_lag("u", 0, Some(3), Some(3), None),
            partition_lag("u", 1, Some(3), None, None),
        ];
        let lags = lags_of(&d, &partitions);
        let seen: Vec<(&str, i32, i64, &str)> =
            lags.iter().map(|l| (l.topic.as_str(), l.partition, l.lag, l.consumer_id.as_str())).collect();
        assert_eq!(seen, vec![("t", 0, 5, "m1"), ("u", 0, 0, "")]);
        assert_eq!(lags[0].client_id, "client-m1");

        let summary = lag_summary_body(&links(), "c", "g", &lags);
        assert_eq!((&summary["max_lag"], &summary["total_lag"]), (&json!(5), &json!(5)));
        assert_eq!((&summary["max_lag_topic_name"], &summary["max_lag_partition_id"]), (&json!("t"), &json!(0)));
        assert_eq!(summary["max_lag_consumer"]["related"], "http://h/v3/clusters/c/consumer-groups/g/consumers/m1");
        assert_eq!(summary["max_lag_partition"]["related"], "http://h/v3/clusters/c/topics/t/partitions/0");
    }

    #[test]
    fn an_uncommitted_group_has_zero_lag_and_no_maximum() {
        let summary = lag_summary_body(&links(), "c", "g", &[]);
        assert_eq!((&summary["max_lag"], &summary["total_lag"]), (&json!(0), &json!(0)));
        assert_eq!(summary["max_lag_partition"], Value::Null);
    }

    #[test]
    fn assignments_link_partition_and_lag() {
        let body = assignment_body(&links(), "c", "g", "m1", "t", 3);
        assert_eq!(
            body["metadata"]["self"],
            "http://h/v3/clusters/c/consumer-groups/g/consumers/m1/assignments/t/partitions/3"
        );
        assert_eq!(body["partition"]["related"], "http://h/v3/clusters/c/topics/t/partitions/3");
        assert_eq!(body["lag"]["related"], "http://h/v3/clusters/c/consumer-groups/g/lags/t/partitions/3");
    }
}
