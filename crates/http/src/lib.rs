//! The HTTP serving stack of Tributary's HTTP services (the Schema Registry
//! and the REST Proxy): an axum [`Router`](axum::Router) served over hyper's
//! HTTP/1.1 with the limits a server facing untrusted clients needs, which
//! `axum::serve` does not set:
//!
//! - a header-read timeout: a request head must arrive within
//!   `header.read.timeout.ms` of its first byte (a slowloris client that
//!   trickles a head is closed);
//! - an idle timeout: a connection that makes no progress for
//!   `idle.timeout.ms` is closed: no request and nothing received, a head
//!   whose bytes stopped arriving, a handler waiting for body bytes that do
//!   not come, a response the client does not read. Time a handler spends
//!   working (a long poll, a streamed produce waiting for Kafka) is never
//!   idle;
//! - a connection cap, `server.connection.limit`: when reached, the server
//!   stops accepting until a connection closes;
//! - a request head size limit, `max.request.header.size`, which bounds what
//!   a connection buffers while its head arrives;
//! - a graceful shutdown bounded by `shutdown.graceful.ms`.
//!
//! Every limit hit is counted and logged as a rate-limited warning naming
//! the limit and the peer ([`report`]).
//!
//! Modules: [`limits`] (keys and defaults), [`activity`] (a connection's
//! state and the timeout rules), [`watch`] (the socket and body wrappers that
//! report to it), [`report`] (warnings), [`server`] (accept loop, connections).

pub mod activity;
pub mod limits;
pub mod report;
pub mod server;
pub mod watch;

pub use limits::Limits;
pub use server::{Server, serve};
