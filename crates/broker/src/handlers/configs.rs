//! DescribeConfigs (32), AlterConfigs (33) and IncrementalAlterConfigs (44)
//! for topics and brokers (a broker id, or "" for the cluster-wide default).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use tributary_config::defs::{broker_config, topic_config};
use tributary_config::describe::{self, DescribedConfig};
use tributary_config::validate_topic_config;
use tributary_config::value::{ConfigType, split_list};
use tributary_protocol::{ErrorCode, RequestHeader};
use tributary_types::validate_topic_name;

use super::{Reply, blocking, respond, str_bytes};
use crate::cluster::Cluster;
use crate::error::ApiError;

/// A resource's type, name and requested changes, owned for the blocking task.
type ResourceChange<C> = (i8, StrBytes, Vec<C>);
/// (config name, IncrementalAlterConfigs operation, value).
type ConfigOp = (String, i8, Option<String>);

/// Builds per-resource results of AlterConfigs / IncrementalAlterConfigs
/// (two generated types with the same fields).
macro_rules! resource_responses {
    ($ty:ty, $resources:expr, $outcomes:expr) => {
        $resources
            .zip($outcomes)
            .map(|((kind, name), outcome)| {
                let resp = <$ty>::default().with_resource_type(kind).with_resource_name(name.clone());
                match outcome {
                    Ok(()) => resp.with_error_code(0).with_error_message(None),
                    Err(e) => resp.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.message))),
                }
            })
            .collect()
    };
}

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;

/// Which configs a resource names.
enum Target {
    Topic(String),
    /// `None` = cluster-wide default.
    Broker(Option<i32>),
}

fn target(cluster: &Cluster, resource_type: i8, name: &str) -> Result<Target, ApiError> {
    match resource_type {
        TOPIC => Ok(Target::Topic(name.to_string())),
        BROKER if name.is_empty() => Ok(Target::Broker(None)),
        BROKER => match name.parse::<i32>() {
            Ok(id) if id == cluster.node_id => Ok(Target::Broker(Some(id))),
            Ok(id) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("Broker {id} is not this broker ({}).", cluster.node_id),
            )),
            Err(_) => Err(ApiError::new(ErrorCode::InvalidRequest, format!("Broker id {name:?} is not a number."))),
        },
        BROKER_LOGGER => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "Broker loggers are not configurable through Kafka APIs; set RUST_LOG (for example RUST_LOG=tributary=debug) and restart.",
        )),
        other => Err(ApiError::new(ErrorCode::InvalidRequest, format!("Resource type {other} is not supported."))),
    }
}

/// A topic resource's name as Kafka checks it before looking the topic up.
fn check_topic_name(name: &str) -> Result<(), ApiError> {
    validate_topic_name(name).map_err(|e| ApiError::new(ErrorCode::InvalidTopicException, e.to_string()))
}

/// Every config of the resource, as Kafka describes it.
fn describe_target(cluster: &Cluster, target: &Target) -> Result<Vec<DescribedConfig>, ApiError> {
    let layers = cluster.layers();
    match target {
        Target::Topic(name) => {
            check_topic_name(name)?;
            let registry = cluster.registry();
            // Kafka answers an unknown topic without a message.
            let topic =
                registry.topics.get(name).ok_or_else(|| ApiError::new(ErrorCode::UnknownTopicOrPartition, ""))?;
            Ok(describe::describe_topic(&layers, &topic.overrides))
        }
        Target::Broker(None) => Ok(describe::describe_cluster_default(&layers)),
        Target::Broker(Some(_)) => Ok(describe::describe_broker(&layers)),
    }
}

pub(super) fn describe(cluster: &Arc<Cluster>, header: &RequestHeader, request: DescribeConfigsRequest) -> Reply {
    let v = header.api_version;
    let results = request
        .resources
        .into_iter()
        .map(|res| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let found =
                target(cluster, res.resource_type, &res.resource_name).and_then(|t| describe_target(cluster, &t));
            let list = match found {
                Ok(list) => list,
                Err(e) => {
                    let message = (!e.message.is_empty()).then(|| str_bytes(&e.message));
                    return result.with_error_code(e.code()).with_error_message(message).with_configs(Vec::new());
                }
            };
            // Kafka: no keys, or an empty list of keys, means every config.
            let wanted: Option<HashSet<String>> =
                res.configuration_keys.filter(|k| !k.is_empty()).map(|k| k.iter().map(|s| s.to_string()).collect());
            let configs = list
                .into_iter()
                .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
                .map(|e| describe_entry(e, v, request.include_synonyms, request.include_documentation))
                .collect();
            result.with_error_code(0).with_configs(configs)
        })
        .collect();
    respond(ApiKey::DescribeConfigs, header, &DescribeConfigsResponse::default().with_results(results))
}

fn describe_entry(e: DescribedConfig, v: i16, synonyms: bool, documentation: bool) -> DescribeConfigsResourceResult {
    let mut r = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(&e.name))
        .with_value(e.value.as_deref().map(str_bytes))
        .with_read_only(e.read_only)
        .with_config_source(e.source.code())
        .with_is_sensitive(e.sensitive);
    if synonyms {
        r = r.with_synonyms(
            e.synonyms
                .into_iter()
                .map(|s| {
                    DescribeConfigsSynonym::default()
                        .with_name(str_bytes(&s.name))
                        .with_value(s.value.as_deref().map(str_bytes))
                        .with_source(s.source.code())
                })
                .collect(),
        );
    }
    if v >= 3 {
        // Kafka sends a null documentation unless it was asked for.
        let doc = if documentation { e.documentation.map(str_bytes) } else { None };
        r = r.with_config_type(e.config_type).with_documentation(doc);
    }
    r
}

