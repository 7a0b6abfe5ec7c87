//! ListConfigResources (key 74; ListClientMetricsResources before KIP-1142):
//! the resources DescribeConfigs can be asked about, as Kafka 4.1 lists them.
//!
//! v0 has no type filter and lists client-metrics subscriptions only. v1
//! takes resource types: empty means every type the version supports (topic
//! 2, broker 4, broker logger 8, client metrics 16, group 32); asking for any
//! other type fails the whole request with UNSUPPORTED_VERSION. Resources
//! come in Kafka's order: groups with configs, client-metrics subscriptions,
//! broker loggers, brokers, topics. Tributary stores no group configs and no
//! client-metrics subscriptions, so those types list nothing; this node is
//! listed as broker and broker logger, and every topic (internal ones
//! included) as a topic.

use std::sync::Arc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ApiKey, ListConfigResourcesRequest, ListConfigResourcesResponse};
use tributary_protocol::{ErrorCode, RequestHeader};

use super::{Reply, respond, str_bytes};
use crate::cluster::Cluster;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// The resource types a request of `version` may ask for.
fn supported_types(version: i16) -> &'static [i8] {
    if version == 0 { &[CLIENT_METRICS] } else { &[TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP] }
}

/// The resources of the wanted types, in Kafka's order.
fn list(wanted: &[i8], node_id: i32, topics: impl Iterator<Item = String>) -> Vec<ConfigResource> {
    let resource = |name: String, kind: i8| {
        ConfigResource::default().with_resource_name(str_bytes(&name)).with_resource_type(kind)
    };
    let mut out = Vec::new();
    // GROUP: groups with dynamic configs; CLIENT_METRICS: subscriptions. Neither is stored.
    for kind in [BROKER_LOGGER, BROKER] {
        if wanted.contains(&kind) {
            out.push(resource(node_id.to_string(), kind));
        }
    }
    if wanted.contains(&TOPIC) {
        out.extend(topics.map(|t| resource(t, TOPIC)));
    }
    out
}

pub(super) fn handle(cluster: &Arc<Cluster>, header: &RequestHeader, request: ListConfigResourcesRequest) -> Reply {
    let supported = supported_types(header.api_version);
    let wanted: &[i8] = if request.resource_types.is_empty() { supported } else { &request.resource_types };
    let body = if wanted.iter().all(|t| supported.contains(t)) {
        let registry = cluster.registry();
        let resources = list(wanted, cluster.node_id, registry.topics.keys().cloned());
        ListConfigResourcesResponse::default().with_error_code(0).with_config_resources(resources)
    } else {
        ListConfigResourcesResponse::default().with_error_code(ErrorCode::UnsupportedVersion.code())
    };
    respond(ApiKey::ListConfigResources, header, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(resources: &[ConfigResource]) -> Vec<(i8, String)> {
        resources.iter().map(|r| (r.resource_type, r.resource_name.to_string())).collect()
    }

    #[test]
    fn every_type_lists_loggers_then_brokers_then_topics() {
        let topics = || ["a".to_string(), "b".to_string()].into_iter();
        let all = list(supported_types(1), 3, topics());
        assert_eq!(
            names(&all),
            vec![(BROKER_LOGGER, "3".into()), (BROKER, "3".into()), (TOPIC, "a".into()), (TOPIC, "b".into())]
        );
        assert_eq!(names(&list(&[TOPIC], 3, topics())), vec![(TOPIC, "a".into()), (TOPIC, "b".into())]);
        assert!(list(&[GROUP, CLIENT_METRICS], 3, topics()).is_empty());
        assert!(list(supported_types(0), 3, topics()).is_empty());
    }
}
