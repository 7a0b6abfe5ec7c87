//! Topic and broker configs: describe them (with synonyms) and change them
//! one entry at a time.
//!
//! ```text
//! describe_configs ──▶ DescribeConfigs, include_synonyms
//!                       topics and the cluster-wide broker default: any broker
//!                       one broker's configs: that broker (it answers only for itself)
//! alter_configs ─────▶ IncrementalAlterConfigs (SET / DELETE), routed the same way
//! ```
//!
//! A resource the broker refuses (an unknown topic, a broker that is not
//! itself) comes back as that resource's own [`KafkaError`], so one request
//! about many topics still answers for the others.

use std::collections::BTreeMap;
use std::fmt;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest};

use crate::client::{Client, Retry, str_bytes};
use crate::error::{ClientError, KafkaError};

/// What a config belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// One broker, by node id.
    Broker(i32),
    /// The dynamic defaults every broker of the cluster shares.
    BrokerDefault,
}

impl ConfigResource {
    /// Kafka's resource type code (TOPIC = 2, BROKER = 4).
    pub fn type_code(&self) -> i8 {
        match self {
            ConfigResource::Topic(_) => 2,
            ConfigResource::Broker(_) | ConfigResource::BrokerDefault => 4,
        }
    }

    /// The resource name on the wire: the topic, the broker id, or "" for the default.
    pub fn wire_name(&self) -> String {
        match self {
            ConfigResource::Topic(t) => t.clone(),
            ConfigResource::Broker(id) => id.to_string(),
            ConfigResource::BrokerDefault => String::new(),
        }
    }

    /// The broker that must answer for this resource, if one must.
    fn broker(&self) -> Option<i32> {
        match self {
            ConfigResource::Broker(id) => Some(*id),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigResource::Topic(t) => write!(f, "topic \"{t}\""),
            ConfigResource::Broker(id) => write!(f, "broker {id}"),
            ConfigResource::BrokerDefault => write!(f, "the cluster-wide broker defaults"),
        }
    }
}

/// Where a config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic,
    /// Set dynamically for one broker.
    DynamicBroker,
    /// Set dynamically as the default for every broker.
    DynamicDefaultBroker,
    /// From the broker's properties file.
    StaticBroker,
    /// The built-in default.
    Default,
    /// A broker logger level.
    DynamicBrokerLogger,
    /// A client-metrics subscription.
    ClientMetrics,
    /// A group config.
    Group,
    /// A code this client does not know.
    Unknown,
}

impl ConfigSource {
    /// From the wire code.
    pub fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            7 => ConfigSource::ClientMetrics,
            8 => ConfigSource::Group,
            _ => ConfigSource::Unknown,
        }
    }

    /// Kafka's name for the source, e.g. `DYNAMIC_TOPIC_CONFIG`.
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLogger => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::ClientMetrics => "CLIENT_METRICS_CONFIG",
            ConfigSource::Group => "GROUP_CONFIG",
            ConfigSource::Unknown => "UNKNOWN",
        }
    }
}

/// One value a config has at one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The config name at that level (a broker-level name may differ from the topic's).
    pub name: String,
    /// The value there; `None` when sensitive or unset.
    pub value: Option<String>,
    /// The level.
    pub source: ConfigSource,
}

/// One described config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Effective value; `None` when sensitive or unset.
    pub value: Option<String>,
    /// Whether it cannot be changed at run time.
    pub read_only: bool,
    /// Whether the value is hidden because it is a secret.
    pub sensitive: bool,
    /// Where the effective value comes from.
    pub source: ConfigSource,
    /// Every level that sets it, the effective one first.
    pub synonyms: Vec<ConfigSynonym>,
}

impl ConfigEntry {
    /// Whether the effective value is the built-in default (as Kafka's admin client defines it).
    pub fn is_default(&self) -> bool {
        self.source == ConfigSource::Default
    }
}

