//! The simulated network: one FIFO queue per directed link (as a TCP
//! connection keeps order), messages delayed, dropped, or cut off by
//! partitions (which may be one-way). Order across links is the seed's
//! choice, so messages on different links reorder freely.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::rng::SimRng;

/// A place messages go: a broker or the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Endpoint {
    Controller,
    Node(i32),
}

#[derive(Debug)]
pub(crate) struct Envelope<M> {
    pub(crate) deliver_at_ms: u64,
    pub(crate) message: M,
}

/// Links and what is in flight on them.
#[derive(Debug)]
pub(crate) struct Network<M> {
    links: BTreeMap<(Endpoint, Endpoint), VecDeque<Envelope<M>>>,
    cut: BTreeSet<(Endpoint, Endpoint)>,
}

impl<M> Network<M> {
    pub(crate) fn new() -> Network<M> {
        Network { links: BTreeMap::new(), cut: BTreeSet::new() }
    }

    pub(crate) fn send(&mut self, from: Endpoint, to: Endpoint, deliver_at_ms: u64, message: M) {
        self.links.entry((from, to)).or_default().push_back(Envelope { deliver_at_ms, message });
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.links.values().map(VecDeque::len).sum()
    }

    /// Takes the head of a random link whose head is due and whose
    /// receiver is `ready` (a paused process reads nothing). A message on a
    /// cut link is lost when it would be delivered (returned as `None` in
    /// the message slot).
    pub(crate) fn take_due(
        &mut self,
        now_ms: u64,
        rng: &mut SimRng,
        ready: impl Fn(Endpoint) -> bool,
    ) -> Option<(Endpoint, Endpoint, Option<M>)> {
        let due: Vec<(Endpoint, Endpoint)> = self
            .links
            .iter()
            .filter(|((_, to), q)| ready(*to) && q.front().is_some_and(|e| e.deliver_at_ms <= now_ms))
            .map(|(&k, _)| k)
            .collect();
        if due.is_empty() {
            return None;
        }
        let link = due[rng.index(due.len())];
        self.take_head(link)
    }

    /// Takes the oldest due head over all links (the heal phase's fair order).
    pub(crate) fn take_oldest_due(&mut self, now_ms: u64) -> Option<(Endpoint, Endpoint, Option<M>)> {
        let link = self
            .links
            .iter()
            .filter_map(|(&k, q)| q.front().filter(|e| e.deliver_at_ms <= now_ms).map(|e| (e.deliver_at_ms, k)))
            .min()?
            .1;
        self.take_head(link)
    }

    fn take_head(&mut self, link: (Endpoint, Endpoint)) -> Option<(Endpoint, Endpoint, Option<M>)> {
        let envelope = self.links.get_mut(&link)?.pop_front()?;
        let message = (!self.cut.contains(&link)).then_some(envelope.message);
        Some((link.0, link.1, message))
    }

    /// Loses one random message in flight.
    pub(crate) fn drop_random(&mut self, rng: &mut SimRng) -> bool {
        let total = self.in_flight();
        if total == 0 {
            return false;
        }
        let mut pick = rng.index(total);
        for queue in self.links.values_mut() {
            if pick < queue.len() {
                queue.remove(pick);
                return true;
            }
            pick -= queue.len();
        }
        false
    }

    /// Loses everything in flight to `to` (it crashed: its connections
    /// closed).
    pub(crate) fn drop_to(&mut self, to: Endpoint) {
        for ((_, target), queue) in self.links.iter_mut() {
            if *target == to {
                queue.clear();
            }
        }
    }

    /// Loses everything in flight from `from` (it crashed: its
    /// connections closed, nothing it sent is answered).
    pub(crate) fn drop_from(&mut self, from: Endpoint) {
        for ((source, _), queue) in self.links.iter_mut() {
            if *source == from {
                queue.clear();
            }
        }
    }

    pub(crate) fn cut(&mut self, from: Endpoint, to: Endpoint) {
        self.cut.insert((from, to));
    }

    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }

    pub(crate) fn has_cuts(&self) -> bool {
        !self.cut.is_empty()
    }
}
