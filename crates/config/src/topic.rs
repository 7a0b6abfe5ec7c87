//! Topic configs resolved through their layers — topic override, dynamic
//! per-broker, dynamic cluster default, static broker, default — with the
//! source and synonyms DescribeConfigs reports, and the typed values the log
//! uses.

use std::collections::BTreeMap;

use crate::defs::{ConfigDef, TOPIC_CONFIGS, broker_config, topic_config};
use crate::value::{ConfigType, split_list, validate};

/// DescribeConfigs `config_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic,
    /// Set dynamically on this broker.
    DynamicBroker,
    /// Set dynamically as the cluster-wide default.
    DynamicDefaultBroker,
    /// Set in the broker's static configuration.
    StaticBroker,
    /// The built-in default.
    Default,
}

impl ConfigSource {
    /// The wire code (Kafka's `DescribeConfigsResponse.ConfigSource`:
    /// 1 topic, 2 dynamic broker, 3 dynamic default broker, 4 static broker,
    /// 5 default).
    pub fn code(self) -> i8 {
        match self {
            ConfigSource::DynamicTopic => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// The broker-side layers a topic config falls back to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerLayers {
    /// Dynamic configs of this broker.
    pub dynamic_broker: BTreeMap<String, String>,
    /// Dynamic cluster-wide defaults.
    pub dynamic_default: BTreeMap<String, String>,
    /// Static configs (server.properties, environment, overrides).
    pub static_props: BTreeMap<String, String>,
}

/// One value and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValue {
    /// The key this value is set under.
    pub name: String,
    /// The value (None when the key has no default and is not set).
    pub value: Option<String>,
    /// Its layer.
    pub source: ConfigSource,
}

/// A resolved config entry for DescribeConfigs.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    /// The definition.
    pub def: &'static ConfigDef,
    /// Effective value.
    pub value: Option<String>,
    /// Layer of the effective value.
    pub source: ConfigSource,
    /// Every layer holding a value, most specific first.
    pub synonyms: Vec<ConfigValue>,
}

impl BrokerLayers {
    /// Every layer holding `key`, most specific first, ending with its default.
    pub fn broker_synonyms(&self, key: &str) -> Vec<ConfigValue> {
        let mut out = Vec::new();
        let layers = [
            (&self.dynamic_broker, ConfigSource::DynamicBroker),
            (&self.dynamic_default, ConfigSource::DynamicDefaultBroker),
            (&self.static_props, ConfigSource::StaticBroker),
        ];
        for (map, source) in layers {
            if let Some(v) = map.get(key) {
                out.push(ConfigValue { name: key.to_string(), value: Some(v.clone()), source });
            }
        }
        if let Some(d) = broker_config(key).and_then(|d| d.default) {
            out.push(ConfigValue { name: key.to_string(), value: Some(d.to_string()), source: ConfigSource::Default });
        }
        out
    }

    /// A broker key's effective value and source.
    pub fn broker_value(&self, key: &str) -> Option<ConfigValue> {
        self.broker_synonyms(key).into_iter().next()
    }

    /// Resolves one topic config given the topic's overrides.
    pub fn resolve(&self, def: &'static ConfigDef, overrides: &BTreeMap<String, String>) -> ResolvedConfig {
        let mut synonyms = Vec::new();
        if let Some(v) = overrides.get(def.name) {
            synonyms.push(ConfigValue {
                name: def.name.to_string(),
                value: Some(v.clone()),
                source: ConfigSource::DynamicTopic,
            });
        }
        let mut effective: Option<(String, ConfigSource)> =
            synonyms.first().map(|s| (s.value.clone().unwrap_or_default(), s.source));
        for syn in def.synonyms {
            for entry in self.broker_synonyms(syn.key) {
                if effective.is_none() {
                    let scaled = match (&entry.value, syn.scale) {
                        (Some(v), 1) => v.clone(),
                        (Some(v), scale) => v
                            .trim()
                            .parse::<i64>()
                            .map(|n| if n < 0 { n.to_string() } else { n.saturating_mul(scale).to_string() })
                            .unwrap_or_else(|_| v.clone()),
                        (None, _) => continue,
                    };
                    effective = Some((scaled, entry.source));
                }
                synonyms.push(entry);
            }
        }
        let (value, source) = match effective {
            Some((v, s)) => (Some(v), s),
            None => (def.default.map(str::to_string), ConfigSource::Default),
        };
        ResolvedConfig { def, value, source, synonyms }
    }

    /// Every topic config of a topic with `overrides`, in Kafka's order, plus
    /// set legacy keys.
    pub fn describe_topic(&self, overrides: &BTreeMap<String, String>) -> Vec<ResolvedConfig> {
        let mut out: Vec<ResolvedConfig> = TOPIC_CONFIGS.iter().map(|d| self.resolve(d, overrides)).collect();
        for key in overrides.keys() {
            if let Some(def) = crate::defs::LEGACY_TOPIC_CONFIGS.iter().find(|d| d.name == key) {
                out.push(self.resolve(def, overrides));
            }
        }
        out
    }

