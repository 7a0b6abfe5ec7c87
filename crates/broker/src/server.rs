//! Listeners and connections. Each connection owns its read buffer; frames
//! are checked against `socket.request.max.bytes` before the buffer grows for
//! them, requests are handled in arrival order, and responses leave in that
//! order even when some wait (produce durability, fetch long-polls).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tributary_protocol::frame::{FrameError, SIZE_PREFIX_LEN, check_frame_size};

use crate::cluster::Cluster;
use crate::handlers::{ConnectionInfo, Reply, handle_frame};
use crate::outgoing::{Outgoing, write_outgoing};

/// Responses a connection may have pending before it stops reading requests.
const IN_FLIGHT_MAX: usize = 128;
/// Read buffer growth step; the buffer grows with bytes that arrive, never by a claimed size.
const READ_CHUNK_BYTES: usize = 64 * 1024;

type Pending = Pin<Box<dyn Future<Output = Option<Outgoing>> + Send>>;

/// Takes one complete frame off the front of `buf`, if there is one.
fn take_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < SIZE_PREFIX_LEN {
        return Ok(None);
    }
    let size = check_frame_size([buf[0], buf[1], buf[2], buf[3]], max)?;
    if buf.len() < SIZE_PREFIX_LEN + size {
        return Ok(None);
    }
    buf.advance(SIZE_PREFIX_LEN);
    Ok(Some(buf.split_to(size).freeze()))
}

/// Accepts connections on `listener` until `shutdown` flips.
pub(crate) async fn accept_loop(
    cluster: Arc<Cluster>,
    listener: TcpListener,
    listener_name: String,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = ConnectionInfo { listener: listener_name.clone(), peer };
                    let task = serve_connection(cluster.clone(), stream, conn, shutdown.clone(), alive.clone());
                    tokio::spawn(task);
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(listener = %listener_name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn serve_connection(
    cluster: Arc<Cluster>,
    stream: TcpStream,
    conn: ConnectionInfo,
    mut shutdown: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let peer: SocketAddr = conn.peer;
    tracing::debug!(%peer, listener = %conn.listener, "connection opened");
    let max_request = cluster.config.socket_request_max_bytes;
    let idle = Duration::from_millis(cluster.config.connections_max_idle_ms);
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut in_flight: FuturesOrdered<Pending> = FuturesOrdered::new();
    let mut closing = *shutdown.borrow();
    let mut last_activity = tokio::time::Instant::now();
    loop {
        while !closing && in_flight.len() < IN_FLIGHT_MAX {
            match take_frame(&mut buf, max_request) {
                Ok(Some(frame)) => {
                    last_activity = tokio::time::Instant::now();
                    match handle_frame(&cluster, &conn, frame).await {
                        Reply::Now(bytes) => {
                            in_flight.push_back(Box::pin(std::future::ready(Some(Outgoing::Frame(bytes)))))
                        }
                        Reply::Later(future) => in_flight.push_back(future),
                        Reply::Nothing => {}
                        Reply::Close(why) => {
                            tracing::info!(%peer, reason = %why, "closing connection after an undecodable or unsupported request");
                            closing = true;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    return;
                }
            }
        }
        if closing && in_flight.is_empty() {
            break;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(READ_CHUNK_BYTES);
        }
        tokio::select! {
            biased;
            Some(response) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(outgoing) = response
                    && let Err(e) = write_outgoing(&mut writer, outgoing).await {
                        tracing::debug!(%peer, error = %e, "write failed");
                        break;
                    }
                last_activity = tokio::time::Instant::now();
            }
            read = reader.read_buf(&mut buf), if !closing && in_flight.len() < IN_FLIGHT_MAX => match read {
                Ok(0) => closing = true,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            _ = shutdown.changed(), if !closing => closing = true,
            _ = tokio::time::sleep_until(last_activity + idle), if in_flight.is_empty() && !closing => {
                tracing::debug!(%peer, "closing idle connection (connections.max.idle.ms)");
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
        buf.extend_from_slice(&12i32.to_be_bytes());
        buf.extend_from_slice(&[1; 8]);
        assert_eq!(take_frame(&mut buf, 100), Ok(None), "incomplete");
        buf.extend_from_slice(&[2; 4]);
        buf.extend_from_slice(&[0, 0]);
        let frame = take_frame(&mut buf, 100).expect("ok").expect("frame");
        assert_eq!(frame.len(), 12);
        assert_eq!(buf.len(), 2);
        let mut big = BytesMut::from(&1_000_000i32.to_be_bytes()[..]);
        assert!(matches!(take_frame(&mut big, 100), Err(FrameError::TooLarge { .. })));
        assert!(big.capacity() < 1000, "no buffer was sized by the claim");
    }
}
