//! The server's limits against raw sockets and a tiny router: each test
//! starts a server on a free port with small limits and checks what a client
//! sees. Deadlines are generous; the limits are far shorter than them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tributary_http::report::{Limit, Reports};
use tributary_http::{Limits, Server};

const DEADLINE: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(300);

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1200)).await;
                "slow"
            }),
        )
        .route("/big", get(|| async { vec![b'x'; 32 << 20] }))
        .route(
            "/count",
            post(|body: Body| async move {
                let mut body = body;
                let mut bytes = 0usize;
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(f) => bytes += f.data_ref().map_or(0, |d| d.len()),
                        Err(_) => return "error".to_string(),
                    }
                }
                format!("{bytes}")
            }),
        )
}

struct Running {
    addr: SocketAddr,
    reports: Arc<Reports>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

async fn start(limits: Limits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::new("test", limits);
    let reports = server.reports();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, router(), async move {
        let _ = stopped.await;
    }));
    Running { addr, reports, stop: Some(stop), task }
}

fn limits(header: Option<Duration>, idle: Option<Duration>, max: Option<usize>) -> Limits {
    Limits { header_read_timeout: header, idle_timeout: idle, max_connections: max, ..Limits::default() }
}

/// One `GET path` on `stream` (keep-alive); the response's body.
async fn get_on(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    read_response(stream).await
}

/// Reads one response with a Content-Length; its body.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a whole response: {:?}", String::from_utf8_lossy(&data));
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_string))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .expect("content-length");
                if body.len() >= length {
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    return body[..length].to_string();
                }
            }
        }
    };
    tokio::time::timeout(DEADLINE, read).await.expect("a response within the deadline")
}

/// Waits until the server closes `stream` (EOF or reset), discarding what arrives.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let wait = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait).await.is_ok()
}

async fn served(addr: SocketAddr) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(get_on(&mut s, "/").await, "hello");
}

#[tokio::test]
async fn a_trickled_head_is_closed_by_the_header_timeout_while_others_are_served() {
    let server = start(limits(Some(SHORT), None, None)).await;
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
    let (mut reader, mut writer) = slow.split();
    let drip = async {
        // One header byte every 50 ms, for ever: only the server can end this.
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if writer.write_all(b"X").await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let mut buf = [0u8; 64];
    let ended = tokio::time::timeout(DEADLINE, async {
        tokio::select! {
            () = drip => unreachable!(),
            r = reader.read(&mut buf) => r,
        }
    });
    served(server.addr).await;
    match ended.await.expect("the trickled head was closed within the deadline") {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("got an answer to a head that never ended: {:?}", &buf[..n]),
    }
    assert_eq!(server.reports.total(Limit::HeaderReadTimeout), 1);
    assert_eq!(server.reports.total(Limit::IdleTimeout), 0);
}

#[tokio::test]
async fn quiet_keep_alive_connections_are_closed_by_the_idle_timeout() {
    let server = start(limits(None, Some(SHORT), None)).await;
    let mut conns = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(server.addr).await.expect("connect");
        assert_eq!(get_on(&mut s, "/").await, "hello");
        conns.push(s);
    }
    let silent = TcpStream::connect(server.addr).await.expect("connect");
    conns.push(silent);
    for s in &mut conns {
        assert!(closed(s).await, "an idle connection stayed open");
    }
    assert_eq!(server.reports.total(Limit::IdleTimeout), 6);
}

