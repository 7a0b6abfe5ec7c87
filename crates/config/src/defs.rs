//! The config definitions: every topic config with its default, type,
//! validation, documentation and broker synonyms, and every broker key the
//! broker reads or knowingly ignores.

use crate::value::{ConfigType, Validator};

/// A broker key that supplies a topic config's default, scaled into the
/// topic config's unit (`log.retention.hours` × 3,600,000 = `retention.ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synonym {
    /// Broker key.
    pub key: &'static str,
    /// Multiplier from the broker key's unit to the topic config's unit.
    pub scale: i64,
}

/// One config key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigDef {
    /// Key.
    pub name: &'static str,
    /// Type.
    pub ty: ConfigType,
    /// Default, as text; `None` when the key has no default (null).
    pub default: Option<&'static str>,
    /// Accepted values.
    pub validator: Validator,
    /// One-line documentation (DescribeConfigs `documentation`).
    pub doc: &'static str,
    /// Broker keys that supply this topic config's default, most specific first.
    pub synonyms: &'static [Synonym],
    /// Whether the value is secret (never returned).
    pub sensitive: bool,
    /// Broker keys only: whether IncrementalAlterConfigs may change it at runtime.
    pub dynamic: bool,
}

pub(crate) const fn def(
    name: &'static str,
    ty: ConfigType,
    default: Option<&'static str>,
    validator: Validator,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef { name, ty, default, validator, doc, synonyms: &[], sensitive: false, dynamic: false }
}

const fn syn(key: &'static str) -> Synonym {
    Synonym { key, scale: 1 }
}

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;
pub(crate) const LONG_MAX: &str = "9223372036854775807";
pub(crate) const I32: i64 = i32::MAX as i64;

use ConfigType::*;
use Validator::*;

/// `cleanup.policy` values.
pub const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];
/// `compression.type` values for topics.
pub const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// `message.timestamp.type` values.
pub const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// The default subject name strategy of schema validation.
pub const TOPIC_NAME_STRATEGY: &str = "io.confluent.kafka.serializers.subject.TopicNameStrategy";
/// Subject name strategies schema validation accepts: the serializers' class
/// names and their short forms.
pub const SUBJECT_NAME_STRATEGIES: &[&str] = &[
    TOPIC_NAME_STRATEGY,
    "io.confluent.kafka.serializers.subject.RecordNameStrategy",
    "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
    "TopicNameStrategy",
    "RecordNameStrategy",
    "TopicRecordNameStrategy",
];

macro_rules! topic {
    ($name:literal, $ty:expr, $default:expr, $validator:expr, $doc:literal, [$($syn:expr),*]) => {
        ConfigDef { synonyms: &[$($syn),*], ..def($name, $ty, $default, $validator, $doc) }
    };
}

