//! The Kafka wire protocol, sans IO: frame size checks, request headers,
//! a structural check of every request body before it is decoded, typed
//! requests (the `kafka-protocol` crate's generated structs), response framing
//! with the right header version, the served API table and error codes.
//!
//! ```text
//! [i32 size] ──check_frame_size──▶ frame bytes ──decode_request──▶ (RequestHeader, Request)
//!                                   │  peek_header (api key, version, correlation id)
//!                                   │  check_request (lengths, counts, element budget)
//!                                   └▶ kafka-protocol decode at the requested version
//! handler response ──encode_response──▶ [i32 size][header v0/v1][body at version]
//! Fetch response ──encode_fetch_response──▶ encoded fields + record holes sent from their source
//!
//! client side: response bytes ──check_response──▶ kafka-protocol decode at the negotiated version
//! DescribeGroups member bytes ──consumer_protocol::decode_*──▶ subscription / assignment
//! ```

pub mod apis;
pub mod consumer_protocol;
pub mod fetch_response;
pub mod frame;
pub mod fuzzing;
pub mod request;
pub mod response;
pub mod samples;
pub mod shape;

pub use fetch_response::{Part, RecordsSource, encode_fetch_response};
pub use kafka_protocol;
pub use kafka_protocol::error::ResponseError as ErrorCode;
pub use request::{DecodeError, Request, RequestHeader, decode_request, peek_header};
pub use response::{EncodeError, api_versions_body, api_versions_fallback, encode_response, with_features};
