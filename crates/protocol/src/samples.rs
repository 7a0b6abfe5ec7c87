//! Sample request bodies for every served API at every version, with two
//! elements in each collection. Used by the layout cross-check, the fuzz seed
//! corpus and the broker's "every version gets an answer" test.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic, ReplicaState};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use uuid::Uuid;

fn s(text: &'static str) -> StrBytes {
    StrBytes::from_static_str(text)
}

fn topic(text: &'static str) -> TopicName {
    TopicName(s(text))
}

fn id() -> Uuid {
    Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10)
}

/// Encodes a sample request body of `api_key` at version `v`.
///
/// # Panics
/// For an API this crate does not serve, or a version outside its range.
pub fn sample_body(api_key: ApiKey, v: i16) -> Bytes {
    let mut buf = BytesMut::new();
    macro_rules! enc {
        ($req:expr) => {
            $req.encode(&mut buf, v).unwrap_or_else(|e| panic!("{api_key:?} v{v}: {e}"))
        };
    }
    match api_key {
        ApiKey::ApiVersions => {
            let mut r = ApiVersionsRequest::default();
            if v >= 3 {
                r = r.with_client_software_name(s("librdkafka")).with_client_software_version(s("2.16.1"));
                r = r.with_unknown_tagged_field(42, Bytes::from_static(b"xyz"));
            }
            enc!(r)
        }
        ApiKey::Metadata => {
            let t = |name| {
                let mut t = MetadataRequestTopic::default().with_name(Some(topic(name)));
                if v >= 10 {
                    t = t.with_topic_id(id());
                }
                t
            };
            let mut r = MetadataRequest::default().with_topics(Some(vec![t("a"), t("bb")]));
            if v >= 4 {
                r = r.with_allow_auto_topic_creation(false);
            }
            if (8..=10).contains(&v) {
                r = r.with_include_cluster_authorized_operations(true);
            }
            if v >= 8 {
                r = r.with_include_topic_authorized_operations(true);
            }
            enc!(r)
        }
        ApiKey::Produce => {
            let p = |i| PartitionProduceData::default().with_index(i).with_records(Some(Bytes::from_static(b"batch")));
            let t = |name| {
                let mut t = TopicProduceData::default().with_partition_data(vec![p(0), p(1)]);
                if v >= 13 {
                    t = t.with_topic_id(id())
                } else {
                    t = t.with_name(topic(name))
                }
                t
            };
            enc!(
                ProduceRequest::default()
                    .with_transactional_id(Some(TransactionalId(s("tx"))))
                    .with_acks(-1)
                    .with_timeout_ms(30_000)
                    .with_topic_data(vec![t("a"), t("b")])
            )
        }
        ApiKey::Fetch => {
            let p = |i| {
                let mut p =
                    FetchPartition::default().with_partition(i).with_fetch_offset(5).with_partition_max_bytes(1 << 20);
                if v >= 9 {
                    p = p.with_current_leader_epoch(3);
                }
                if v >= 12 {
                    p = p.with_last_fetched_epoch(2);
                }
                if v >= 5 {
                    p = p.with_log_start_offset(1);
                }
                if v >= 17 {
                    p = p.with_replica_directory_id(id());
                }
                p
            };
            let t = |name| {
                let mut t = FetchTopic::default().with_partitions(vec![p(0), p(1)]);
                if v >= 13 {
                    t = t.with_topic_id(id())
                } else {
                    t = t.with_topic(topic(name))
                }
                t
            };
            let mut r = FetchRequest::default()
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(50 << 20)
                .with_isolation_level(1)
                .with_topics(vec![t("a"), t("b")]);
            if v >= 7 {
                let mut f = ForgottenTopic::default().with_partitions(vec![3, 4]);
                if v >= 13 {
                    f = f.with_topic_id(id())
                } else {
                    f = f.with_topic(topic("gone"))
                }
                r = r.with_session_id(7).with_session_epoch(1).with_forgotten_topics_data(vec![f]);
            }
            if v >= 11 {
                r = r.with_rack_id(s("rack-1"));
            }
            if v >= 12 {
                r = r.with_cluster_id(Some(s("cluster")));
            }
            if v >= 15 {
                r = r.with_replica_state(ReplicaState::default().with_replica_id(BrokerId(-1)).with_replica_epoch(-1));
            } else {
                r = r.with_replica_id(BrokerId(-1));
            }
            enc!(r)
        }
        ApiKey::ListOffsets => {
            let p = |i| {
                let mut p = ListOffsetsPartition::default().with_partition_index(i).with_timestamp(-1);
                if v >= 4 {
                    p = p.with_current_leader_epoch(0);
                }
                p
            };
            let t = |name| ListOffsetsTopic::default().with_name(topic(name)).with_partitions(vec![p(0), p(1)]);
            let mut r = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![t("a"), t("b")]);
            if v >= 2 {
                r = r.with_isolation_level(1);
            }
            if v >= 10 {
                r = r.with_timeout_ms(1000);
            }
            enc!(r)
        }
        ApiKey::InitProducerId => {
            let mut r =
                InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000);
            if v >= 3 {
                r = r.with_producer_id(ProducerId(7)).with_producer_epoch(1);
            }
            enc!(r)
        }
        ApiKey::OffsetForLeaderEpoch => {
            use kafka_protocol::messages::offset_for_leader_epoch_request::*;
            let p = |i| {
                OffsetForLeaderPartition::default().with_partition(i).with_current_leader_epoch(1).with_leader_epoch(0)
            };
            let t = |name| OffsetForLeaderTopic::default().with_topic(topic(name)).with_partitions(vec![p(0), p(1)]);
            let mut r = OffsetForLeaderEpochRequest::default().with_topics(vec![t("a"), t("b")]);
            if v >= 3 {
                r = r.with_replica_id(BrokerId(-1));
            }
            enc!(r)
        }
        ApiKey::CreateTopics => {
            use kafka_protocol::messages::create_topics_request::*;
            let a = |i| {
                CreatableReplicaAssignment::default()
                    .with_partition_index(i)
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2)])
            };
            let c = |k| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s("1")));
            let t = |name| {
                CreatableTopic::default()
                    .with_name(topic(name))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(vec![a(0), a(1)])
                    .with_configs(vec![c("retention.ms"), c("segment.bytes")])
            };
            enc!(
                CreateTopicsRequest::default()
                    .with_topics(vec![t("a"), t("b")])
                    .with_timeout_ms(100)
                    .with_validate_only(true)
            )
        }
        ApiKey::DeleteTopics => {
            let mut r = DeleteTopicsRequest::default().with_timeout_ms(100);
            if v >= 6 {
                let st = |name| DeleteTopicState::default().with_name(Some(topic(name))).with_topic_id(id());
                r = r.with_topics(vec![st("a"), st("b")]);
            } else {
                r = r.with_topic_names(vec![topic("a"), topic("b")]);
            }
            enc!(r)
        }
        ApiKey::CreatePartitions => {
            use kafka_protocol::messages::create_partitions_request::*;
            let a = || CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1), BrokerId(2)]);
            let t = |name| {
                CreatePartitionsTopic::default()
                    .with_name(topic(name))
                    .with_count(4)
                    .with_assignments(Some(vec![a(), a()]))
            };
            enc!(
                CreatePartitionsRequest::default()
                    .with_topics(vec![t("a"), t("b")])
                    .with_timeout_ms(10)
                    .with_validate_only(true)
            )
        }
        ApiKey::DeleteRecords => {
            use kafka_protocol::messages::delete_records_request::*;
            let p = |i| DeleteRecordsPartition::default().with_partition_index(i).with_offset(10);
            let t = |name| DeleteRecordsTopic::default().with_name(topic(name)).with_partitions(vec![p(0), p(1)]);
            enc!(DeleteRecordsRequest::default().with_topics(vec![t("a"), t("b")]).with_timeout_ms(10))
        }
        ApiKey::DescribeConfigs => {
            use kafka_protocol::messages::describe_configs_request::*;
            let res = |name| {
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(name))
                    .with_configuration_keys(Some(vec![s("retention.ms"), s("cleanup.policy")]))
            };
            let mut r =
                DescribeConfigsRequest::default().with_resources(vec![res("a"), res("b")]).with_include_synonyms(true);
            if v >= 3 {
                r = r.with_include_documentation(true);
            }
            enc!(r)
        }
        ApiKey::AlterConfigs => {
            use kafka_protocol::messages::alter_configs_request::*;
            let c = |k| AlterableConfig::default().with_name(s(k)).with_value(Some(s("5")));
            let res = |name| {
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(name))
                    .with_configs(vec![c("x"), c("y")])
            };
            enc!(AlterConfigsRequest::default().with_resources(vec![res("a"), res("b")]).with_validate_only(true))
        }
        ApiKey::IncrementalAlterConfigs => {
            use kafka_protocol::messages::incremental_alter_configs_request::*;
            let c = |k| AlterableConfig::default().with_name(s(k)).with_config_operation(2).with_value(Some(s("5")));
            let res = |name| {
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(name))
                    .with_configs(vec![c("x"), c("y")])
            };
            enc!(
                IncrementalAlterConfigsRequest::default()
                    .with_resources(vec![res("a"), res("b")])
                    .with_validate_only(true)
            )
        }
        ApiKey::DescribeCluster => {
            let mut r = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
            if v >= 1 {
                r = r.with_endpoint_type(1);
            }
            if v >= 2 {
                r = r.with_include_fenced_brokers(true);
            }
            enc!(r)
        }
        ApiKey::DescribeQuorum => {
            use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
            let t = |name| {
                TopicData::default().with_topic_name(topic(name)).with_partitions(vec![
                    PartitionData::default().with_partition_index(0),
                    PartitionData::default().with_partition_index(1),
                ])
            };
            enc!(DescribeQuorumRequest::default().with_topics(vec![t("__cluster_metadata"), t("b")]))
        }
        ApiKey::ElectLeaders => {
            use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
            let t = |name| TopicPartitions::default().with_topic(topic(name)).with_partitions(vec![0, 2]);
            let mut r = ElectLeadersRequest::default()
                .with_topic_partitions(Some(vec![t("a"), t("b")]))
                .with_timeout_ms(30_000);
            if v >= 1 {
                r = r.with_election_type(1);
            }
            enc!(r)
        }
        ApiKey::DescribeLogDirs => {
            use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
            let t = |name| DescribableLogDirTopic::default().with_topic(topic(name)).with_partitions(vec![0, 2]);
            let r = DescribeLogDirsRequest::default().with_topics(Some(vec![t("a"), t("b")]));
            // v0 is v1's layout (see `codec_version`).
            r.encode(&mut buf, v.max(1)).unwrap_or_else(|e| panic!("{api_key:?} v{v}: {e}"))
        }
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default();
            if v <= 3 {
                r = r.with_key(s("group-a"));
            } else {
                r = r.with_coordinator_keys(vec![s("group-a"), s("group-b")]);
            }
            if v >= 1 {
                r = r.with_key_type(0);
            }
            enc!(r)
        }
        ApiKey::JoinGroup => {
            use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
            let p = |name| {
                JoinGroupRequestProtocol::default().with_name(s(name)).with_metadata(Bytes::from_static(b"meta"))
            };
            let mut r = JoinGroupRequest::default()
                .with_group_id(GroupId(s("group-a")))
                .with_session_timeout_ms(10_000)
                .with_member_id(s("member-1"))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![p("range"), p("roundrobin")]);
            if v >= 1 {
                r = r.with_rebalance_timeout_ms(30_000);
            }
            if v >= 5 {
                r = r.with_group_instance_id(Some(s("instance-1")));
            }
            if v >= 8 {
                r = r.with_reason(Some(s("rejoin")));
            }
            enc!(r)
        }
        ApiKey::Heartbeat => {
            let mut r = HeartbeatRequest::default()
                .with_group_id(GroupId(s("group-a")))
                .with_generation_id(3)
                .with_member_id(s("member-1"));
            if v >= 3 {
                r = r.with_group_instance_id(Some(s("instance-1")));
            }
            enc!(r)
        }
        ApiKey::LeaveGroup => {
            use kafka_protocol::messages::leave_group_request::MemberIdentity;
            let mut r = LeaveGroupRequest::default().with_group_id(GroupId(s("group-a")));
            if v <= 2 {
                r = r.with_member_id(s("member-1"));
            } else {
                let m = |id| {
                    let mut m =
                        MemberIdentity::default().with_member_id(s(id)).with_group_instance_id(Some(s("instance-1")));
                    if v >= 5 {
                        m = m.with_reason(Some(s("bye")));
                    }
                    m
                };
                r = r.with_members(vec![m("member-1"), m("member-2")]);
            }
            enc!(r)
        }
        ApiKey::SyncGroup => {
            use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
            let a = |id| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(s(id))
                    .with_assignment(Bytes::from_static(b"assigned"))
            };
            let mut r = SyncGroupRequest::default()
                .with_group_id(GroupId(s("group-a")))
                .with_generation_id(3)
                .with_member_id(s("member-1"))
                .with_assignments(vec![a("member-1"), a("member-2")]);
            if v >= 3 {
                r = r.with_group_instance_id(Some(s("instance-1")));
            }
            if v >= 5 {
                r = r.with_protocol_type(Some(s("consumer"))).with_protocol_name(Some(s("range")));
            }
            enc!(r)
        }
        ApiKey::OffsetCommit => {
            use kafka_protocol::messages::offset_commit_request::{
                OffsetCommitRequestPartition, OffsetCommitRequestTopic,
            };
            let p = |i| {
                let mut p = OffsetCommitRequestPartition::default()
                    .with_partition_index(i)
                    .with_committed_offset(42)
                    .with_committed_metadata(Some(s("meta")));
                if v >= 6 {
                    p = p.with_committed_leader_epoch(1);
                }
                p
            };
            let t = |name| OffsetCommitRequestTopic::default().with_name(topic(name)).with_partitions(vec![p(0), p(1)]);
            let mut r = OffsetCommitRequest::default()
                .with_group_id(GroupId(s("group-a")))
                .with_generation_id_or_member_epoch(3)
                .with_member_id(s("member-1"))
                .with_topics(vec![t("a"), t("b")]);
            if v >= 7 {
                r = r.with_group_instance_id(Some(s("instance-1")));
            }
            if v <= 4 {
                r = r.with_retention_time_ms(-1);
            }
            enc!(r)
        }
        ApiKey::OffsetFetch => {
            use kafka_protocol::messages::offset_fetch_request::{
                OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
            };
            let mut r = OffsetFetchRequest::default();
            if v <= 7 {
                let t =
                    |name| OffsetFetchRequestTopic::default().with_name(topic(name)).with_partition_indexes(vec![0, 1]);
                r = r.with_group_id(GroupId(s("group-a"))).with_topics(Some(vec![t("a"), t("b")]));
            } else {
                let t = |name| {
                    OffsetFetchRequestTopics::default().with_name(topic(name)).with_partition_indexes(vec![0, 1])
                };
                let g = |name| {
                    let mut g = OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(s(name)))
                        .with_topics(Some(vec![t("a"), t("b")]));
                    if v >= 9 {
                        g = g.with_member_id(Some(s("member-1"))).with_member_epoch(3);
                    }
                    g
                };
                r = r.with_groups(vec![g("group-a"), g("group-b")]);
            }
            if v >= 7 {
                r = r.with_require_stable(true);
            }
            enc!(r)
        }
        ApiKey::DescribeGroups => {
            let mut r =
                DescribeGroupsRequest::default().with_groups(vec![GroupId(s("group-a")), GroupId(s("group-b"))]);
            if v >= 3 {
                r = r.with_include_authorized_operations(true);
            }
            enc!(r)
        }
        ApiKey::ListGroups => {
            let mut r = ListGroupsRequest::default();
            if v >= 4 {
                r = r.with_states_filter(vec![s("Stable"), s("Empty")]);
            }
            if v >= 5 {
                r = r.with_types_filter(vec![s("classic"), s("consumer")]);
            }
            enc!(r)
        }
        ApiKey::DeleteGroups => {
            enc!(DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("group-a")), GroupId(s("group-b"))]))
        }
        ApiKey::OffsetDelete => {
            use kafka_protocol::messages::offset_delete_request::{
                OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
            };
            let p = |i| OffsetDeleteRequestPartition::default().with_partition_index(i);
            let t = |name| OffsetDeleteRequestTopic::default().with_name(topic(name)).with_partitions(vec![p(0), p(1)]);
            enc!(OffsetDeleteRequest::default().with_group_id(GroupId(s("group-a"))).with_topics(vec![t("a"), t("b")]))
        }
        ApiKey::ConsumerGroupHeartbeat => {
            use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
            let tp = TopicPartitions::default().with_topic_id(id()).with_partitions(vec![0, 1]);
            let mut r = ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s("group-a")))
                .with_member_id(s("member-a"))
                .with_member_epoch(3)
                .with_instance_id(Some(s("instance-a")))
                .with_rack_id(Some(s("rack-a")))
                .with_rebalance_timeout_ms(300_000)
                .with_subscribed_topic_names(Some(vec![topic("a"), topic("b")]))
                .with_server_assignor(Some(s("uniform")))
                .with_topic_partitions(Some(vec![tp.clone(), tp]));
            if v >= 1 {
                r = r.with_subscribed_topic_regex(Some(s("^a.*")));
            }
            enc!(r)
        }
        ApiKey::ConsumerGroupDescribe => enc!(
            ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![GroupId(s("group-a")), GroupId(s("group-b"))])
                .with_include_authorized_operations(true)
        ),
        ApiKey::ListConfigResources => {
            let mut r = ListConfigResourcesRequest::default();
            if v >= 1 {
                r = r.with_resource_types(vec![2, 4]);
            }
            enc!(r)
        }
        ApiKey::DescribeTopicPartitions => {
            use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
            let t = |name| TopicRequest::default().with_name(topic(name));
            enc!(
                DescribeTopicPartitionsRequest::default()
                    .with_topics(vec![t("a"), t("b")])
                    .with_response_partition_limit(3)
                    .with_cursor(Some(Cursor::default().with_topic_name(topic("a")).with_partition_index(1)))
            )
        }
        ApiKey::AddRaftVoter => {
            use kafka_protocol::messages::add_raft_voter_request::Listener;
            let listener = |name, port| Listener::default().with_name(s(name)).with_host(s("ctl-4")).with_port(port);
            enc!(
                AddRaftVoterRequest::default()
                    .with_cluster_id(Some(s("MkU3OEVBNTcwNTJENDM2Qg")))
                    .with_timeout_ms(30_000)
                    .with_voter_id(4)
                    .with_voter_directory_id(id())
                    .with_listeners(vec![listener("CONTROLLER", 9093), listener("OTHER", 65535)])
            )
        }
        ApiKey::RemoveRaftVoter => {
            enc!(RemoveRaftVoterRequest::default().with_cluster_id(None).with_voter_id(2).with_voter_directory_id(id()))
        }
        ApiKey::AlterPartitionReassignments => {
            use kafka_protocol::messages::alter_partition_reassignments_request::{
                ReassignablePartition, ReassignableTopic,
            };
            let part = |i, replicas: Option<Vec<i32>>| {
                ReassignablePartition::default()
                    .with_partition_index(i)
                    .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
            };
            let t = |name| ReassignableTopic::default().with_name(topic(name));
            let mut r = AlterPartitionReassignmentsRequest::default().with_timeout_ms(30_000).with_topics(vec![
                t("a").with_partitions(vec![part(0, Some(vec![1, 2])), part(1, None)]),
                t("b").with_partitions(vec![part(0, Some(vec![3])), part(2, Some(vec![]))]),
            ]);
            if v >= 1 {
                r = r.with_allow_replication_factor_change(false);
            }
            enc!(r)
        }
        ApiKey::ListPartitionReassignments => {
            use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
            let t = |name| ListPartitionReassignmentsTopics::default().with_name(topic(name));
            enc!(ListPartitionReassignmentsRequest::default().with_timeout_ms(30_000).with_topics(Some(vec![
                t("a").with_partition_indexes(vec![0, 1]),
                t("b").with_partition_indexes(vec![]),
            ])))
        }
        other => panic!("no sample for {other:?}"),
    }
    buf.freeze()
}
