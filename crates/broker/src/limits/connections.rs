//! Connection quotas, as Kafka's listeners apply them:
//!
//! - `max.connection.creation.rate`: a new connection waits (and with it
//!   every later one on that listener) until the broker-wide rate allows it;
//! - `max.connections`: while the broker holds that many connections, the
//!   listener stops accepting: the waiting connection is established but not
//!   served, later ones wait in the kernel's backlog, until one closes;
//! - `max.connections.per.ip` / `.overrides`: a connection from an address
//!   that already holds its maximum is closed right after it is accepted.
//!
//! Every admitted connection holds a [`ConnectionSlot`]; dropping it gives
//! the slot back. Lowering `max.connections` at runtime closes the least
//! recently active connections until the broker is under the new limit.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tributary_config::connections::{ConnectionLimits, PerIpOverride, UNLIMITED};

/// The limits with override host names resolved to addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Limits {
    max_connections: u32,
    max_per_ip: u32,
    per_ip_overrides: HashMap<IpAddr, u32>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PerIpLimitReached {
    /// The limit that applies to the address.
    pub(crate) max: u32,
}

/// Connections open and the limits they count against.
#[derive(Debug)]
struct Counts {
    limits: Limits,
    total: u32,
    per_ip: HashMap<IpAddr, u32>,
    open: HashMap<u64, Arc<SlotState>>,
    next_id: u64,
}

/// What a connection shares with the quotas.
#[derive(Debug)]
struct SlotState {
    /// Microseconds since the quotas' epoch when the connection last did something.
    last_active_us: AtomicU64,
    /// Set once the connection was told to close for `max.connections`.
    evicting: AtomicBool,
    evict: Notify,
}

/// Broker-wide `max.connection.creation.rate`: a token bucket holding up to
/// one second's worth of connections.
#[derive(Debug)]
struct CreationRate {
    per_second: u32,
    tokens: f64,
    updated: Instant,
}

impl CreationRate {
    /// Records one new connection at `now`; returns how long it must wait
    /// (at most one second, as Kafka bounds its throttle to one quota window).
    fn record(&mut self, now: Instant) -> Duration {
        if self.per_second >= UNLIMITED {
            return Duration::ZERO;
        }
        // A rate of 0 lets one connection through per second, as Kafka's bounded throttle does.
        let rate = f64::from(self.per_second.max(1));
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * rate).min(rate) - 1.0;
        self.tokens = self.tokens.max(-rate);
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / rate) }
    }

    fn set(&mut self, per_second: u32) {
        if per_second != self.per_second {
            self.per_second = per_second;
            let rate = f64::from(per_second.max(1));
            self.tokens = self.tokens.min(rate);
        }
    }
}

/// The broker's connection quotas.
#[derive(Debug)]
pub(crate) struct ConnectionQuotas {
    counts: Mutex<Counts>,
    slot_freed: Notify,
    rate: Mutex<CreationRate>,
    epoch: Instant,
}

/// An admitted connection's place in the counts; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    quotas: Arc<ConnectionQuotas>,
    id: u64,
    ip: IpAddr,
    state: Arc<SlotState>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The address connections are counted under (IPv4-mapped IPv6 as IPv4).
