//! Brokers: list, get (id, advertised host and port, rack) and the partition
//! replicas each one holds, all from Metadata.

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tributary_client::{ClusterMetadata, Node};

use super::configs::{broker_id, broker_not_found};
use super::partitions::replica_body;
use super::{AppState, Links, answer, list};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/clusters/{cluster_id}/brokers", get(brokers))
        .route("/clusters/{cluster_id}/brokers/{broker_id}", get(broker))
        .route("/clusters/{cluster_id}/brokers/{broker_id}/partition-replicas", get(partition_replicas))
}

fn broker_body(links: &Links, cluster_id: &str, node: &Node, rack: Option<&String>) -> Value {
    let path = format!("brokers/{}", node.node_id);
    json!({
        "kind": "KafkaBroker",
        "metadata": {
            "self": format!("{}/{path}", links.cluster(cluster_id)),
            "resource_name": format!("crn:///kafka={cluster_id}/broker={}", node.node_id),
        },
        "cluster_id": cluster_id,
        "broker_id": node.node_id,
        "host": node.host,
        "port": node.port,
        "rack": rack,
        "configs": links.related(cluster_id, &format!("{path}/configs")),
        "partition_replicas": links.related(cluster_id, &format!("{path}/partition-replicas")),
    })
}

async fn brokers(
    State(kafka): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(kafka.cluster(&cluster_id, Some(Vec::new())).await.map(|m| {
        let data = m.brokers.values().map(|n| broker_body(&links, &cluster_id, n, m.racks.get(&n.node_id))).collect();
        list("KafkaBrokerList", format!("{}/brokers", links.cluster(&cluster_id)), data)
    }))
}

async fn broker(
    State(kafka): State<AppState>,
    Path((cluster_id, broker)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let id = broker_id(&broker)?;
        let m = kafka.cluster(&cluster_id, Some(Vec::new())).await?;
        let node = m.brokers.get(&id).ok_or_else(|| broker_not_found(id))?;
        Ok(broker_body(&links, &cluster_id, node, m.racks.get(&id)))
    };
    answer(result.await)
}

/// Every replica `broker` holds, in topic and partition order.
fn replicas_on(links: &Links, cluster_id: &str, metadata: &ClusterMetadata, broker: i32) -> Vec<Value> {
    metadata
        .topics
        .iter()
        .filter(|(_, t)| t.error_code == 0)
        .flat_map(|(name, t)| t.partitions.iter().map(move |(p, pm)| (name, *p, pm)))
        .filter(|(_, _, pm)| pm.replicas.contains(&broker))
        .map(|(name, p, pm)| replica_body(links, cluster_id, name, p, pm, broker))
        .collect()
}

async fn partition_replicas(
    State(kafka): State<AppState>,
    Path((cluster_id, broker)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let id = broker_id(&broker)?;
        let m = kafka.cluster(&cluster_id, None).await?;
        if !m.brokers.contains_key(&id) {
            return Err(broker_not_found(id));
        }
        let data = replicas_on(&links, &cluster_id, &m, id);
        Ok(list("KafkaReplicaList", format!("{}/brokers/{id}/partition-replicas", links.cluster(&cluster_id)), data))
    };
    answer(result.await)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tributary_client::{PartitionMetadata, TopicMetadata};

    use super::*;

    #[test]
    fn broker_has_address_rack_and_links() {
        let links = Links { base: "http://h/v3".to_string() };
        let node = Node { node_id: 2, host: "b2".to_string(), port: 9093 };
        let body = broker_body(&links, "c", &node, Some(&"r1".to_string()));
        assert_eq!(
            (&body["broker_id"], &body["host"], &body["port"], &body["rack"]),
            (&json!(2), &json!("b2"), &json!(9093), &json!("r1"))
        );
        assert_eq!(body["metadata"]["resource_name"], "crn:///kafka=c/broker=2");
        assert_eq!(body["configs"]["related"], "http://h/v3/clusters/c/brokers/2/configs");
        assert_eq!(body["partition_replicas"]["related"], "http://h/v3/clusters/c/brokers/2/partition-replicas");
        assert_eq!(broker_body(&links, "c", &node, None)["rack"], Value::Null);
    }

    #[test]
    fn partition_replicas_are_those_on_the_broker() {
        let p =
            |leader: i32, replicas: Vec<i32>, isr: Vec<i32>| PartitionMetadata { leader, error_code: 0, replicas, isr };
        let topic = TopicMetadata {
            error_code: 0,
            is_internal: false,
            partitions: BTreeMap::from([
                (0, p(1, vec![1, 2], vec![1, 2])),
                (1, p(2, vec![2, 3], vec![2])),
                (2, p(3, vec![3, 1], vec![3])),
            ]),
        };
        let metadata =
            ClusterMetadata { topics: BTreeMap::from([("t".to_string(), topic)]), ..ClusterMetadata::default() };
        let links = Links { base: "http://h/v3".to_string() };
        let on_1 = replicas_on(&links, "c", &metadata, 1);
        let seen: Vec<(i64, bool, bool)> = on_1
            .iter()
            .map(|r| {
                (
                    r["partition_id"].as_i64().unwrap_or(-1),
                    r["is_leader"] == json!(true),
                    r["is_in_sync"] == json!(true),
                )
            })
            .collect();
        assert_eq!(seen, vec![(0, true, true), (2, false, false)]);
    }
}
