//! Cross-checks every request layout against the `kafka-protocol` encoder: a
//! request with populated nested arrays, encoded at each supported version,
//! must be accepted and fully consumed by the walk.

use super::*;
use crate::apis::SUPPORTED_APIS;
use crate::samples::sample_body;
use bytes::BytesMut;
use kafka_protocol::protocol::StrBytes;

#[test]
fn every_supported_version_walks_exactly() {
    for api in SUPPORTED_APIS {
        for v in api.min_decodable..=api.max {
            let body = sample_body(api.key, v);
            let (fields, flexible_from) = layout(api.key).expect("layout");
            let mut w =
                Walker { buf: &body, version: v, flexible: v >= flexible_from, elements: 0, elements_max: 1000 };
            w.walk_struct(fields).unwrap_or_else(|e| panic!("{:?} v{v}: {e}", api.key));
            assert!(w.buf.is_empty(), "{:?} v{v}: {} bytes left over", api.key, w.buf.len());
        }
    }
}

#[test]
fn every_truncation_is_refused_without_panic() {
    for api in SUPPORTED_APIS {
        for v in api.min_decodable..=api.max {
            let body = sample_body(api.key, v);
            for cut in 0..body.len() {
                // A prefix may be a valid shorter body only if it ends exactly at a field
                // boundary of a null/empty collection; it must never panic.
                let _ = check_request(api.key, v, &body[..cut], 1000);
            }
        }
    }
}

#[test]
fn huge_counts_are_refused() {
    // Metadata v1: topics array claiming i32::MAX entries in a 5-byte body.
    let body = [0x7f, 0xff, 0xff, 0xff, 0x00];
    assert!(matches!(check_request(ApiKey::Metadata, 1, &body, 1000), Err(ShapeError::BadLength(..))));
    // Negative (other than -1) counts.
    let body = [0xff, 0xff, 0xff, 0xfe];
    assert!(matches!(check_request(ApiKey::Metadata, 1, &body, 1000), Err(ShapeError::BadLength(..))));
    // Flexible: compact array claiming 2^32-2 entries.
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert!(matches!(check_request(ApiKey::Metadata, 12, &body, 1000), Err(ShapeError::BadLength(..))));
}

#[test]
fn element_budget_is_enforced() {
    // Metadata v1 with 10 empty-named topics: 4 + 10 * 2 bytes.
    let mut body = 10i32.to_be_bytes().to_vec();
    for _ in 0..10 {
        body.extend_from_slice(&0i16.to_be_bytes());
    }
    assert!(check_request(ApiKey::Metadata, 1, &body, 10).is_ok());
    assert_eq!(check_request(ApiKey::Metadata, 1, &body, 9), Err(ShapeError::TooManyElements(9)));
}

/// Writes the seed corpus of the `request_decode` fuzz target: every
/// advertised API at every advertised version (those below `min_decodable`
/// carry the lowest decodable version's body, as an old client's request
/// would be refused), plus a few malformed frames.
#[test]
#[ignore = "regenerates fuzz/corpus/request_decode"]
fn write_fuzz_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/request_decode");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for api in SUPPORTED_APIS {
        for v in api.min..=api.max {
            let mut frame = BytesMut::new();
            let header = kafka_protocol::messages::RequestHeader::default()
                .with_request_api_key(api.key as i16)
                .with_request_api_version(v)
                .with_correlation_id(1)
                .with_client_id(Some(StrBytes::from_static_str("fuzz")));
            kafka_protocol::protocol::encode_request_header_into_buffer(&mut frame, &header).expect("header");
            frame.extend_from_slice(&sample_body(api.key, v.max(api.min_decodable)));
            std::fs::write(dir.join(format!("{:?}-v{v}", api.key)), &frame).expect("write");
        }
    }
    let huge_count = [0u8, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
    std::fs::write(dir.join("metadata-v1-huge-count"), huge_count).expect("write");
    std::fs::write(dir.join("short-header"), [0u8, 18]).expect("write");
}

