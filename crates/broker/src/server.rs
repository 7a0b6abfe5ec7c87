//! Listeners and connections. The accept loop admits connections through
//! the connection quotas (`limits::connections`). Each connection owns its
//! read buffer: frames are checked against `socket.request.max.bytes` before
//! the buffer grows for them, the buffer grows with bytes that arrive (never
//! by a size a peer claims) and is dropped when empty, and each request is
//! reserved in `queued.max.request.bytes` before it is read. Requests are handled in arrival
//! order and responses leave in that order even when some wait (produce
//! durability, fetch long-polls).
//!
//! `connections.max.idle.ms` closes a connection that has completed no
//! request and written no response for that long: an idle one, one stuck
//! halfway through a request (a slow or stalled sender), and one whose
//! client does not read a response.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tributary_protocol::frame::{FrameError, SIZE_PREFIX_LEN, check_frame_size};

use crate::cluster::Cluster;
use crate::handlers::{ConnectionInfo, Reply, handle_frame};
use crate::limits::connections::ConnectionSlot;
use crate::limits::memory::Reservation;
use crate::limits::report::Limit;
use crate::outgoing::{Outgoing, write_outgoing};

/// Responses a connection may have pending before it stops reading requests.
const IN_FLIGHT_MAX: usize = 128;
/// The smallest read: a request header and then some.
const MIN_READ_BYTES: usize = 1024;
/// The largest read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

type Pending = Pin<Box<dyn Future<Output = Option<Outgoing>> + Send>>;

/// The size of the frame at the front of `buf`, once its prefix has arrived.
fn front_frame_size(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < SIZE_PREFIX_LEN {
        return Ok(None);
    }
    check_frame_size([buf[0], buf[1], buf[2], buf[3]], max).map(Some)
}

/// Takes the frame of `size` (checked by [`front_frame_size`]) off the front
/// of `buf` once it is complete.
fn take_frame(buf: &mut BytesMut, size: usize) -> Option<Bytes> {
    if buf.len() < SIZE_PREFIX_LEN + size {
        return None;
    }
    buf.advance(SIZE_PREFIX_LEN);
    Some(buf.split_to(size).freeze())
}

/// Bytes to make room for before the next read: what the frame at the front
/// still lacks, but never more than what has already arrived (the buffer at
/// most doubles per read) nor more than a chunk. A slow or stalled sender thus
/// holds about twice what it sent, however large a size it announced.
fn read_room(buffered: usize, frame_size: Option<usize>) -> usize {
    let missing = frame_size.map_or(0, |size| (SIZE_PREFIX_LEN + size).saturating_sub(buffered));
    let grow_limit = buffered.clamp(MIN_READ_BYTES, READ_CHUNK_BYTES);
    missing.clamp(MIN_READ_BYTES, grow_limit)
}

/// Accepts connections on `listener` until `shutdown` flips.
pub(crate) async fn accept_loop(
    cluster: Arc<Cluster>,
    listener: TcpListener,
    listener_name: String,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    let limits = cluster.listener_limits.clone();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(listener = %listener_name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // While this waits (creation rate, max.connections) nothing else is accepted on this listener.
        let admitted = tokio::select! {
            _ = shutdown.changed() => break,
            admitted = limits.admit(peer) => admitted,
        };
        let Some(slot) = admitted else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = ConnectionInfo { listener: listener_name.clone(), peer };
        tokio::spawn(serve_connection(cluster.clone(), stream, conn, slot, shutdown.clone(), alive.clone()));
    }
}

/// Writes one response, giving up after `limit` (the client is not reading).
async fn write_response(
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    outgoing: Outgoing,
    limit: Option<Duration>,
) -> io::Result<()> {
    match limit {
        None => write_outgoing(writer, outgoing).await,
        Some(limit) => tokio::time::timeout(limit, write_outgoing(writer, outgoing)).await.unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read its response within connections.max.idle.ms",
            ))
        }),
    }
}

