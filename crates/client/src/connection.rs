//! One TCP connection to one broker.
//!
//! ```text
//! connect ──▶ ApiVersions (v4; on UNSUPPORTED_VERSION retry at the broker's max) ──▶ version table
//! call(request, v) ──▶ [i32 size][header: key, v, correlation id, client id][body]
//!                  ◀── [i32 size ≤ response_bytes_max][header][body]
//!                      correlation id must match; check_response walks the body; then decode at v
//! ```
//!
//! One request is in flight at a time. Each exchange has a deadline; a
//! timeout or IO error leaves the stream in an unknown state, so the
//! connection marks itself broken and the owner opens a new one.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{
    Decodable, Encodable, Message, Request, StrBytes, VersionRange, encode_request_header_into_buffer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tributary_protocol::ErrorCode;
use tributary_protocol::shape::check_response;

use crate::error::{ClientError, KafkaError};

/// Most array elements one response may hold in total; every element must
/// also be backed by bytes of the frame.
const RESPONSE_ELEMENTS_MAX: usize = 10_000_000;

/// How the client connects and how long it waits.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` addresses to try first, in order.
    pub bootstrap: Vec<String>,
    /// Sent in every request header; brokers log it and show it in group descriptions.
    pub client_id: String,
    /// Longest wait for a connection or for one response, and the budget for retries of one operation.
    pub timeout: Duration,
    /// Largest response frame accepted; a larger size prefix is refused before any buffer is allocated.
    pub response_bytes_max: usize,
}

impl ClientConfig {
    /// Defaults for a comma-separated bootstrap list: client id
    /// `tributary-client`, 10 s timeout, 100 MiB responses.
    pub fn new(bootstrap: &str) -> ClientConfig {
        ClientConfig {
            bootstrap: bootstrap.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
            client_id: "tributary-client".to_string(),
            timeout: Duration::from_secs(10),
            response_bytes_max: 100 * 1024 * 1024,
        }
    }
}

/// Versions this client builds requests for. A version is listed only when
/// the request builders in this crate fill it in and a response layout exists.
pub fn client_versions(key: ApiKey) -> Option<VersionRange> {
    let (min, max) = match key {
        ApiKey::ApiVersions => (0, 4),
        ApiKey::Metadata => (1, 13),
        ApiKey::FindCoordinator => (0, 6),
        ApiKey::ListGroups => (0, 5),
        ApiKey::DescribeGroups => (0, 6),
        ApiKey::OffsetFetch => (2, 9),
        ApiKey::ListOffsets => (1, 10),
        ApiKey::OffsetCommit => (2, 9),
        ApiKey::DeleteGroups => (0, 2),
        ApiKey::OffsetDelete => (0, 0),
        ApiKey::CreateTopics => (2, 7),
        ApiKey::DeleteTopics => (1, 6),
        ApiKey::CreatePartitions => (0, 3),
        ApiKey::DescribeConfigs => (1, 4),
        ApiKey::IncrementalAlterConfigs => (0, 1),
        ApiKey::DescribeCluster => (0, 2),
        ApiKey::DescribeQuorum => (0, 2),
        ApiKey::ElectLeaders => (0, 2),
        ApiKey::AlterPartitionReassignments => (0, 1),
        ApiKey::ListPartitionReassignments => (0, 0),
        // v4 adds the directory's total and usable bytes; the top-level error is v3+.
        ApiKey::DescribeLogDirs => (1, 4),
        // Topic ids replace names from Produce v13 and Fetch v13; this client names topics.
        ApiKey::Produce => (3, 12),
        ApiKey::Fetch => (4, 12),
        // v3+ names the asking replica; brokers send it to their leaders.
        ApiKey::OffsetForLeaderEpoch => (3, 4),
        ApiKey::JoinGroup => (0, 9),
        ApiKey::SyncGroup => (0, 5),
        ApiKey::Heartbeat => (0, 4),
        ApiKey::LeaveGroup => (0, 5),
        _ => return None,
    };
    Some(VersionRange { min, max })
}