/// The group APIs' layouts at every version they will be served at.
#[test]
fn group_api_layouts_walk_exactly() {
    let group_apis = [
        (ApiKey::FindCoordinator, 0, 6),
        (ApiKey::JoinGroup, 0, 9),
        (ApiKey::Heartbeat, 0, 4),
        (ApiKey::LeaveGroup, 0, 5),
        (ApiKey::SyncGroup, 0, 5),
        (ApiKey::OffsetCommit, 2, 9),
        (ApiKey::OffsetFetch, 1, 9),
        (ApiKey::DescribeGroups, 0, 5),
        (ApiKey::ListGroups, 0, 5),
        (ApiKey::DeleteGroups, 0, 2),
        (ApiKey::OffsetDelete, 0, 0),
        (ApiKey::ConsumerGroupHeartbeat, 0, 1),
        (ApiKey::ConsumerGroupDescribe, 0, 1),
    ];
    for (key, min, max) in group_apis {
        for v in min..=max {
            let body = sample_body(key, v);
            let (fields, flexible_from) = layout(key).expect("layout");
            let mut w =
                Walker { buf: &body, version: v, flexible: v >= flexible_from, elements: 0, elements_max: 1000 };
            w.walk_struct(fields).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
            assert!(w.buf.is_empty(), "{key:?} v{v}: {} bytes left over", w.buf.len());
        }
    }
}

