//! Partitions of a topic and their replicas (leader and in-sync flags) from
//! Metadata, a partition's earliest and latest offsets (ListOffsets), and
//! `PATCH /topics/{topic}` with `{"partitions_count": N}`, which grows the
//! topic through CreatePartitions.

use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, patch};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_client::{Client, ClientError, PartitionMetadata};

use super::{AppState, Links, answer, list, topics};
use crate::error::RestError;
use crate::kafka::Kafka;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/clusters/{cluster_id}/topics/{topic}", patch(update_partition_count))
        .route("/clusters/{cluster_id}/topics/{topic}/partitions", get(partitions))
        .route("/clusters/{cluster_id}/topics/{topic}/partitions/{partition_id}", get(partition))
        .route("/clusters/{cluster_id}/topics/{topic}/partitions/{partition_id}/offset", get(offsets))
        .route("/clusters/{cluster_id}/topics/{topic}/partitions/{partition_id}/replicas", get(replicas))
        .route("/clusters/{cluster_id}/topics/{topic}/partitions/{partition_id}/replicas/{broker_id}", get(replica))
}

fn partition_path(topic: &str, partition: i32) -> String {
    format!("topics/{topic}/partitions/{partition}")
}

fn partition_body(links: &Links, cluster_id: &str, topic: &str, partition: i32, p: &PartitionMetadata) -> Value {
    let path = partition_path(topic, partition);
    let leader =
        if p.leader >= 0 { links.related(cluster_id, &format!("{path}/replicas/{}", p.leader)) } else { Value::Null };
    json!({
        "kind": "KafkaPartition",
        "metadata": {
            "self": format!("{}/{path}", links.cluster(cluster_id)),
            "resource_name": format!("crn:///kafka={cluster_id}/topic={topic}/partition={partition}"),
        },
        "cluster_id": cluster_id,
        "topic_name": topic,
        "partition_id": partition,
        "leader": leader,
        "replicas": links.related(cluster_id, &format!("{path}/replicas")),
        "reassignment": links.related(cluster_id, &format!("{path}/reassignment")),
    })
}

pub(super) fn replica_body(
    links: &Links,
    cluster_id: &str,
    topic: &str,
    partition: i32,
    p: &PartitionMetadata,
    broker: i32,
) -> Value {
    let path = partition_path(topic, partition);
    json!({
        "kind": "KafkaReplica",
        "metadata": {
            "self": format!("{}/{path}/replicas/{broker}", links.cluster(cluster_id)),
            "resource_name": format!("crn:///kafka={cluster_id}/topic={topic}/partition={partition}/replica={broker}"),
        },
        "cluster_id": cluster_id,
        "topic_name": topic,
        "partition_id": partition,
        "broker_id": broker,
        "is_leader": p.leader == broker,
        "is_in_sync": p.isr.contains(&broker),
        "broker": links.related(cluster_id, &format!("brokers/{broker}")),
    })
}

/// The partitions of `topic` by index; 404 (40403) when it does not exist.
async fn topic_partitions(
    kafka: &Kafka,
    cluster_id: &str,
    topic: &str,
) -> Result<std::collections::BTreeMap<i32, PartitionMetadata>, RestError> {
    Ok(kafka.topic(cluster_id, topic).await?.partitions)
}

fn partition_id(raw: &str) -> Result<i32, RestError> {
    raw.parse().map_err(|_| RestError::status(400, format!("Partition id '{raw}' is not an integer.")))
}

async fn one_partition(
    kafka: &Kafka,
    cluster_id: &str,
    topic: &str,
    raw: &str,
) -> Result<(i32, PartitionMetadata), RestError> {
    let id = partition_id(raw)?;
    let mut partitions = topic_partitions(kafka, cluster_id, topic).await?;
    partitions
        .remove(&id)
        .map(|p| (id, p))
        .ok_or_else(|| RestError::status(404, format!("Partition {id} of topic {topic} cannot be found.")))
}

async fn partitions(
    State(kafka): State<AppState>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(topic_partitions(&kafka, &cluster_id, &topic).await.map(|ps| {
        let data = ps.iter().map(|(i, p)| partition_body(&links, &cluster_id, &topic, *i, p)).collect();
        list("KafkaPartitionList", format!("{}/topics/{topic}/partitions", links.cluster(&cluster_id)), data)
    }))
}

