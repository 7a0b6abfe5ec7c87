//! Request headers and typed request bodies.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use crate::apis::supported_api;
use crate::shape::{ShapeError, check_request, is_flexible};

/// The parsed request header (v1 or v2; client_id is never compact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// API key.
    pub api_key: i16,
    /// API version.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// Client id, if sent.
    pub client_id: Option<String>,
}

/// The first eight bytes of every request, readable before anything else.
pub fn peek_header(frame: &[u8]) -> Option<(i16, i16, i32)> {
    if frame.len() < 8 {
        return None;
    }
    Some((
        i16::from_be_bytes([frame[0], frame[1]]),
        i16::from_be_bytes([frame[2], frame[3]]),
        i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    ))
}

/// Why a request could not be decoded. Except for ApiVersions (answered
/// with the v0 fallback), the broker closes the connection, as Kafka does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than a header.
    ShortHeader,
    /// API key this broker does not serve.
    UnsupportedApi(i16),
    /// Version outside the served range.
    UnsupportedVersion {
        /// API key.
        api_key: i16,
        /// Requested version.
        api_version: i16,
    },
    /// The header's client id or tagged fields are malformed.
    BadHeader(&'static str),
    /// The body failed the structural check.
    Shape(ShapeError),
    /// The decoder refused the body.
    Body(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::ShortHeader => f.write_str("request is shorter than its header"),
            DecodeError::UnsupportedApi(k) => {
                write!(f, "api key {k} is not supported by this broker")
            }
            DecodeError::UnsupportedVersion { api_key, api_version } => {
                write!(f, "version {api_version} of api key {api_key} is not supported by this broker")
            }
            DecodeError::BadHeader(why) => write!(f, "malformed request header: {why}"),
            DecodeError::Shape(e) => write!(f, "malformed request body: {e}"),
            DecodeError::Body(e) => write!(f, "malformed request body: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A decoded request body.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Request {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    DeleteRecords(DeleteRecordsRequest),
    InitProducerId(InitProducerIdRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    DescribeConfigs(DescribeConfigsRequest),
    AlterConfigs(AlterConfigsRequest),
    CreatePartitions(CreatePartitionsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    DescribeCluster(DescribeClusterRequest),
    DescribeQuorum(DescribeQuorumRequest),
    ElectLeaders(ElectLeadersRequest),
    DescribeLogDirs(DescribeLogDirsRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    SyncGroup(SyncGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    DescribeGroups(DescribeGroupsRequest),
    ListGroups(ListGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    OffsetDelete(OffsetDeleteRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    ConsumerGroupDescribe(ConsumerGroupDescribeRequest),
    ListConfigResources(ListConfigResourcesRequest),
    DescribeTopicPartitions(DescribeTopicPartitionsRequest),
    AddRaftVoter(AddRaftVoterRequest),
    RemoveRaftVoter(RemoveRaftVoterRequest),
    AlterPartitionReassignments(AlterPartitionReassignmentsRequest),
    ListPartitionReassignments(ListPartitionReassignmentsRequest),
}

/// Parses the header after the first eight bytes: nullable client id, and
/// the tagged fields of header v2. Returns the header and the body offset.
fn parse_header(frame: &[u8], flexible: bool) -> Result<(RequestHeader, usize), DecodeError> {
    let (api_key, api_version, correlation_id) = peek_header(frame).ok_or(DecodeError::ShortHeader)?;
    let mut pos = 8;
    if frame.len() < pos + 2 {
        return Err(DecodeError::BadHeader("missing client id"));
    }
    let len = i16::from_be_bytes([frame[pos], frame[pos + 1]]);
    pos += 2;
    let client_id = match len {
        -1 => None,
        n if n >= 0 && pos + n as usize <= frame.len() => {
            let raw = &frame[pos..pos + n as usize];
            pos += n as usize;
            Some(String::from_utf8_lossy(raw).into_owned())
        }
        _ => return Err(DecodeError::BadHeader("client id length")),
    };
    if flexible {
        let mut rest = &frame[pos..];
        let count = read_uvarint(&mut rest).ok_or(DecodeError::BadHeader("tagged field count"))?;
        for _ in 0..count {
            let _tag = read_uvarint(&mut rest).ok_or(DecodeError::BadHeader("tag"))?;
            let size = read_uvarint(&mut rest).ok_or(DecodeError::BadHeader("tag size"))? as usize;
            if size > rest.len() {
                return Err(DecodeError::BadHeader("tagged field size"));
            }
            rest = &rest[size..];
        }
        pos = frame.len() - rest.len();
    }
    Ok((RequestHeader { api_key, api_version, correlation_id, client_id }, pos))
}

fn read_uvarint(buf: &mut &[u8]) -> Option<u32> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Decodes one request frame (without its size prefix). The body is first
/// checked by [`check_request`] with at most `elements_max` array elements.
pub fn decode_request(frame: Bytes, elements_max: usize) -> Result<(RequestHeader, Request), DecodeError> {
    let (api_key, api_version, _) = peek_header(&frame).ok_or(DecodeError::ShortHeader)?;
    let api = supported_api(api_key).ok_or(DecodeError::UnsupportedApi(api_key))?;
    if api_version < api.min_decodable || api_version > api.max {
        return Err(DecodeError::UnsupportedVersion { api_key, api_version });
    }
    let flexible = is_flexible(api.key, api_version).ok_or(DecodeError::UnsupportedApi(api_key))?;
    let (header, body_at) = parse_header(&frame, flexible)?;
    check_request(api.key, api_version, &frame[body_at..], elements_max).map_err(DecodeError::Shape)?;
    let mut body = frame.slice(body_at..);
    let v = crate::apis::codec_version(api.key, api_version);
    macro_rules! dec {
        ($variant:ident, $ty:ty) => {
            Request::$variant(<$ty>::decode(&mut body, v).map_err(|e| DecodeError::Body(e.to_string()))?)
        };
    }
    let request = match api.key {
        ApiKey::Produce => dec!(Produce, ProduceRequest),
        ApiKey::Fetch => dec!(Fetch, FetchRequest),
        ApiKey::ListOffsets => dec!(ListOffsets, ListOffsetsRequest),
        ApiKey::Metadata => dec!(Metadata, MetadataRequest),
        ApiKey::ApiVersions => dec!(ApiVersions, ApiVersionsRequest),
        ApiKey::CreateTopics => dec!(CreateTopics, CreateTopicsRequest),
        ApiKey::DeleteTopics => dec!(DeleteTopics, DeleteTopicsRequest),
        ApiKey::DeleteRecords => dec!(DeleteRecords, DeleteRecordsRequest),
        ApiKey::InitProducerId => dec!(InitProducerId, InitProducerIdRequest),
        ApiKey::OffsetForLeaderEpoch => dec!(OffsetForLeaderEpoch, OffsetForLeaderEpochRequest),
        ApiKey::DescribeConfigs => dec!(DescribeConfigs, DescribeConfigsRequest),
        ApiKey::AlterConfigs => dec!(AlterConfigs, AlterConfigsRequest),
        ApiKey::CreatePartitions => dec!(CreatePartitions, CreatePartitionsRequest),
        ApiKey::IncrementalAlterConfigs => {
            dec!(IncrementalAlterConfigs, IncrementalAlterConfigsRequest)
        }
        ApiKey::DescribeCluster => dec!(DescribeCluster, DescribeClusterRequest),
        ApiKey::DescribeQuorum => dec!(DescribeQuorum, DescribeQuorumRequest),
        ApiKey::ElectLeaders => dec!(ElectLeaders, ElectLeadersRequest),
        ApiKey::DescribeLogDirs => dec!(DescribeLogDirs, DescribeLogDirsRequest),
        ApiKey::FindCoordinator => dec!(FindCoordinator, FindCoordinatorRequest),
        ApiKey::JoinGroup => dec!(JoinGroup, JoinGroupRequest),
        ApiKey::Heartbeat => dec!(Heartbeat, HeartbeatRequest),
        ApiKey::LeaveGroup => dec!(LeaveGroup, LeaveGroupRequest),
        ApiKey::SyncGroup => dec!(SyncGroup, SyncGroupRequest),
        ApiKey::OffsetCommit => dec!(OffsetCommit, OffsetCommitRequest),
        ApiKey::OffsetFetch => dec!(OffsetFetch, OffsetFetchRequest),
        ApiKey::DescribeGroups => dec!(DescribeGroups, DescribeGroupsRequest),
        ApiKey::ListGroups => dec!(ListGroups, ListGroupsRequest),
        ApiKey::DeleteGroups => dec!(DeleteGroups, DeleteGroupsRequest),
        ApiKey::OffsetDelete => dec!(OffsetDelete, OffsetDeleteRequest),
        ApiKey::ConsumerGroupHeartbeat => dec!(ConsumerGroupHeartbeat, ConsumerGroupHeartbeatRequest),
        ApiKey::ConsumerGroupDescribe => dec!(ConsumerGroupDescribe, ConsumerGroupDescribeRequest),
        ApiKey::ListConfigResources => dec!(ListConfigResources, ListConfigResourcesRequest),
        ApiKey::DescribeTopicPartitions => dec!(DescribeTopicPartitions, DescribeTopicPartitionsRequest),
        ApiKey::AddRaftVoter => dec!(AddRaftVoter, AddRaftVoterRequest),
        ApiKey::RemoveRaftVoter => dec!(RemoveRaftVoter, RemoveRaftVoterRequest),
        ApiKey::AlterPartitionReassignments => dec!(AlterPartitionReassignments, AlterPartitionReassignmentsRequest),
        ApiKey::ListPartitionReassignments => dec!(ListPartitionReassignments, ListPartitionReassignmentsRequest),
        _ => return Err(DecodeError::UnsupportedApi(api_key)),
    };
    Ok((header, request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn frame(api_key: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
        let mut buf = BytesMut::new();
        let header = kafka_protocol::messages::RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(77)
            .with_client_id(Some(StrBytes::from_static_str("rdkafka")));
        kafka_protocol::protocol::encode_request_header_into_buffer(&mut buf, &header).expect("header");
        body.encode(&mut buf, version).expect("body");
        buf.freeze()
    }

    #[test]
    fn decodes_flexible_and_old_versions() {
        for v in [0i16, 4, 9, 12, 13] {
            let req = MetadataRequest::default().with_topics(None);
            let (h, r) = decode_request(frame(ApiKey::Metadata, v, &req), 1000).expect("decode");
            assert_eq!((h.api_version, h.correlation_id, h.client_id.as_deref()), (v, 77, Some("rdkafka")));
            assert!(matches!(r, Request::Metadata(_)));
        }
    }

    #[test]
    fn refuses_unsupported_versions_and_keys() {
        let req = ProduceRequest::default();
        assert_eq!(
            decode_request(frame(ApiKey::Produce, 13, &req), 1000).err(),
            Some(DecodeError::UnsupportedVersion { api_key: 0, api_version: 13 })
        );
        let mut raw = BytesMut::from(&frame(ApiKey::Metadata, 1, &MetadataRequest::default())[..]);
        raw[0..2].copy_from_slice(&999i16.to_be_bytes());
        assert_eq!(decode_request(raw.freeze(), 1000).err(), Some(DecodeError::UnsupportedApi(999)));
    }

    #[test]
    fn allows_trailing_bytes() {
        let mut raw = BytesMut::from(&frame(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None))[..]);
        raw.extend_from_slice(&[0, 0, 0]);
        assert!(decode_request(raw.freeze(), 1000).is_ok());
    }
}