/// One change of [`Client::alter_configs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Sets `name` to `value`.
    Set {
        /// Config name.
        name: String,
        /// New value.
        value: String,
    },
    /// Removes the override of `name`, so the next level's value (in the end the default) applies.
    Delete {
        /// Config name.
        name: String,
    },
}

impl ConfigChange {
    fn alterable(&self) -> AlterableConfig {
        match self {
            ConfigChange::Set { name, value } => AlterableConfig::default()
                .with_name(str_bytes(name))
                .with_config_operation(0)
                .with_value(Some(str_bytes(value))),
            ConfigChange::Delete { name } => {
                AlterableConfig::default().with_name(str_bytes(name)).with_config_operation(1).with_value(None)
            }
        }
    }
}

/// What [`Client::describe_configs`] found for each resource.
pub type DescribedConfigs = BTreeMap<ConfigResource, Result<Vec<ConfigEntry>, KafkaError>>;

impl Client {
    /// Describes the configs of `resources` with their synonyms: every
    /// config, or only `names` when given (a name the broker does not know
    /// is simply absent). Each resource gets its own answer or error.
    pub async fn describe_configs(
        &mut self,
        resources: &[ConfigResource],
        names: Option<&[String]>,
    ) -> Result<DescribedConfigs, ClientError> {
        let mut by_broker: BTreeMap<Option<i32>, Vec<ConfigResource>> = BTreeMap::new();
        for r in resources {
            by_broker.entry(r.broker()).or_default().push(r.clone());
        }
        let mut out = BTreeMap::new();
        for (broker, group) in by_broker {
            out.extend(self.describe_configs_on(broker, &group, names).await?);
        }
        Ok(out)
    }

    async fn describe_configs_on(
        &mut self,
        broker: Option<i32>,
        resources: &[ConfigResource],
        names: Option<&[String]>,
    ) -> Result<DescribedConfigs, ClientError> {
        let mut retry = Retry::new(self.config().timeout);
        let mut out = BTreeMap::new();
        let mut pending = resources.to_vec();
        loop {
            let conn = self.config_connection(broker).await?;
            let v = conn.version(ApiKey::DescribeConfigs)?;
            let request = DescribeConfigsRequest::default().with_include_synonyms(true).with_resources(
                pending
                    .iter()
                    .map(|r| {
                        DescribeConfigsResource::default()
                            .with_resource_type(r.type_code())
                            .with_resource_name(str_bytes(&r.wire_name()))
                            .with_configuration_keys(names.map(|ns| ns.iter().map(|n| str_bytes(n)).collect()))
                    })
                    .collect(),
            );
            let response = conn.call(&request, v).await?;
            let addr = conn.addr().to_string();
            let mut again = Vec::new();
            for r in pending {
                let Some(result) = response
                    .results
                    .iter()
                    .find(|x| x.resource_type == r.type_code() && x.resource_name.as_str() == r.wire_name())
                else {
                    return Err(ClientError::Malformed {
                        addr,
                        api: "DescribeConfigs".to_string(),
                        detail: format!("no result for {r}"),
                    });
                };
                if result.error_code != 0 {
                    let err = KafkaError::new(result.error_code, format!("describe the configs of {r}"))
                        .with_message(result.error_message.as_deref());
                    if err.is_retriable() {
                        again.push(r.clone());
                    }
                    out.insert(r, Err(err));
                    continue;
                }
                let entries = result
                    .configs
                    .iter()
                    .map(|c| ConfigEntry {
                        name: c.name.to_string(),
                        value: c.value.as_deref().map(str::to_string),
                        read_only: c.read_only,
                        sensitive: c.is_sensitive,
                        source: ConfigSource::from_code(c.config_source),
                        synonyms: c
                            .synonyms
                            .iter()
                            .map(|s| ConfigSynonym {
                                name: s.name.to_string(),
                                value: s.value.as_deref().map(str::to_string),
                                source: ConfigSource::from_code(s.source),
                            })
                            .collect(),
                    })
                    .collect();
                out.insert(r, Ok(entries));
            }
            if again.is_empty() || !retry.again().await {
                return Ok(out);
            }
            pending = again;
        }
    }