async fn partition(
    State(kafka): State<AppState>,
    Path((cluster_id, topic, raw)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let found = one_partition(&kafka, &cluster_id, &topic, &raw).await;
    answer(found.map(|(id, p)| partition_body(&links, &cluster_id, &topic, id, &p)))
}

/// `?offset_type=`: kafka-rest knows only its default, `earliest_and_latest`.
#[derive(Debug, Deserialize)]
struct OffsetsQuery {
    #[serde(default)]
    offset_type: Option<String>,
}

const EARLIEST_AND_LATEST: &str = "earliest_and_latest";

/// `GET .../partitions/{p}/offset`: the partition's earliest and latest
/// offsets; another `offset_type` than `earliest_and_latest` is a 400.
async fn offsets(
    State(kafka): State<AppState>,
    Path((cluster_id, topic, raw)): Path<(String, String, String)>,
    Query(query): Query<OffsetsQuery>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let offset_type = query.offset_type.as_deref().unwrap_or(EARLIEST_AND_LATEST);
        if offset_type != EARLIEST_AND_LATEST {
            return Err(RestError::status(400, format!("Bad Request: offset_type:{offset_type} is invalid")));
        }
        let (id, _) = one_partition(&kafka, &cluster_id, &topic, &raw).await?;
        let tp = tributary_client::admin::TopicPartition::new(&topic, id);
        let mut ends = Vec::new();
        for spec in [tributary_client::admin::OffsetSpec::Earliest, tributary_client::admin::OffsetSpec::Latest] {
            let one = std::slice::from_ref(&tp).to_vec();
            let found = kafka.call(async move |c: &mut Client| c.list_offsets(&one, spec).await).await?;
            match found.into_values().next() {
                Some(Ok(o)) => ends.push(o.offset),
                Some(Err(e)) => return Err(RestError::from(ClientError::Kafka(e))),
                None => return Err(RestError::status(500, format!("no offsets answered for {tp}"))),
            }
        }
        let path = format!("{}/offset", partition_path(&topic, id));
        Ok(json!({
            "kind": "KafkaPartitionWithOffsets",
            "metadata": {
                "self": format!("{}/{path}", links.cluster(&cluster_id)),
                "resource_name": format!(
                    "crn:///kafka={cluster_id}/topic={topic}/partition={id}/offset_type={EARLIEST_AND_LATEST}"
                ),
            },
            "cluster_id": cluster_id,
            "topic_name": topic,
            "partition_id": id,
            "earliest_offset": ends[0],
            "latest_offset": ends[1],
        }))
    }
    .await;
    answer(result)
}

async fn replicas(
    State(kafka): State<AppState>,
    Path((cluster_id, topic, raw)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let found = one_partition(&kafka, &cluster_id, &topic, &raw).await;
    answer(found.map(|(id, p)| {
        let data = p.replicas.iter().map(|b| replica_body(&links, &cluster_id, &topic, id, &p, *b)).collect();
        list(
            "KafkaReplicaList",
            format!("{}/{}/replicas", links.cluster(&cluster_id), partition_path(&topic, id)),
            data,
        )
    }))
}

async fn replica(
    State(kafka): State<AppState>,
    Path((cluster_id, topic, raw, broker)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let broker = super::configs::broker_id(&broker)?;
        let (id, p) = one_partition(&kafka, &cluster_id, &topic, &raw).await?;
        if !p.replicas.contains(&broker) {
            return Err(RestError::status(
                404,
                format!("Broker {broker} holds no replica of partition {id} of topic {topic}."),
            ));
        }
        Ok(replica_body(&links, &cluster_id, &topic, id, &p, broker))
    };
    answer(result.await)
}

/// kafka-rest's `PartitionsCountRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePartitionCount {
    #[serde(deserialize_with = "crate::body::int")]
    partitions_count: i32,
}