    /// The typed, effective configuration of a topic.
    pub fn topic_config(&self, overrides: &BTreeMap<String, String>) -> TopicConfig {
        let get = |name: &str| -> String {
            topic_config(name).and_then(|d| self.resolve(d, overrides).value).unwrap_or_default()
        };
        let long = |name: &str| -> i64 { get(name).trim().parse().unwrap_or(0) };
        let double = |name: &str| -> f64 { get(name).trim().parse().unwrap_or(0.0) };
        let schema_validation = |enabled: &str, strategy: &str| -> Option<SubjectNameStrategy> {
            if !get(enabled).trim().eq_ignore_ascii_case("true") {
                return None;
            }
            Some(SubjectNameStrategy::from_config(&get(strategy)).unwrap_or(SubjectNameStrategy::TopicName))
        };
        let policy = get("cleanup.policy");
        let policies = split_list(&policy);
        TopicConfig {
            compact: policies.contains(&"compact"),
            delete: policies.contains(&"delete"),
            compression_type: get("compression.type"),
            compression_gzip_level: long("compression.gzip.level") as i32,
            compression_lz4_level: long("compression.lz4.level") as i32,
            compression_zstd_level: long("compression.zstd.level") as i32,
            delete_retention_ms: long("delete.retention.ms"),
            file_delete_delay_ms: long("file.delete.delay.ms"),
            index_interval_bytes: long("index.interval.bytes").max(0) as u32,
            max_message_bytes: long("max.message.bytes").max(0) as usize,
            timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
            timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
            log_append_time: get("message.timestamp.type") == "LogAppendTime",
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            max_compaction_lag_ms: long("max.compaction.lag.ms"),
            min_cleanable_dirty_ratio: double("min.cleanable.dirty.ratio"),
            min_insync_replicas: long("min.insync.replicas") as i32,
            unclean_leader_election_enable: get("unclean.leader.election.enable").trim().eq_ignore_ascii_case("true"),
            retention_bytes: long("retention.bytes"),
            retention_ms: long("retention.ms"),
            segment_bytes: long("segment.bytes").max(14) as u64,
            segment_ms: long("segment.ms"),
            segment_jitter_ms: long("segment.jitter.ms"),
            key_schema_validation: schema_validation(
                "confluent.key.schema.validation",
                "confluent.key.subject.name.strategy",
            ),
            value_schema_validation: schema_validation(
                "confluent.value.schema.validation",
                "confluent.value.subject.name.strategy",
            ),
        }
    }
}

/// How schema validation names the subject a record's schema id must be
/// registered under (the serializers' `*.subject.name.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` / `<topic>-value`.
    TopicName,
    /// The record name of the schema the id names.
    RecordName,
    /// `<topic>-<record name>`.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// Parses a strategy config value: a serializer class name
    /// (`io.confluent.kafka.serializers.subject.TopicNameStrategy`) or its
    /// short form (`TopicNameStrategy`), case-insensitively.
    pub fn from_config(value: &str) -> Option<SubjectNameStrategy> {
        let value = value.trim();
        let short = value.rsplit('.').next().unwrap_or(value);
        [
            ("TopicNameStrategy", SubjectNameStrategy::TopicName),
            ("RecordNameStrategy", SubjectNameStrategy::RecordName),
            ("TopicRecordNameStrategy", SubjectNameStrategy::TopicRecordName),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(short))
        .map(|(_, s)| s)
    }

    /// The short name, as users write it.
    pub fn name(self) -> &'static str {
        match self {
            SubjectNameStrategy::TopicName => "TopicNameStrategy",
            SubjectNameStrategy::RecordName => "RecordNameStrategy",
            SubjectNameStrategy::TopicRecordName => "TopicRecordNameStrategy",
        }
    }
}