fn counted_address(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Resolves override hosts to addresses (a host name counts for every
/// address it resolves to; one that does not resolve is skipped with a warning).
fn resolve_overrides(overrides: &[PerIpOverride]) -> HashMap<IpAddr, u32> {
    let mut out = HashMap::new();
    for o in overrides {
        if let Ok(ip) = o.host.parse::<IpAddr>() {
            out.insert(counted_address(ip), o.max);
            continue;
        }
        match (o.host.as_str(), 0).to_socket_addrs() {
            Ok(addrs) => {
                for a in addrs {
                    out.insert(counted_address(a.ip()), o.max);
                }
            }
            Err(e) => tracing::warn!(
                host = %o.host,
                error = %e,
                "max.connections.per.ip.overrides names a host that does not resolve; its override is not applied"
            ),
        }
    }
    out
}

impl Limits {
    fn resolve(limits: &ConnectionLimits) -> Limits {
        Limits {
            max_connections: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            per_ip_overrides: resolve_overrides(&limits.per_ip_overrides),
        }
    }

    fn max_for(&self, ip: IpAddr) -> u32 {
        self.per_ip_overrides.get(&ip).copied().unwrap_or(self.max_per_ip)
    }
}

/// What [`ConnectionQuotas::try_admit`] decided.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Counted; serve the connection.
    Admitted(ConnectionSlot),
    /// The broker holds `max.connections`: wait for one to close.
    BrokerFull,
    /// The address holds its maximum: close the connection.
    Refused(PerIpLimitReached),
}

impl ConnectionQuotas {
    pub(crate) fn new(limits: &ConnectionLimits) -> Arc<ConnectionQuotas> {
        let now = Instant::now();
        let rate = limits.max_connection_creation_rate;
        Arc::new(ConnectionQuotas {
            counts: Mutex::new(Counts {
                limits: Limits::resolve(limits),
                total: 0,
                per_ip: HashMap::new(),
                open: HashMap::new(),
                next_id: 0,
            }),
            slot_freed: Notify::new(),
            rate: Mutex::new(CreationRate { per_second: rate, tokens: f64::from(rate.max(1)), updated: now }),
            epoch: now,
        })
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Records a new connection against `max.connection.creation.rate` and
    /// returns how long accepting it must wait.
    pub(crate) fn creation_delay(&self, now: Instant) -> Duration {
        lock(&self.rate).record(now)
    }

    /// Counts a connection from `ip` if the broker and the address have room.
    /// The broker-wide limit is checked first, as Kafka does: a connection
    /// that waits for a broker slot is then still refused if its address is full.
    pub(crate) fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        let ip = counted_address(ip);
        let mut counts = lock(&self.counts);
        if counts.total >= counts.limits.max_connections {
            return Admission::BrokerFull;
        }
        let max = counts.limits.max_for(ip);
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= max {
            return Admission::Refused(PerIpLimitReached { max });
        }
        counts.total += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        let id = counts.next_id;
        counts.next_id += 1;
        let state = Arc::new(SlotState {
            last_active_us: AtomicU64::new(self.now_us()),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
        });
        counts.open.insert(id, state.clone());
        Admission::Admitted(ConnectionSlot { quotas: self.clone(), id, ip, state })
    }

    /// Admits a connection from `ip`, waiting while the broker holds
    /// `max.connections` (`on_wait` runs once if it has to wait).
    pub(crate) async fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        on_wait: impl FnOnce(),
    ) -> Result<ConnectionSlot, PerIpLimitReached> {
        let mut on_wait = Some(on_wait);
        loop {
            let freed = self.slot_freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.try_admit(ip) {
                Admission::Admitted(slot) => return Ok(slot),
                Admission::Refused(reason) => return Err(reason),
                Admission::BrokerFull => {
                    if let Some(f) = on_wait.take() {
                        f();
                    }
                }
            }
            freed.await;
        }
    }

    /// Applies new limits. Raising `max.connections` wakes waiting
    /// listeners; lowering it below the connections open closes the least
    /// recently active ones. Existing connections above a lowered per-address
    /// limit stay, as in Kafka: only new ones are refused.
    pub(crate) fn reconfigure(&self, limits: &ConnectionLimits) {
        let resolved = Limits::resolve(limits);
        lock(&self.rate).set(limits.max_connection_creation_rate);
        let mut counts = lock(&self.counts);
        if counts.limits != resolved {
            tracing::info!(
                max_connections = resolved.max_connections,
                max_connections_per_ip = resolved.max_per_ip,
                per_ip_overrides = resolved.per_ip_overrides.len(),
                "connection limits updated"
            );
        }
        counts.limits = resolved;
        let evicting = counts.open.values().filter(|s| s.evicting.load(Ordering::Acquire)).count() as u32;
        let excess = counts.total.saturating_sub(evicting).saturating_sub(counts.limits.max_connections);
        if excess > 0 {
            let mut candidates: Vec<(&u64, &Arc<SlotState>)> =
                counts.open.iter().filter(|(_, s)| !s.evicting.load(Ordering::Acquire)).collect();
            // Least recently active first; among equals, the older connection.
            candidates.sort_by_key(|(id, s)| (s.last_active_us.load(Ordering::Relaxed), **id));
            for (_, s) in candidates.into_iter().take(excess as usize) {
                s.evicting.store(true, Ordering::Release);
                s.evict.notify_one();
            }
        }
        drop(counts);
        self.slot_freed.notify_waiters();
    }

    /// Connections open (all addresses).
    #[cfg(test)]
    fn total(&self) -> u32 {
        lock(&self.counts).total
    }

    /// Connections open from `ip`.
    #[cfg(test)]
    fn count_of(&self, ip: IpAddr) -> u32 {
        lock(&self.counts).per_ip.get(&counted_address(ip)).copied().unwrap_or(0)
    }

    fn release(&self, id: u64, ip: IpAddr) {
        let mut counts = lock(&self.counts);
        if counts.open.remove(&id).is_none() {
            return;
        }
        counts.total = counts.total.saturating_sub(1);
        match counts.per_ip.get_mut(&ip) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                counts.per_ip.remove(&ip);
            }
        }
        drop(counts);
        self.slot_freed.notify_waiters();
    }
}