/// The partition count a PATCH body asks for.
fn read_count(body: &Bytes) -> Result<i32, RestError> {
    let request: UpdatePartitionCount = crate::body::optional(body)?
        .ok_or_else(|| crate::body::payload_error("Request body is empty. Partitions_count is required."))?;
    Ok(request.partitions_count)
}

/// PATCH `/topics/{topic}`: grows the topic to `partitions_count` and answers
/// the topic as it then is. A count not above the current one is Kafka's
/// INVALID_PARTITIONS, a 400 (40002).
async fn update_partition_count(
    State(kafka): State<AppState>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
    body: Bytes,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let count = read_count(&body)?;
        let current = topic_partitions(&kafka, &cluster_id, &topic).await?.len();
        let name = topic.clone();
        kafka
            .call(async move |c: &mut Client| c.create_partitions(&name, count, false).await)
            .await
            .map_err(|e| if e.error_code == 40403 { RestError::topic_not_found(&topic) } else { e })?;
        // Metadata shows the new partitions once they exist; wait a little for that.
        let wanted = usize::try_from(count).unwrap_or(current);
        for _ in 0..50 {
            let described = topics::describe(&kafka, &links, &cluster_id, &topic).await?;
            if described["partitions_count"].as_u64().is_some_and(|n| n >= wanted as u64) {
                return Ok(described);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        topics::describe(&kafka, &links, &cluster_id, &topic).await
    };
    answer(result.await)
}

/// Fuzzing entry (see `crate::fuzzing`): `bytes` as a partition count update body.
pub(super) fn fuzz_body(bytes: &Bytes) {
    let _ = read_count(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links { base: "http://h/kafka/v3".to_string() }
    }

    #[test]
    fn partition_links_its_leader_replica() {
        let p = PartitionMetadata { leader: 2, error_code: 0, replicas: vec![2, 1], isr: vec![2] };
        let body = partition_body(&links(), "c", "t", 4, &p);
        assert_eq!((&body["kind"], &body["partition_id"]), (&json!("KafkaPartition"), &json!(4)));
        assert_eq!(body["metadata"]["self"], "http://h/kafka/v3/clusters/c/topics/t/partitions/4");
        assert_eq!(body["metadata"]["resource_name"], "crn:///kafka=c/topic=t/partition=4");
        assert_eq!(body["leader"]["related"], "http://h/kafka/v3/clusters/c/topics/t/partitions/4/replicas/2");
        assert_eq!(body["replicas"]["related"], "http://h/kafka/v3/clusters/c/topics/t/partitions/4/replicas");
        assert_eq!(body["reassignment"]["related"], "http://h/kafka/v3/clusters/c/topics/t/partitions/4/reassignment");
        let leaderless = PartitionMetadata { leader: -1, ..p };
        assert_eq!(partition_body(&links(), "c", "t", 4, &leaderless)["leader"], Value::Null);
    }

    #[test]
    fn replicas_say_leader_and_in_sync() {
        let p = PartitionMetadata { leader: 2, error_code: 0, replicas: vec![2, 1], isr: vec![2] };
        let leader = replica_body(&links(), "c", "t", 0, &p, 2);
        assert_eq!((&leader["is_leader"], &leader["is_in_sync"]), (&json!(true), &json!(true)));
        assert_eq!(leader["broker"]["related"], "http://h/kafka/v3/clusters/c/brokers/2");
        assert_eq!(leader["metadata"]["resource_name"], "crn:///kafka=c/topic=t/partition=0/replica=2");
        let follower = replica_body(&links(), "c", "t", 0, &p, 1);
        assert_eq!((&follower["is_leader"], &follower["is_in_sync"]), (&json!(false), &json!(false)));
    }

    /// Every module's routes merge into one table: overlapping routes or
    /// differently named parameters at one position would panic here.
    #[tokio::test]
    async fn every_route_fits_in_one_table() {
        let kafka = Kafka::new(tributary_client::ClientConfig::new("127.0.0.1:1"), None);
        let _ = crate::api::router(kafka);
    }

    #[test]
    fn partition_ids_must_be_integers() {
        assert_eq!(partition_id("7"), Ok(7));
        assert_eq!(partition_id("-").map_err(|e| e.status), Err(400));
    }
}