/// A response of `api_key` at `v` with every field of that version set, two
/// elements in each collection and, in flexible versions, an unknown tag.
fn sample_response(api_key: ApiKey, v: i16) -> bytes::Bytes {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Encodable;
    let s = StrBytes::from_static_str;
    let id = uuid::Uuid::from_u128(7);
    let flexible = |from: i16| v >= from;
    let extra = bytes::Bytes::from_static(b"tag");
    let mut buf = BytesMut::new();
    macro_rules! enc {
        ($body:expr) => {
            $body.encode(&mut buf, v).unwrap_or_else(|e| panic!("{api_key:?} v{v}: {e}"))
        };
    }
    match api_key {
        ApiKey::ApiVersions => {
            use api_versions_response::*;
            let keys = vec![
                ApiVersion::default().with_api_key(3).with_min_version(0).with_max_version(13),
                ApiVersion::default().with_api_key(18).with_min_version(0).with_max_version(4),
            ];
            let mut r = ApiVersionsResponse::default().with_error_code(0).with_api_keys(keys).with_throttle_time_ms(1);
            if flexible(3) {
                r = r
                    .with_supported_features(vec![
                        SupportedFeatureKey::default().with_name(s("a")).with_min_version(1).with_max_version(2),
                        SupportedFeatureKey::default().with_name(s("bb")).with_min_version(0).with_max_version(1),
                    ])
                    .with_finalized_features_epoch(9)
                    .with_finalized_features(vec![
                        FinalizedFeatureKey::default().with_name(s("a")).with_max_version_level(2),
                        FinalizedFeatureKey::default().with_name(s("bb")).with_min_version_level(1),
                    ])
                    .with_zk_migration_ready(true)
                    .with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::Metadata => {
            use metadata_response::*;
            let broker = |n: i32| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(n))
                    .with_host(s("h"))
                    .with_port(9092)
                    .with_rack(if v >= 1 { Some(s("r")) } else { None })
            };
            let partition = |p: i32| {
                MetadataResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(BrokerId(1))
                    .with_leader_epoch(3)
                    .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                    .with_isr_nodes(vec![BrokerId(1), BrokerId(2)])
                    .with_offline_replicas(if v >= 5 { vec![BrokerId(2), BrokerId(3)] } else { vec![] })
            };
            let topic = |name: &'static str| {
                let mut t = MetadataResponseTopic::default()
                    .with_name(Some(TopicName(s(name))))
                    .with_is_internal(v >= 1)
                    .with_partitions(vec![partition(0), partition(1)]);
                if v >= 10 {
                    t = t.with_topic_id(id);
                }
                if v >= 8 {
                    t = t.with_topic_authorized_operations(8);
                }
                t
            };
            let mut r = MetadataResponse::default()
                .with_brokers(vec![broker(1), broker(2)])
                .with_cluster_id(if v >= 2 { Some(s("c")) } else { None })
                .with_controller_id(BrokerId(1))
                .with_topics(vec![topic("a"), topic("bb")])
                .with_error_code(0);
            if (8..=10).contains(&v) {
                r = r.with_cluster_authorized_operations(8);
            }
            if flexible(9) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::FindCoordinator => {
            use find_coordinator_response::*;
            let mut r = FindCoordinatorResponse::default();
            if v >= 4 {
                let c = |k: &'static str| {
                    Coordinator::default()
                        .with_key(s(k))
                        .with_node_id(BrokerId(1))
                        .with_host(s("h"))
                        .with_port(9092)
                        .with_error_message(Some(s("m")))
                };
                r = r.with_coordinators(vec![c("g1"), c("g2")]);
            } else {
                r = r.with_node_id(BrokerId(1)).with_host(s("h")).with_port(9092);
                if v >= 1 {
                    r = r.with_error_message(Some(s("m")));
                }
            }
            if flexible(3) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::ListGroups => {
            use list_groups_response::*;
            let g = |name: &'static str| {
                let mut g = ListedGroup::default().with_group_id(GroupId(s(name))).with_protocol_type(s("consumer"));
                if v >= 4 {
                    g = g.with_group_state(s("Stable"));
                }
                if v >= 5 {
                    g = g.with_group_type(s("classic"));
                }
                g
            };
            let mut r = ListGroupsResponse::default().with_groups(vec![g("a"), g("bb")]);
            if flexible(3) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::DescribeGroups => {
            use describe_groups_response::*;
            let m = |name: &'static str| {
                DescribedGroupMember::default()
                    .with_member_id(s(name))
                    .with_group_instance_id(if v >= 4 { Some(s("i")) } else { None })
                    .with_client_id(s("c"))
                    .with_client_host(s("/127.0.0.1"))
                    .with_member_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]))
                    .with_member_assignment(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]))
            };
            let g = |name: &'static str| {
                let mut g = DescribedGroup::default()
                    .with_group_id(GroupId(s(name)))
                    .with_group_state(s("Stable"))
                    .with_protocol_type(s("consumer"))
                    .with_protocol_data(s("range"))
                    .with_members(vec![m("m1"), m("m2")]);
                if v >= 6 {
                    g = g.with_error_message(Some(s("e")));
                }
                if v >= 3 {
                    g = g.with_authorized_operations(8);
                }
                g
            };
            let mut r = DescribeGroupsResponse::default().with_groups(vec![g("a"), g("bb")]);
            if flexible(5) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::OffsetFetch => {
            use offset_fetch_response::*;
            let mut r = OffsetFetchResponse::default();
            if v <= 7 {
                let p = |i: i32| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(i)
                        .with_committed_offset(5)
                        .with_committed_leader_epoch(if v >= 5 { 2 } else { -1 })
                        .with_metadata(Some(s("m")))
                };
                let t = |name: &'static str| {
                    OffsetFetchResponseTopic::default().with_name(TopicName(s(name))).with_partitions(vec![p(0), p(1)])
                };
                r = r.with_topics(vec![t("a"), t("bb")]);
            } else {
                let p = |i: i32| {
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(i)
                        .with_committed_offset(5)
                        .with_committed_leader_epoch(2)
                        .with_metadata(Some(s("m")))
                };
                let t = |name: &'static str| {
                    let t = OffsetFetchResponseTopics::default().with_partitions(vec![p(0), p(1)]);
                    if v >= 10 { t.with_topic_id(id) } else { t.with_name(TopicName(s(name))) }
                };
                let g = |name: &'static str| {
                    OffsetFetchResponseGroup::default()
                        .with_group_id(GroupId(s(name)))
                        .with_topics(vec![t("a"), t("bb")])
                };
                r = r.with_groups(vec![g("g1"), g("g2")]);
            }
            if flexible(6) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::ListOffsets => {
            use list_offsets_response::*;
            let p = |i: i32| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(i)
                    .with_timestamp(1)
                    .with_offset(2)
                    .with_leader_epoch(if v >= 4 { 3 } else { -1 })
            };
            let t = |name: &'static str| {
                ListOffsetsTopicResponse::default().with_name(TopicName(s(name))).with_partitions(vec![p(0), p(1)])
            };
            let mut r = ListOffsetsResponse::default().with_topics(vec![t("a"), t("bb")]);
            if flexible(6) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::OffsetForLeaderEpoch => {
            use offset_for_leader_epoch_response::*;
            let p = |i: i32| {
                EpochEndOffset::default()
                    .with_partition(i)
                    .with_error_code(0)
                    .with_leader_epoch(if v >= 1 { 3 } else { -1 })
                    .with_end_offset(7)
            };
            let t = |name: &'static str| {
                OffsetForLeaderTopicResult::default().with_topic(TopicName(s(name))).with_partitions(vec![p(0), p(1)])
            };
            let mut r = OffsetForLeaderEpochResponse::default().with_topics(vec![t("a"), t("bb")]);
            if flexible(4) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::OffsetCommit => {
            use offset_commit_response::*;
            let p = |i: i32| OffsetCommitResponsePartition::default().with_partition_index(i).with_error_code(0);
            let t = |name: &'static str| {
                let t = OffsetCommitResponseTopic::default().with_partitions(vec![p(0), p(1)]);
                if v >= 10 { t.with_topic_id(id) } else { t.with_name(TopicName(s(name))) }
            };
            let mut r = OffsetCommitResponse::default().with_topics(vec![t("a"), t("bb")]);
            if flexible(8) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::DeleteGroups => {
            use delete_groups_response::*;
            let g = |name: &'static str| DeletableGroupResult::default().with_group_id(GroupId(s(name)));
            let mut r = DeleteGroupsResponse::default().with_results(vec![g("a"), g("bb")]);
            if flexible(2) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::OffsetDelete => {
            use offset_delete_response::*;
            let p = |i: i32| OffsetDeleteResponsePartition::default().with_partition_index(i);
            let t = |name: &'static str| {
                OffsetDeleteResponseTopic::default().with_name(TopicName(s(name))).with_partitions(vec![p(0), p(1)])
            };
            enc!(OffsetDeleteResponse::default().with_topics(vec![t("a"), t("bb")]))
        }
        ApiKey::Produce => {
            use produce_response::*;
            let p = |i: i32| {
                let mut p = PartitionProduceResponse::default()
                    .with_index(i)
                    .with_base_offset(5)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(0);
                if v >= 8 {
                    p = p
                        .with_record_errors(vec![
                            BatchIndexAndErrorMessage::default()
                                .with_batch_index(0)
                                .with_batch_index_error_message(Some(s("e"))),
                            BatchIndexAndErrorMessage::default().with_batch_index(1),
                        ])
                        .with_error_message(Some(s("m")));
                }
                if v >= 10 {
                    p = p.with_current_leader(
                        LeaderIdAndEpoch::default().with_leader_id(BrokerId(1)).with_leader_epoch(2),
                    );
                }
                p
            };
            let t = |name: &'static str| {
                let t = TopicProduceResponse::default().with_partition_responses(vec![p(0), p(1)]);
                if v >= 13 { t.with_topic_id(id) } else { t.with_name(TopicName(s(name))) }
            };
            let mut r = ProduceResponse::default().with_responses(vec![t("a"), t("bb")]).with_throttle_time_ms(1);
            if v >= 10 {
                let n = |i: i32| NodeEndpoint::default().with_node_id(BrokerId(i)).with_host(s("h")).with_port(9092);
                r = r.with_node_endpoints(vec![n(1), n(2)]);
            }
            if flexible(9) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::Fetch => {
            use fetch_response::*;
            let p = |i: i32| {
                let mut p = PartitionData::default()
                    .with_partition_index(i)
                    .with_high_watermark(9)
                    .with_last_stable_offset(9)
                    .with_log_start_offset(0)
                    .with_aborted_transactions(Some(vec![
                        AbortedTransaction::default().with_producer_id(ProducerId(1)).with_first_offset(2),
                        AbortedTransaction::default().with_producer_id(ProducerId(3)).with_first_offset(4),
                    ]))
                    .with_records(Some(bytes::Bytes::from_static(b"records")));
                if v >= 12 {
                    p = p
                        .with_diverging_epoch(EpochEndOffset::default().with_epoch(1).with_end_offset(2))
                        .with_current_leader(
                            LeaderIdAndEpoch::default().with_leader_id(BrokerId(1)).with_leader_epoch(2),
                        )
                        .with_snapshot_id(SnapshotId::default().with_end_offset(3).with_epoch(1));
                }
                p
            };
            let t = |name: &'static str| {
                let t = FetchableTopicResponse::default().with_partitions(vec![p(0), p(1)]);
                if v >= 13 { t.with_topic_id(id) } else { t.with_topic(TopicName(s(name))) }
            };
            let mut r = FetchResponse::default().with_responses(vec![t("a"), t("bb")]).with_session_id(if v >= 7 {
                3
            } else {
                0
            });
            if v >= 16 {
                let n = |i: i32| NodeEndpoint::default().with_node_id(BrokerId(i)).with_host(s("h")).with_port(9092);
                r = r.with_node_endpoints(vec![n(1), n(2)]);
            }
            if flexible(12) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::CreateTopics => {
            use create_topics_response::*;
            let t = |name: &'static str| {
                let mut t =
                    CreatableTopicResult::default().with_name(TopicName(s(name))).with_error_message(Some(s("m")));
                if v >= 5 {
                    let c = |k: &'static str| CreatableTopicConfigs::default().with_name(s(k)).with_value(Some(s("v")));
                    t = t
                        .with_num_partitions(1)
                        .with_replication_factor(1)
                        .with_configs(Some(vec![c("a"), c("bb")]))
                        .with_topic_config_error_code(5);
                }
                if v >= 7 {
                    t = t.with_topic_id(id);
                }
                t
            };
            let mut r = CreateTopicsResponse::default().with_topics(vec![t("a"), t("bb")]);
            if flexible(5) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::DeleteTopics => {
            use delete_topics_response::*;
            let t = |name: &'static str| {
                let mut t = DeletableTopicResult::default().with_name(Some(TopicName(s(name)))).with_error_code(3);
                if v >= 5 {
                    t = t.with_error_message(Some(s("m")));
                }
                if v >= 6 {
                    t = t.with_topic_id(id);
                }
                t
            };
            let mut r = DeleteTopicsResponse::default().with_responses(vec![t("a"), t("bb")]);
            if flexible(4) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::DescribeConfigs => {
            use describe_configs_response::*;
            let synonym = |source: i8| {
                DescribeConfigsSynonym::default()
                    .with_name(s("cleanup.policy"))
                    .with_value(Some(s("compact")))
                    .with_source(source)
            };
            let entry = |name: &'static str| {
                let mut e = DescribeConfigsResourceResult::default()
                    .with_name(s(name))
                    .with_value(Some(s("v")))
                    .with_read_only(true)
                    .with_config_source(1)
                    .with_is_sensitive(false)
                    .with_synonyms(vec![synonym(1), synonym(5)]);
                if v >= 3 {
                    e = e.with_config_type(2).with_documentation(Some(s("doc")));
                }
                e
            };
            let result = |name: &'static str| {
                DescribeConfigsResult::default()
                    .with_error_code(0)
                    .with_error_message(Some(s("m")))
                    .with_resource_type(2)
                    .with_resource_name(s(name))
                    .with_configs(vec![entry("a"), entry("bb")])
            };
            let mut r = DescribeConfigsResponse::default()
                .with_throttle_time_ms(1)
                .with_results(vec![result("t"), result("u")]);
            if flexible(4) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::IncrementalAlterConfigs => {
            use incremental_alter_configs_response::*;
            let res = |name: &'static str| {
                AlterConfigsResourceResponse::default()
                    .with_error_code(40)
                    .with_error_message(Some(s("m")))
                    .with_resource_type(4)
                    .with_resource_name(s(name))
            };
            let mut r = IncrementalAlterConfigsResponse::default().with_responses(vec![res("1"), res("")]);
            if flexible(1) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::CreatePartitions => {
            use create_partitions_response::*;
            let res = |name: &'static str| {
                CreatePartitionsTopicResult::default()
                    .with_name(TopicName(s(name)))
                    .with_error_code(37)
                    .with_error_message(Some(s("m")))
            };
            let mut r = CreatePartitionsResponse::default().with_results(vec![res("a"), res("bb")]);
            if flexible(2) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::JoinGroup => {
            use join_group_response::*;
            let m = |name: &'static str| {
                JoinGroupResponseMember::default()
                    .with_member_id(s(name))
                    .with_group_instance_id(if v >= 5 { Some(s("i")) } else { None })
                    .with_metadata(bytes::Bytes::from_static(b"meta"))
            };
            let mut r = JoinGroupResponse::default()
                .with_generation_id(3)
                .with_protocol_type(if v >= 7 { Some(s("sr")) } else { None })
                .with_protocol_name(Some(s("v0")))
                .with_leader(s("m1"))
                .with_skip_assignment(v >= 9)
                .with_member_id(s("m1"))
                .with_members(vec![m("m1"), m("m2")]);
            if flexible(6) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::SyncGroup => {
            use sync_group_response::*;
            let mut r = SyncGroupResponse::default()
                .with_protocol_type(if v >= 5 { Some(s("sr")) } else { None })
                .with_protocol_name(if v >= 5 { Some(s("v0")) } else { None })
                .with_assignment(bytes::Bytes::from_static(b"assignment"));
            if flexible(4) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::Heartbeat => {
            use heartbeat_response::*;
            let mut r = HeartbeatResponse::default().with_error_code(27);
            if flexible(4) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::LeaveGroup => {
            use leave_group_response::*;
            let mut r = LeaveGroupResponse::default();
            if v >= 3 {
                let m = |name: &'static str| {
                    MemberResponse::default().with_member_id(s(name)).with_group_instance_id(Some(s("i")))
                };
                r = r.with_members(vec![m("m1"), m("m2")]);
            }
            if flexible(4) {
                r = r.with_unknown_tagged_field(42, extra);
            }
            enc!(r)
        }
        ApiKey::DescribeCluster => {
            use describe_cluster_response::*;
            let b = |id: i32| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(id))
                    .with_host(s("h"))
                    .with_port(9092)
                    .with_rack(Some(s("r")))
                    .with_is_fenced(v >= 2)
            };
            let r = DescribeClusterResponse::default()
                .with_error_message(Some(s("m")))
                .with_cluster_id(s("c"))
                .with_controller_id(BrokerId(1))
                .with_brokers(vec![b(1), b(2)])
                .with_cluster_authorized_operations(8)
                .with_unknown_tagged_field(42, extra);
            enc!(r)
        }
        ApiKey::DescribeQuorum => {
            use describe_quorum_response::*;
            let replica = |id: i32| {
                let mut r = ReplicaState::default().with_replica_id(BrokerId(id)).with_log_end_offset(9);
                if v >= 1 {
                    r = r.with_last_fetch_timestamp(5).with_last_caught_up_timestamp(4);
                }
                if v >= 2 {
                    r = r.with_replica_directory_id(uuid::Uuid::from_u128(id.unsigned_abs().into()));
                }
                r
            };
            let partition = |index: i32| {
                PartitionData::default()
                    .with_partition_index(index)
                    .with_error_message(if v >= 2 { Some(s("m")) } else { None })
                    .with_leader_id(BrokerId(1))
                    .with_leader_epoch(3)
                    .with_high_watermark(9)
                    .with_current_voters(vec![replica(1), replica(2)])
                    .with_observers(vec![replica(3), replica(4)])
            };
            let topic = |name| {
                TopicData::default()
                    .with_topic_name(TopicName(s(name)))
                    .with_partitions(vec![partition(0), partition(1)])
            };
            let mut r = DescribeQuorumResponse::default()
                .with_topics(vec![topic("__cluster_metadata"), topic("b")])
                .with_unknown_tagged_field(42, extra);
            if v >= 2 {
                let l = |name| Listener::default().with_name(s(name)).with_host(s("h")).with_port(9093);
                let n = |id: i32| Node::default().with_node_id(BrokerId(id)).with_listeners(vec![l("A"), l("B")]);
                r = r.with_error_message(Some(s("m"))).with_nodes(vec![n(1), n(2)]);
            }
            enc!(r)
        }
        other => panic!("no sample response for {other:?}"),
    }
    buf.freeze()
}

