//! `GET /clusters` and `/clusters/{cluster_id}`: the one cluster this proxy serves.

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::{AppState, Links, answer, list};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/clusters", get(clusters)).route("/clusters/{cluster_id}", get(cluster))
}

fn cluster_body(links: &Links, cluster_id: &str, controller: i32) -> Value {
    let controller =
        if controller >= 0 { links.related(cluster_id, &format!("brokers/{controller}")) } else { Value::Null };
    json!({
        "kind": "KafkaCluster",
        "metadata": {"self": links.cluster(cluster_id), "resource_name": format!("crn:///kafka={cluster_id}")},
        "cluster_id": cluster_id,
        "controller": controller,
        "acls": links.related(cluster_id, "acls"),
        "brokers": links.related(cluster_id, "brokers"),
        "broker_configs": links.related(cluster_id, "broker-configs"),
        "consumer_groups": links.related(cluster_id, "consumer-groups"),
        "topics": links.related(cluster_id, "topics"),
        "partition_reassignments": links.related(cluster_id, "topics/-/partitions/-/reassignment"),
    })
}

async fn clusters(State(kafka): State<AppState>, headers: HeaderMap, uri: OriginalUri) -> Response {
    let links = Links::of(&headers, &uri);
    answer(kafka.metadata(Some(Vec::new())).await.map(|m| {
        let id = m.cluster_id.unwrap_or_default();
        list("KafkaClusterList", format!("{}/clusters", links.base), vec![cluster_body(&links, &id, m.controller_id)])
    }))
}

async fn cluster(
    State(kafka): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(
        kafka.cluster(&cluster_id, Some(Vec::new())).await.map(|m| cluster_body(&links, &cluster_id, m.controller_id)),
    )
}