#[tokio::test]
async fn a_streamed_body_and_a_slow_handler_outlive_both_timeouts() {
    let server = start(limits(Some(SHORT), Some(SHORT), None)).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n").await.expect("head");
    // 15 chunks 100 ms apart: five times the timeouts, never a gap as long as one.
    for _ in 0..15 {
        s.write_all(b"a\r\n0123456789\r\n").await.expect("chunk");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.write_all(b"0\r\n\r\n").await.expect("end");
    assert_eq!(read_response(&mut s).await, "150");
    // The handler works four times the idle timeout: the connection is not idle.
    assert_eq!(get_on(&mut s, "/slow").await, "slow");
    assert_eq!(server.reports.total(Limit::IdleTimeout) + server.reports.total(Limit::HeaderReadTimeout), 0);
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_closed_by_the_idle_timeout() {
    let server = start(limits(None, Some(SHORT), None)).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789").await.expect("write");
    assert!(closed(&mut s).await, "a stalled body kept its connection");
    assert_eq!(server.reports.total(Limit::IdleTimeout), 1);
}

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_by_the_idle_timeout() {
    let server = start(limits(None, Some(SHORT), None)).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
    // Never read: 32 MiB cannot fit in the socket buffers, so the server's writes block.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while server.reports.total(Limit::IdleTimeout) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the connection that reads nothing was not closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    served(server.addr).await;
}

#[tokio::test]
async fn the_connection_cap_holds_the_next_connection_until_one_closes() {
    let server = start(limits(None, None, Some(2))).await;
    let mut first = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_on(&mut first, "/").await, "hello");
    let mut second = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_on(&mut second, "/").await, "hello");
    let mut third = TcpStream::connect(server.addr).await.expect("the kernel completes the handshake");
    third.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while server.reports.total(Limit::ConnectionLimit) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the cap was not reported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut buf = [0u8; 16];
    let early = tokio::time::timeout(SHORT, third.read(&mut buf)).await;
    assert!(early.is_err(), "the third connection was served with two allowed: {early:?}");
    assert_eq!(get_on(&mut second, "/").await, "hello", "the connections within the cap are served");
    drop(first);
    assert_eq!(read_response(&mut third).await, "hello");
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_closes_the_rest() {
    let mut server = start(limits(None, None, None)).await;
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_on(&mut idle, "/").await, "hello");
    let mut busy = TcpStream::connect(server.addr).await.expect("connect");
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await; // the request is in flight
    server.stop.take().expect("stop").send(()).expect("server running");
    assert!(closed(&mut idle).await, "the idle connection stayed open after shutdown");
    assert_eq!(read_response(&mut busy).await, "slow", "the request in flight was finished");
    assert!(closed(&mut busy).await, "the finished connection stayed open after shutdown");
    tokio::time::timeout(DEADLINE, server.task).await.expect("the server returned").expect("no panic");
    assert!(TcpStream::connect(server.addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn shutdown_closes_requests_still_running_after_the_grace_period() {
    let limits = Limits { shutdown_grace: Duration::from_millis(100), ..limits(None, None, None) };
    let mut server = start(limits).await;
    let mut busy = TcpStream::connect(server.addr).await.expect("connect");
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop.take().expect("stop").send(()).expect("server running");
    tokio::time::timeout(DEADLINE, server.task).await.expect("the server returned").expect("no panic");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(DEADLINE, busy.read(&mut buf)).await.expect("closed");
    assert!(matches!(n, Ok(0) | Err(_)), "a response came after the grace period: {n:?}");
}

#[tokio::test]
async fn a_head_over_the_size_limit_gets_431_and_is_closed() {
    let limits = Limits { max_header_bytes: 2048, ..limits(None, None, None) };
    let server = start(limits).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    // Larger than the limit and never ended: refused as soon as the limit is reached.
    let head = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}", "a".repeat(4096));
    s.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut answer)).await.expect("closed").ok();
    assert!(answer.starts_with(b"HTTP/1.1 431"), "{:?}", String::from_utf8_lossy(&answer));
    assert_eq!(server.reports.total(Limit::HeaderSize), 1);
    let mut ok = TcpStream::connect(server.addr).await.expect("connect");
    let fits = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Fits: {}\r\n\r\n", "a".repeat(1500));
    ok.write_all(fits.as_bytes()).await.expect("write");
    assert_eq!(read_response(&mut ok).await, "hello");
}

#[tokio::test]
async fn a_head_whose_bytes_stop_is_closed_by_the_idle_timeout_before_the_header_timeout() {
    let server = start(limits(Some(Duration::from_secs(600)), Some(SHORT), None)).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").await.expect("write");
    assert!(closed(&mut s).await, "a stalled head stayed open");
    assert_eq!(server.reports.total(Limit::IdleTimeout), 1);
    assert_eq!(server.reports.total(Limit::HeaderReadTimeout), 0);
}
