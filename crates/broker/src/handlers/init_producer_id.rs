//! InitProducerId (key 22), non-transactional: a new cluster-unique producer
//! id with epoch 0 (ids come from blocks reserved in the metadata log, so
//! they stay unique across restarts).

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tributary_protocol::{ErrorCode, RequestHeader};

use super::{Reply, blocking, respond};
use crate::cluster::Cluster;

pub(super) async fn handle(cluster: &Arc<Cluster>, header: &RequestHeader, request: InitProducerIdRequest) -> Reply {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if request.transactional_id.as_ref().is_some_and(|t| !t.0.is_empty()) {
        // Transactions are not advertised; a client that still asks gets a clear, non-retriable answer.
        return respond(ApiKey::InitProducerId, header, &response.with_error_code(ErrorCode::InvalidRequest.code()));
    }
    let c = cluster.clone();
    let body = match blocking(move || c.allocate_producer_id()).await {
        Some(Ok(id)) => response.with_error_code(0).with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Some(Err(e)) => response.with_error_code(e.code()),
        None => response.with_error_code(ErrorCode::UnknownServerError.code()),
    };
    respond(ApiKey::InitProducerId, header, &body)
}
