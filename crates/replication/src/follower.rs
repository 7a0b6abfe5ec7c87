//! The follower side of one partition (Kafka's fetcher state for it): what
//! to ask the leader next, and what to do with the answer.
//!
//! **Position = durable log end.** A follower sends its next fetch only
//! once everything it has appended is fsynced, and fetches from its log end
//! offset, which is then also its durable offset. The fetch offset is the
//! position the leader counts for the high watermark, so the leader never
//! commits a record a follower's crash could take back. (The fetcher
//! appends a response, asks the flusher, and fetches again once the flush
//! has completed; many partitions share one fsync round.)
//!
//! **Truncation.** Before fetching from a new leader (OffsetForLeaderEpoch
//! mode), or whenever the leader answers a fetch with a diverging epoch
//! (on-fetch mode, KIP-320), the follower cuts its log back to where it
//! stops agreeing with the leader's ([`crate::epochs::truncation_target`]);
//! when the leader named an epoch the follower lacks, it cuts back to its
//! own older epoch and asks again.
//!
//! **High watermark.** The leader's, capped at the follower's log end. It
//! does not move back, except when a truncation (after an unclean election)
//! cuts below it.

use crate::epochs::truncation_target;
use crate::log::{EpochEndOffset, LogError, ReplicaLog};
use crate::messages::{
    FetchRequest, FetchResponse, FetchedData, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    ReplicaRequestError,
};
use crate::types::{BrokerEpoch, LeaderEpoch, NO_LEADER, NodeId, Offset, ReplicationConfig, TruncationMode};

/// Where the follower is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPhase {
    /// Must learn the divergence point with OffsetForLeaderEpoch first.
    Truncating,
    /// Fetching records.
    Fetching,
    /// The leader said this replica's leader epoch is old: nothing to do
    /// until new metadata arrives.
    AwaitingMetadata,
}

/// A request to send to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerRequest {
    /// A fetch.
    Fetch(FetchRequest),
    /// OffsetForLeaderEpoch.
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
}

impl FollowerRequest {
    /// The request's id.
    pub fn request_id(&self) -> u64 {
        match self {
            FollowerRequest::Fetch(r) => r.request_id,
            FollowerRequest::OffsetForLeaderEpoch(r) => r.request_id,
        }
    }
}

/// What handling an answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerEvent {
    /// Not the answer to the request in flight: dropped.
    Ignored,
    /// Records appended: the log end is now `log_end_offset`. Flush, then
    /// poll again.
    Appended {
        /// The new log end offset.
        log_end_offset: Offset,
    },
    /// The log was cut to `offset`.
    Truncated {
        /// The new log end.
        offset: Offset,
        /// The cut went below the high watermark (only possible after an
        /// unclean election): worth a warning.
        below_high_watermark: bool,
    },
    /// The leader refused; poll again after the backoff.
    Backoff(ReplicaRequestError),
    /// This replica's leader epoch is old; wait for metadata.
    Fenced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    request_id: u64,
    sent_ms: u64,
}

/// One partition this replica follows, in one leader epoch.
#[derive(Debug, Clone)]
pub struct FollowerState {
    node_id: NodeId,
    broker_epoch: BrokerEpoch,
    leader: NodeId,
    leader_epoch: LeaderEpoch,
    phase: FetchPhase,
    in_flight: Option<InFlight>,
    next_request_id: u64,
    not_before_ms: u64,
    config: ReplicationConfig,
}

impl FollowerState {
    /// Follows `leader` (perhaps [`NO_LEADER`]) in `leader_epoch`.
    /// `first_request_id` keeps ids unique across this replica's states.
    pub fn new(
        node_id: NodeId,
        broker_epoch: BrokerEpoch,
        leader: NodeId,
        leader_epoch: LeaderEpoch,
        first_request_id: u64,
        config: ReplicationConfig,
    ) -> FollowerState {
        let phase = match config.truncation {
            TruncationMode::OffsetForLeaderEpoch => FetchPhase::Truncating,
            TruncationMode::OnFetch => FetchPhase::Fetching,
        };
        FollowerState {
            node_id,
            broker_epoch,
            leader,
            leader_epoch,
            phase,
            in_flight: None,
            next_request_id: first_request_id,
            not_before_ms: 0,
            config,
        }
    }

    /// The leader followed.
    pub fn leader(&self) -> NodeId {
        self.leader
    }

