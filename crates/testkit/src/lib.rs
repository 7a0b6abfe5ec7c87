//! Test helpers: an in-process broker on a free loopback port with its own
//! temporary data directory, and a raw protocol client that sends one
//! request at a chosen API version and returns the response frame.
//!
//! ```text
//! TestBroker::start(&[("num.partitions", "3")]) ──▶ Broker on 127.0.0.1:<free port>
//! RawClient::connect(addr).call(ApiKey::Metadata, 12, &request) ──▶ Some(response body)
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, encode_request_header_into_buffer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tributary_broker::Broker;
use tributary_config::BrokerConfig;

/// A broker running inside the test process.
#[derive(Debug)]
pub struct TestBroker {
    broker: Broker,
    /// Where clients connect.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl TestBroker {
    /// Starts a broker with `tributary start`'s defaults plus `overrides`.
    pub async fn start(overrides: &[(&str, &str)]) -> TestBroker {
        let dir = tempfile::tempdir().expect("temporary data directory");
        TestBroker::start_in(dir, overrides).await
    }

    /// Starts a broker on an existing data directory (for restart tests).
    pub async fn start_in(dir: tempfile::TempDir, overrides: &[(&str, &str)]) -> TestBroker {
        let mut props = BTreeMap::new();
        props.insert("listeners".to_string(), "PLAINTEXT://127.0.0.1:0".to_string());
        props.insert("log.dirs".to_string(), dir.path().display().to_string());
        for (k, v) in overrides {
            props.insert((*k).to_string(), (*v).to_string());
        }
        let config = BrokerConfig::from_properties(props).expect("valid test config");
        let broker = Broker::start(config).await.expect("broker starts");
        let addr = broker.bound_addresses()[0].1;
        TestBroker { broker, addr, dir }
    }

    /// The broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Stops the broker cleanly and returns its data directory.
    pub async fn stop(self) -> tempfile::TempDir {
        self.broker.shutdown().await;
        self.dir
    }
}

/// A connection speaking raw Kafka protocol.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    correlation_id: i32,
}

impl RawClient {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient { stream: TcpStream::connect(addr).await.expect("connect"), correlation_id: 0 }
    }

    /// Sends a request frame built from `body` at `version` without waiting.
    pub async fn send<T: Encodable>(&mut self, key: ApiKey, version: i16, body: &T) -> i32 {
        let mut payload = BytesMut::new();
        body.encode(&mut payload, version).expect("encodable request");
        self.send_raw(key, version, &payload).await
    }

    /// Sends an already-encoded request body.
    pub async fn send_raw(&mut self, key: ApiKey, version: i16, body: &[u8]) -> i32 {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("tributary-testkit")));
        let mut frame = BytesMut::new();
        encode_request_header_into_buffer(&mut frame, &header).expect("header");
        frame.extend_from_slice(body);
        let mut out = Vec::with_capacity(frame.len() + 4);
        out.extend_from_slice(&(frame.len() as i32).to_be_bytes());
        out.extend_from_slice(&frame);
        self.stream.write_all(&out).await.expect("write");
        self.correlation_id
    }

    /// Reads one response frame: `None` if the broker closed the connection.
    /// Returns the correlation id and the bytes after the response header.
    pub async fn receive(&mut self, key: ApiKey, version: i16) -> Option<(i32, Bytes)> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.ok()?;
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame).await.ok()?;
        let mut frame = Bytes::from(frame);
        let correlation_id = frame.get_i32();
        if key.response_header_version(version) >= 1 {
            // Skip the header's tagged fields (this client never receives any).
            let count = frame.get_u8();
            assert_eq!(count, 0, "unexpected response header tags");
        }
        Some((correlation_id, frame))
    }

    /// Sends a request and decodes its response; `None` if the connection closed.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Option<Resp> {
        let id = self.send(key, version, body).await;
        let (got, mut bytes) = self.receive(key, version).await?;
        assert_eq!(got, id, "responses arrive in request order");
        Some(Resp::decode(&mut bytes, version).expect("decodable response"))
    }
}