/// Every response layout at every version `kafka-protocol` encodes.
#[test]
fn every_response_layout_walks_exactly() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;
    let apis = [
        (ApiKey::ApiVersions, ApiVersionsResponse::VERSIONS),
        (ApiKey::Metadata, MetadataResponse::VERSIONS),
        (ApiKey::FindCoordinator, FindCoordinatorResponse::VERSIONS),
        (ApiKey::ListGroups, ListGroupsResponse::VERSIONS),
        (ApiKey::DescribeGroups, DescribeGroupsResponse::VERSIONS),
        (ApiKey::OffsetFetch, OffsetFetchResponse::VERSIONS),
        (ApiKey::ListOffsets, ListOffsetsResponse::VERSIONS),
        (ApiKey::OffsetForLeaderEpoch, OffsetForLeaderEpochResponse::VERSIONS),
        (ApiKey::OffsetCommit, OffsetCommitResponse::VERSIONS),
        (ApiKey::DeleteGroups, DeleteGroupsResponse::VERSIONS),
        (ApiKey::OffsetDelete, OffsetDeleteResponse::VERSIONS),
        (ApiKey::Produce, ProduceResponse::VERSIONS),
        (ApiKey::Fetch, FetchResponse::VERSIONS),
        (ApiKey::CreateTopics, CreateTopicsResponse::VERSIONS),
        (ApiKey::DeleteTopics, DeleteTopicsResponse::VERSIONS),
        (ApiKey::DescribeConfigs, DescribeConfigsResponse::VERSIONS),
        (ApiKey::IncrementalAlterConfigs, IncrementalAlterConfigsResponse::VERSIONS),
        (ApiKey::CreatePartitions, CreatePartitionsResponse::VERSIONS),
        (ApiKey::JoinGroup, JoinGroupResponse::VERSIONS),
        (ApiKey::SyncGroup, SyncGroupResponse::VERSIONS),
        (ApiKey::Heartbeat, HeartbeatResponse::VERSIONS),
        (ApiKey::LeaveGroup, LeaveGroupResponse::VERSIONS),
        (ApiKey::DescribeCluster, DescribeClusterResponse::VERSIONS),
        (ApiKey::DescribeQuorum, DescribeQuorumResponse::VERSIONS),
    ];
    for (key, versions) in apis {
        for v in versions.min..=versions.max {
            let body = sample_response(key, v);
            let (fields, flexible_from) = responses::response_layout(key).expect("layout");
            let mut w =
                Walker { buf: &body, version: v, flexible: v >= flexible_from, elements: 0, elements_max: 1000 };
            w.walk_struct(fields).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
            assert!(w.buf.is_empty(), "{key:?} v{v}: {} bytes left over", w.buf.len());
            for cut in 0..body.len() {
                let _ = check_response(key, v, &body[..cut], 1000);
            }
        }
    }
}

