//! Membership changes on the leader: observers (openraft learners) joining
//! or moving, and KIP-853 voter changes mapped onto openraft's membership
//! API.
//!
//! ```text
//! AddObserver(id, addr)  unknown id      → AddNodes {id: addr}        (one entry)
//!                        other address   → SetNodes {id: addr}        (one entry)
//!                        same address    → nothing
//! AddVoter(id, addr)     static voters   → StaticVoters   (UNSUPPORTED_VERSION)
//!                        a voter already → DuplicateVoter (DUPLICATE_VOTER)
//!                        else            → as AddObserver, wait until its log matches the
//!                                          leader's, then AddVoterIds {id} (joint, then uniform)
//! RemoveVoter(id)        not a voter, or the last one → VoterNotFound (VOTER_NOT_FOUND)
//!                        else            → RemoveVoters {id}, kept as an observer
//! ```
//!
//! Every change holds the leader's membership lock for its whole length and
//! starts only when the membership in effect is committed and the leader
//! has committed an entry of its own term; otherwise it is refused with
//! `ChangeInProgress` (REQUEST_TIMED_OUT), as Kafka refuses a second voter
//! change while one is pending. openraft changes voters through a joint
//! configuration; a leader that dies between the joint and the final entry
//! leaves the joint one committed, and the next leader finishes it
//! ([`Inner::finish_joint_membership`]) before any other change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use tokio::time::Instant;

use crate::net::message::{ForwardError, ForwardReply, VoterRefusal};
use crate::quorum::{Inner, Voters};
use crate::types::{LogId, Member, Membership, NodeId, QuorumApp};

type WriteError = RaftError<NodeId, ClientWriteError<NodeId, Member>>;

fn refuse<T>(refusal: VoterRefusal, message: String) -> Result<T, ForwardError> {
    Err(ForwardError::VoterChange { refusal, message })
}

/// What the leader knows of the membership when a change starts.
struct Settled {
    membership: Membership,
    log_id: Option<LogId>,
}

impl<A: QuorumApp> Inner<A> {
    fn not_leading(&self) -> ForwardError {
        let m = self.raft.metrics().borrow().clone();
        let leader_address =
            m.current_leader.and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
        ForwardError::NotLeader { leader_id: m.current_leader, leader_address }
    }