    /// Applies `changes` to `resource` with IncrementalAlterConfigs; with
    /// `validate_only` the broker checks them and changes nothing.
    pub async fn alter_configs(
        &mut self,
        resource: &ConfigResource,
        changes: &[ConfigChange],
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let context = || format!("change the configs of {resource}");
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let conn = self.config_connection(resource.broker()).await?;
            let v = conn.version(ApiKey::IncrementalAlterConfigs)?;
            let request =
                IncrementalAlterConfigsRequest::default().with_validate_only(validate_only).with_resources(vec![
                    AlterConfigsResource::default()
                        .with_resource_type(resource.type_code())
                        .with_resource_name(str_bytes(&resource.wire_name()))
                        .with_configs(changes.iter().map(ConfigChange::alterable).collect()),
                ]);
            let response = conn.call(&request, v).await?;
            let Some(result) = response.responses.iter().find(|r| r.resource_type == resource.type_code()) else {
                return Err(ClientError::Malformed {
                    addr: conn.addr().to_string(),
                    api: "IncrementalAlterConfigs".to_string(),
                    detail: format!("no result for {resource}"),
                });
            };
            if result.error_code == 0 {
                return Ok(());
            }
            let err = KafkaError::new(result.error_code, context()).with_message(result.error_message.as_deref());
            if err.is_retriable() && retry.again().await {
                continue;
            }
            return Err(err.into());
        }
    }

    /// The connection for a config request: the broker itself for one
    /// broker's configs, any broker otherwise.
    async fn config_connection(
        &mut self,
        broker: Option<i32>,
    ) -> Result<&mut crate::connection::Connection, ClientError> {
        let Some(id) = broker else {
            return self.any_connection().await;
        };
        let node = match self.brokers().get(&id) {
            Some(node) => node.clone(),
            None => {
                let metadata = self.metadata(Some(&[])).await?;
                metadata.brokers.get(&id).cloned().ok_or_else(|| {
                    ClientError::Refused(format!(
                        "broker {id} is not in the cluster; its brokers are listed by Metadata"
                    ))
                })?
            }
        };
        self.connection_to(&node).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_themselves_as_kafka_does() {
        assert_eq!(
            (ConfigResource::Topic("t".into()).type_code(), ConfigResource::Topic("t".into()).wire_name()),
            (2, "t".into())
        );
        assert_eq!((ConfigResource::Broker(3).type_code(), ConfigResource::Broker(3).wire_name()), (4, "3".into()));
        assert_eq!(ConfigResource::BrokerDefault.wire_name(), "");
        assert_eq!(ConfigResource::Broker(3).broker(), Some(3));
        assert_eq!(ConfigResource::BrokerDefault.broker(), None);
    }

    #[test]
    fn sources_round_trip_kafka_codes() {
        assert_eq!(ConfigSource::from_code(1).name(), "DYNAMIC_TOPIC_CONFIG");
        assert_eq!(ConfigSource::from_code(3).name(), "DYNAMIC_DEFAULT_BROKER_CONFIG");
        assert_eq!(ConfigSource::from_code(5).name(), "DEFAULT_CONFIG");
        assert_eq!(ConfigSource::from_code(0), ConfigSource::Unknown);
        assert_eq!(ConfigSource::from_code(42), ConfigSource::Unknown);
    }

    #[test]
    fn changes_become_incremental_operations() {
        let set = ConfigChange::Set { name: "retention.ms".into(), value: "1000".into() }.alterable();
        assert_eq!((set.config_operation, set.value.as_deref()), (0, Some("1000")));
        let delete = ConfigChange::Delete { name: "retention.ms".into() }.alterable();
        assert_eq!((delete.config_operation, delete.value), (1, None));
    }
}