/// Topic configs (Kafka `TopicConfig`), in the order Kafka lists them.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    topic!(
        "cleanup.policy",
        List,
        Some("delete"),
        ListOf(CLEANUP_POLICIES),
        "Retention policy for old segments: \"delete\" removes them by time or size, \"compact\" keeps the latest value per key; both may be given.",
        [syn("log.cleanup.policy")]
    ),
    topic!(
        "compression.gzip.level",
        Int,
        Some("-1"),
        RangeOr(1, 9, -1),
        "Compression level when compression.type is gzip.",
        [syn("compression.gzip.level")]
    ),
    topic!(
        "compression.lz4.level",
        Int,
        Some("9"),
        Range(1, 17),
        "Compression level when compression.type is lz4.",
        [syn("compression.lz4.level")]
    ),
    topic!(
        "compression.type",
        String,
        Some("producer"),
        OneOf(COMPRESSION_TYPES),
        "Codec of the stored batches: a codec name, \"uncompressed\", or \"producer\" to keep the producer's codec.",
        [syn("compression.type")]
    ),
    topic!(
        "compression.zstd.level",
        Int,
        Some("3"),
        Range(-131_072, 22),
        "Compression level when compression.type is zstd.",
        [syn("compression.zstd.level")]
    ),
    topic!(
        "confluent.key.schema.validation",
        Boolean,
        Some("false"),
        Any,
        "Reject records whose key is not null and carries no schema id registered under the subject confluent.key.subject.name.strategy names.",
        []
    ),
    topic!(
        "confluent.key.subject.name.strategy",
        String,
        Some(TOPIC_NAME_STRATEGY),
        OneOf(SUBJECT_NAME_STRATEGIES),
        "How key schema validation names the subject a key's schema id must be registered under: TopicNameStrategy (<topic>-key), RecordNameStrategy (the schema's record name) or TopicRecordNameStrategy (<topic>-<record name>).",
        []
    ),
    topic!(
        "confluent.value.schema.validation",
        Boolean,
        Some("false"),
        Any,
        "Reject records whose value is not null and carries no schema id registered under the subject confluent.value.subject.name.strategy names.",
        []
    ),
    topic!(
        "confluent.value.subject.name.strategy",
        String,
        Some(TOPIC_NAME_STRATEGY),
        OneOf(SUBJECT_NAME_STRATEGIES),
        "How value schema validation names the subject a value's schema id must be registered under: TopicNameStrategy (<topic>-value), RecordNameStrategy (the schema's record name) or TopicRecordNameStrategy (<topic>-<record name>).",
        []
    ),
    topic!(
        "delete.retention.ms",
        Long,
        Some("86400000"),
        Range(0, i64::MAX),
        "How long tombstones are kept on compacted topics, so consumers can see the delete.",
        [syn("log.cleaner.delete.retention.ms")]
    ),
    topic!(
        "file.delete.delay.ms",
        Long,
        Some("60000"),
        Range(0, i64::MAX),
        "Delay before a deleted segment's files are removed.",
        [syn("log.segment.delete.delay.ms")]
    ),
    topic!(
        "flush.messages",
        Long,
        Some(LONG_MAX),
        Range(1, i64::MAX),
        "Accepted for compatibility. Tributary fsyncs every acknowledged batch (group commit).",
        [syn("log.flush.interval.messages")]
    ),
    topic!(
        "flush.ms",
        Long,
        Some(LONG_MAX),
        Range(0, i64::MAX),
        "Accepted for compatibility. Tributary fsyncs every acknowledged batch (group commit).",
        [syn("log.flush.interval.ms"), syn("log.flush.scheduler.interval.ms")]
    ),
    topic!(
        "follower.replication.throttled.replicas",
        List,
        Some(""),
        ThrottledReplicas,
        "Replicas throttled on the follower side during reassignment: partition:broker pairs or *.",
        []
    ),
    topic!(
        "index.interval.bytes",
        Int,
        Some("4096"),
        Range(0, I32),
        "Bytes of log between two offset-index entries.",
        [syn("log.index.interval.bytes")]
    ),
    topic!(
        "leader.replication.throttled.replicas",
        List,
        Some(""),
        ThrottledReplicas,
        "Replicas throttled on the leader side during reassignment: partition:broker pairs or *.",
        []
    ),
    topic!(
        "local.retention.bytes",
        Long,
        Some("-2"),
        Range(-2, i64::MAX),
        "With tiered storage, bytes kept on local disk; -2 means retention.bytes.",
        [syn("log.local.retention.bytes")]
    ),
    topic!(
        "local.retention.ms",
        Long,
        Some("-2"),
        Range(-2, i64::MAX),
        "With tiered storage, time kept on local disk; -2 means retention.ms.",
        [syn("log.local.retention.ms")]
    ),
    topic!(
        "max.compaction.lag.ms",
        Long,
        Some(LONG_MAX),
        Range(1, i64::MAX),
        "Longest time a record may stay uncompacted.",
        [syn("log.cleaner.max.compaction.lag.ms")]
    ),
    topic!(
        "max.message.bytes",
        Int,
        Some("1048588"),
        Range(0, I32),
        "Largest record batch (after compression) the topic accepts.",
        [syn("message.max.bytes")]
    ),
    topic!(
        "message.timestamp.after.max.ms",
        Long,
        Some(LONG_MAX),
        Range(0, i64::MAX),
        "How far in the future a CreateTime timestamp may be.",
        [syn("log.message.timestamp.after.max.ms")]
    ),
    topic!(
        "message.timestamp.before.max.ms",
        Long,
        Some(LONG_MAX),
        Range(0, i64::MAX),
        "How far in the past a CreateTime timestamp may be.",
        [syn("log.message.timestamp.before.max.ms")]
    ),
    topic!(
        "message.timestamp.type",
        String,
        Some("CreateTime"),
        OneOf(TIMESTAMP_TYPES),
        "Whether record timestamps are the producer's (CreateTime) or the broker's append time (LogAppendTime).",
        [syn("log.message.timestamp.type")]
    ),
    topic!(
        "min.cleanable.dirty.ratio",
        Double,
        Some("0.5"),
        DoubleRange(0.0, 1.0),
        "Share of the log that must be uncompacted before the cleaner runs.",
        [syn("log.cleaner.min.cleanable.ratio")]
    ),
    topic!(
        "min.compaction.lag.ms",
        Long,
        Some("0"),
        Range(0, i64::MAX),
        "Shortest time a record stays uncompacted.",
        [syn("log.cleaner.min.compaction.lag.ms")]
    ),
    topic!(
        "min.insync.replicas",
        Int,
        Some("1"),
        Range(1, I32),
        "Replicas that must hold a record before an acks=all produce succeeds.",
        [syn("min.insync.replicas")]
    ),
    topic!(
        "preallocate",
        Boolean,
        Some("false"),
        Any,
        "Accepted for compatibility; segments are not preallocated.",
        [syn("log.preallocate")]
    ),
    topic!("remote.log.copy.disable", Boolean, Some("false"), Any, "Stop copying segments to tiered storage.", []),
    topic!(
        "remote.log.delete.on.disable",
        Boolean,
        Some("false"),
        Any,
        "Delete tiered data when tiering is disabled.",
        []
    ),
    topic!("remote.storage.enable", Boolean, Some("false"), Any, "Offload closed segments to tiered storage.", []),
    topic!(
        "retention.bytes",
        Long,
        Some("-1"),
        Any,
        "Largest size of a partition before old segments are deleted; -1 means no limit.",
        [syn("log.retention.bytes")]
    ),
    topic!(
        "retention.ms",
        Long,
        Some("604800000"),
        Range(-1, i64::MAX),
        "How long segments are kept before deletion; -1 means forever.",
        [
            syn("log.retention.ms"),
            Synonym { key: "log.retention.minutes", scale: MS_PER_MINUTE },
            Synonym { key: "log.retention.hours", scale: MS_PER_HOUR }
        ]
    ),
    topic!(
        "segment.bytes",
        Int,
        Some("1073741824"),
        Range(14, I32),
        "Size at which the active segment is rolled.",
        [syn("log.segment.bytes")]
    ),
    topic!(
        "segment.index.bytes",
        Int,
        Some("10485760"),
        Range(4, I32),
        "Largest offset index of a segment.",
        [syn("log.index.size.max.bytes")]
    ),
    topic!(
        "segment.jitter.ms",
        Long,
        Some("0"),
        Range(0, i64::MAX),
        "Random jitter subtracted from segment.ms.",
        [syn("log.roll.jitter.ms"), Synonym { key: "log.roll.jitter.hours", scale: MS_PER_HOUR }]
    ),
    topic!(
        "segment.ms",
        Long,
        Some("604800000"),
        Range(1, i64::MAX),
        "Age at which the active segment is rolled even if not full.",
        [syn("log.roll.ms"), Synonym { key: "log.roll.hours", scale: MS_PER_HOUR }]
    ),
    topic!(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        Any,
        "Allow an out-of-sync replica to become leader (may lose acknowledged data).",
        [syn("unclean.leader.election.enable")]
    ),
];

