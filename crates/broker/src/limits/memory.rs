//! `queued.max.request.bytes`: one budget for the request bytes the broker
//! holds across all connections (read from sockets, not yet handled).
//!
//! A connection charges the budget before each read for the room it reads
//! into, settles the charge to what it really buffers, and gives it back once
//! a request has been handled. While the budget is spent, connections stop
//! reading (their clients see requests wait) until memory frees. As in
//! Kafka's memory pool, a charge succeeds while any budget is left, so one
//! read may overshoot it by at most its own size and no request starves.
//!
//! Unlike Kafka, which reserves the size a request announces as soon as its
//! 4-byte prefix is read, bytes are charged as they arrive: a peer that
//! announces 100 MiB and then stalls holds the budget of what it sent.

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

    fn add(&self, bytes: u64) {
        if self.budget.is_some() {
            self.used.fetch_add(bytes, Ordering::AcqRel);
        }
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

/// One connection's share of the budget: the bytes it has buffered.
#[derive(Debug)]
pub(crate) struct ConnectionMemory {
    pool: Arc<RequestMemory>,
    held: u64,
}

impl ConnectionMemory {
    pub(crate) fn new(pool: Arc<RequestMemory>) -> ConnectionMemory {
        ConnectionMemory { pool, held: 0 }
    }

    /// Charges `bytes` more before a read; false when the budget is spent
    /// (the connection must wait for [`RequestMemory::available`]).
    pub(crate) fn try_grow(&mut self, bytes: usize) -> bool {
        let ok = self.pool.try_add(bytes as u64);
        if ok {
            self.held += bytes as u64;
        }
        ok
    }

    /// Sets the charge to exactly `bytes` (what the connection still holds).
    pub(crate) fn settle(&mut self, bytes: usize) {
        let bytes = bytes as u64;
        if bytes < self.held {
            self.pool.release(self.held - bytes);
        } else {
            self.pool.add(bytes - self.held);
        }
        self.held = bytes;
    }
}

impl Drop for ConnectionMemory {
    fn drop(&mut self) {
        self.pool.release(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_budget_charges_nothing() {
        let pool = RequestMemory::new(None);
        let mut c = ConnectionMemory::new(pool.clone());
        assert!(c.try_grow(usize::MAX / 2));
        c.settle(10);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn charges_succeed_while_budget_is_left_and_free_on_settle_and_drop() {
        let pool = RequestMemory::new(Some(100));
        let mut a = ConnectionMemory::new(pool.clone());
        let mut b = ConnectionMemory::new(pool.clone());
        assert!(a.try_grow(60));
        assert!(b.try_grow(60), "non-strict: 40 bytes were left, so the charge goes through");
        assert_eq!(pool.used(), 120);
        assert!(!a.try_grow(1), "nothing left");
        a.settle(10);
        assert_eq!(pool.used(), 70);
        assert!(a.try_grow(5));
        drop(b);
        assert_eq!(pool.used(), 15);
        drop(a);
        assert_eq!(pool.used(), 0);
    }

    #[tokio::test]
    async fn a_waiting_connection_wakes_when_memory_frees() {
        let pool = RequestMemory::new(Some(10));
        let mut holder = ConnectionMemory::new(pool.clone());
        assert!(holder.try_grow(10));
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.available().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        holder.settle(0);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter).await.expect("woken").expect("joined");
    }
}