impl ConnectionSlot {
    /// Marks the connection active now (it completed a request or a response).
    pub(crate) fn touch(&self) {
        self.state.last_active_us.store(self.quotas.now_us(), Ordering::Relaxed);
    }

    /// Completes when the connection must close because `max.connections`
    /// was lowered below the connections open.
    pub(crate) async fn evicted(&self) {
        self.state.evict.notified().await
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.quotas.release(self.id, self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_config::connections::PerIpOverride;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn limits(max_connections: u32, per_ip: u32, overrides: &[(&str, u32)]) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            max_connections_per_ip: per_ip,
            per_ip_overrides: overrides.iter().map(|(h, m)| PerIpOverride { host: h.to_string(), max: *m }).collect(),
            max_connection_creation_rate: UNLIMITED,
        }
    }

    fn admitted(a: Admission) -> ConnectionSlot {
        match a {
            Admission::Admitted(s) => s,
            other => panic!("expected admission, got {other:?}"),
        }
    }

    #[test]
    fn per_ip_limit_refuses_the_next_connection_and_counts_only_admitted_ones() {
        let q = ConnectionQuotas::new(&limits(UNLIMITED, 2, &[]));
        let a = admitted(q.try_admit(ip("10.0.0.1")));
        let _b = admitted(q.try_admit(ip("10.0.0.1")));
        assert!(matches!(q.try_admit(ip("10.0.0.1")), Admission::Refused(PerIpLimitReached { max: 2 })));
        assert_eq!(q.count_of(ip("10.0.0.1")), 2, "a refused connection is not counted");
        let _other = admitted(q.try_admit(ip("10.0.0.2")));
        assert_eq!(q.total(), 3);
        drop(a);
        assert_eq!(q.count_of(ip("10.0.0.1")), 1);
        let _c = admitted(q.try_admit(ip("10.0.0.1")));
    }

    #[test]
    fn overrides_raise_or_lower_one_address_and_mapped_ipv6_counts_as_ipv4() {
        let q = ConnectionQuotas::new(&limits(UNLIMITED, 1, &[("127.0.0.1", 3), ("10.0.0.9", 0)]));
        let _a = admitted(q.try_admit(ip("127.0.0.1")));
        let _b = admitted(q.try_admit(ip("::ffff:127.0.0.1")));
        let _c = admitted(q.try_admit(ip("127.0.0.1")));
        assert!(matches!(q.try_admit(ip("127.0.0.1")), Admission::Refused(PerIpLimitReached { max: 3 })));
        assert!(matches!(q.try_admit(ip("10.0.0.9")), Admission::Refused(PerIpLimitReached { max: 0 })));
        let _d = admitted(q.try_admit(ip("10.0.0.1")));
        assert!(matches!(q.try_admit(ip("10.0.0.1")), Admission::Refused(PerIpLimitReached { max: 1 })));
    }

