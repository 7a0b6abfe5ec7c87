//! DescribeConfigs entries built by Kafka's rules, so clients that compare
//! sources, synonyms and flags against a real broker see the same answer.
//!
//! - **Sources and synonyms.** A key's synonym chain lists, layer by layer
//!   (dynamic per-broker, dynamic cluster default, static, built-in default),
//!   every broker key that can stand for it: `log.roll.ms` and
//!   `log.roll.hours`; `log.roll.jitter.ms` and `log.roll.jitter.hours`;
//!   `log.retention.ms`, `.minutes` and `.hours`; `log.flush.interval.ms` and
//!   `log.flush.scheduler.interval.ms`. Entries before the first one under
//!   the described key's own name are dropped, so a key is never reported as
//!   coming from a synonym of higher precedence. A topic config's chain is its
//!   topic override (if set) followed by the chain of its first broker
//!   synonym, so `retention.ms` with only `log.retention.hours` set reports
//!   DEFAULT_CONFIG with no synonyms, exactly as Kafka does. The source is the
//!   head of the chain, DEFAULT_CONFIG when the chain is empty.
//! - **Values** are printed as Kafka prints the parsed value
//!   ([`crate::value::canonical`]); sensitive values (passwords, and keys
//!   whose type is unknown) are null everywhere.
//! - **Read-only**: topic configs never; broker keys unless Kafka can update
//!   them at runtime ([`crate::kafka::is_dynamic`]).
//! - **Which keys**: a topic lists every topic config (and legacy keys it
//!   sets); a broker lists every broker key, plus every key it was started
//!   with that no table defines (as Kafka lists its originals: value null,
//!   STATIC_BROKER_CONFIG, type UNKNOWN); the cluster default (`""`) lists
//!   only its dynamic keys, with synonyms from that layer alone.

use std::collections::BTreeMap;

use crate::defs::{ConfigDef, all_broker_configs, broker_config};
use crate::kafka::is_dynamic;
use crate::topic::{BrokerLayers, ConfigSource, ConfigValue};
use crate::value::{ConfigType, canonical};

/// DescribeConfigs `config_type` of a key whose type is unknown.
pub const UNKNOWN_CONFIG_TYPE: i8 = 0;

/// One DescribeConfigs entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    /// The key.
    pub name: String,
    /// Its value as Kafka prints it; `None` when null or sensitive.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed while the broker runs.
    pub read_only: bool,
    /// Whether the value is secret (and so never returned).
    pub sensitive: bool,
    /// DescribeConfigs v3+ `config_type` (0 when unknown).
    pub config_type: i8,
    /// DescribeConfigs v3+ `documentation`.
    pub documentation: Option<&'static str>,
    /// The synonym chain, most specific first.
    pub synonyms: Vec<ConfigValue>,
}