async fn serve_connection(
    cluster: Arc<Cluster>,
    stream: TcpStream,
    conn: ConnectionInfo,
    slot: ConnectionSlot,
    mut shutdown: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let peer: SocketAddr = conn.peer;
    tracing::debug!(%peer, listener = %conn.listener, "connection opened");
    let limits = cluster.listener_limits.clone();
    let max_request = cluster.config.socket_request_max_bytes;
    let idle = cluster.config.connections_max_idle_ms.map(Duration::from_millis);
    let (reader, mut writer) = stream.into_split();
    let mut buf = BytesMut::new();
    let mut reservation = Reservation::new(limits.memory.clone());
    let mut waiting_for_memory = false;
    let mut in_flight: FuturesOrdered<Pending> = FuturesOrdered::new();
    let mut closing = *shutdown.borrow();
    let mut last_activity = Instant::now();
    loop {
        while !closing && in_flight.len() < IN_FLIGHT_MAX && !waiting_for_memory {
            let size = match front_frame_size(&buf, max_request) {
                Ok(Some(size)) => size,
                Ok(None) => break,
                Err(e @ FrameError::TooLarge { .. }) => {
                    limits.reports.hit(Limit::SocketRequestMaxBytes, peer, &format!("closed the connection: {e}"));
                    return;
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    return;
                }
            };
            if !reservation.is_held() && !reservation.try_reserve(SIZE_PREFIX_LEN + size) {
                limits.reports.hit(
                    Limit::QueuedMaxRequestBytes,
                    peer,
                    "stopped reading requests from the connection until request memory frees",
                );
                waiting_for_memory = true;
                break;
            }
            let Some(frame) = take_frame(&mut buf, size) else { break };
            last_activity = Instant::now();
            slot.touch();
            // Boxed: the handler's state lives on the heap only while it runs, so an idle
            // connection's task stays small.
            let reply = Box::pin(handle_frame(&cluster, &conn, frame)).await;
            // Handled: the request leaves the budget, as Kafka releases its buffer.
            reservation.release();
            match reply {
                Reply::Now(bytes) => in_flight.push_back(Box::pin(std::future::ready(Some(Outgoing::Frame(bytes))))),
                Reply::Later(future) => in_flight.push_back(future),
                Reply::Nothing => {}
                Reply::Close(why) => {
                    tracing::info!(%peer, reason = %why, "closing connection after an undecodable or unsupported request");
                    closing = true;
                }
            }
        }
        if closing && in_flight.is_empty() {
            break;
        }
        if buf.is_empty() && buf.capacity() > 0 {
            // An idle connection holds no buffer.
            buf = BytesMut::new();
        }
        let reading = !closing && in_flight.len() < IN_FLIGHT_MAX && !waiting_for_memory;
        let idle_deadline = idle.map(|d| last_activity + d);
        tokio::select! {
            biased;
            Some(response) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(outgoing) = response
                    && let Err(e) = write_response(&mut writer, outgoing, idle).await {
                        if e.kind() == io::ErrorKind::TimedOut {
                            limits.reports.hit(Limit::ConnectionsMaxIdleMs, peer,
                                "closed the connection: a response was not read by the client within connections.max.idle.ms");
                        } else {
                            tracing::debug!(%peer, error = %e, "write failed");
                        }
                        break;
                    }
                last_activity = Instant::now();
                slot.touch();
            }
            _ = slot.evicted() => {
                limits.reports.hit(Limit::MaxConnections, peer,
                    "closed the connection: max.connections was lowered below the connections open; \
                     the least recently active ones are closed");
                break;
            }
            ready = reader.readable(), if reading => {
                if let Err(e) = ready {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
                let frame_size = front_frame_size(&buf, max_request).ok().flatten();
                buf.reserve(read_room(buf.len(), frame_size));
                match reader.try_read_buf(&mut buf) {
                    Ok(0) => closing = true,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "read failed");
                        break;
                    }
                }
            }
            _ = limits.memory.available(), if waiting_for_memory => waiting_for_memory = false,
            _ = shutdown.changed(), if !closing => closing = true,
            _ = tokio::time::sleep_until(idle_deadline.unwrap_or_else(Instant::now)),
                if idle_deadline.is_some() && in_flight.is_empty() && !closing => {
                if buf.is_empty() {
                    tracing::debug!(%peer, "closing idle connection (connections.max.idle.ms)");
                } else {
                    limits.reports.hit(Limit::ConnectionsMaxIdleMs, peer, &format!(
                        "closed the connection: {} bytes of a request arrived but the request was not completed \
                         within connections.max.idle.ms", buf.len()));
                }
                break;
            }
        }
    }
    let _ = writer.shutdown().await;
    tracing::debug!(%peer, "connection closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole_and_sizes_checked_first() {
        let mut buf = BytesMut::new();
        assert_eq!(front_frame_size(&buf, 100), Ok(None));
        buf.extend_from_slice(&12i32.to_be_bytes());
        buf.extend_from_slice(&[1; 8]);
        assert_eq!(front_frame_size(&buf, 100), Ok(Some(12)));
        assert_eq!(take_frame(&mut buf, 12), None, "incomplete");
        buf.extend_from_slice(&[2; 4]);
        buf.extend_from_slice(&[0, 0]);
        let frame = take_frame(&mut buf, 12).expect("frame");
        assert_eq!(frame.len(), 12);
        assert_eq!(buf.len(), 2);
        let big = BytesMut::from(&1_000_000i32.to_be_bytes()[..]);
        assert!(matches!(front_frame_size(&big, 100), Err(FrameError::TooLarge { .. })));
        assert!(big.capacity() < 1000, "no buffer was sized by the claim");
    }

    #[test]
    fn reads_grow_with_what_arrived_not_with_the_claimed_size() {
        // Nothing buffered, or a size prefix not yet complete: one small read.
        assert_eq!(read_room(0, None), MIN_READ_BYTES);
        assert_eq!(read_room(3, None), MIN_READ_BYTES);
        // A peer announcing 100 MiB gets room for what it has sent, doubling, up to a chunk.
        let claimed = Some(100 * 1024 * 1024);
        assert_eq!(read_room(4, claimed), MIN_READ_BYTES);
        assert_eq!(read_room(5000, claimed), 5000);
        assert_eq!(read_room(10_000_000, claimed), READ_CHUNK_BYTES);
        // A frame about to complete is read to its end (at least a small read, so pipelined frames batch).
        assert_eq!(read_room(100_000, Some(100_010)), MIN_READ_BYTES);
        assert_eq!(read_room(30_000, Some(40_000)), 10_004);
    }
}
