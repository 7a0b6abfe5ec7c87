//! Facts about Kafka's broker configuration that DescribeConfigs reports and
//! Tributary does not otherwise need: which keys Kafka can update while it
//! runs (everything else is reported `read_only`), and common
//! `server.properties` keys Tributary accepts without using, so they are
//! described with Kafka's types and defaults instead of as unknown keys.
//!
//! The dynamic set is Kafka 4.1's `DynamicBrokerConfig.ALL_DYNAMIC_CONFIGS`:
//! the SSL, SASL and listener keys a listener can reload, the log cleaner's
//! tuning keys, thread pool sizes, connection limits, producer-state and
//! remote-log keys, replication quotas, and the first broker synonym of every
//! topic config (`log.retention.ms` is dynamic, `log.retention.hours` is not).

use crate::defs::{ConfigDef, I32, LONG_MAX, TOPIC_CONFIGS, def};
use crate::value::ConfigType::*;
use crate::value::Validator::*;

/// Broker keys Kafka can update at runtime, besides the first broker synonym
/// of each topic config (see [`is_dynamic`]).
const DYNAMIC_BROKER_KEYS: &[&str] = &[
    // listeners and the security configs a listener reloads
    "listeners",
    "listener.security.protocol.map",
    "principal.builder.class",
    "ssl.protocol",
    "ssl.provider",
    "ssl.cipher.suites",
    "ssl.enabled.protocols",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.endpoint.identification.algorithm",
    "ssl.secure.random.implementation",
    "ssl.client.auth",
    "ssl.engine.factory.class",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.jaas.config",
    "sasl.enabled.mechanisms",
    "sasl.kerberos.service.name",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.ticket.renew.window.factor",
    "sasl.kerberos.ticket.renew.jitter",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.kerberos.principal.to.local.rules",
    "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter",
    "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.buffer.seconds",
    // connection limits and network threads
    "max.connections",
    "max.connection.creation.rate",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "num.network.threads",
    // thread pools
    "num.io.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    // the log cleaner
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
    // producer state
    "producer.id.expiration.ms",
    "transaction.partition.verification.enable",
    // remote log
    "remote.log.index.file.cache.total.size.bytes",
    "remote.fetch.max.wait.ms",
    "remote.log.manager.copy.max.bytes.per.second",
    "remote.log.manager.fetch.max.bytes.per.second",
    "remote.list.offsets.request.timeout.ms",
    "remote.log.manager.copier.thread.pool.size",
    "remote.log.manager.expiration.thread.pool.size",
    "remote.log.manager.follower.thread.pool.size",
    "remote.log.reader.threads",
    "follower.fetch.last.tiered.offset.enable",
    // replication quotas, metrics, config providers
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
    "metric.reporters",
    "config.providers",
];

/// Whether Kafka can update broker key `name` at runtime; DescribeConfigs
/// reports every other broker key `read_only`.
pub fn is_dynamic(name: &str) -> bool {
    DYNAMIC_BROKER_KEYS.contains(&name)
        || TOPIC_CONFIGS.iter().any(|t| t.synonyms.first().is_some_and(|s| s.key == name))
}

macro_rules! accepted {
    ($name:literal, $ty:expr, $default:expr, $validator:expr, $why:literal) => {
        def($name, $ty, $default, $validator, concat!("Accepted for compatibility; ", $why))
    };
}