/// Topic keys accepted and stored but not listed unless set (removed in Kafka 4.0).
pub const LEGACY_TOPIC_CONFIGS: &[ConfigDef] = &[
    def("message.format.version", String, Some("3.0-IV1"), Any, "Ignored; only message format v2 exists."),
    def("message.downconversion.enable", Boolean, Some("true"), Any, "Ignored; down-conversion is not needed."),
    def(
        "message.timestamp.difference.max.ms",
        Long,
        Some(LONG_MAX),
        Range(0, i64::MAX),
        "Ignored; use message.timestamp.before/after.max.ms.",
    ),
];

macro_rules! broker {
    ($name:literal, $ty:expr, $default:expr, $doc:literal) => {
        def($name, $ty, $default, Any, $doc)
    };
    ($name:literal, $ty:expr, $default:expr, $validator:expr, $doc:literal) => {
        def($name, $ty, $default, $validator, $doc)
    };
    ($name:literal, $ty:expr, $default:expr, $validator:expr, $doc:literal, dynamic) => {
        ConfigDef { dynamic: true, ..def($name, $ty, $default, $validator, $doc) }
    };
}

/// Broker keys Tributary reads (static unless marked dynamic).
pub const BROKER_CONFIGS: &[ConfigDef] = &[
    broker!("node.id", Int, Some("1"), "This broker's id."),
    broker!("broker.id", Int, Some("-1"), "Older name of node.id."),
    broker!("broker.rack", String, None, "Rack of this broker, reported in Metadata."),
    broker!(
        "replica.selector.class",
        Class,
        None,
        "How a partition leader picks the replica a consumer with client.rack fetches from: org.apache.kafka.common.replica.RackAwareReplicaSelector (a replica in the consumer's rack) or org.apache.kafka.common.replica.LeaderSelector; unset, consumers fetch from the leader."
    ),
    broker!(
        "listeners",
        String,
        Some("PLAINTEXT://127.0.0.1:9092"),
        "Addresses the broker listens on: NAME://host:port, comma separated."
    ),
    broker!(
        "advertised.listeners",
        String,
        None,
        "Addresses given to clients, per listener name; defaults to listeners."
    ),
    broker!(
        "listener.security.protocol.map",
        String,
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
        "Security protocol of each listener name."
    ),
    broker!("inter.broker.listener.name", String, None, "Listener used between brokers."),
    broker!(
        "controller.listener.names",
        String,
        None,
        "Listeners of the metadata quorum; not served as Kafka listeners."
    ),
    broker!(
        "process.roles",
        List,
        Some(""),
        ListOf(&["broker", "controller"]),
        "KRaft roles of this node. Unset: a single node with its own metadata store; set: a member of a metadata quorum (controller: a voter; broker only: an observer)."
    ),
    broker!("controller.quorum.voters", List, Some(""), "Static quorum voters: id@host:port, comma separated."),
    broker!(
        "controller.quorum.bootstrap.servers",
        List,
        Some(""),
        "Controllers to ask when the voters live in the log (dynamic quorum)."
    ),
    broker!(
        "controller.quorum.fetch.timeout.ms",
        Int,
        Some("600"),
        Range(60, I32),
        "Longest a voter goes without hearing from the quorum leader before it campaigns (it asks the leader first; Tributary's default is shorter than Kafka's 2000 for a failover within a second)."
    ),
    broker!(
        "controller.quorum.election.timeout.ms",
        Int,
        Some("200"),
        Range(1, I32),
        "A candidate, or a voter that knows no leader, campaigns (again) after a random wait between this and twice this (Kafka: 1000)."
    ),
    broker!(
        "controller.quorum.election.backoff.max.ms",
        Int,
        Some("300"),
        Range(0, I32),
        "Cap of the random binary exponential back-off between failed elections (Kafka: 1000)."
    ),
    broker!(
        "controller.quorum.retry.backoff.ms",
        Int,
        Some("20"),
        Range(0, I32),
        "Pause before a failed request to the quorum leader is retried; first delay of the back-off from an unreachable controller."
    ),
    broker!(
        "broker.heartbeat.interval.ms",
        Long,
        Some("2000"),
        Range(1, i64::MAX),
        "How often a broker in a cluster heartbeats to the active controller."
    ),
    broker!(
        "broker.session.timeout.ms",
        Long,
        Some("9000"),
        Range(1, i64::MAX),
        "A broker whose heartbeats stop this long is fenced by the active controller."
    ),
    broker!(
        "auto.leader.rebalance.enable",
        Boolean,
        Some("true"),
        Any,
        "The active controller moves leadership back to preferred replicas when a broker's share of partitions led by others exceeds leader.imbalance.per.broker.percentage."
    ),
    broker!(
        "leader.imbalance.check.interval.seconds",
        Long,
        Some("300"),
        Range(1, i64::MAX),
        "How often the active controller checks for leader imbalance."
    ),
    broker!(
        "leader.imbalance.per.broker.percentage",
        Int,
        Some("10"),
        Range(0, I32),
        "Percentage of a broker's preferred partitions led by others above which a rebalance is triggered."
    ),
    broker!(
        "leader.replication.throttled.rate",
        Long,
        Some(LONG_MAX),
        Range(0, i64::MAX),
        "Bytes per second a leader sends to followers of the replicas its topics list in \
         leader.replication.throttled.replicas (reassignment traffic), measured over the replication quota window.",
        dynamic
    ),
    broker!(
        "follower.replication.throttled.rate",
        Long,
        Some(LONG_MAX),
        Range(0, i64::MAX),
        "Bytes per second a follower fetches for the replicas its topics list in \
         follower.replication.throttled.replicas (reassignment traffic), measured over the replication quota window.",
        dynamic
    ),
    broker!(
        "replication.quota.window.num",
        Int,
        Some("11"),
        Range(1, I32),
        "Number of samples the replication throttles measure their rate over."
    ),
    broker!(
        "replication.quota.window.size.seconds",
        Int,
        Some("1"),
        Range(1, I32),
        "Length of one replication throttle sample."
    ),
    broker!(
        "replica.fetch.max.bytes",
        Int,
        Some("1048576"),
        Range(0, I32),
        "Bytes a follower asks its leader for per partition and fetch (at least one batch is returned)."
    ),
    broker!(
        "replica.lag.time.max.ms",
        Long,
        Some("30000"),
        Range(1, i64::MAX),
        "An in-sync follower that has not caught up with its leader for this long leaves the ISR."
    ),
    broker!(
        "metadata.log.max.snapshot.interval.entries",
        Long,
        Some("1000"),
        Range(1, i64::MAX),
        "Metadata log entries applied between snapshots of the cluster metadata (KRaft mode)."
    ),
    broker!("log.dirs", String, None, "Data directory (the first is used)."),
    broker!("log.dir", String, Some("/tmp/kraft-combined-logs"), "Data directory when log.dirs is not set."),
    broker!(
        "num.partitions",
        Int,
        Some("1"),
        "Partitions of an auto-created topic or a CreateTopics with num_partitions -1."
    ),
    broker!(
        "max.partitions",
        Int,
        Some("100000"),
        "Most partitions the cluster holds (the name KIP-578 proposed); CreateTopics or CreatePartitions beyond it \
         get INVALID_PARTITIONS."
    ),
    broker!("default.replication.factor", Short, Some("1"), "Replication factor of an auto-created topic."),
    broker!("auto.create.topics.enable", Boolean, Some("true"), "Create unknown topics on Metadata or Produce."),
    broker!("delete.topic.enable", Boolean, Some("true"), "Allow DeleteTopics."),
    broker!(
        "socket.request.max.bytes",
        Int,
        Some("104857600"),
        "Largest request the broker reads; larger requests close the connection."
    ),
    broker!(
        "fetch.max.bytes",
        Int,
        Some("57671680"),
        "Largest Fetch response; a consumer asking for more gets at most this (the first batch may exceed it)."
    ),
    broker!("socket.send.buffer.bytes", Int, Some("102400"), "Accepted for compatibility."),
    broker!("socket.receive.buffer.bytes", Int, Some("102400"), "Accepted for compatibility."),
    broker!(
        "num.network.threads",
        Int,
        Some("3"),
        "Accepted for compatibility; Tributary sizes its runtime to the machine."
    ),
    broker!(
        "num.io.threads",
        Int,
        Some("8"),
        "Accepted for compatibility; Tributary sizes its runtime to the machine."
    ),
    broker!("num.recovery.threads.per.data.dir", Int, Some("1"), "Accepted for compatibility."),
    broker!("log.retention.check.interval.ms", Long, Some("300000"), "How often retention runs."),
    broker!(
        "connections.max.idle.ms",
        Long,
        Some("600000"),
        "A connection with no complete request and no response written for this long is closed (also one stuck \
         mid-request or not reading its responses); -1 never closes idle connections."
    ),
    broker!(
        "max.connections",
        Int,
        Some("2147483647"),
        Range(0, I32),
        "Most connections the broker holds at once; further connections are accepted but not served until one closes \
         (lowering it closes the least recently active connections).",
        dynamic
    ),
    broker!(
        "max.connections.per.ip",
        Int,
        Some("2147483647"),
        Range(0, I32),
        "Most connections from one IP address; a further connection is closed right after it is accepted. 0 needs \
         max.connections.per.ip.overrides.",
        dynamic
    ),
    broker!(
        "max.connections.per.ip.overrides",
        String,
        Some(""),
        Any,
        "Per-address exceptions to max.connections.per.ip: host:count, comma separated (e.g. 127.0.0.1:200,host1:100).",
        dynamic
    ),
    broker!(
        "max.connection.creation.rate",
        Int,
        Some("2147483647"),
        Range(0, I32),
        "New connections accepted per second, broker-wide; faster arrivals wait to be accepted.",
        dynamic
    ),
    broker!(
        "queued.max.request.bytes",
        Long,
        Some("-1"),
        "Request bytes the broker holds across all connections (read, not yet handled); when reached, connections \
         stop reading until memory frees. -1 (or 0) means no limit; otherwise at least socket.request.max.bytes."
    ),
    broker!(
        "queued.max.requests",
        Int,
        Some("500"),
        "Accepted for compatibility; Tributary has no shared request queue (each connection handles its requests \
         in order, at most 128 pipelined)."
    ),
    broker!("producer.id.expiration.ms", Int, Some("86400000"), "Idle producer ids are forgotten after this long."),
    broker!("offsets.topic.segment.bytes", Int, Some("104857600"), "segment.bytes of __consumer_offsets."),
    broker!(
        "offsets.retention.minutes",
        Int,
        Some("10080"),
        "Committed offsets of a group without members are removed after this long."
    ),
    broker!(
        "offsets.retention.check.interval.ms",
        Long,
        Some("600000"),
        "How often expired committed offsets are removed."
    ),
    broker!("offset.metadata.max.bytes", Int, Some("4096"), "Largest metadata string of a committed offset."),
    broker!("group.min.session.timeout.ms", Int, Some("6000"), "Shortest session timeout a group member may ask for."),
    broker!(
        "group.max.session.timeout.ms",
        Int,
        Some("1800000"),
        "Longest session timeout a group member may ask for."
    ),
    broker!("group.max.size", Int, Some("2147483647"), "Most members a group may have."),
    broker!("offsets.topic.num.partitions", Int, Some("50"), "Partitions of __consumer_offsets."),
    broker!("offsets.topic.replication.factor", Short, Some("3"), "Replication factor of __consumer_offsets."),
    broker!("transaction.state.log.num.partitions", Int, Some("50"), "Partitions of __transaction_state."),
    broker!("transaction.state.log.replication.factor", Short, Some("3"), "Replication factor of __transaction_state."),
    broker!("transaction.state.log.min.isr", Int, Some("2"), "min.insync.replicas of __transaction_state."),
    broker!("group.initial.rebalance.delay.ms", Int, Some("3000"), "Delay of a new group's first rebalance."),
    broker!(
        "group.consumer.session.timeout.ms",
        Int,
        Some("45000"),
        "Consumer protocol (KIP-848): a member that does not heartbeat for this long leaves its group."
    ),
    broker!(
        "group.consumer.heartbeat.interval.ms",
        Int,
        Some("5000"),
        "Consumer protocol (KIP-848): how often members are told to heartbeat."
    ),
    broker!(
        "group.consumer.max.size",
        Int,
        Some("2147483647"),
        "Consumer protocol (KIP-848): most members a group may have."
    ),
    broker!(
        "group.consumer.assignors",
        List,
        Some("uniform,range"),
        "Consumer protocol (KIP-848): server-side assignors members may ask for; the first is the default."
    ),
    broker!(
        "tributary.schema.registry.topic",
        String,
        Some("_schemas"),
        "Tributary: the Schema Registry's storage topic (the registry's kafkastore.topic), which the broker reads to know the registered schema ids that topic schema validation checks."
    ),
    broker!(
        "confluent.schema.registry.url",
        List,
        None,
        "Accepted for compatibility with Confluent Server; Tributary checks schema ids against the registry's storage topic (tributary.schema.registry.topic), not over HTTP."
    ),
    broker!("log.cleaner.enable", Boolean, Some("true"), "Run the log cleaner for compacted topics."),
    broker!(
        "log.cleaner.backoff.ms",
        Long,
        Some("15000"),
        "How long the log cleaner sleeps when no log needs cleaning."
    ),
    broker!(
        "log.cleaner.dedupe.buffer.size",
        Long,
        Some("134217728"),
        "Memory for the log cleaner's key to latest-offset map; bounds how much dirty log one clean covers."
    ),
    broker!(
        "log.cleaner.io.max.bytes.per.second",
        Double,
        // Kafka's default is unlimited (Double.MAX_VALUE); Tributary paces the
        // cleaner so a compaction never takes the disk from producers' fsyncs.
        // Measured in docs/design/cleaner.md: from 25 to 100 MiB/s the produce
        // p99 with the cleaner busy stayed under 2x a quiet broker's; below
        // 3x the overwrite rate the cleaner falls behind (10 MiB/s did at
        // 5 MB/s of overwrites, 25 MiB/s barely kept up).
        Some("5.24288E7"),
        "Bytes per second the log cleaner may read plus write (Tributary default 50 MiB/s, measured to keep produce p99 under twice a quiet broker's while keeping up with 5 MB/s of overwrites, up to about 17 MB/s; Kafka's is unlimited)."
    ),
    // Kafka's dynamic SASL/Kerberos keys: accepted and stored so existing
    // tooling works; Kerberos (GSSAPI) itself is not served.
    broker!(
        "sasl.kerberos.kinit.cmd",
        String,
        Some("/usr/bin/kinit"),
        Any,
        "Accepted and stored; Kerberos (GSSAPI) is not served.",
        dynamic
    ),
    broker!(
        "sasl.kerberos.min.time.before.relogin",
        Long,
        Some("60000"),
        Range(0, i64::MAX),
        "Accepted and stored; Kerberos (GSSAPI) is not served.",
        dynamic
    ),
    broker!(
        "sasl.kerberos.principal.to.local.rules",
        List,
        Some("DEFAULT"),
        Any,
        "Accepted and stored; Kerberos (GSSAPI) is not served.",
        dynamic
    ),
    broker!(
        "sasl.kerberos.service.name",
        String,
        None,
        Any,
        "Accepted and stored; Kerberos (GSSAPI) is not served.",
        dynamic
    ),
    broker!(
        "sasl.kerberos.ticket.renew.jitter",
        Double,
        Some("0.05"),
        DoubleRange(0.0, 1.0),
        "Accepted and stored; Kerberos (GSSAPI) is not served.",
        dynamic
    ),
    broker!(
        "sasl.kerberos.ticket.renew.window.factor",
        Double,
        Some("0.8"),
        DoubleRange(0.0, 1.0),
        "Accepted and stored; Kerberos (GSSAPI) is not served.",
        dynamic
    ),
    // Topic-config synonyms: cluster-wide defaults, changeable at runtime.
    broker!("log.cleanup.policy", List, Some("delete"), ListOf(CLEANUP_POLICIES), "Default cleanup.policy.", dynamic),
    broker!(
        "compression.type",
        String,
        Some("producer"),
        OneOf(COMPRESSION_TYPES),
        "Default compression.type.",
        dynamic
    ),
    broker!("compression.gzip.level", Int, Some("-1"), RangeOr(1, 9, -1), "Default compression.gzip.level.", dynamic),
    broker!("compression.lz4.level", Int, Some("9"), Range(1, 17), "Default compression.lz4.level.", dynamic),
    broker!("compression.zstd.level", Int, Some("3"), Range(-131_072, 22), "Default compression.zstd.level.", dynamic),
    broker!(
        "log.cleaner.delete.retention.ms",
        Long,
        Some("86400000"),
        Range(0, i64::MAX),
        "Default delete.retention.ms.",
        dynamic
    ),
    broker!(
        "log.segment.delete.delay.ms",
        Long,
        Some("60000"),
        Range(0, i64::MAX),
        "Default file.delete.delay.ms.",
        dynamic
    ),
    broker!(
        "log.flush.interval.messages",
        Long,
        Some(LONG_MAX),
        Range(1, i64::MAX),
        "Default flush.messages.",
        dynamic
    ),
    broker!("log.flush.interval.ms", Long, None, Range(0, i64::MAX), "Default flush.ms.", dynamic),
    broker!("log.index.interval.bytes", Int, Some("4096"), Range(0, I32), "Default index.interval.bytes.", dynamic),
    broker!("log.index.size.max.bytes", Int, Some("10485760"), Range(4, I32), "Default segment.index.bytes.", dynamic),
    broker!(
        "log.local.retention.bytes",
        Long,
        Some("-2"),
        Range(-2, i64::MAX),
        "Default local.retention.bytes.",
        dynamic
    ),
    broker!("log.local.retention.ms", Long, Some("-2"), Range(-2, i64::MAX), "Default local.retention.ms.", dynamic),
    broker!(
        "log.cleaner.max.compaction.lag.ms",
        Long,
        Some(LONG_MAX),
        Range(1, i64::MAX),
        "Default max.compaction.lag.ms.",
        dynamic
    ),
    broker!("message.max.bytes", Int, Some("1048588"), Range(0, I32), "Default max.message.bytes.", dynamic),
    broker!(
        "log.message.timestamp.after.max.ms",
        Long,
        Some(LONG_MAX),
        Range(0, i64::MAX),
        "Default message.timestamp.after.max.ms.",
        dynamic
    ),
    broker!(
        "log.message.timestamp.before.max.ms",
        Long,
        Some(LONG_MAX),
        Range(0, i64::MAX),
        "Default message.timestamp.before.max.ms.",
        dynamic
    ),
    broker!(
        "log.message.timestamp.type",
        String,
        Some("CreateTime"),
        OneOf(TIMESTAMP_TYPES),
        "Default message.timestamp.type.",
        dynamic
    ),
    broker!(
        "log.cleaner.min.cleanable.ratio",
        Double,
        Some("0.5"),
        DoubleRange(0.0, 1.0),
        "Default min.cleanable.dirty.ratio.",
        dynamic
    ),
    broker!(
        "log.cleaner.min.compaction.lag.ms",
        Long,
        Some("0"),
        Range(0, i64::MAX),
        "Default min.compaction.lag.ms.",
        dynamic
    ),
    broker!("min.insync.replicas", Int, Some("1"), Range(1, I32), "Default min.insync.replicas.", dynamic),
    broker!("log.preallocate", Boolean, Some("false"), Any, "Default preallocate.", dynamic),
    broker!("log.retention.bytes", Long, Some("-1"), Any, "Default retention.bytes.", dynamic),
    broker!(
        "log.retention.ms",
        Long,
        None,
        Range(-1, i64::MAX),
        "Default retention.ms; overrides log.retention.minutes and log.retention.hours.",
        dynamic
    ),
    broker!(
        "log.retention.minutes",
        Int,
        None,
        Range(-1, I32),
        "Default retention in minutes; overrides log.retention.hours. Static, as in Kafka: change log.retention.ms at runtime."
    ),
    broker!(
        "log.retention.hours",
        Int,
        Some("168"),
        Range(-1, I32),
        "Default retention in hours. Static, as in Kafka: change log.retention.ms at runtime."
    ),
    broker!("log.segment.bytes", Int, Some("1073741824"), Range(14, I32), "Default segment.bytes.", dynamic),
    broker!("log.roll.jitter.ms", Long, None, Range(0, i64::MAX), "Default segment.jitter.ms.", dynamic),
    broker!(
        "log.roll.jitter.hours",
        Int,
        Some("0"),
        Range(0, I32),
        "Default segment jitter in hours. Static, as in Kafka: change log.roll.jitter.ms at runtime."
    ),
    broker!("log.roll.ms", Long, None, Range(1, i64::MAX), "Default segment.ms; overrides log.roll.hours.", dynamic),
    broker!(
        "log.roll.hours",
        Int,
        Some("168"),
        Range(1, I32),
        "Default segment roll age in hours. Static, as in Kafka: change log.roll.ms at runtime."
    ),
    broker!(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        Any,
        "Default unclean.leader.election.enable.",
        dynamic
    ),
];

