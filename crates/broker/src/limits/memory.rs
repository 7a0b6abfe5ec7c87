//! `queued.max.request.bytes`: one budget for the request bytes the broker
//! holds across all connections (requests being read or handled).
//!
//! As in Kafka's memory pool, a connection reserves the size a request
//! announces once its 4-byte prefix has arrived, reads the rest without
//! asking again, and gives the reservation back once the request has been
//! handled. A reservation succeeds while any budget is left (so one request
//! may overshoot it, and no request is too large to ever get through); when
//! none is left, connections stop reading until a reservation is given back.
//! A connection holds at most one reservation and waits holding none, so
//! connections never wait on each other in a circle.
//!
//! A peer that announces a large request and stalls holds its reservation
//! until `connections.max.idle.ms` closes the connection, as in Kafka; the
//! memory it really takes is what it sent (the read buffer grows with bytes
//! that arrive).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// The shared budget.
#[derive(Debug)]
pub(crate) struct RequestMemory {
    /// `None`: unbounded (`queued.max.request.bytes` ≤ 0, Kafka's default).
    budget: Option<u64>,
    used: AtomicU64,
    freed: Notify,
}

impl RequestMemory {
    pub(crate) fn new(budget: Option<u64>) -> Arc<RequestMemory> {
        Arc::new(RequestMemory { budget, used: AtomicU64::new(0), freed: Notify::new() })
    }

    /// Bytes charged right now.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Adds `bytes` if any budget is left.
    fn try_add(&self, bytes: u64) -> bool {
        let Some(budget) = self.budget else { return true };
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| (used < budget).then_some(used + bytes))
            .is_ok()
    }

    fn release(&self, bytes: u64) {
        if self.budget.is_some() && bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            self.freed.notify_waiters();
        }
    }

    /// Waits until some budget is left.
    pub(crate) async fn available(&self) {
        let Some(budget) = self.budget else { return };
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.used() < budget {
                return;
            }
            freed.await;
        }
    }
}

/// One connection's reservation: the request at the front of its buffer.
#[derive(Debug)]
pub(crate) struct Reservation {
    pool: Arc<RequestMemory>,
    /// Bytes reserved; `None` while the connection holds no reservation.
    held: Option<u64>,
}

impl Reservation {
    pub(crate) fn new(pool: Arc<RequestMemory>) -> Reservation {
        Reservation { pool, held: None }
    }

    /// Whether the request at the front is reserved.
    pub(crate) fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// Reserves `bytes` for the request at the front; false when the budget
    /// is spent (wait for [`RequestMemory::available`] and try again).
    pub(crate) fn try_reserve(&mut self, bytes: usize) -> bool {
        debug_assert!(self.held.is_none(), "one reservation per connection");
        let ok = self.pool.try_add(bytes as u64);
        if ok {
            self.held = Some(bytes as u64);
        }
        ok
    }

    /// Gives the reservation back (the request was handled).
    pub(crate) fn release(&mut self) {
        if let Some(bytes) = self.held.take() {
            self.pool.release(bytes);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_budget_reserves_without_counting() {
        let pool = RequestMemory::new(None);
        let mut r = Reservation::new(pool.clone());
        assert!(r.try_reserve(usize::MAX / 2));
        assert!(r.is_held());
        assert_eq!(pool.used(), 0);
        r.release();
        assert!(!r.is_held());
    }

    #[test]
    fn reservations_succeed_while_budget_is_left_and_return_on_release_and_drop() {
        let pool = RequestMemory::new(Some(100));
        let mut a = Reservation::new(pool.clone());
        let mut b = Reservation::new(pool.clone());
        let mut c = Reservation::new(pool.clone());
        assert!(a.try_reserve(60));
        assert!(b.try_reserve(60), "non-strict: 40 bytes were left, so the reservation goes through");
        assert_eq!(pool.used(), 120);
        assert!(!c.try_reserve(1), "nothing left");
        assert!(!c.is_held());
        a.release();
        assert_eq!(pool.used(), 60);
        assert!(c.try_reserve(1000), "larger than the budget, but some is left");
        drop(b);
        assert_eq!(pool.used(), 1000);
        drop(c);
        assert_eq!(pool.used(), 0);
    }

    #[tokio::test]
    async fn a_waiting_connection_wakes_when_memory_frees() {
        let pool = RequestMemory::new(Some(10));
        let mut holder = Reservation::new(pool.clone());
        assert!(holder.try_reserve(10));
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.available().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        holder.release();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter).await.expect("woken").expect("joined");
    }
}