/// The broker keys that stand for `name`, in precedence order (Kafka's
/// `DynamicBrokerConfig.brokerConfigSynonyms`, listener overrides included:
/// `listener.name.<l>.<key>` has `<key>` as its synonym).
pub fn broker_synonym_names(name: &str) -> Vec<String> {
    const GROUPS: &[&[&str]] = &[
        &["log.roll.ms", "log.roll.hours"],
        &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        &["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
    ];
    const MECHANISM_KEYS: &[&str] = &[
        "sasl.jaas.config",
        "sasl.login.callback.handler.class",
        "sasl.login.class",
        "sasl.server.callback.handler.class",
        "connections.max.reauth.ms",
    ];
    if let Some(group) = GROUPS.iter().find(|g| g.contains(&name)) {
        return group.iter().map(|s| s.to_string()).collect();
    }
    if name == "log.flush.interval.ms" {
        return vec![name.to_string(), "log.flush.scheduler.interval.ms".to_string()];
    }
    if let Some(rest) = name.strip_prefix("listener.name.")
        && let Some((listener, base)) = rest.split_once('.')
        && !listener.is_empty()
    {
        let base = MECHANISM_KEYS.iter().find(|k| base.ends_with(*k)).map_or(base, |k| k);
        return vec![name.to_string(), base.to_string()];
    }
    vec![name.to_string()]
}

/// The synonym chain of broker key `name` given its synonym keys `names`:
/// every layer's value of every synonym, layer by layer, minus the entries
/// before the first one named `name`.
fn layered_synonyms(layers: &BrokerLayers, name: &str, names: &[String], sensitive: bool) -> Vec<ConfigValue> {
    let shown = |v: &str| if sensitive { None } else { Some(v.to_string()) };
    let mut chain = Vec::new();
    let maps: [(&BTreeMap<String, String>, ConfigSource); 3] = [
        (&layers.dynamic_broker, ConfigSource::DynamicBroker),
        (&layers.dynamic_default, ConfigSource::DynamicDefaultBroker),
        (&layers.static_props, ConfigSource::StaticBroker),
    ];
    for (map, source) in maps {
        for key in names {
            if let Some(v) = map.get(key) {
                chain.push(ConfigValue { name: key.clone(), value: shown(v), source });
            }
        }
    }
    for key in names {
        if let Some(default) = broker_config(key).and_then(|d| d.default) {
            chain.push(ConfigValue { name: key.clone(), value: shown(default), source: ConfigSource::Default });
        }
    }
    let own = chain.iter().position(|s| s.name == name).unwrap_or(chain.len());
    chain.split_off(own)
}

fn source_of(chain: &[ConfigValue]) -> ConfigSource {
    chain.first().map_or(ConfigSource::Default, |s| s.source)
}

fn is_sensitive(def: &ConfigDef) -> bool {
    def.sensitive || def.ty == ConfigType::Password
}

/// Every config of a topic with topic-level `overrides`.
pub fn describe_topic(layers: &BrokerLayers, overrides: &BTreeMap<String, String>) -> Vec<DescribedConfig> {
    layers
        .describe_topic(overrides)
        .into_iter()
        .map(|resolved| {
            let def = resolved.def;
            let value = resolved.value.map(|v| canonical(def.ty, &v));
            let mut synonyms = match def.synonyms.first() {
                Some(primary) => layered_synonyms(layers, primary.key, &broker_synonym_names(primary.key), false),
                None => Vec::new(),
            };
            if overrides.contains_key(def.name) {
                let own = ConfigValue {
                    name: def.name.to_string(),
                    value: value.clone(),
                    source: ConfigSource::DynamicTopic,
                };
                synonyms.insert(0, own);
            }
            DescribedConfig {
                name: def.name.to_string(),
                value,
                source: source_of(&synonyms),
                read_only: false,
                sensitive: false,
                config_type: def.ty.code(),
                documentation: Some(def.doc),
                synonyms,
            }
        })
        .collect()
}

fn broker_entry(
    layers: &BrokerLayers,
    def: &'static ConfigDef,
    value: Option<String>,
    per_broker: bool,
) -> DescribedConfig {
    let sensitive = is_sensitive(def);
    let mut synonyms = layered_synonyms(layers, def.name, &broker_synonym_names(def.name), sensitive);
    if !per_broker {
        synonyms.retain(|s| s.source == ConfigSource::DynamicDefaultBroker);
    }
    DescribedConfig {
        name: def.name.to_string(),
        value: if sensitive { None } else { value },
        source: source_of(&synonyms),
        read_only: !is_dynamic(def.name),
        sensitive,
        config_type: def.ty.code(),
        documentation: Some(def.doc),
        synonyms,
    }
}

/// Every config of this broker: the keys it was started with that no table
/// defines, then every broker key.
pub fn describe_broker(layers: &BrokerLayers) -> Vec<DescribedConfig> {
    let unknown = layers.static_props.keys().filter(|k| broker_config(k).is_none()).map(|k| DescribedConfig {
        name: k.clone(),
        value: None,
        source: ConfigSource::StaticBroker,
        read_only: !is_dynamic(k),
        sensitive: true,
        config_type: UNKNOWN_CONFIG_TYPE,
        documentation: None,
        synonyms: vec![ConfigValue { name: k.clone(), value: None, source: ConfigSource::StaticBroker }],
    });
    let known = all_broker_configs().map(|def| {
        let value = layers.broker_value(def.name).and_then(|v| v.value).map(|v| canonical(def.ty, &v));
        broker_entry(layers, def, value, true)
    });
    unknown.chain(known).collect()
}

/// The cluster-wide dynamic default (broker resource `""`): only its keys,
/// each value as it was set.
pub fn describe_cluster_default(layers: &BrokerLayers) -> Vec<DescribedConfig> {
    layers
        .dynamic_default
        .iter()
        .filter_map(|(k, v)| broker_config(k).map(|def| broker_entry(layers, def, Some(v.clone()), false)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn find<'a>(all: &'a [DescribedConfig], name: &str) -> &'a DescribedConfig {
        all.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("{name} not described"))
    }

    fn chain(c: &DescribedConfig) -> Vec<(String, Option<String>, ConfigSource)> {
        c.synonyms.iter().map(|s| (s.name.clone(), s.value.clone(), s.source)).collect()
    }

    fn entry(name: &str, value: Option<&str>, source: ConfigSource) -> (String, Option<String>, ConfigSource) {
        (name.to_string(), value.map(str::to_string), source)
    }

    #[test]
    fn topic_defaults_follow_kafkas_chains() {
        use ConfigSource::*;
        let layers = BrokerLayers::default();
        let all = describe_topic(&layers, &BTreeMap::new());
        // log.retention.ms has no default: the chain of retention.ms is empty
        let retention = find(&all, "retention.ms");
        assert_eq!((retention.value.as_deref(), retention.source), (Some("604800000"), Default));
        assert!(retention.synonyms.is_empty(), "{:?}", retention.synonyms);
        let segment = find(&all, "segment.bytes");
        assert_eq!(chain(segment), vec![entry("log.segment.bytes", Some("1073741824"), Default)]);
        let cleanup = find(&all, "cleanup.policy");
        assert_eq!(chain(cleanup), vec![entry("log.cleanup.policy", Some("delete"), Default)]);
        // no server default: no synonyms
        assert!(find(&all, "leader.replication.throttled.replicas").synonyms.is_empty());
        assert!(all.iter().all(|c| !c.read_only && !c.sensitive && c.config_type > 0));
    }

    #[test]
    fn static_hours_leave_topic_retention_a_default_but_static_ms_does_not() {
        use ConfigSource::*;
        let hours = BrokerLayers { static_props: map(&[("log.retention.hours", "24")]), ..BrokerLayers::default() };
        let r = describe_topic(&hours, &BTreeMap::new());
        let retention = find(&r, "retention.ms");
        assert_eq!((retention.value.as_deref(), retention.source), (Some("86400000"), Default));
        assert!(retention.synonyms.is_empty());

        let both = BrokerLayers {
            static_props: map(&[("log.retention.hours", "24"), ("log.retention.ms", "123")]),
            ..BrokerLayers::default()
        };
        let r = describe_topic(&both, &map(&[("retention.ms", "7200000")]));
        let retention = find(&r, "retention.ms");
        assert_eq!((retention.value.as_deref(), retention.source), (Some("7200000"), DynamicTopic));
        assert_eq!(
            chain(retention),
            vec![
                entry("retention.ms", Some("7200000"), DynamicTopic),
                entry("log.retention.ms", Some("123"), StaticBroker),
                entry("log.retention.hours", Some("24"), StaticBroker),
                entry("log.retention.hours", Some("168"), Default),
            ]
        );
    }

    #[test]
    fn broker_keys_report_their_layers_flags_and_types() {
        use ConfigSource::*;
        let layers = BrokerLayers {
            static_props: map(&[
                ("advertised.listeners", "PLAINTEXT://localhost:9092"),
                ("log.retention.hours", "24"),
                ("num.partitions", " 3 "),
                ("allow.everyone.if.no.acl.found", "true"),
            ]),
            dynamic_default: map(&[("log.retention.ms", "5000")]),
            dynamic_broker: map(&[("log.cleanup.policy", "compact")]),
        };
        let all = describe_broker(&layers);
        let adv = find(&all, "advertised.listeners");
        assert_eq!(
            (adv.value.as_deref(), adv.source, adv.read_only, adv.config_type),
            (Some("PLAINTEXT://localhost:9092"), StaticBroker, true, ConfigType::String.code())
        );
        let listeners = find(&all, "listeners");
        assert_eq!((listeners.source, listeners.read_only), (Default, false));
        let partitions = find(&all, "num.partitions");
        assert_eq!((partitions.value.as_deref(), partitions.source), (Some("3"), StaticBroker));
        assert_eq!(
            chain(partitions),
            vec![entry("num.partitions", Some(" 3 "), StaticBroker), entry("num.partitions", Some("1"), Default)]
        );
        // log.retention.hours: the dynamic log.retention.ms comes first in the
        // layer walk and is dropped, as it is not this key
        let hours = find(&all, "log.retention.hours");
        assert_eq!((hours.value.as_deref(), hours.source, hours.read_only), (Some("24"), StaticBroker, true));
        assert_eq!(
            chain(hours),
            vec![
                entry("log.retention.hours", Some("24"), StaticBroker),
                entry("log.retention.hours", Some("168"), Default)
            ]
        );
        let ms = find(&all, "log.retention.ms");
        assert_eq!((ms.value.as_deref(), ms.source, ms.read_only), (Some("5000"), DynamicDefaultBroker, false));
        assert_eq!(
            chain(ms),
            vec![
                entry("log.retention.ms", Some("5000"), DynamicDefaultBroker),
                entry("log.retention.hours", Some("24"), StaticBroker),
                entry("log.retention.hours", Some("168"), Default),
            ]
        );
        let policy = find(&all, "log.cleanup.policy");
        assert_eq!((policy.value.as_deref(), policy.source), (Some("compact"), DynamicBroker));
        // a key no table defines: listed as Kafka lists an unknown original
        let unknown = find(&all, "allow.everyone.if.no.acl.found");
        assert_eq!(
            (unknown.value.clone(), unknown.source, unknown.read_only, unknown.sensitive, unknown.config_type),
            (None, StaticBroker, true, true, UNKNOWN_CONFIG_TYPE)
        );
        assert_eq!(chain(unknown), vec![entry("allow.everyone.if.no.acl.found", None, StaticBroker)]);
        assert_eq!(unknown.documentation, None);

        let defaults = describe_cluster_default(&layers);
        assert_eq!(defaults.len(), 1);
        assert_eq!(
            (defaults[0].name.as_str(), defaults[0].value.as_deref(), defaults[0].source),
            ("log.retention.ms", Some("5000"), DynamicDefaultBroker)
        );
        assert_eq!(chain(&defaults[0]), vec![entry("log.retention.ms", Some("5000"), DynamicDefaultBroker)]);
    }

    #[test]
    fn synonym_names_match_kafkas_table() {
        assert_eq!(broker_synonym_names("log.roll.hours"), vec!["log.roll.ms", "log.roll.hours"]);
        assert_eq!(
            broker_synonym_names("log.retention.minutes"),
            vec!["log.retention.ms", "log.retention.minutes", "log.retention.hours"]
        );
        assert_eq!(
            broker_synonym_names("log.flush.interval.ms"),
            vec!["log.flush.interval.ms", "log.flush.scheduler.interval.ms"]
        );
        assert_eq!(broker_synonym_names("num.partitions"), vec!["num.partitions"]);
        assert_eq!(
            broker_synonym_names("listener.name.internal.ssl.keystore.location"),
            vec!["listener.name.internal.ssl.keystore.location", "ssl.keystore.location"]
        );
        assert_eq!(
            broker_synonym_names("listener.name.sasl_ssl.plain.sasl.jaas.config"),
            vec!["listener.name.sasl_ssl.plain.sasl.jaas.config", "sasl.jaas.config"]
        );
    }

    #[test]
    fn flush_ms_falls_back_to_the_scheduler_interval() {
        use ConfigSource::*;
        let layers =
            BrokerLayers { static_props: map(&[("log.flush.interval.ms", "1000")]), ..BrokerLayers::default() };
        let r = describe_topic(&layers, &BTreeMap::new());
        let flush = find(&r, "flush.ms");
        assert_eq!((flush.value.as_deref(), flush.source), (Some("1000"), StaticBroker));
        assert_eq!(
            chain(flush),
            vec![
                entry("log.flush.interval.ms", Some("1000"), StaticBroker),
                entry("log.flush.scheduler.interval.ms", Some("9223372036854775807"), Default),
            ]
        );
        let unset = describe_topic(&BrokerLayers::default(), &BTreeMap::new());
        assert!(find(&unset, "flush.ms").synonyms.is_empty());
    }
}
