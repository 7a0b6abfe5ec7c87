//! Which APIs and versions this broker serves. ApiVersions advertises exactly
//! this table, so a row is added only when its handler works with real clients.

use kafka_protocol::messages::ApiKey;

/// One API the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedApi {
    /// The API.
    pub key: ApiKey,
    /// Lowest version advertised in ApiVersions.
    pub min: i16,
    /// Lowest version actually decoded; requests between `min` and this are
    /// refused per request. Only Produce differs: Kafka 4.x still advertises
    /// Produce v0 because some librdkafka versions otherwise disable
    /// compression (KAFKA-18659), and rejects v0-v2 when they arrive.
    pub min_decodable: i16,
    /// Highest version advertised and decoded.
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> SupportedApi {
    SupportedApi { key, min, min_decodable: min, max }
}

/// The APIs of the broker core and the group coordinator: classic groups
/// and consumer groups (KIP-848) (CONTRACT A.3.1, R1 subset plus 68 and 69),
/// the Kafka 4.1 admin listings ListConfigResources (74, KIP-1142) and
/// DescribeTopicPartitions (75, KIP-966), DescribeQuorum (55, the metadata
/// quorum as KRaft reports it; a node alone is a quorum of itself), and the
/// KIP-853 voter changes AddRaftVoter (80) and RemoveRaftVoter (81), which a
/// node with dynamic voters carries out and any other answers with Kafka's
/// UNSUPPORTED_VERSION for a static quorum (kraft.version 0), as Kafka 3.9+
/// brokers do. AddRaftVoter v1 (AckWhenCommitted, Kafka 4.1) is not served:
/// v0 always answers once the new voter set is committed, which is v1's default.
/// Replica operations: ElectLeaders (43, decided by the active controller)
/// and DescribeLogDirs (35; v0 is v1's layout, kept for older clients).
/// The KIP-455 reassignment APIs AlterPartitionReassignments (45, v0-v1:
/// v1 is KIP-860's AllowReplicationFactorChange) and
/// ListPartitionReassignments (46, v0).
pub const SUPPORTED_APIS: &[SupportedApi] = &[
    SupportedApi { key: ApiKey::Produce, min: 0, min_decodable: 3, max: 12 },
    api(ApiKey::Fetch, 4, 17),
    api(ApiKey::ListOffsets, 1, 10),
    api(ApiKey::Metadata, 0, 13),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::DescribeQuorum, 0, 2),
    api(ApiKey::ElectLeaders, 0, 2),
    api(ApiKey::DescribeLogDirs, 0, 4),
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
    api(ApiKey::ListConfigResources, 0, 1),
    api(ApiKey::DescribeTopicPartitions, 0, 0),
    api(ApiKey::AddRaftVoter, 0, 0),
    api(ApiKey::RemoveRaftVoter, 0, 0),
    api(ApiKey::AlterPartitionReassignments, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
];

/// A feature in ApiVersions v3+ (`SupportedFeatures` and `FinalizedFeatures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// Feature name.
    pub name: &'static str,
    /// Lowest level this broker supports.
    pub min: i16,
    /// Highest level this broker supports.
    pub max: i16,
    /// The level in force.
    pub finalized: i16,
}

/// Features this broker supports and has finalized. `group.version` 1 tells
/// clients the consumer group protocol (KIP-848) is served.
pub const FEATURES: &[Feature] = &[Feature { name: "group.version", min: 0, max: 1, finalized: 1 }];

/// The version a body of `api_key` at `version` is decoded and encoded at:
/// DescribeLogDirs v0 has exactly v1's layout (v1 only changed how
/// throttling is reported), and the message codec starts at v1.
pub fn codec_version(api_key: ApiKey, version: i16) -> i16 {
    match api_key {
        ApiKey::DescribeLogDirs => version.max(1),
        _ => version,
    }
}

/// Looks up a supported API by its key.
pub fn supported_api(key: i16) -> Option<&'static SupportedApi> {
    SUPPORTED_APIS.iter().find(|a| a.key as i16 == key)
}