    #[test]
    fn broker_limit_blocks_before_the_address_is_checked() {
        let q = ConnectionQuotas::new(&limits(2, 1, &[]));
        let a = admitted(q.try_admit(ip("10.0.0.1")));
        let _b = admitted(q.try_admit(ip("10.0.0.2")));
        assert!(matches!(q.try_admit(ip("10.0.0.1")), Admission::BrokerFull));
        assert!(matches!(q.try_admit(ip("10.0.0.3")), Admission::BrokerFull));
        drop(a);
        let _c = admitted(q.try_admit(ip("10.0.0.3")));
        assert_eq!(q.total(), 2);
    }

    #[tokio::test]
    async fn a_waiting_accept_proceeds_when_a_connection_closes_or_the_limit_rises() {
        let q = ConnectionQuotas::new(&limits(1, UNLIMITED, &[]));
        let first = admitted(q.try_admit(ip("10.0.0.1")));
        let waited = Arc::new(AtomicBool::new(false));
        let waiter = tokio::spawn({
            let (q, waited) = (q.clone(), waited.clone());
            async move { q.admit(ip("10.0.0.2"), move || waited.store(true, Ordering::SeqCst)).await.map(|_| ()) }
        });
        while !waited.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished());
        drop(first);
        let admitted = tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("woken").expect("joined");
        assert_eq!(admitted, Ok(()));

        let q = ConnectionQuotas::new(&limits(1, UNLIMITED, &[]));
        let _held = admitted_slot(&q);
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.admit(ip("10.0.0.2"), || {}).await.map(drop) }
        });
        tokio::task::yield_now().await;
        q.reconfigure(&limits(2, UNLIMITED, &[]));
        let admitted = tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("woken").expect("joined");
        assert_eq!(admitted, Ok(()));
    }

    fn admitted_slot(q: &Arc<ConnectionQuotas>) -> ConnectionSlot {
        admitted(q.try_admit(ip("10.0.0.1")))
    }

    #[tokio::test]
    async fn lowering_max_connections_evicts_the_least_recently_active() {
        let q = ConnectionQuotas::new(&limits(UNLIMITED, UNLIMITED, &[]));
        let slots: Vec<ConnectionSlot> = (0..4).map(|_| admitted_slot(&q)).collect();
        // Activity order: 2 oldest, then 0, then 3, then 1 most recent.
        for (i, ms) in [(2usize, 1u64), (0, 2), (3, 3), (1, 4)] {
            slots[i].state.last_active_us.store(ms, Ordering::Relaxed);
        }
        q.reconfigure(&limits(2, UNLIMITED, &[]));
        let evicted: Vec<usize> = (0..4).filter(|&i| slots[i].state.evicting.load(Ordering::Acquire)).collect();
        assert_eq!(evicted, vec![0, 2]);
        tokio::time::timeout(Duration::from_secs(10), slots[2].evicted()).await.expect("told to close");
        // The same limit again does not pick more victims while those are closing.
        q.reconfigure(&limits(2, UNLIMITED, &[]));
        assert_eq!((0..4).filter(|&i| slots[i].state.evicting.load(Ordering::Acquire)).count(), 2);
        drop(slots);
        assert_eq!(q.total(), 0);
    }

    #[test]
    fn creation_rate_spaces_connections_after_a_one_second_burst() {
        let t0 = Instant::now();
        let mut r = CreationRate { per_second: 10, tokens: 10.0, updated: t0 };
        for _ in 0..10 {
            assert_eq!(r.record(t0), Duration::ZERO);
        }
        let wait = r.record(t0);
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100), "{wait:?}");
        // Half a second later five more connections' worth has accrued (minus the debt of one).
        assert_eq!(r.record(t0 + Duration::from_millis(500)), Duration::ZERO);
        let mut unlimited = CreationRate { per_second: UNLIMITED, tokens: 0.0, updated: t0 };
        assert_eq!(unlimited.record(t0), Duration::ZERO);
        let mut zero = CreationRate { per_second: 0, tokens: 1.0, updated: t0 };
        assert_eq!(zero.record(t0), Duration::ZERO);
        assert_eq!(zero.record(t0), Duration::from_secs(1), "rate 0: one per second, waits bounded at 1 s");
        assert_eq!(zero.record(t0), Duration::from_secs(1));
    }
}
