//! What one connection is doing, as its socket, its request bodies and its
//! responses report it, and the decision taken from that: keep it, or close
//! it because a timeout ran out.
//!
//! A connection is always in one of these states, each with its own clock:
//!
//! ```text
//!   waiting for a request, nothing received ── idle.timeout.ms from the last response (or accept)
//!   a request head arriving ────────────────── header.read.timeout.ms from its first byte, and
//!                                               idle.timeout.ms from its last byte
//!   a request in flight (head parsed, response not yet fully handed over):
//!     the handler waits for body bytes ─────── idle.timeout.ms from when it started waiting
//!     the handler works (Kafka, a long poll) ─ no limit: the server's time is not the client's
//!   a write the client does not read ───────── idle.timeout.ms from when the socket stopped taking bytes
//! ```
//!
//! The parts of the connection record events here through atomics (a
//! request body may be read on another task); [`Activity::verdict`] reads a
//! snapshot and is pure, so the rules are tested without sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::limits::Limits;

/// Why a connection was closed by a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// No request in flight and nothing received for `idle.timeout.ms`.
    Idle,
    /// A request head started and did not end within `header.read.timeout.ms`.
    Head,
    /// The handler waited `idle.timeout.ms` for request body bytes.
    Body,
    /// The client did not read the response for `idle.timeout.ms`.
    Write,
}

/// What to do with a connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Close it: a timeout ran out.
    Close(Stall),
    /// Look again at this time since the connection was accepted (`None`: no timeout can run out).
    CheckAt(Option<Duration>),
}

/// A connection's state at one moment, in times since it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Requests whose head was parsed and whose response is not yet fully handed over.
    pub in_flight: usize,
    /// Since when no request has been in flight.
    pub quiet_since: Duration,
    /// When the first byte after `quiet_since` arrived, if one did.
    pub head_started: Option<Duration>,
    /// When the last byte arrived, if one did.
    pub last_received: Option<Duration>,
    /// Since when a handler has been waiting for request body bytes, if it is.
    pub body_waiting_since: Option<Duration>,
    /// Since when the socket has not taken bytes the server wants to write, if so.
    pub write_blocked_since: Option<Duration>,
}

impl Snapshot {
    /// Close or keep, at `now` (since accept).
    pub fn verdict(&self, now: Duration, limits: &Limits) -> Verdict {
        let mut deadlines: Vec<(Duration, Stall)> = Vec::with_capacity(2);
        if self.in_flight == 0 {
            match self.head_started {
                Some(start) => {
                    if let Some(t) = limits.header_read_timeout {
                        deadlines.push((start + t, Stall::Head));
                    }
                    if let Some(t) = limits.idle_timeout {
                        deadlines.push((self.last_received.unwrap_or(start).max(start) + t, Stall::Idle));
                    }
                }
                None => {
                    if let Some(t) = limits.idle_timeout {
                        deadlines.push((self.quiet_since + t, Stall::Idle));
                    }
                }
            }
        } else if let (Some(since), Some(t)) = (self.body_waiting_since, limits.idle_timeout) {
            deadlines.push((since + t, Stall::Body));
        }
        if let (Some(since), Some(t)) = (self.write_blocked_since, limits.idle_timeout) {
            deadlines.push((since + t, Stall::Write));
        }
        let earliest = deadlines.into_iter().min_by_key(|(at, _)| *at);
        if let Some((at, stall)) = earliest
            && at <= now
        {
            return Verdict::Close(stall);
        }
        // The state may change before the earliest deadline (a request starts
        // or ends, a body wait begins): look again within the shortest timeout
        // so that no new deadline is passed unnoticed.
        let recheck = limits.shortest_timeout().map(|t| now + t);
        let next = match (earliest.map(|(at, _)| at), recheck) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Verdict::CheckAt(next)
    }
}

/// The live state of one connection, shared by its socket wrapper, its
/// request bodies, its in-flight guards and its watcher.
#[derive(Debug)]
pub struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    quiet_since: AtomicU64,
    // The three below hold nanoseconds since `accepted` plus one; 0 is "not so".
    head_started: AtomicU64,
    last_received: AtomicU64,
    body_waiting_since: AtomicU64,
    write_blocked_since: AtomicU64,
}

fn stamp(value: u64) -> Option<Duration> {
    value.checked_sub(1).map(Duration::from_nanos)
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            quiet_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            last_received: AtomicU64::new(0),
            body_waiting_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
        })
    }

    /// Time since accept.
    pub fn elapsed(&self) -> Duration {
        self.accepted.elapsed()
    }

    /// The instant `at` (since accept) stands for.
    pub fn instant(&self, at: Duration) -> Instant {
        self.accepted + at
    }

    fn now_stamp(&self) -> u64 {
        u64::try_from(self.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Bytes arrived from the client.
    pub fn received(&self) {
        let now = self.now_stamp();
        self.last_received.store(now, Ordering::Release);
        if self.in_flight.load(Ordering::Acquire) == 0 && self.head_started.load(Ordering::Acquire) == 0 {
            self.head_started.store(now, Ordering::Release);
        }
    }

    /// A write could not be taken by the socket (`true`) or was (`false`).
    pub fn write_blocked(&self, blocked: bool) {
        if !blocked {
            self.write_blocked_since.store(0, Ordering::Release);
        } else if self.write_blocked_since.load(Ordering::Acquire) == 0 {
            self.write_blocked_since.store(self.now_stamp(), Ordering::Release);
        }
    }

    /// A handler waits for request body bytes (`true`) or got some, or stopped waiting (`false`).
    pub fn body_waiting(&self, waiting: bool) {
        if !waiting {
            self.body_waiting_since.store(0, Ordering::Release);
        } else if self.body_waiting_since.load(Ordering::Acquire) == 0 {
            self.body_waiting_since.store(self.now_stamp(), Ordering::Release);
        }
    }

    /// A request's head was parsed: it is in flight until the guard drops
    /// (when its response has been handed over whole, or abandoned).
    pub fn begin_request(self: &Arc<Activity>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        InFlight { activity: Arc::clone(self) }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The state now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            in_flight: self.in_flight.load(Ordering::Acquire),
            quiet_since: Duration::from_nanos(self.quiet_since.load(Ordering::Acquire)),
            head_started: stamp(self.head_started.load(Ordering::Acquire)),
            last_received: stamp(self.last_received.load(Ordering::Acquire)),
            body_waiting_since: stamp(self.body_waiting_since.load(Ordering::Acquire)),
            write_blocked_since: stamp(self.write_blocked_since.load(Ordering::Acquire)),
        }
    }
}