/// A TCP stream to `addr`, bound to `local_host` when it is given and of
/// the same address family as the target.
async fn open_stream(addr: &str, local_host: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let Some(local_host) = local_host else {
        return TcpStream::connect(addr).await;
    };
    let target = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr} resolves to nothing")))?;
    let socket = if target.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    if local_host.is_ipv4() == target.is_ipv4() {
        socket.bind(std::net::SocketAddr::new(local_host, 0))?;
    }
    socket.connect(target).await
}

/// A negotiated connection to one broker.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    stream: TcpStream,
    client_id: String,
    timeout: Duration,
    response_bytes_max: usize,
    next_correlation_id: i32,
    /// API key → versions the broker advertised.
    broker_versions: BTreeMap<i16, VersionRange>,
    broken: bool,
}

impl Connection {
    /// Connects to `addr` and negotiates API versions.
    pub async fn connect(addr: &str, config: &ClientConfig) -> Result<Connection, ClientError> {
        Connection::connect_from(addr, None, config).await
    }

    /// Connects to `addr` from `local_host` (port chosen by the system) when
    /// given, and negotiates API versions: a broker's own connections to its
    /// peers leave from the node's own address, as its other inter-node
    /// traffic does.
    pub async fn connect_from(
        addr: &str,
        local_host: Option<std::net::IpAddr>,
        config: &ClientConfig,
    ) -> Result<Connection, ClientError> {
        let stream = match tokio::time::timeout(config.timeout, open_stream(addr, local_host)).await {
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr: addr.to_string(),
                    api: "connect".to_string(),
                    timeout: config.timeout,
                });
            }
            Ok(Err(source)) => return Err(ClientError::Connect { addr: addr.to_string(), source }),
            Ok(Ok(stream)) => stream,
        };
        // Small requests, one at a time: do not wait for more bytes to fill a segment.
        let _ = stream.set_nodelay(true);
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            client_id: config.client_id.clone(),
            timeout: config.timeout,
            response_bytes_max: config.response_bytes_max,
            next_correlation_id: 1,
            broker_versions: BTreeMap::new(),
            broken: false,
        };
        conn.negotiate().await?;
        Ok(conn)
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether an earlier failure left the stream unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The versions of `key` the broker advertised, if any.
    pub fn broker_versions(&self, key: ApiKey) -> Option<VersionRange> {
        self.broker_versions.get(&(key as i16)).copied()
    }

    /// The highest version of `key` both this client and the broker support.
    pub fn version(&self, key: ApiKey) -> Result<i16, ClientError> {
        let ours = client_versions(key).ok_or_else(|| ClientError::Unsupported {
            addr: self.addr.clone(),
            detail: format!("this client does not send {key:?} requests"),
        })?;
        let theirs = self.broker_versions(key).ok_or_else(|| ClientError::Unsupported {
            addr: self.addr.clone(),
            detail: format!("the broker does not support {key:?} (API key {})", key as i16),
        })?;
        let both = ours.intersect(&theirs);
        if both.is_empty() {
            return Err(ClientError::Unsupported {
                addr: self.addr.clone(),
                detail: format!(
                    "no version of {key:?} is supported by both sides: the broker serves v{theirs}, this client v{ours}"
                ),
            });
        }
        Ok(both.max)
    }

    /// Sends `request` at `version` and decodes the response.
    pub async fn call<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, ClientError> {
        let timeout = self.timeout;
        self.call_within(request, version, timeout).await
    }

    /// As [`Connection::call`], waiting up to `timeout` for the answer: for
    /// requests the broker holds on purpose (a JoinGroup waiting for the
    /// rebalance, a Fetch waiting for data).
    pub async fn call_within<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let key = api_key(R::KEY, &self.addr)?;
        let mut body = BytesMut::new();
        request.encode(&mut body, version).map_err(|e| ClientError::Unsupported {
            addr: self.addr.clone(),
            detail: format!("cannot encode {key:?} v{version}: {e}"),
        })?;
        let response = self.exchange(key, version, &body, timeout).await?;
        self.decode::<R::Response>(key, version, response)
    }

    fn decode<T: Decodable>(&self, key: ApiKey, version: i16, mut body: Bytes) -> Result<T, ClientError> {
        let malformed = |detail: String| ClientError::Malformed { addr: self.addr.clone(), api: name(key), detail };
        check_response(key, version, &body, RESPONSE_ELEMENTS_MAX).map_err(|e| malformed(e.to_string()))?;
        T::decode(&mut body, version).map_err(|e| malformed(e.to_string()))
    }

    /// Sends `request` at `version` without waiting for an answer: for a
    /// Produce with acks=0, which the broker never answers.
    pub async fn send_only<R: Request>(&mut self, request: &R, version: i16) -> Result<(), ClientError> {
        let key = api_key(R::KEY, &self.addr)?;
        let mut body = BytesMut::new();
        request.encode(&mut body, version).map_err(|e| ClientError::Unsupported {
            addr: self.addr.clone(),
            detail: format!("cannot encode {key:?} v{version}: {e}"),
        })?;
        if self.broken {
            return Err(ClientError::Io {
                addr: self.addr.clone(),
                api: name(key),
                source: std::io::Error::other("an earlier request on this connection failed"),
            });
        }
        let (frame, _) = self.frame(key, version, &body)?;
        self.broken = true;
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.stream.write_all(&frame)).await {
            Err(_) => Err(ClientError::Timeout { addr: self.addr.clone(), api: name(key), timeout }),
            Ok(Err(source)) => Err(ClientError::Io { addr: self.addr.clone(), api: name(key), source }),
            Ok(Ok(())) => {
                self.broken = false;
                Ok(())
            }
        }
    }

    /// A request frame (size, header, body) and its correlation id.
    fn frame(&mut self, key: ApiKey, version: i16, body: &[u8]) -> Result<(BytesMut, i32), ClientError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1).max(1);
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut frame = BytesMut::with_capacity(4 + 64 + body.len());
        frame.put_i32(0);
        encode_request_header_into_buffer(&mut frame, &header).map_err(|e| ClientError::Unsupported {
            addr: self.addr.clone(),
            detail: format!("cannot encode the {key:?} v{version} request header: {e}"),
        })?;
        frame.extend_from_slice(body);
        let size = i32::try_from(frame.len() - 4).map_err(|_| {
            ClientError::Refused(format!("{key:?} request of {} bytes is too large to send", frame.len()))
        })?;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        Ok((frame, correlation_id))
    }

    /// Writes one request frame and reads its response; returns the body after the response header.
    async fn exchange(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        if self.broken {
            return Err(ClientError::Io {
                addr: self.addr.clone(),
                api: name(key),
                source: std::io::Error::other("an earlier request on this connection failed"),
            });
        }
        let (frame, correlation_id) = self.frame(key, version, body)?;

        // Until the response is read in full, a cancelled or failed exchange leaves the stream mid-frame.
        self.broken = true;
        let response = match tokio::time::timeout(timeout, self.write_and_read(&frame, key)).await {
            Err(_) => return Err(ClientError::Timeout { addr: self.addr.clone(), api: name(key), timeout }),
            Ok(result) => result?,
        };
        let mut response = Bytes::from(response);
        let header = ResponseHeader::decode(&mut response, key.response_header_version(version)).map_err(|e| {
            ClientError::Malformed { addr: self.addr.clone(), api: name(key), detail: format!("response header: {e}") }
        })?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::Malformed {
                addr: self.addr.clone(),
                api: name(key),
                detail: format!("correlation id {} answers request {correlation_id}", header.correlation_id),
            });
        }
        self.broken = false;
        Ok(response)
    }

    async fn write_and_read(&mut self, frame: &[u8], key: ApiKey) -> Result<Vec<u8>, ClientError> {
        let io =
            |source: std::io::Error, addr: &str| ClientError::Io { addr: addr.to_string(), api: name(key), source };
        self.stream.write_all(frame).await.map_err(|e| io(e, &self.addr))?;
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix).await.map_err(|e| io(e, &self.addr))?;
        let size = i32::from_be_bytes(prefix);
        // The smallest response is a bare correlation id.
        if size < 4 {
            return Err(ClientError::Malformed {
                addr: self.addr.clone(),
                api: name(key),
                detail: format!("response size {size} is smaller than a response header"),
            });
        }
        if size as usize > self.response_bytes_max {
            return Err(ClientError::FrameTooLarge {
                addr: self.addr.clone(),
                api: name(key),
                size: i64::from(size),
                max: self.response_bytes_max,
            });
        }
        let mut response = vec![0u8; size as usize];
        self.stream.read_exact(&mut response).await.map_err(|e| io(e, &self.addr))?;
        Ok(response)
    }

    /// ApiVersions: asks at the newest version; a broker that does not know
    /// it answers UNSUPPORTED_VERSION with a v0 body listing its own range,
    /// and the request is repeated at the broker's newest.
    async fn negotiate(&mut self) -> Result<(), ClientError> {
        let mut version = ApiVersionsRequest::VERSIONS.max;
        for _ in 0..2 {
            let mut request = ApiVersionsRequest::default();
            if version >= 3 {
                request = request
                    .with_client_software_name(StrBytes::from_static_str("tributary-client"))
                    .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            }
            let mut body = BytesMut::new();
            request.encode(&mut body, version).map_err(|e| ClientError::Unsupported {
                addr: self.addr.clone(),
                detail: format!("cannot encode ApiVersions v{version}: {e}"),
            })?;
            let response = self.exchange(ApiKey::ApiVersions, version, &body, self.timeout).await?;
            let code = match response.get(..2) {
                Some(b) => i16::from_be_bytes([b[0], b[1]]),
                None => {
                    return Err(ClientError::Malformed {
                        addr: self.addr.clone(),
                        api: name(ApiKey::ApiVersions),
                        detail: "empty body".to_string(),
                    });
                }
            };
            let unsupported = code == ErrorCode::UnsupportedVersion.code();
            let decoded: ApiVersionsResponse =
                self.decode(ApiKey::ApiVersions, if unsupported { 0 } else { version }, response)?;
            if unsupported {
                let broker_max = decoded
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map_or(0, |k| k.max_version);
                if broker_max < version && broker_max >= 0 {
                    version = broker_max;
                    continue;
                }
            }
            if decoded.error_code != 0 {
                return Err(
                    KafkaError::new(decoded.error_code, format!("negotiate API versions with {}", self.addr)).into()
                );
            }
            self.broker_versions = decoded
                .api_keys
                .iter()
                .map(|k| (k.api_key, VersionRange { min: k.min_version, max: k.max_version }))
                .collect();
            return Ok(());
        }
        Err(ClientError::Unsupported {
            addr: self.addr.clone(),
            detail: "the broker refused every ApiVersions version offered".to_string(),
        })
    }
}