    /// openraft's view: this node is the leader.
    pub(crate) fn is_leading_raw(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// This node leads and has not resigned.
    fn is_leading(&self) -> bool {
        self.is_leading_raw() && !self.resigning.load(Ordering::SeqCst)
    }

    /// A leader that removed itself stops heartbeating, so the remaining
    /// voters' election timers run out and they elect a leader among
    /// themselves; it takes no requests meanwhile. openraft alone would let
    /// a leader that is only a learner lead on.
    fn resign(&self) {
        tracing::info!(node = self.options.node_id, "removed from the voters: resigning the leadership");
        self.resigning.store(true, Ordering::SeqCst);
        self.raft.runtime_config().heartbeat(false);
    }

    /// An openraft write error as a forward answer: `ForwardToLeader` is
    /// "not done, ask the leader", an in-progress change is
    /// `ChangeInProgress`.
    fn write_error<T>(&self, e: WriteError) -> Result<T, ForwardError> {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => Err(ForwardError::NotLeader {
                leader_id: f.leader_id,
                leader_address: f.leader_node.as_ref().map(|n| n.addr.clone()),
            }),
            RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(p))) => {
                refuse(VoterRefusal::ChangeInProgress, format!("a membership change is not committed yet: {p}"))
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::EmptyMembership(e))) => {
                refuse(VoterRefusal::VoterNotFound, e.to_string())
            }
            other => Err(ForwardError::Failed(other.to_string())),
        }
    }

    /// Checks that this node leads, has committed an entry of its term and
    /// that the membership in effect is committed; finishes a joint
    /// configuration a previous leader left behind.
    async fn settle(&self) -> Result<Settled, ForwardError> {
        for _ in 0..2 {
            if !self.is_leading() {
                return Err(self.not_leading());
            }
            let term = self.raft.metrics().borrow().current_term;
            let (committed, effective, effective_log) = self
                .raft
                .with_raft_state(|st| {
                    let effective = st.membership_state.effective();
                    (st.committed, effective.membership().clone(), *effective.log_id())
                })
                .await
                .map_err(|e| ForwardError::Failed(e.to_string()))?;
            if committed.is_none_or(|c| c.leader_id.term != term) {
                return refuse(
                    VoterRefusal::ChangeInProgress,
                    format!("the leader has not committed an entry of its epoch {term} yet; retry"),
                );
            }
            if effective_log > committed {
                return refuse(
                    VoterRefusal::ChangeInProgress,
                    "the previous membership change is not committed yet; retry".to_string(),
                );
            }
            if effective.get_joint_config().len() <= 1 {
                return Ok(Settled { membership: effective, log_id: effective_log });
            }
            self.complete_joint(&effective).await?;
        }
        refuse(VoterRefusal::ChangeInProgress, "the membership is still changing; retry".to_string())
    }

    /// Moves a committed joint configuration to its final voter set.
    async fn complete_joint(&self, joint: &Membership) -> Result<(), ForwardError> {
        let last = joint.get_joint_config().last().cloned().unwrap_or_default();
        tracing::info!(voters = ?last, "finishing a voter change a previous leader left half done");
        match self.raft.change_membership(ChangeMembers::ReplaceAllVoters(last), true).await {
            Ok(_) => Ok(()),
            Err(e) => self.write_error(e),
        }
    }

    /// On the leader, now and then: a joint configuration left by a leader
    /// that died mid-change is completed, so the voter set never stays
    /// half changed.
    pub(crate) async fn finish_joint_membership(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.options.timing.fetch_timeout).await;
            if !self.is_leading() {
                continue;
            }
            let joint = self.raft.metrics().borrow().membership_config.membership().get_joint_config().len() > 1;
            if !joint {
                continue;
            }
            let Ok(_guard) = self.membership_lock.try_lock() else { continue };
            if let Err(e) = self.settle().await {
                tracing::debug!(error = ?e, "cannot finish the half-done voter change yet");
            }
        }
    }

    /// Adds `node_id` as an observer, or moves it to `address`.
    pub(crate) async fn add_observer(&self, node_id: NodeId, address: String) -> Result<ForwardReply<A>, ForwardError> {
        if !self.is_leading() {
            return Err(self.not_leading());
        }
        let Ok(_guard) = self.membership_lock.try_lock() else {
            return refuse(VoterRefusal::ChangeInProgress, "another membership change is under way".into());
        };
        let settled = self.settle().await?;
        let log_id = self.place_node(&settled, node_id, &address).await?;
        Ok(ForwardReply::MembershipChanged { log_id })
    }

    /// Makes sure the membership has `node_id` at `address`; the log id of
    /// the entry that says so.
    async fn place_node(&self, settled: &Settled, node_id: NodeId, address: &str) -> Result<LogId, ForwardError> {
        let member = Member::new(address.to_string());
        let change = match settled.membership.get_node(&node_id) {
            Some(known) if known.addr == address => {
                return settled.log_id.ok_or_else(|| ForwardError::Failed("the membership has no log id".into()));
            }
            Some(_) => {
                tracing::info!(node_id, address, "a member's controller address changed");
                ChangeMembers::SetNodes(BTreeMap::from([(node_id, member)]))
            }
            None => {
                tracing::info!(node_id, address, "adding an observer");
                ChangeMembers::AddNodes(BTreeMap::from([(node_id, member)]))
            }
        };
        match self.raft.change_membership(change, true).await {
            Ok(r) => Ok(r.log_id),
            Err(e) => self.write_error(e),
        }
    }

    /// KIP-853 AddRaftVoter.
    pub(crate) async fn add_voter(&self, node_id: NodeId, address: String) -> Result<ForwardReply<A>, ForwardError> {
        self.dynamic_only()?;
        if !self.is_leading() {
            return Err(self.not_leading());
        }
        let Ok(_guard) = self.membership_lock.try_lock() else {
            return refuse(VoterRefusal::ChangeInProgress, "another voter change is under way; retry".into());
        };
        let settled = self.settle().await?;
        let voters: BTreeSet<NodeId> = settled.membership.voter_ids().collect();
        if voters.contains(&node_id) {
            return refuse(
                VoterRefusal::DuplicateVoter,
                format!("node {node_id} is already one of the voters {voters:?}"),
            );
        }
        let was_member = settled.membership.get_node(&node_id).is_some();
        self.place_node(&settled, node_id, &address).await?;
        // Caught up: its log matches the leader's end as it was now.
        let limit = self.options.timing.propose_timeout / 2;
        if !self.wait_caught_up(node_id, limit).await {
            if !was_member {
                // Do not leave an unreachable node behind as an observer.
                let _ = self.raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])), true).await;
            }
            if !self.is_leading() {
                return Err(self.not_leading());
            }
            return refuse(
                VoterRefusal::NotCaughtUp,
                format!(
                    "node {node_id} at {address} did not catch up with the leader's log within {} ms; start it (with controller.quorum.bootstrap.servers) and retry",
                    limit.as_millis()
                ),
            );
        }
        tracing::info!(node_id, "adding a voter");
        match self.raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), true).await {
            Ok(r) => Ok(ForwardReply::MembershipChanged { log_id: r.log_id }),
            Err(e) => self.voter_change_failed(e),
        }
    }

    /// KIP-853 RemoveRaftVoter: the node stays an observer.
    pub(crate) async fn remove_voter(&self, node_id: NodeId) -> Result<ForwardReply<A>, ForwardError> {
        self.dynamic_only()?;
        if !self.is_leading() {
            return Err(self.not_leading());
        }
        let Ok(_guard) = self.membership_lock.try_lock() else {
            return refuse(VoterRefusal::ChangeInProgress, "another voter change is under way; retry".into());
        };
        let settled = self.settle().await?;
        let voters: BTreeSet<NodeId> = settled.membership.voter_ids().collect();
        if !voters.contains(&node_id) {
            return refuse(VoterRefusal::VoterNotFound, format!("node {node_id} is not one of the voters {voters:?}"));
        }
        if voters.len() == 1 {
            return refuse(
                VoterRefusal::VoterNotFound,
                format!("node {node_id} is the last voter; it cannot be removed"),
            );
        }
        tracing::info!(node_id, "removing a voter");
        match self.raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([node_id])), true).await {
            Ok(r) => {
                if node_id == self.options.node_id {
                    self.resign();
                }
                Ok(ForwardReply::MembershipChanged { log_id: r.log_id })
            }
            Err(e) => self.voter_change_failed(e),
        }
    }

    /// A failure of the voter change itself. Its first (joint) entry may
    /// be committed already, so "not leader" is not "not done": the caller
    /// is told to check and retry rather than having it sent again.
    fn voter_change_failed<T>(&self, e: WriteError) -> Result<T, ForwardError> {
        match self.write_error(e) {
            Err(ForwardError::NotLeader { leader_id, .. }) => refuse(
                VoterRefusal::ChangeInProgress,
                format!(
                    "leadership moved to {} during the voter change; its outcome is unknown: check the voters and retry",
                    leader_id.map_or("another node".to_string(), |l| format!("node {l}"))
                ),
            ),
            other => other,
        }
    }

    fn dynamic_only(&self) -> Result<(), ForwardError> {
        match self.options.voters {
            Voters::Static(_) => refuse(
                VoterRefusal::StaticVoters,
                "the voters are static (controller.quorum.voters); use controller.quorum.bootstrap.servers to change them"
                    .into(),
            ),
            Voters::Dynamic { .. } => Ok(()),
        }
    }

    /// Waits until the leader has replicated to `node_id` everything it had
    /// when the wait began; false on timeout or lost leadership.
    async fn wait_caught_up(&self, node_id: NodeId, limit: Duration) -> bool {
        let mut metrics = self.raft.metrics();
        let target = metrics.borrow().last_log_index;
        let deadline = Instant::now() + limit;
        loop {
            {
                let m = metrics.borrow_and_update();
                if m.state != ServerState::Leader {
                    return false;
                }
                let matched = m.replication.as_ref().and_then(|r| r.get(&node_id).copied().flatten());
                if matched.map(|l| l.index) >= target {
                    return true;
                }
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
    }
}