#[test]
fn huge_response_counts_are_refused() {
    // DescribeGroups v0: throttle-less, groups array claiming i32::MAX entries.
    let body = [0x7f, 0xff, 0xff, 0xff, 0x00, 0x00];
    assert!(matches!(check_response(ApiKey::DescribeGroups, 0, &body, 1000), Err(ShapeError::BadLength(..))));
    assert_eq!(check_response(ApiKey::SaslHandshake, 0, &body, 1000), Err(ShapeError::UnknownApi(17)));
    // Consumer assignment: partitions claiming 2^31-1 int32s.
    let body = [0, 0, 0, 1, 0, 1, b't', 0x7f, 0xff, 0xff, 0xff];
    assert!(matches!(check_embedded(Embedded::ConsumerAssignment, 0, &body, 1000), Err(ShapeError::BadLength(..))));
}

/// DescribeTopicPartitions' nullable cursor: absent (-1), present (1), and a
/// body that claims a cursor without the bytes for it.
#[test]
fn describe_topic_partitions_cursor_is_walked() {
    use kafka_protocol::messages::DescribeTopicPartitionsRequest;
    use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
    use kafka_protocol::protocol::Encodable;
    let mut buf = BytesMut::new();
    DescribeTopicPartitionsRequest::default()
        .with_topics(vec![TopicRequest::default()])
        .with_response_partition_limit(5)
        .encode(&mut buf, 0)
        .expect("encode");
    assert!(check_request(ApiKey::DescribeTopicPartitions, 0, &buf, 1000).is_ok());
    // topics [""], limit, cursor marker 1 and no cursor bytes after it
    let truncated = [0x02, 0x01, 0x00, 0, 0, 0, 5, 0x01];
    assert!(matches!(
        check_request(ApiKey::DescribeTopicPartitions, 0, &truncated, 1000),
        Err(ShapeError::Truncated(_))
    ));
    // a cursor whose topic name claims more bytes than are present
    let long_name = [0x01, 0, 0, 0, 5, 0x01, 0x7f, b'a', 0x00];
    assert!(matches!(
        check_request(ApiKey::DescribeTopicPartitions, 0, &long_name, 1000),
        Err(ShapeError::BadLength(..))
    ));
}