/// Applies a full replacement of a resource's configs.
fn replace(
    cluster: &Cluster,
    target: &Target,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), ApiError> {
    match target {
        Target::Topic(name) => cluster.set_topic_configs(name, configs, validate_only),
        Target::Broker(broker) => cluster.set_broker_configs(*broker, configs, validate_only),
    }
}

/// The resource's current dynamic configs.
fn current(cluster: &Cluster, target: &Target) -> Result<BTreeMap<String, String>, ApiError> {
    match target {
        Target::Topic(name) => {
            cluster.registry().topics.get(name).map(|t| t.overrides.clone()).ok_or_else(|| {
                ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("Topic {name} does not exist."))
            })
        }
        Target::Broker(broker) => {
            let layers = cluster.layers();
            let stored = if broker.is_none() { &layers.dynamic_default } else { &layers.dynamic_broker };
            // A key stored by an older release that is no longer alterable
            // (log.retention.hours, say) is dropped, as Kafka ignores such
            // keys, rather than failing every later change of this resource.
            Ok(stored.iter().filter(|(k, _)| alterable(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
        }
    }
}

fn alterable(key: &str) -> bool {
    broker_config(key).is_some_and(|d| d.dynamic)
}

pub(super) async fn alter(cluster: &Arc<Cluster>, header: &RequestHeader, request: AlterConfigsRequest) -> Reply {
    let validate_only = request.validate_only;
    let work: Vec<ResourceChange<(String, Option<String>)>> = request
        .resources
        .iter()
        .map(|r| {
            let configs =
                r.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect();
            (r.resource_type, r.resource_name.clone(), configs)
        })
        .collect();
    let c = cluster.clone();
    let outcomes = blocking(move || {
        work.iter()
            .map(|(kind, name, configs)| {
                let t = target(&c, *kind, name)?;
                let mut map = BTreeMap::new();
                for (k, v) in configs {
                    let v = v.clone().ok_or_else(|| {
                        ApiError::new(ErrorCode::InvalidConfig, format!("Null value not supported for: {k}"))
                    })?;
                    map.insert(k.clone(), v);
                }
                replace(&c, &t, map, validate_only)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Some(outcomes) = outcomes else {
        return Reply::Close("alter configs task failed".to_string());
    };
    let responses = resource_responses!(
        kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse,
        request.resources.iter().map(|r| (r.resource_type, &r.resource_name)),
        outcomes
    );
    respond(ApiKey::AlterConfigs, header, &AlterConfigsResponse::default().with_responses(responses))
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Applies SET/DELETE/APPEND/SUBTRACT operations to `map`.
fn apply_ops(target: &Target, map: &mut BTreeMap<String, String>, ops: &[ConfigOp]) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for (name, op, value) in ops {
        if !seen.insert(name.clone()) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("Config {name} appears more than once in the request."),
            ));
        }
        let def = match target {
            Target::Topic(_) => topic_config(name),
            Target::Broker(_) => broker_config(name),
        }
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidConfig, format!("Unknown config name: {name}")))?;
        match *op {
            SET => {
                let v = value.clone().ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidConfig, format!("Null value not supported for: {name}"))
                })?;
                map.insert(name.clone(), v);
            }
            DELETE => {
                map.remove(name);
            }
            APPEND | SUBTRACT => {
                if def.ty != ConfigType::List {
                    let verb = if *op == APPEND { "append" } else { "subtract" };
                    return Err(ApiError::new(
                        ErrorCode::InvalidConfig,
                        format!("Config value {verb} is not allowed for config key: {name}"),
                    ));
                }
                let old = map.get(name).cloned().or_else(|| def.default.map(str::to_string)).unwrap_or_default();
                let mut items: Vec<String> = split_list(&old).iter().map(|s| s.to_string()).collect();
                let given: Vec<String> =
                    split_list(value.as_deref().unwrap_or_default()).iter().map(|s| s.to_string()).collect();
                if *op == APPEND {
                    for g in given {
                        if !items.contains(&g) {
                            items.push(g);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                map.insert(name.clone(), items.join(","));
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("Unknown config operation {other} for {name}."),
                ));
            }
        }
    }
    if let Target::Topic(_) = target {
        for (k, v) in map.iter() {
            validate_topic_config(k, Some(v)).map_err(|m| ApiError::new(ErrorCode::InvalidConfig, m))?;
        }
    }
    Ok(())
}

pub(super) async fn incremental_alter(
    cluster: &Arc<Cluster>,
    header: &RequestHeader,
    request: IncrementalAlterConfigsRequest,
) -> Reply {
    let validate_only = request.validate_only;
    let work: Vec<ResourceChange<ConfigOp>> = request
        .resources
        .iter()
        .map(|r| {
            let ops = r
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.config_operation, c.value.as_ref().map(|v| v.to_string())))
                .collect();
            (r.resource_type, r.resource_name.clone(), ops)
        })
        .collect();
    let c = cluster.clone();
    let outcomes = blocking(move || {
        work.iter()
            .map(|(kind, name, ops)| {
                let t = target(&c, *kind, name)?;
                let mut map = current(&c, &t)?;
                apply_ops(&t, &mut map, ops)?;
                replace(&c, &t, map, validate_only)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Some(outcomes) = outcomes else {
        return Reply::Close("alter configs task failed".to_string());
    };
    let responses = resource_responses!(
        kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse,
        request.resources.iter().map(|r| (r.resource_type, &r.resource_name)),
        outcomes
    );
    respond(
        ApiKey::IncrementalAlterConfigs,
        header,
        &IncrementalAlterConfigsResponse::default().with_responses(responses),
    )
}