/// Looks up a topic config (current or legacy).
pub fn topic_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().chain(LEGACY_TOPIC_CONFIGS).find(|d| d.name == name)
}

/// Looks up a broker config: a key Tributary reads, or one of Kafka's it
/// accepts for compatibility ([`crate::kafka::ACCEPTED_BROKER_CONFIGS`]).
pub fn broker_config(name: &str) -> Option<&'static ConfigDef> {
    all_broker_configs().find(|d| d.name == name)
}

/// Every broker key: [`BROKER_CONFIGS`], then the keys accepted for compatibility.
pub fn all_broker_configs() -> impl Iterator<Item = &'static ConfigDef> {
    BROKER_CONFIGS.iter().chain(crate::kafka::ACCEPTED_BROKER_CONFIGS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::validate;

    #[test]
    fn defaults_pass_their_own_validation() {
        for d in TOPIC_CONFIGS.iter().chain(LEGACY_TOPIC_CONFIGS).chain(all_broker_configs()) {
            if let Some(v) = d.default {
                if d.ty == ConfigType::List && v.is_empty() {
                    continue;
                }
                validate(d.name, d.ty, d.validator, v).unwrap_or_else(|e| panic!("{}: {e}", d.name));
            }
        }
    }

    #[test]
    fn every_synonym_is_a_broker_key() {
        for d in TOPIC_CONFIGS {
            for s in d.synonyms {
                assert!(broker_config(s.key).is_some(), "{} -> {}", d.name, s.key);
            }
        }
    }

    #[test]
    fn names_are_unique_and_sorted() {
        let names: Vec<_> = TOPIC_CONFIGS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
