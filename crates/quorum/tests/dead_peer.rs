//! A voter that is down costs the leader a few connection attempts a
//! second and two log lines, not a retry storm: three voters over TCP on
//! 127.0.0.x, the third one's port reserved but not listening (connections
//! are refused, as to a killed process). Every call the live nodes make to
//! it is counted; over a two-second look the count stays far below what an
//! immediate retry makes (thousands), the "unreachable" line is written at
//! most once per live node, and when the third voter starts on its port it
//! is picked up (it applies what the others committed) and "answers again"
//! is logged.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tributary_quorum::net::message::{Envelope, Response};
use tributary_quorum::net::tcp::{ControllerServer, TcpTransport};
use tributary_quorum::net::{BoxFuture, Transport, TransportError};
use tributary_quorum::quorum::{MetadataQuorum, Quorum, QuorumOptions, Voters};
use tributary_quorum::sim::{SimApp, SimMachine};
use tributary_quorum::storage::memory::{MemDisk, MemMachine};
use tributary_quorum::types::NodeId;

type Member = Quorum<SimApp, MemMachine<SimApp, SimMachine>>;

const DEAD: NodeId = 3;
const DEADLINE: Duration = Duration::from_secs(30);
/// How long the dead voter is watched.
const LOOK: Duration = Duration::from_secs(2);
/// Far above what back-off allows (about a dozen in two seconds), far
/// below an immediate retry.
const ATTEMPTS_BOUND: u64 = 100;

/// The TCP transport, counting the calls addressed to [`DEAD`].
struct Counting {
    inner: TcpTransport,
    to_dead: Arc<AtomicU64>,
}

impl Transport<SimApp> for Counting {
    fn call(
        &self,
        target: NodeId,
        address: &str,
        request: Envelope<SimApp>,
        timeout: Duration,
    ) -> BoxFuture<Result<Response<SimApp>, TransportError>> {
        if target == DEAD {
            self.to_dead.fetch_add(1, Ordering::SeqCst);
        }
        Transport::<SimApp>::call(&self.inner, target, address, request, timeout)
    }
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn count(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).lines().filter(|l| l.contains(needle)).count()
    }
}

async fn start(
    id: NodeId,
    listener: TcpListener,
    voters: &BTreeMap<NodeId, String>,
    to_dead: &Arc<AtomicU64>,
) -> (Arc<Member>, ControllerServer) {
    let address = voters[&id].clone();
    let options = QuorumOptions::new(id, "dead-peer", &address, Voters::Static(voters.clone()));
    let transport =
        Counting { inner: TcpTransport::for_listener(&address, Duration::from_secs(1)), to_dead: to_dead.clone() };
    let disk = MemDisk::new();
    let machine = disk.open_machine::<SimMachine>().expect("machine");
    let quorum = Quorum::start(options, disk.open_log(), machine, Arc::new(transport)).await.expect("quorum starts");
    let server = ControllerServer::serve(listener, quorum.handler()).expect("serve");
    (Arc::new(quorum), server)
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(tokio::time::Instant::now() < until, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_voter_is_retried_with_back_off_and_logged_once() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init()
        .expect("the only subscriber of this test binary");

    // Node 3's port is bound but not listening: connecting is refused.
    let reserved = TcpSocket::new_v4().expect("socket");
    reserved.bind("127.0.0.3:0".parse().expect("addr")).expect("bind 127.0.0.3");
    let mut voters = BTreeMap::from([(DEAD, reserved.local_addr().expect("addr").to_string())]);
    let mut listeners = BTreeMap::new();
    for id in 1..=2 {
        let listener = TcpListener::bind(format!("127.0.0.{id}:0")).await.expect("bind 127.0.0.x");
        voters.insert(id, listener.local_addr().expect("addr").to_string());
        listeners.insert(id, listener);
    }
    let to_dead = Arc::new(AtomicU64::new(0));
    let mut nodes = BTreeMap::new();
    for id in 1..=2 {
        nodes.insert(id, start(id, listeners.remove(&id).expect("listener"), &voters, &to_dead).await);
    }
    // Two of three voters elect a leader and commit.
    let (log_id, _) = nodes[&1].0.propose(1).await.expect("two voters of three commit");

    to_dead.store(0, Ordering::SeqCst);
    tokio::time::sleep(LOOK).await;
    let attempts = to_dead.load(Ordering::SeqCst);
    assert!(attempts > 0, "the leader never tried the dead voter");
    assert!(attempts <= ATTEMPTS_BOUND, "{attempts} calls to a dead voter in {LOOK:?}");
    let unreachable = lines.count("controller node 3 is unreachable");
    eprintln!("{attempts} calls to the dead voter in {LOOK:?}, {unreachable} unreachable line(s)");
    assert!((1..=2).contains(&unreachable), "{unreachable} unreachable lines for node 3");

    // Node 3 comes up on its port and catches up.
    let listener = reserved.listen(64).expect("listen");
    let (third, third_server) = start(DEAD, listener, &voters, &to_dead).await;
    let mut applied = third.applied();
    tokio::time::timeout(DEADLINE, applied.wait_for(|a| a.is_some_and(|a| a.index >= log_id.index)))
        .await
        .expect("the returning voter is picked up")
        .expect("applied watch");
    wait_until("its return is logged", || lines.count("controller node 3 answers again") >= 1).await;
    assert_eq!(lines.count("controller node 3 is unreachable"), unreachable, "logged again while it was up");

    third_server.shutdown();
    third.shutdown().await;
    for (quorum, server) in nodes.values() {
        server.shutdown();
        quorum.shutdown().await;
    }
}