/// Kafka broker keys common in `server.properties` files (Kafka's own, the
/// Confluent images', client test suites') that Tributary accepts and
/// describes with Kafka's type and default but does not act on, except
/// `max.request.partition.size.limit` and `log.flush.scheduler.interval.ms`
/// (the `flush.ms` default when `log.flush.interval.ms` is not set).
pub const ACCEPTED_BROKER_CONFIGS: &[ConfigDef] = &[
    accepted!(
        "authorizer.class.name",
        String,
        Some(""),
        Any,
        "Tributary runs without an authorizer (every principal may do everything)."
    ),
    accepted!("background.threads", Int, Some("10"), Range(1, I32), "Tributary sizes its runtime to the machine."),
    accepted!("log.cleaner.threads", Int, Some("1"), Range(0, I32), "Tributary compacts on one cleaner thread."),
    accepted!(
        "log.flush.offset.checkpoint.interval.ms",
        Int,
        Some("60000"),
        Range(0, I32),
        "Tributary fsyncs every acknowledged batch and checkpoints as it goes."
    ),
    def(
        "log.flush.scheduler.interval.ms",
        Long,
        Some(LONG_MAX),
        Any,
        "Default flush.ms when log.flush.interval.ms is not set; Tributary fsyncs every acknowledged batch (group commit).",
    ),
    def(
        "max.request.partition.size.limit",
        Int,
        Some("2000"),
        Range(1, I32),
        "Most partitions one DescribeTopicPartitions response holds, whatever the request's response_partition_limit.",
    ),
    accepted!("metadata.log.dir", String, None, Any, "the metadata log lives in the data directory."),
    accepted!("num.replica.fetchers", Int, Some("1"), Any, "a single node has no followers to fetch for."),
    accepted!("offsets.commit.timeout.ms", Int, Some("5000"), Range(1, I32), "offset commits wait for the fsync."),
    accepted!("offsets.load.buffer.size", Int, Some("5242880"), Range(1, I32), "groups are loaded record by record."),
    accepted!("replica.socket.timeout.ms", Int, Some("30000"), Any, "a single node has no followers."),
    accepted!("sasl.enabled.mechanisms", List, Some("GSSAPI"), Any, "this build serves PLAINTEXT listeners only."),
    accepted!(
        "sasl.mechanism.inter.broker.protocol",
        String,
        Some("GSSAPI"),
        Any,
        "this build serves PLAINTEXT listeners only."
    ),
    accepted!(
        "security.inter.broker.protocol",
        String,
        Some("PLAINTEXT"),
        OneOf(&["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]),
        "a single node talks to no other broker."
    ),
    accepted!(
        "share.coordinator.state.topic.min.isr",
        Short,
        Some("2"),
        Range(1, i16::MAX as i64),
        "share groups are not served."
    ),
    accepted!(
        "share.coordinator.state.topic.replication.factor",
        Short,
        Some("3"),
        Range(1, i16::MAX as i64),
        "share groups are not served."
    ),
    accepted!("transaction.partition.verification.enable", Boolean, Some("true"), Any, "transactions are not served."),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::{BROKER_CONFIGS, broker_config};

    #[test]
    fn only_first_synonyms_of_topic_configs_are_dynamic() {
        for key in ["log.retention.ms", "log.roll.ms", "log.roll.jitter.ms", "log.cleanup.policy", "message.max.bytes"]
        {
            assert!(is_dynamic(key), "{key}");
        }
        for key in ["log.retention.hours", "log.retention.minutes", "log.roll.hours", "log.roll.jitter.hours"] {
            assert!(!is_dynamic(key), "{key}");
        }
        assert!(is_dynamic("listeners") && !is_dynamic("advertised.listeners"));
        assert!(!is_dynamic("num.partitions") && !is_dynamic("log.cleaner.enable"));
    }

    #[test]
    fn accepted_keys_do_not_shadow_used_ones() {
        for d in ACCEPTED_BROKER_CONFIGS {
            assert!(!BROKER_CONFIGS.iter().any(|b| b.name == d.name), "{} is defined twice", d.name);
            assert_eq!(broker_config(d.name).map(|b| b.name), Some(d.name));
        }
    }

    #[test]
    fn alterable_keys_are_ones_kafka_can_alter() {
        // IncrementalAlterConfigs on a broker accepts only what Kafka accepts.
        for d in BROKER_CONFIGS.iter().filter(|d| d.dynamic) {
            assert!(is_dynamic(d.name), "{} is alterable in Tributary but read-only in Kafka", d.name);
        }
    }
}