    /// The leader epoch followed.
    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leader_epoch
    }

    /// The phase.
    pub fn phase(&self) -> FetchPhase {
        self.phase
    }

    /// The next request id this state would use.
    pub fn next_request_id(&self) -> u64 {
        self.next_request_id
    }

    /// The request to send to [`FollowerState::leader`] now, if any: none
    /// while one is in flight (until it times out), while appended records
    /// wait for their flush, during a backoff, or without a leader.
    pub fn poll<L: ReplicaLog>(&mut self, now_ms: u64, log: &L) -> Option<FollowerRequest> {
        if self.leader == NO_LEADER || self.phase == FetchPhase::AwaitingMetadata || now_ms < self.not_before_ms {
            return None;
        }
        if let Some(in_flight) = self.in_flight {
            if now_ms.saturating_sub(in_flight.sent_ms) < self.config.fetch_timeout_ms {
                return None;
            }
            self.in_flight = None;
        }
        let log_end_offset = log.log_end_offset();
        if log.durable_offset() < log_end_offset && !reports_written_offset() {
            return None;
        }
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let request = match (self.phase, log.latest_epoch()) {
            (FetchPhase::Truncating, Some(leader_epoch)) => {
                FollowerRequest::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
                    request_id,
                    replica_id: self.node_id,
                    current_leader_epoch: self.leader_epoch,
                    leader_epoch,
                })
            }
            (_, latest_epoch) => {
                // An empty epoch cache has nothing to truncate.
                self.phase = FetchPhase::Fetching;
                FollowerRequest::Fetch(FetchRequest {
                    request_id,
                    replica_id: self.node_id,
                    replica_epoch: self.broker_epoch,
                    current_leader_epoch: self.leader_epoch,
                    fetch_offset: log_end_offset,
                    last_fetched_epoch: match self.config.truncation {
                        TruncationMode::OnFetch => latest_epoch,
                        TruncationMode::OffsetForLeaderEpoch => None,
                    },
                })
            }
        };
        self.in_flight = Some(InFlight { request_id, sent_ms: now_ms });
        Some(request)
    }

    /// The request in flight was lost (connection error): poll may send
    /// again at once.
    pub fn request_failed(&mut self, request_id: u64) {
        if self.in_flight.is_some_and(|f| f.request_id == request_id) {
            self.in_flight = None;
        }
    }

    /// The leader's answer to a fetch.
    pub fn handle_fetch_response<L: ReplicaLog>(
        &mut self,
        now_ms: u64,
        response: FetchResponse<L::Records>,
        log: &mut L,
    ) -> Result<FollowerEvent, LogError> {
        if !self.take_in_flight(response.request_id) {
            return Ok(FollowerEvent::Ignored);
        }
        match response.result {
            Ok(FetchedData::Records { records, high_watermark }) => {
                log.append_as_follower(records)?;
                let log_end_offset = log.log_end_offset();
                let hw = high_watermark.min(log_end_offset);
                if hw > log.high_watermark() {
                    log.set_high_watermark(hw);
                }
                Ok(FollowerEvent::Appended { log_end_offset })
            }
            Ok(FetchedData::Diverging(end)) => self.truncate(log, Some(end)),
            Err(error) => Ok(self.on_error(now_ms, error)),
        }
    }

    /// The leader's answer to OffsetForLeaderEpoch.
    pub fn handle_offset_for_leader_epoch_response<L: ReplicaLog>(
        &mut self,
        now_ms: u64,
        response: &OffsetForLeaderEpochResponse,
        log: &mut L,
    ) -> Result<FollowerEvent, LogError> {
        if !self.take_in_flight(response.request_id) {
            return Ok(FollowerEvent::Ignored);
        }
        match response.result {
            Ok(end) => self.truncate(log, end),
            Err(error) => Ok(self.on_error(now_ms, error)),
        }
    }

    fn take_in_flight(&mut self, request_id: u64) -> bool {
        if self.in_flight.is_none_or(|f| f.request_id != request_id) {
            return false;
        }
        self.in_flight = None;
        true
    }

    fn truncate<L: ReplicaLog>(
        &mut self,
        log: &mut L,
        leader_answer: Option<EpochEndOffset>,
    ) -> Result<FollowerEvent, LogError> {
        let target = truncation_target(&*log, leader_answer);
        let log_end_offset = log.log_end_offset();
        let high_watermark = log.high_watermark();
        // Also at the log end: an epoch this replica began as leader without
        // writing a record starts there and must go (Kafka does the same),
        // or the next fetch would name it again.
        log.truncate_to(target.offset.min(log_end_offset))?;
        if high_watermark > target.offset {
            log.set_high_watermark(target.offset);
        }
        // On-fetch mode finds the rest of the divergence with its next fetch.
        if target.complete || self.config.truncation == TruncationMode::OnFetch {
            self.phase = FetchPhase::Fetching;
        }
        Ok(FollowerEvent::Truncated {
            offset: target.offset.min(log_end_offset),
            below_high_watermark: target.offset < high_watermark,
        })
    }

    fn on_error(&mut self, now_ms: u64, error: ReplicaRequestError) -> FollowerEvent {
        match error {
            ReplicaRequestError::FencedLeaderEpoch => {
                self.phase = FetchPhase::AwaitingMetadata;
                FollowerEvent::Fenced
            }
            ReplicaRequestError::OffsetOutOfRange => {
                // Find the divergence point by asking, then fetch again.
                self.phase = FetchPhase::Truncating;
                self.not_before_ms = now_ms.saturating_add(self.config.fetch_backoff_ms);
                FollowerEvent::Backoff(error)
            }
            ReplicaRequestError::UnknownLeaderEpoch | ReplicaRequestError::NotLeaderOrFollower => {
                self.not_before_ms = now_ms.saturating_add(self.config.fetch_backoff_ms);
                FollowerEvent::Backoff(error)
            }
        }
    }
}