fn api_key(key: i16, addr: &str) -> Result<ApiKey, ClientError> {
    ApiKey::try_from(key)
        .map_err(|_| ClientError::Unsupported { addr: addr.to_string(), detail: format!("unknown API key {key}") })
}

fn name(key: ApiKey) -> String {
    format!("{key:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn listener() -> (TcpListener, String) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        (l, addr)
    }

    fn config(addr: &str) -> ClientConfig {
        let mut c = ClientConfig::new(addr);
        c.timeout = Duration::from_millis(500);
        c.response_bytes_max = 1024;
        c
    }

    /// Reads one request frame and answers with `reply` as the whole response frame.
    async fn answer_once(l: TcpListener, reply: Vec<u8>) {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut size = [0u8; 4];
        s.read_exact(&mut size).await.expect("size");
        let mut req = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut req).await.expect("request");
        s.write_all(&reply).await.expect("reply");
        // Keep the socket open until the client gives up.
        let _ = s.read(&mut [0u8; 1]).await;
    }

    /// A fake broker: answers each request frame with the next body (response header v0).
    /// Returns the (api key, version) of every request it read.
    async fn fake_broker(l: TcpListener, bodies: Vec<Vec<u8>>) -> Vec<(i16, i16)> {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut seen = Vec::new();
        for body in bodies {
            let mut size = [0u8; 4];
            s.read_exact(&mut size).await.expect("size");
            let mut req = vec![0u8; i32::from_be_bytes(size) as usize];
            s.read_exact(&mut req).await.expect("request");
            seen.push((i16::from_be_bytes([req[0], req[1]]), i16::from_be_bytes([req[2], req[3]])));
            let mut frame = ((body.len() + 4) as i32).to_be_bytes().to_vec();
            frame.extend_from_slice(&req[4..8]);
            frame.extend_from_slice(&body);
            s.write_all(&frame).await.expect("reply");
        }
        seen
    }

    fn api_versions_body(version: i16, error_code: i16, apis: &[(ApiKey, i16, i16)]) -> Vec<u8> {
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        let keys = apis
            .iter()
            .map(|(k, min, max)| {
                ApiVersion::default().with_api_key(*k as i16).with_min_version(*min).with_max_version(*max)
            })
            .collect();
        let mut out = BytesMut::new();
        ApiVersionsResponse::default()
            .with_error_code(error_code)
            .with_api_keys(keys)
            .encode(&mut out, version)
            .expect("encodes");
        out.to_vec()
    }

    #[tokio::test]
    async fn negotiation_falls_back_and_picks_the_highest_common_version() {
        let (l, addr) = listener().await;
        let old = [(ApiKey::ApiVersions, 0, 2), (ApiKey::Metadata, 0, 12), (ApiKey::OffsetFetch, 0, 1)];
        let broker = tokio::spawn(fake_broker(
            l,
            vec![api_versions_body(0, ErrorCode::UnsupportedVersion.code(), &old[..1]), api_versions_body(2, 0, &old)],
        ));
        let conn = Connection::connect(&addr, &config(&addr)).await.expect("negotiates");
        assert_eq!(broker.await.expect("fake broker"), vec![(18, 4), (18, 2)], "v4 first, then the broker's max");
        assert_eq!(conn.version(ApiKey::Metadata).expect("common version"), 12);
        let missing = conn.version(ApiKey::DescribeGroups).expect_err("not advertised").to_string();
        assert!(missing.contains("does not support DescribeGroups (API key 15)"), "{missing}");
        let disjoint = conn.version(ApiKey::OffsetFetch).expect_err("no overlap").to_string();
        assert!(disjoint.contains("broker serves v0..1, this client v2..9"), "{disjoint}");
    }

    #[test]
    fn bootstrap_lists_are_split() {
        assert_eq!(ClientConfig::new(" a:1, b:2 ,,").bootstrap, vec!["a:1", "b:2"]);
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_allocating() {
        let (l, addr) = listener().await;
        tokio::spawn(answer_once(l, i32::MAX.to_be_bytes().to_vec()));
        let err = Connection::connect(&addr, &config(&addr)).await.expect_err("refused");
        assert!(matches!(err, ClientError::FrameTooLarge { size: 2147483647, max: 1024, .. }), "{err}");
    }

    #[tokio::test]
    async fn negative_sizes_and_wrong_correlation_ids_are_malformed() {
        let (l, addr) = listener().await;
        tokio::spawn(answer_once(l, (-7i32).to_be_bytes().to_vec()));
        let err = Connection::connect(&addr, &config(&addr)).await.expect_err("refused");
        assert!(matches!(err, ClientError::Malformed { .. }), "{err}");

        let (l, addr) = listener().await;
        let mut reply = 6i32.to_be_bytes().to_vec();
        reply.extend_from_slice(&99i32.to_be_bytes());
        reply.extend_from_slice(&[0, 0]);
        tokio::spawn(answer_once(l, reply));
        let err = Connection::connect(&addr, &config(&addr)).await.expect_err("refused");
        assert!(err.to_string().contains("correlation id 99"), "{err}");
    }

    #[tokio::test]
    async fn silence_times_out() {
        let (l, addr) = listener().await;
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let _ = s.read(&mut [0u8; 1024]).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let err = Connection::connect(&addr, &config(&addr)).await.expect_err("times out");
        assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("--timeout"), "{err}");
    }

    #[tokio::test]
    async fn huge_counts_in_a_response_are_refused() {
        let (l, addr) = listener().await;
        // ApiVersions v4 answer: correlation id 1, error 0, compact array claiming 2^28 entries.
        let mut body = 1i32.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0x80, 0x80, 0x80, 0x80, 0x01]);
        let mut reply = (body.len() as i32).to_be_bytes().to_vec();
        reply.extend_from_slice(&body);
        tokio::spawn(answer_once(l, reply));
        let err = Connection::connect(&addr, &config(&addr)).await.expect_err("refused");
        assert!(matches!(err, ClientError::Malformed { .. }), "{err}");
    }
}