/// Checks a topic config key and value for CreateTopics/AlterConfigs. The
/// error text is returned to the client with INVALID_CONFIG.
pub fn validate_topic_config(name: &str, value: Option<&str>) -> Result<(), String> {
    let def = topic_config(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
    match value {
        None => Err(format!("Null value not supported for topic configs: {name}")),
        Some(v) if v.is_empty() && def.ty == ConfigType::List && def.validator == crate::value::Validator::Any => {
            Ok(())
        }
        Some(v) => validate(name, def.ty, def.validator, v),
    }
}

/// The typed effective topic configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// `cleanup.policy` contains compact.
    pub compact: bool,
    /// `cleanup.policy` contains delete.
    pub delete: bool,
    /// `compression.type`.
    pub compression_type: String,
    /// `compression.gzip.level`.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level`.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level`.
    pub compression_zstd_level: i32,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `file.delete.delay.ms`.
    pub file_delete_delay_ms: i64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`.
    pub max_message_bytes: usize,
    /// `message.timestamp.after.max.ms`.
    pub timestamp_after_max_ms: i64,
    /// `message.timestamp.before.max.ms`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.type` is LogAppendTime.
    pub log_append_time: bool,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`: a leaderless partition may get an
    /// out-of-sync replica as leader (the active controller's config layers).
    pub unclean_leader_election_enable: bool,
    /// `retention.bytes` (-1 = unlimited).
    pub retention_bytes: i64,
    /// `retention.ms` (-1 = forever).
    pub retention_ms: i64,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `segment.jitter.ms`.
    pub segment_jitter_ms: i64,
    /// `confluent.key.schema.validation` is on: the strategy
    /// (`confluent.key.subject.name.strategy`) that names a key's subject.
    pub key_schema_validation: Option<SubjectNameStrategy>,
    /// `confluent.value.schema.validation` is on: the strategy
    /// (`confluent.value.subject.name.strategy`) that names a value's subject.
    pub value_schema_validation: Option<SubjectNameStrategy>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        BrokerLayers::default().topic_config(&BTreeMap::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn source_codes_match_the_wire() {
        let codes: Vec<i8> = [
            ConfigSource::DynamicTopic,
            ConfigSource::DynamicBroker,
            ConfigSource::DynamicDefaultBroker,
            ConfigSource::StaticBroker,
            ConfigSource::Default,
        ]
        .iter()
        .map(|s| s.code())
        .collect();
        assert_eq!(codes, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn defaults_match_kafka() {
        let c = TopicConfig::default();
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.segment_bytes, 1_073_741_824);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert!(c.delete && !c.compact);
        assert_eq!(c.compression_type, "producer");
        assert!(!c.log_append_time);
    }

    #[test]
    fn retention_hours_scale_into_retention_ms_and_report_sources() {
        let layers = BrokerLayers { static_props: map(&[("log.retention.hours", "24")]), ..Default::default() };
        let def = topic_config("retention.ms").expect("def");
        let r = layers.resolve(def, &BTreeMap::new());
        assert_eq!(r.value.as_deref(), Some("86400000"));
        assert_eq!(r.source, ConfigSource::StaticBroker);
        assert_eq!(r.synonyms[0].name, "log.retention.hours");
        assert_eq!(r.synonyms[0].source, ConfigSource::StaticBroker);
        assert_eq!(r.synonyms.last().map(|s| s.source), Some(ConfigSource::Default));

        let r = layers.resolve(def, &map(&[("retention.ms", "1000")]));
        assert_eq!((r.value.as_deref(), r.source), (Some("1000"), ConfigSource::DynamicTopic));
        assert_eq!(r.synonyms.len(), 3);

        let dynamic = BrokerLayers { dynamic_default: map(&[("log.retention.ms", "5")]), ..layers };
        let r = dynamic.resolve(def, &BTreeMap::new());
        assert_eq!((r.value.as_deref(), r.source), (Some("5"), ConfigSource::DynamicDefaultBroker));
    }

    #[test]
    fn untouched_configs_are_default_config() {
        let layers = BrokerLayers::default();
        let all = layers.describe_topic(&BTreeMap::new());
        assert!(all.iter().all(|r| r.source == ConfigSource::Default));
        assert_eq!(
            all.iter().find(|r| r.def.name == "retention.ms").and_then(|r| r.value.clone()).as_deref(),
            Some("604800000")
        );
    }

    #[test]
    fn schema_validation_is_off_by_default_and_takes_a_strategy() {
        let layers = BrokerLayers::default();
        let c = layers.topic_config(&BTreeMap::new());
        assert_eq!((c.key_schema_validation, c.value_schema_validation), (None, None));
        let c = layers.topic_config(&map(&[("confluent.value.schema.validation", "TRUE")]));
        assert_eq!(c.value_schema_validation, Some(SubjectNameStrategy::TopicName));
        assert_eq!(c.key_schema_validation, None);
        let c = layers.topic_config(&map(&[
            ("confluent.key.schema.validation", "true"),
            ("confluent.key.subject.name.strategy", "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy"),
            ("confluent.value.subject.name.strategy", "RecordNameStrategy"),
        ]));
        assert_eq!(c.key_schema_validation, Some(SubjectNameStrategy::TopicRecordName));
        assert_eq!(c.value_schema_validation, None, "a strategy alone does not turn validation on");
        assert!(validate_topic_config("confluent.value.subject.name.strategy", Some("recordnamestrategy")).is_ok());
        assert!(validate_topic_config("confluent.value.subject.name.strategy", Some("MyStrategy")).is_err());
        assert!(validate_topic_config("confluent.key.schema.validation", Some("yes")).is_err());
        assert_eq!(SubjectNameStrategy::from_config("a.b.RecordNameStrategy"), Some(SubjectNameStrategy::RecordName));
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(validate_topic_config("retention.ms", Some("100")).is_ok());
        assert!(validate_topic_config("retention.ms", Some("-5")).is_err());
        assert!(validate_topic_config("no.such.config", Some("1")).expect_err("unknown").contains("Unknown"));
        assert!(validate_topic_config("cleanup.policy", Some("compact,delete")).is_ok());
        assert!(validate_topic_config("leader.replication.throttled.replicas", Some("")).is_ok());
        assert!(validate_topic_config("message.format.version", Some("2.8")).is_ok());
    }
}
