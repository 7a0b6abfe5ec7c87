//! Fetch responses with records that stay where they are.
//!
//! A Fetch response is mostly record bytes the broker already has on disk.
//! Encoding it through the generic encoder would copy every batch into one
//! buffer the size of the response (up to `fetch.max.bytes`, 50 MiB by
//! default). [`encode_fetch_response`] instead writes every field except the
//! records into small buffers and leaves a [`Part::Records`] hole for each
//! partition's records, so the connection can send them straight from the
//! segment file. Records a [`RecordsSource`] holds in memory (short reads)
//! are copied inline so small responses stay one write.
//!
//! The bytes on the wire are exactly those the generic encoder produces for
//! the same response (the tests compare them at every version).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::protocol::Encodable;

use crate::response::EncodeError;

/// Lowest and highest Fetch versions this encoder writes.
pub const FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 4..=17;

/// One partition's records, as the encoder sees them.
pub trait RecordsSource {
    /// Exact number of bytes the records occupy on the wire.
    fn len(&self) -> usize;
    /// Whether there are no record bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The bytes, if they are in memory (then they are copied inline).
    fn in_memory(&self) -> Option<&[u8]>;
}

impl RecordsSource for Bytes {
    fn len(&self) -> usize {
        Bytes::len(self)
    }
    fn in_memory(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// A piece of an encoded response frame, sent in order.
#[derive(Debug, Clone)]
pub enum Part<R> {
    /// Encoded fields (the first part starts with the frame's size prefix).
    Bytes(Bytes),
    /// Record bytes the sender copies from their source.
    Records(R),
}

impl<R: RecordsSource> Part<R> {
    /// Bytes this part puts on the wire.
    pub fn len(&self) -> usize {
        match self {
            Part::Bytes(b) => b.len(),
            Part::Records(r) => r.len(),
        }
    }

    /// Whether this part puts nothing on the wire.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds the list of parts, cutting the current buffer at every hole.
struct Parts<R> {
    /// The first encoded piece (it starts with the size prefix), once cut.
    head: Option<BytesMut>,
    done: Vec<Part<R>>,
    current: BytesMut,
    /// Bytes in `head`, `done` and holes so far.
    total: usize,
}

impl<R: RecordsSource> Parts<R> {
    fn records(&mut self, records: R) {
        match records.in_memory() {
            Some(bytes) => self.current.put_slice(bytes),
            None => {
                self.cut();
                self.total += records.len();
                self.done.push(Part::Records(records));
            }
        }
    }

    fn cut(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let piece = self.current.split();
        self.total += piece.len();
        match self.head {
            None => self.head = Some(piece),
            Some(_) => self.done.push(Part::Bytes(piece.freeze())),
        }
    }

    fn finish(mut self) -> Result<Vec<Part<R>>, EncodeError> {
        self.cut();
        let size = i32::try_from(self.total - 4)
            .map_err(|_| EncodeError(format!("a fetch response of {} bytes is too large for a frame", self.total)))?;
        // The size prefix is the first thing written, so `head` always holds it.
        let mut head = self.head.unwrap_or_default();
        if let Some(prefix) = head.get_mut(0..4) {
            prefix.copy_from_slice(&size.to_be_bytes());
        }
        let mut parts = Vec::with_capacity(self.done.len() + 1);
        parts.push(Part::Bytes(head.freeze()));
        parts.extend(self.done);
        Ok(parts)
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn uvarint_len(mut v: u32) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_array_len(buf: &mut BytesMut, flexible: bool, len: Option<usize>) -> Result<(), EncodeError> {
    let too_long = |n: usize| EncodeError(format!("array of {n} elements is too long to encode"));
    match (flexible, len) {
        (true, None) => put_uvarint(buf, 0),
        (true, Some(n)) => put_uvarint(buf, u32::try_from(n + 1).map_err(|_| too_long(n))?),
        (false, None) => buf.put_i32(-1),
        (false, Some(n)) => buf.put_i32(i32::try_from(n).map_err(|_| too_long(n))?),
    }
    Ok(())
}

fn put_struct<T: Encodable>(buf: &mut BytesMut, value: &T, version: i16) -> Result<(), EncodeError> {
    value.encode(buf, version).map_err(|e| EncodeError(e.to_string()))
}

fn struct_size<T: Encodable>(value: &T, version: i16) -> Result<u32, EncodeError> {
    let size = value.compute_size(version).map_err(|e| EncodeError(e.to_string()))?;
    u32::try_from(size).map_err(|_| EncodeError(format!("tagged field of {size} bytes is too large")))
}

fn put_tagged<T: Encodable>(buf: &mut BytesMut, tag: u32, value: &T, version: i16) -> Result<(), EncodeError> {
    put_uvarint(buf, tag);
    put_uvarint(buf, struct_size(value, version)?);
    put_struct(buf, value, version)
}

fn partition_fields<R: RecordsSource>(
    parts: &mut Parts<R>,
    p: &PartitionData,
    records: Option<R>,
    version: i16,
) -> Result<(), EncodeError> {
    let flexible = version >= 12;
    let buf = &mut parts.current;
    buf.put_i32(p.partition_index);
    buf.put_i16(p.error_code);
    buf.put_i64(p.high_watermark);
    buf.put_i64(p.last_stable_offset);
    if version >= 5 {
        buf.put_i64(p.log_start_offset);
    }
    put_array_len(buf, flexible, p.aborted_transactions.as_ref().map(Vec::len))?;
    for aborted in p.aborted_transactions.iter().flatten() {
        put_struct(buf, aborted, version)?;
    }
    if version >= 11 {
        buf.put_i32(p.preferred_read_replica.0);
    } else if p.preferred_read_replica.0 != -1 {
        return Err(EncodeError(format!("preferred_read_replica needs Fetch v11, not v{version}")));
    }
    let len = records.as_ref().map(RecordsSource::len);
    match (flexible, len) {
        (true, None) => put_uvarint(buf, 0),
        (true, Some(n)) => {
            put_uvarint(buf, u32::try_from(n + 1).map_err(|_| EncodeError(format!("{n} record bytes")))?)
        }
        (false, None) => buf.put_i32(-1),
        (false, Some(n)) => buf.put_i32(i32::try_from(n).map_err(|_| EncodeError(format!("{n} record bytes")))?),
    }
    if let Some(records) = records {
        parts.records(records);
    }
    if flexible {
        let buf = &mut parts.current;
        let diverging = p.diverging_epoch != Default::default();
        let leader = p.current_leader != Default::default();
        let snapshot = p.snapshot_id != Default::default();
        put_uvarint(buf, u32::from(diverging) + u32::from(leader) + u32::from(snapshot));
        if diverging {
            put_tagged(buf, 0, &p.diverging_epoch, version)?;
        }
        if leader {
            put_tagged(buf, 1, &p.current_leader, version)?;
        }
        if snapshot {
            put_tagged(buf, 2, &p.snapshot_id, version)?;
        }
    }
    Ok(())
}

/// Encodes a whole Fetch response frame (size prefix, header, body) at
/// `version`. Partition `i` (counting across topics, in order) takes its
/// records from `records[i]`; the `records` fields in `body` are ignored.
/// Unknown tagged fields are not written (the broker never sets any).
pub fn encode_fetch_response<R: RecordsSource>(
    version: i16,
    correlation_id: i32,
    body: &FetchResponse,
    records: Vec<Option<R>>,
) -> Result<Vec<Part<R>>, EncodeError> {
    if !FETCH_VERSIONS.contains(&version) {
        return Err(EncodeError(format!("Fetch v{version} is not served")));
    }
    let expected: usize = body.responses.iter().map(|t| t.partitions.len()).sum();
    if records.len() != expected {
        return Err(EncodeError(format!("{} record sources for {expected} partitions", records.len())));
    }
    let flexible = version >= 12;
    let mut parts = Parts { head: None, done: Vec::new(), current: BytesMut::with_capacity(256), total: 0 };
    let buf = &mut parts.current;
    buf.put_i32(0); // size, patched in finish()
    buf.put_i32(correlation_id);
    if flexible {
        buf.put_u8(0); // response header v1: no tagged fields
    }
    buf.put_i32(body.throttle_time_ms);
    if version >= 7 {
        buf.put_i16(body.error_code);
        buf.put_i32(body.session_id);
    } else if body.session_id != 0 {
        return Err(EncodeError(format!("session_id needs Fetch v7, not v{version}")));
    }
    put_array_len(buf, flexible, Some(body.responses.len()))?;
    let mut records = records.into_iter();
    for topic in &body.responses {
        let buf = &mut parts.current;
        if version <= 12 {
            let name = topic.topic.0.as_bytes();
            if flexible {
                put_uvarint(buf, u32::try_from(name.len() + 1).map_err(|_| EncodeError("topic name".into()))?);
            } else {
                buf.put_i16(i16::try_from(name.len()).map_err(|_| EncodeError("topic name too long".into()))?);
            }
            buf.put_slice(name);
        }
        if version >= 13 {
            buf.put_slice(topic.topic_id.as_bytes());
        }
        put_array_len(buf, flexible, Some(topic.partitions.len()))?;
        for partition in &topic.partitions {
            partition_fields(&mut parts, partition, records.next().flatten(), version)?;
        }
        if flexible {
            put_uvarint(&mut parts.current, 0); // topic: no tagged fields
        }
    }
    if flexible {
        let buf = &mut parts.current;
        if version >= 16 && !body.node_endpoints.is_empty() {
            let mut size = uvarint_len(body.node_endpoints.len() as u32 + 1);
            for node in &body.node_endpoints {
                size += struct_size(node, version)? as usize;
            }
            put_uvarint(buf, 1); // one tagged field: node_endpoints, tag 0
            put_uvarint(buf, 0);
            put_uvarint(buf, u32::try_from(size).map_err(|_| EncodeError("node endpoints too large".into()))?);
            put_array_len(buf, true, Some(body.node_endpoints.len()))?;
            for node in &body.node_endpoints {
                put_struct(buf, node, version)?;
            }
        } else {
            put_uvarint(buf, 0);
        }
    }
    parts.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode_response;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    /// Records kept out of line, standing in for a file region.
    #[derive(Debug, Clone)]
    struct OutOfLine(Bytes);

    impl RecordsSource for OutOfLine {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn in_memory(&self) -> Option<&[u8]> {
            None
        }
    }

    fn sample(version: i16) -> FetchResponse {
        let partition = |index: i32, records: Option<&'static [u8]>| {
            let mut p = PartitionData::default()
                .with_partition_index(index)
                .with_error_code(if records.is_none() { 1 } else { 0 })
                .with_high_watermark(1000 + i64::from(index))
                .with_last_stable_offset(900)
                .with_log_start_offset(if version >= 5 { 7 } else { -1 })
                .with_aborted_transactions(if index == 1 {
                    None
                } else {
                    Some(vec![
                        AbortedTransaction::default()
                            .with_producer_id(kafka_protocol::messages::ProducerId(5))
                            .with_first_offset(6),
                    ])
                })
                .with_records(records.map(Bytes::from_static));
            if version >= 11 {
                p = p.with_preferred_read_replica(BrokerId(index));
            }
            if version >= 12 && index == 2 {
                p = p
                    .with_diverging_epoch(EpochEndOffset::default().with_epoch(3).with_end_offset(44))
                    .with_current_leader(LeaderIdAndEpoch::default().with_leader_id(BrokerId(1)).with_leader_epoch(9));
            }
            p
        };
        let topic = |name: &str, id: u128| {
            let mut t = FetchableTopicResponse::default().with_partitions(vec![
                partition(0, Some(b"first records")),
                partition(1, None),
                partition(2, Some(b"")),
                partition(3, Some(&[7u8; 300])),
            ]);
            if version <= 12 {
                t = t.with_topic(TopicName(StrBytes::from_string(name.to_string())));
            }
            if version >= 13 {
                t = t.with_topic_id(uuid::Uuid::from_u128(id));
            }
            t
        };
        let mut body = FetchResponse::default()
            .with_throttle_time_ms(12)
            .with_responses(vec![topic("orders", 1), topic("payments", 2)]);
        if version >= 7 {
            body = body.with_error_code(0).with_session_id(0);
        }
        if version >= 16 {
            body = body.with_node_endpoints(vec![
                NodeEndpoint::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("localhost"))
                    .with_port(9092),
            ]);
        }
        body
    }

    fn flatten<R: RecordsSource + Clone>(parts: &[Part<R>], materialize: impl Fn(&R) -> Bytes) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            match part {
                Part::Bytes(b) => out.extend_from_slice(b),
                Part::Records(r) => out.extend_from_slice(&materialize(r)),
            }
        }
        out
    }

    #[test]
    fn same_bytes_as_the_generic_encoder_at_every_version() {
        for version in FETCH_VERSIONS {
            let body = sample(version);
            let expected = encode_response(ApiKey::Fetch, version, 77, &body).expect("generic encode");
            let sources: Vec<Option<Bytes>> =
                body.responses.iter().flat_map(|t| t.partitions.iter().map(|p| p.records.clone())).collect();
            let inline = encode_fetch_response(version, 77, &body, sources.clone()).expect("encode inline");
            assert_eq!(inline.len(), 1, "in-memory records make one part (v{version})");
            assert_eq!(flatten(&inline, |b| b.clone()), expected.to_vec(), "inline v{version}");

            let holes: Vec<Option<OutOfLine>> = sources.into_iter().map(|s| s.map(OutOfLine)).collect();
            let parts = encode_fetch_response(version, 77, &body, holes).expect("encode with holes");
            let record_parts = parts.iter().filter(|p| matches!(p, Part::Records(_))).count();
            assert_eq!(record_parts, 6, "one hole per non-null records field (v{version})");
            assert_eq!(flatten(&parts, |r| r.0.clone()), expected.to_vec(), "holes v{version}");
            let size: usize = parts.iter().map(Part::len).sum();
            assert_eq!(size, expected.len());
        }
    }

    #[test]
    fn record_count_must_match_partitions() {
        let body = sample(12);
        assert!(encode_fetch_response::<Bytes>(12, 1, &body, vec![None]).is_err());
        assert!(encode_fetch_response::<Bytes>(3, 1, &FetchResponse::default(), vec![]).is_err());
    }
}
