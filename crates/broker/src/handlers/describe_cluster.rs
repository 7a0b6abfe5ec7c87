//! DescribeCluster (key 60): cluster id, controller and brokers, as the
//! AdminClient's describeCluster reports them. From v2 (Kafka 4.0,
//! KIP-1073) a client may ask for fenced brokers too (`include_fenced_brokers`):
//! registered brokers whose heartbeats stopped, listed with `is_fenced`.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use tributary_protocol::{ErrorCode, RequestHeader};

use super::{ConnectionInfo, Reply, cluster_operations, respond, str_bytes};
use crate::cluster::Cluster;

const BROKERS: i8 = 1;

pub(super) fn handle(
    cluster: &Arc<Cluster>,
    conn: &ConnectionInfo,
    header: &RequestHeader,
    request: DescribeClusterRequest,
) -> Reply {
    let live = cluster.live_brokers(&conn.listener);
    let mut body = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&cluster.cluster_id()))
        .with_controller_id(BrokerId(cluster.controller_id(&live)))
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            cluster_operations()
        } else {
            i32::MIN
        });
    if header.api_version >= 1 && request.endpoint_type != BROKERS {
        body = body.with_error_code(ErrorCode::MismatchedEndpointType.code()).with_error_message(Some(str_bytes(
            "this endpoint serves brokers; the metadata quorum runs inside each broker",
        )));
        return respond(ApiKey::DescribeCluster, header, &body);
    }
    let broker = |id: i32, host: &str, port: u16, rack: Option<&str>| {
        DescribeClusterBroker::default()
            .with_broker_id(BrokerId(id))
            .with_host(str_bytes(host))
            .with_port(i32::from(port))
            .with_rack(rack.map(str_bytes))
    };
    let mut brokers: Vec<DescribeClusterBroker> =
        live.iter().map(|b| broker(b.id, &b.host, b.port, b.rack.as_deref())).collect();
    if header.api_version >= 2 && request.include_fenced_brokers {
        let image = cluster.image();
        for b in image.brokers.values().filter(|b| b.fenced) {
            let Some(l) = b.listeners.iter().find(|l| l.name == conn.listener).or_else(|| b.listeners.first()) else {
                continue;
            };
            brokers.push(broker(b.broker_id, &l.host, l.port, b.rack.as_deref()).with_is_fenced(true));
        }
        brokers.sort_by_key(|b| b.broker_id.0);
    }
    respond(ApiKey::DescribeCluster, header, &body.with_error_code(0).with_brokers(brokers))
}
