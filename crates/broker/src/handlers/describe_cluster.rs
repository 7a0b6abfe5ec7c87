//! DescribeCluster (key 60): cluster id, controller and brokers, as the
//! AdminClient's describeCluster reports them.

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
    let brokers = live
        .iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(str_bytes(&b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    respond(ApiKey::DescribeCluster, header, &body.with_error_code(0).with_brokers(brokers))
}
