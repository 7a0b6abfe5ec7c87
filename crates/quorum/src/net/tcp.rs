//! The controller network over TCP.
//!
//! [`TcpTransport`] keeps a few idle connections per peer address and
//! sends one request at a time on each (one frame out, one frame back).
//! Every outgoing socket is bound to this node's own listener host before
//! it connects, so a peer sees the connection come from the address this
//! node is known by (on a test machine several nodes share one network
//! namespace on 127.0.0.1/.2/.3, and an unbound socket would leave from
//! 127.0.0.1). A failed connect is [`TransportError::NotSent`]; the
//! transport itself does not hold a peer back (a held-back peer would be
//! refused even after it returned): callers pace their attempts, openraft's
//! replication with the back-off of `net::Connection`, forwards with
//! `retry.backoff.ms`.
//!
//! [`ControllerServer`] accepts connections and hands each request to the
//! local [`RpcHandler`].

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::frame::{FRAME_BYTES_MAX, FrameError, read_frame, write_frame};
use super::message::{Envelope, Response};
use super::{BoxFuture, Transport, TransportError};
use crate::quorum::RpcHandler;
use crate::types::{NodeId, QuorumApp};

/// Idle connections kept per peer.
const IDLE_PER_PEER: usize = 4;

#[derive(Debug, Default)]
struct Peer {
    idle: Vec<TcpStream>,
}

/// Client side of the controller network.
#[derive(Debug)]
pub struct TcpTransport {
    local_host: Option<IpAddr>,
    connect_timeout: Duration,
    max_frame: u32,
    peers: Arc<Mutex<BTreeMap<String, Peer>>>,
}

impl TcpTransport {
    /// A transport whose sockets leave from `local_host` (this node's
    /// listener host; `None` or an unspecified address: the kernel picks).
    pub fn new(local_host: Option<IpAddr>, connect_timeout: Duration) -> TcpTransport {
        TcpTransport {
            local_host: local_host.filter(|h| !h.is_unspecified()),
            connect_timeout,
            max_frame: FRAME_BYTES_MAX,
            peers: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// A transport bound to the host of `listener` (`host:port`, host an IP address).
    pub fn for_listener(listener: &str, connect_timeout: Duration) -> TcpTransport {
        let host = listener.rsplit_once(':').map_or(listener, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        TcpTransport::new(host.parse().ok(), connect_timeout)
    }
}

fn lock(peers: &Mutex<BTreeMap<String, Peer>>) -> MutexGuard<'_, BTreeMap<String, Peer>> {
    peers.lock().unwrap_or_else(|e| e.into_inner())
}

async fn connect(address: &str, local_host: Option<IpAddr>, timeout: Duration) -> io::Result<TcpStream> {
    let target: SocketAddr = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{address} resolves to nothing")))?;
    let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(host) = local_host
        && host.is_ipv4() == target.is_ipv4()
    {
        socket.bind(SocketAddr::new(host, 0))?;
    }
    let stream = tokio::time::timeout(timeout, socket.connect(target))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {address} timed out")))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl<A: QuorumApp> Transport<A> for TcpTransport {
    fn call(
        &self,
        _target: NodeId,
        address: &str,
        request: Envelope<A>,
        timeout: Duration,
    ) -> BoxFuture<Result<Response<A>, TransportError>> {
        let peers = self.peers.clone();
        let address = address.to_string();
        let (local_host, connect_timeout, max_frame) = (self.local_host, self.connect_timeout, self.max_frame);
        Box::pin(async move {
            let pooled = lock(&peers).entry(address.clone()).or_default().idle.pop();
            let mut stream = match pooled {
                Some(stream) => stream,
                None => match connect(&address, local_host, connect_timeout.min(timeout)).await {
                    Ok(stream) => stream,
                    Err(e) => return Err(TransportError::NotSent(format!("cannot connect to {address}: {e}"))),
                },
            };
            let exchange = async {
                write_frame(&mut stream, &request, max_frame).await?;
                read_frame::<_, Response<A>>(&mut stream, max_frame).await
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(Ok(Some(response))) => {
                    let mut peers = lock(&peers);
                    let peer = peers.entry(address).or_default();
                    if peer.idle.len() < IDLE_PER_PEER {
                        peer.idle.push(stream);
                    }
                    Ok(response)
                }
                Ok(Ok(None)) => Err(TransportError::NoAnswer(format!("{address} closed the connection"))),
                Ok(Err(e)) => Err(TransportError::NoAnswer(format!("{address}: {e}"))),
                Err(_) => Err(TransportError::TimedOut(format!("{address} did not answer within {timeout:?}"))),
            }
        })
    }
}

/// The controller listener: accepts connections and answers requests.
#[derive(Debug)]
pub struct ControllerServer {
    local_addr: SocketAddr,
    peers_seen: Arc<Mutex<BTreeSet<IpAddr>>>,
    task: JoinHandle<()>,
}

impl ControllerServer {
    /// Serves `handler` on `listener` until [`ControllerServer::shutdown`]
    /// (or drop of the returned value's task).
    pub fn serve<A: QuorumApp>(listener: TcpListener, handler: RpcHandler<A>) -> io::Result<ControllerServer> {
        let local_addr = listener.local_addr()?;
        let peers_seen = Arc::new(Mutex::new(BTreeSet::new()));
        let seen = peers_seen.clone();
        let task = tokio::spawn(async move {
            // Owned here: aborting the accept loop aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            seen.lock().unwrap_or_else(|e| e.into_inner()).insert(peer.ip());
                            connections.spawn(serve_connection(stream, peer, handler.clone()));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "controller listener cannot accept");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(ControllerServer { local_addr, peers_seen, task })
    }

    /// Binds `address` and serves `handler` on it.
    pub async fn bind<A: QuorumApp>(address: &str, handler: RpcHandler<A>) -> io::Result<ControllerServer> {
        ControllerServer::serve(TcpListener::bind(address).await?, handler)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The source addresses connections came from (to check that peers bind).
    pub fn peers_seen(&self) -> BTreeSet<IpAddr> {
        self.peers_seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(&self) {
        self.task.abort();
    }
}

impl Drop for ControllerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection<A: QuorumApp>(mut stream: TcpStream, peer: SocketAddr, handler: RpcHandler<A>) {
    let _ = stream.set_nodelay(true);
    // Who sent on this connection: told to the handler when it closes, for
    // whatever reason (a peer that died has every connection closed).
    let mut sender: Option<NodeId> = None;
    loop {
        let envelope = match read_frame::<_, Envelope<A>>(&mut stream, FRAME_BYTES_MAX).await {
            Ok(Some(envelope)) => envelope,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "bad controller request; closing the connection");
                if matches!(e, FrameError::BadLength { .. } | FrameError::Version(_) | FrameError::Body(_)) {
                    let refusal: Response<A> = Response::Refused(e.to_string());
                    let _ = write_frame(&mut stream, &refusal, FRAME_BYTES_MAX).await;
                }
                break;
            }
        };
        sender = Some(envelope.from);
        let response = handler.handle(envelope).await;
        if let Err(e) = write_frame(&mut stream, &response, FRAME_BYTES_MAX).await {
            tracing::debug!(%peer, error = %e, "cannot answer a controller request");
            break;
        }
    }
    if let Some(from) = sender {
        handler.connection_closed(from);
    }
}