/// One request in flight; dropping it ends the request.
#[derive(Debug)]
pub struct InFlight {
    activity: Arc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.activity;
        if a.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            a.body_waiting_since.store(0, Ordering::Release);
            a.head_started.store(0, Ordering::Release);
            a.quiet_since.store(a.now_stamp() - 1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn limits(header: u64, idle: u64) -> Limits {
        Limits {
            header_read_timeout: Some(Duration::from_secs(header)),
            idle_timeout: Some(Duration::from_secs(idle)),
            ..Limits::default()
        }
    }

    #[test]
    fn a_quiet_connection_closes_at_the_idle_timeout_from_its_last_response() {
        let l = limits(5, 10);
        let s = Snapshot { quiet_since: 3 * S, ..Snapshot::default() };
        assert_eq!(s.verdict(4 * S, &l), Verdict::CheckAt(Some(9 * S)), "looked at again within the shortest timeout");
        assert_eq!(s.verdict(12 * S, &l), Verdict::CheckAt(Some(13 * S)));
        assert_eq!(s.verdict(13 * S, &l), Verdict::Close(Stall::Idle));
    }

    #[test]
    fn a_head_has_the_header_timeout_from_its_first_byte_and_the_idle_timeout_from_its_last() {
        let trickling = |now| Snapshot {
            quiet_since: S,
            head_started: Some(2 * S),
            last_received: Some(now),
            ..Snapshot::default()
        };
        // Bytes keep coming: only the header timeout can end it.
        assert_eq!(trickling(6 * S).verdict(6 * S, &limits(5, 3)), Verdict::CheckAt(Some(7 * S)));
        assert_eq!(trickling(7 * S).verdict(7 * S, &limits(5, 3)), Verdict::Close(Stall::Head));
        assert_eq!(trickling(100 * S).verdict(100 * S, &limits(200, 3)), Verdict::CheckAt(Some(103 * S)));
        // Bytes stopped: the idle timeout runs from the last one.
        let stalled = Snapshot { last_received: Some(3 * S), ..trickling(Duration::ZERO) };
        assert_eq!(stalled.verdict(5 * S, &limits(200, 3)), Verdict::CheckAt(Some(6 * S)));
        assert_eq!(stalled.verdict(6 * S, &limits(200, 3)), Verdict::Close(Stall::Idle));
        let no_header_limit = Limits { header_read_timeout: None, ..limits(0, 3) };
        assert_eq!(stalled.verdict(6 * S, &no_header_limit), Verdict::Close(Stall::Idle));
    }

    #[test]
    fn a_request_in_flight_is_never_idle_unless_the_client_stalls_it() {
        let l = limits(2, 3);
        let working = Snapshot { in_flight: 1, ..Snapshot::default() };
        assert_eq!(working.verdict(1000 * S, &l), Verdict::CheckAt(Some(1002 * S)));
        let waiting_for_body = Snapshot { body_waiting_since: Some(10 * S), ..working };
        assert_eq!(waiting_for_body.verdict(12 * S, &l), Verdict::CheckAt(Some(13 * S)));
        assert_eq!(waiting_for_body.verdict(13 * S, &l), Verdict::Close(Stall::Body));
        let not_read = Snapshot { write_blocked_since: Some(20 * S), ..working };
        assert_eq!(not_read.verdict(23 * S, &l), Verdict::Close(Stall::Write));
    }

    #[test]
    fn without_timeouts_nothing_closes_and_nothing_needs_a_look() {
        let l = Limits { header_read_timeout: None, idle_timeout: None, ..Limits::default() };
        let s = Snapshot { head_started: Some(S), write_blocked_since: Some(S), ..Snapshot::default() };
        assert_eq!(s.verdict(1_000_000 * S, &l), Verdict::CheckAt(None));
        let header_only = Limits { header_read_timeout: Some(S), ..l };
        assert_eq!(Snapshot::default().verdict(5 * S, &header_only), Verdict::CheckAt(Some(6 * S)));
    }

    #[test]
    fn the_guard_tracks_requests_and_restarts_the_quiet_clock() {
        let a = Activity::new();
        a.received();
        assert!(a.snapshot().head_started.is_some());
        let g = a.begin_request();
        assert_eq!(a.snapshot().head_started, None, "the head is complete");
        a.received();
        assert_eq!(a.snapshot().head_started, None, "body bytes are not a new head");
        a.body_waiting(true);
        assert!(a.snapshot().body_waiting_since.is_some());
        drop(g);
        let s = a.snapshot();
        assert_eq!((s.in_flight, s.body_waiting_since, s.head_started), (0, None, None));
        a.write_blocked(true);
        let first = a.snapshot().write_blocked_since;
        a.write_blocked(true);
        assert_eq!(a.snapshot().write_blocked_since, first, "the stall counts from its start");
        a.write_blocked(false);
        assert_eq!(a.snapshot().write_blocked_since, None);
    }
}
