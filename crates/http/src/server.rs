//! The accept loop and one task per connection.
//!
//! ```text
//! accept loop ── a free slot? (server.connection.limit) ── no: wait for one, accepting nothing
//!   │                                                       (new connections stay in the kernel's backlog)
//!   └─ accept ─▶ connection task: hyper HTTP/1.1 over the watched socket
//!                  ├─ every request: in flight from its parsed head until hyper
//!                  │  has taken its whole response (or dropped it)
//!                  └─ a timer on the connection's Activity: close when a timeout runs out
//! shutdown ─▶ stop accepting ─▶ connections without a request in flight close at once,
//!             the others finish their request (hyper's graceful shutdown) ─▶ after
//!             shutdown.graceful.ms whatever is left is closed
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tower_service::Service;

use crate::activity::{Activity, Verdict};
use crate::limits::Limits;
use crate::report::{Limit, Reports};
use crate::watch::{InFlightBody, WatchedBody, WatchedIo};

/// How long accepting pauses after the process could not take a connection
/// (out of file descriptors or memory), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// After the grace period, how long closing the remaining connections may take.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Where the server is in its life; every connection task watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Serving,
    /// Finish requests in flight, close everything else.
    Draining,
    /// Close now.
    Closing,
}

/// One HTTP service's server: its limits and the counters of their hits.
#[derive(Debug, Clone)]
pub struct Server {
    limits: Limits,
    reports: Arc<Reports>,
}

impl Server {
    /// A server for `service` (its name in log lines: `schema-registry`, `rest-proxy`).
    pub fn new(service: &'static str, limits: Limits) -> Server {
        Server { limits, reports: Arc::new(Reports::new(service)) }
    }

    /// How often each limit was hit.
    pub fn reports(&self) -> Arc<Reports> {
        Arc::clone(&self.reports)
    }

    /// Serves `router` on `listener` until `shutdown` completes, then drains
    /// (see the module docs). Returns once every connection is closed, or
    /// the grace period and a short wait for the rest have passed.
    pub async fn run<F>(self, listener: TcpListener, router: Router, shutdown: F)
    where
        F: Future<Output = ()> + Send,
    {
        let Server { limits, reports } = self;
        let slots = limits.max_connections.map(|n| Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS))));
        let (stage_tx, stage_rx) = watch::channel(Stage::Serving);
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let open = Arc::new(AtomicUsize::new(0));
        tokio::pin!(shutdown);
        loop {
            let permit = match &slots {
                None => None,
                Some(slots) => match Arc::clone(slots).try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        let outcome = format!(
                            "not accepting: {} connections are open; new ones wait until one closes",
                            open.load(Ordering::Relaxed)
                        );
                        reports.hit(Limit::ConnectionLimit, None, &outcome);
                        tokio::select! {
                            permit = Arc::clone(slots).acquire_owned() => match permit {
                                Ok(permit) => Some(permit),
                                Err(_) => break,
                            },
                            () = &mut shutdown => break,
                        }
                    }
                },
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        if !is_connection_error(&e) {
                            let outcome = format!("accepting failed ({e}); paused for {} ms", ACCEPT_ERROR_PAUSE.as_millis());
                            reports.hit(Limit::Accept, None, &outcome);
                            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        }
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            open.fetch_add(1, Ordering::Relaxed);
            let slot = Slot { _permit: permit, _alive: alive_tx.clone(), open: Arc::clone(&open) };
            let task = Connection { peer, limits, reports: Arc::clone(&reports), stage: stage_rx.clone(), _slot: slot };
            tokio::spawn(task.serve(stream, router.clone()));
        }
        drop(listener);
        stage_tx.send_replace(Stage::Draining);
        drop(alive_tx);
        if tokio::time::timeout(limits.shutdown_grace, alive_rx.recv()).await.is_err() {
            reports.note(&format!(
                "closing {} HTTP connections whose requests did not finish within shutdown.graceful.ms ({} ms)",
                open.load(Ordering::Relaxed),
                limits.shutdown_grace.as_millis()
            ));
            stage_tx.send_replace(Stage::Closing);
            let _ = tokio::time::timeout(CLOSE_WAIT, alive_rx.recv()).await;
        }
    }
}

/// Serves `router` on `listener` with `limits` until `shutdown` completes,
/// then drains; `service` names the service in log lines.
pub async fn serve<F>(listener: TcpListener, router: Router, shutdown: F, limits: Limits, service: &'static str)
where
    F: Future<Output = ()> + Send,
{
    Server::new(service, limits).run(listener, router, shutdown).await;
}

/// Errors of one connection that is gone before it was accepted: nothing to wait for.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// What a connection holds while it is open: its place under the cap, and
/// what tells the server it still runs.
#[derive(Debug)]
struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    _alive: mpsc::Sender<()>,
    open: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One accepted connection.
#[derive(Debug)]
struct Connection {
    peer: SocketAddr,
    limits: Limits,
    reports: Arc<Reports>,
    stage: watch::Receiver<Stage>,
    _slot: Slot,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream, router: Router) {
        let activity = Activity::new();
        let io = TokioIo::new(WatchedIo::new(stream, Arc::clone(&activity)));
        let service = {
            let activity = Arc::clone(&activity);
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let in_flight = activity.begin_request();
                let request = request.map(|body| WatchedBody::new(body, Arc::clone(&activity)));
                let mut router = router.clone();
                async move {
                    let response = match router.call(request).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    Ok::<_, Infallible>(response.map(|body| InFlightBody::new(body, in_flight)))
                }
            })
        };
        // hyper's own header timer is off: it starts as soon as a head is
        // awaited, so it cannot tell a quiet keep-alive connection from a
        // trickled head; the Activity clocks below keep the two apart.
        let mut builder = http1::Builder::new();
        builder.header_read_timeout(None).max_header_size(self.limits.max_header_bytes);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let check = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(check);
        let mut checking = true;
        let mut draining = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    match result {
                        Err(e) if e.is_parse_too_large() => self.reports.hit(
                            Limit::HeaderSize,
                            Some(self.peer),
                            "answered 431 and closed: the request head is too large",
                        ),
                        Err(e) => tracing::debug!(peer = %self.peer, error = %e, "HTTP connection ended with an error"),
                        Ok(()) => {}
                    }
                    return;
                }
                () = &mut check, if checking => {
                    match activity.snapshot().verdict(activity.elapsed(), &self.limits) {
                        Verdict::Close(stall) => {
                            let (limit, outcome) = Limit::of_stall(stall);
                            self.reports.hit(limit, Some(self.peer), outcome);
                            return;
                        }
                        Verdict::CheckAt(Some(at)) => check.as_mut().reset(activity.instant(at)),
                        Verdict::CheckAt(None) => checking = false,
                    }
                }
                changed = self.stage.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let stage = *self.stage.borrow_and_update();
                    match stage {
                        Stage::Serving => {}
                        Stage::Draining if activity.in_flight() == 0 => return,
                        Stage::Draining if !draining => {
                            draining = true;
                            conn.as_mut().graceful_shutdown();
                        }
                        Stage::Draining => {}
                        Stage::Closing => return,
                    }
                }
            }
        }
    }
}