/// Test-only bug: report the written log end without waiting for the flush.
fn reports_written_offset() -> bool {
    #[cfg(test)]
    if crate::bugs::active(crate::bugs::Bug::FollowerReportsWrittenOffset) {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::log::{SimBatch, SimLog, SimRecord};

    fn follower(mode: TruncationMode) -> FollowerState {
        let config =
            ReplicationConfig { truncation: mode, fetch_timeout_ms: 100, fetch_backoff_ms: 10, ..Default::default() };
        FollowerState::new(2, 12, 1, 3, 1, config)
    }

    fn records(base_offset: Offset, epochs: &[LeaderEpoch]) -> SimBatch {
        let records =
            epochs.iter().enumerate().map(|(i, &epoch)| SimRecord { id: base_offset as u64 + i as u64, epoch });
        SimBatch { base_offset, records: records.collect() }
    }

    fn fetch_of(request: Option<FollowerRequest>) -> FetchRequest {
        match request {
            Some(FollowerRequest::Fetch(f)) => f,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn a_follower_fetches_again_only_once_its_records_are_durable() {
        let mut f = follower(TruncationMode::OnFetch);
        let mut log = SimLog::default();
        let first = fetch_of(f.poll(0, &log));
        assert_eq!((first.fetch_offset, first.last_fetched_epoch, first.current_leader_epoch), (0, None, 3));
        assert_eq!(f.poll(1, &log), None, "one request in flight");
        let response = FetchResponse {
            request_id: first.request_id,
            result: Ok(FetchedData::Records { records: records(0, &[2, 2, 3]), high_watermark: 2 }),
        };
        assert_eq!(f.handle_fetch_response(2, response, &mut log), Ok(FollowerEvent::Appended { log_end_offset: 3 }));
        assert_eq!(log.high_watermark(), 2);
        assert_eq!(f.poll(3, &log), None, "appended but not fsynced: its position would claim too much");
        log.flush();
        let second = fetch_of(f.poll(4, &log));
        assert_eq!((second.fetch_offset, second.last_fetched_epoch), (3, Some(3)));
    }

    #[test]
    fn late_answers_and_lost_requests() {
        let mut f = follower(TruncationMode::OnFetch);
        let mut log = SimLog::default();
        let first = fetch_of(f.poll(0, &log));
        let second = fetch_of(f.poll(100, &log));
        assert_ne!(first.request_id, second.request_id, "timed out: sent again");
        let late = FetchResponse { request_id: first.request_id, result: Err(ReplicaRequestError::FencedLeaderEpoch) };
        assert_eq!(f.handle_fetch_response(101, late, &mut log), Ok(FollowerEvent::Ignored));
        f.request_failed(second.request_id);
        let third = fetch_of(f.poll(102, &log));
        let unknown =
            FetchResponse { request_id: third.request_id, result: Err(ReplicaRequestError::UnknownLeaderEpoch) };
        assert_eq!(
            f.handle_fetch_response(103, unknown, &mut log),
            Ok(FollowerEvent::Backoff(ReplicaRequestError::UnknownLeaderEpoch))
        );
        assert_eq!(f.poll(112, &log), None, "backing off");
        let fourth = fetch_of(f.poll(113, &log));
        let fenced =
            FetchResponse { request_id: fourth.request_id, result: Err(ReplicaRequestError::FencedLeaderEpoch) };
        assert_eq!(f.handle_fetch_response(114, fenced, &mut log), Ok(FollowerEvent::Fenced));
        assert_eq!(f.poll(10_000, &log), None, "waits for metadata");
    }

    /// A fsynced log of records in `epochs`, its high watermark at 2.
    fn log_of(epochs: &[LeaderEpoch]) -> SimLog {
        let mut log = SimLog::default();
        log.append_as_follower(records(0, epochs)).expect("append");
        log.flush();
        log.set_high_watermark(2);
        log
    }

    fn diverged_log() -> SimLog {
        log_of(&[1, 1, 2, 2, 2])
    }

    #[test]
    fn a_diverging_epoch_cuts_the_log_back_to_where_the_leader_agrees() {
        let mut f = follower(TruncationMode::OnFetch);
        let mut log = diverged_log();
        let request = fetch_of(f.poll(0, &log));
        assert_eq!((request.fetch_offset, request.last_fetched_epoch), (5, Some(2)));
        // The leader's epoch 2 ended at 3.
        let diverging = FetchResponse {
            request_id: request.request_id,
            result: Ok(FetchedData::Diverging(EpochEndOffset { epoch: 2, end_offset: 3 })),
        };
        assert_eq!(
            f.handle_fetch_response(1, diverging, &mut log),
            Ok(FollowerEvent::Truncated { offset: 3, below_high_watermark: false })
        );
        assert_eq!((log.log_end_offset(), log.durable_offset()), (3, 3));
        let next = fetch_of(f.poll(2, &log));
        assert_eq!((next.fetch_offset, next.last_fetched_epoch), (3, Some(2)));
    }

    #[test]
    fn offset_for_leader_epoch_cuts_to_the_answer() {
        let mut f = follower(TruncationMode::OffsetForLeaderEpoch);
        let mut log = diverged_log();
        let Some(FollowerRequest::OffsetForLeaderEpoch(ask)) = f.poll(0, &log) else {
            panic!("asks first");
        };
        assert_eq!(ask.leader_epoch, 2);
        // The leader's largest epoch ≤ 2 is 0, older than any this follower
        // has: it cuts back to where its own first epoch starts.
        let answer = OffsetForLeaderEpochResponse {
            request_id: ask.request_id,
            result: Ok(Some(EpochEndOffset { epoch: 0, end_offset: 1 })),
        };
        assert_eq!(
            f.handle_offset_for_leader_epoch_response(1, &answer, &mut log),
            Ok(FollowerEvent::Truncated { offset: 0, below_high_watermark: true })
        );
        assert_eq!(f.phase(), FetchPhase::Fetching);
        let next = fetch_of(f.poll(2, &log));
        assert_eq!((next.fetch_offset, next.last_fetched_epoch), (0, None));
    }

    #[test]
    fn an_epoch_the_follower_lacks_means_asking_again() {
        let mut f = follower(TruncationMode::OffsetForLeaderEpoch);
        let mut log = log_of(&[1, 1, 3, 3, 3]);
        let Some(FollowerRequest::OffsetForLeaderEpoch(ask)) = f.poll(0, &log) else {
            panic!("asks first");
        };
        assert_eq!(ask.leader_epoch, 3);
        // The leader never had 3; its largest older epoch is 2, which this
        // follower never had either: cut to the end of its epoch 1, ask again.
        let answer = OffsetForLeaderEpochResponse {
            request_id: ask.request_id,
            result: Ok(Some(EpochEndOffset { epoch: 2, end_offset: 4 })),
        };
        assert_eq!(
            f.handle_offset_for_leader_epoch_response(1, &answer, &mut log),
            Ok(FollowerEvent::Truncated { offset: 2, below_high_watermark: false })
        );
        assert_eq!(f.phase(), FetchPhase::Truncating);
        let Some(FollowerRequest::OffsetForLeaderEpoch(again)) = f.poll(2, &log) else {
            panic!("asks again");
        };
        assert_eq!(again.leader_epoch, 1);
        let answer = OffsetForLeaderEpochResponse {
            request_id: again.request_id,
            result: Ok(Some(EpochEndOffset { epoch: 1, end_offset: 2 })),
        };
        assert_eq!(
            f.handle_offset_for_leader_epoch_response(3, &answer, &mut log),
            Ok(FollowerEvent::Truncated { offset: 2, below_high_watermark: false })
        );
        assert_eq!(f.phase(), FetchPhase::Fetching);
        let next = fetch_of(f.poll(4, &log));
        assert_eq!((next.fetch_offset, next.last_fetched_epoch), (2, None), "no epoch sent in this mode");
    }
}
