//! Elections: when a voter campaigns.
//!
//! openraft 0.9's own election timer is off (`enable_elect = false`). It
//! draws a node's election timeout once per process, checks it only on a
//! tick of 1.5 × the heartbeat, and has a follower that knew a leader wait
//! the leader lease (`election_timeout_max`) *plus* that timeout after the
//! last heartbeat: 3.0–4.2 s with the old defaults, most of a failover.
//! This driver decides instead, on Kafka's timeouts ([`crate::timing`]),
//! and campaigns with `Raft::trigger().elect()`:
//!
//! | this node | campaigns |
//! |---|---|
//! | a follower (knows a leader) | after a random wait in [F/2, 2F/3) without contact, unless a leader check (≤ F/3) answers that the leader still leads a quorum it heard from within F |
//! | a voter that knows no leader | after a random wait in [E, 2E) since its last contact, or since it lost its leader (granted a vote); in [F/2, 2F/3) after it started, so a running leader reaches it first |
//! | a candidate whose campaign did not end | after a random wait in [E, 2E) plus a random back-off up to min(B, 50 ms × 2^failures) |
//! | the only voter | at once |
//! | a leader, an observer | never |
//!
//! A decision to campaign is dropped when this node's vote or contact
//! changed while it was being made (a vote granted to another candidate,
//! or its first AppendEntries, while the leader check was out): campaigning
//! then would end that candidate's term as soon as it won. openraft has no
//! conditional `elect()`, so the request handler passes Vote and
//! AppendEntries to openraft under a gate that the driver holds from that
//! last look until openraft has taken the campaign up.
//!
//! *Contact* is anything that shows a live leader or election: an
//! AppendEntries or InstallSnapshot this node accepted, a vote it granted, a
//! leader check answered "leading".
//!
//! The leader check is this crate's counterpart of Kafka's pre-vote
//! (KIP-996): a voter whose heartbeats are merely late (a long fsync, a busy
//! machine) does not start an election, which with openraft would end the
//! leader's term even when nobody else wanted a new one (the leader steps
//! down on the candidate's higher term). Campaigning earlier than the other
//! voters' lease ends gains nothing (they refuse), which is why the wait
//! starts at F/2, after the lease (F/3) plus a heartbeat.
//!
//! A campaign whose vote request a voter refused for having a longer log
//! makes this node wait 4E more before its next one (openraft's "smaller
//! log" delay), so the voter with the longer log wins the next election.
//!
//! Split votes: two followers that lose the same leader draw their waits
//! from the same F/6-wide range, and each one's vote request leaves only
//! after its own vote is on disk (an fsync, tens of milliseconds on a busy
//! disk); when the second campaigns before the first one's request
//! arrives, each has voted for itself and refuses the other. The one of the two that would win on log
//! (longer, or equal and the lower node id) campaigns again at once
//! ([`ElectionSignals::refused_vote`]); the other, whose vote in the next
//! term is free, grants it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openraft::raft::VoteResponse;
use openraft::{ServerState, Vote};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::net::message::{LeaderStatus, Request, Response};
use crate::quorum::Inner;
use crate::types::{LogId, NodeId, QuorumApp};

/// What the network and the request handler tell the election driver.
#[derive(Debug)]
pub struct ElectionSignals {
    contact: Mutex<Instant>,
    heard: AtomicBool,
    behind: AtomicBool,
    /// A split vote this node should end by campaigning again at once: the
    /// term it split in.
    retry_split: Mutex<Option<u64>>,
    wake: Notify,
    /// Held while the request handler passes a Vote or AppendEntries to
    /// openraft, and while the driver decides to campaign and openraft
    /// takes the campaign up: a vote granted or a new leader heard just
    /// before a campaign is then seen by it (and the campaign dropped).
    gate: tokio::sync::Mutex<()>,
}

impl Default for ElectionSignals {
    fn default() -> ElectionSignals {
        ElectionSignals {
            contact: Mutex::new(Instant::now()),
            heard: AtomicBool::new(false),
            behind: AtomicBool::new(false),
            retry_split: Mutex::new(None),
            wake: Notify::new(),
            gate: tokio::sync::Mutex::new(()),
        }
    }
}

impl ElectionSignals {
    /// Records contact with a live leader or election, now.
    pub fn touch(&self) {
        *self.contact.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.heard.store(true, Ordering::SeqCst);
    }

    /// Whether this node had any contact since it started.
    pub fn heard_anything(&self) -> bool {
        self.heard.load(Ordering::SeqCst)
    }

    /// When this node last had contact.
    pub fn last_contact(&self) -> Instant {
        *self.contact.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A voter refused this node's vote request holding a longer log.
    pub fn saw_longer_log(&self) {
        self.behind.store(true, Ordering::SeqCst);
    }

    fn take_behind(&self) -> bool {
        self.behind.swap(false, Ordering::SeqCst)
    }

    /// This node refused `their_vote`'s request, answering with `answer`.
    /// When both are candidates of the same term (a split vote: each voted
    /// for itself), the one that would win on log (longer, or equal and
    /// the lower node id) campaigns again at once; the other grants that
    /// next term's request, since its own vote there is free. A split then
    /// costs one more round, not an election timeout.
    pub fn refused_vote(
        &self,
        me: NodeId,
        their_vote: &Vote<NodeId>,
        their_last: Option<LogId>,
        answer: &VoteResponse<NodeId>,
    ) {
        let ours = &answer.vote;
        let split = !ours.is_committed()
            && ours.leader_id().voted_for() == Some(me)
            && ours.leader_id().get_term() == their_vote.leader_id().get_term()
            && their_vote.leader_id().voted_for() != Some(me);
        if !split {
            return;
        }
        let them = their_vote.leader_id().voted_for().unwrap_or(NodeId::MAX);
        let we_win = answer.last_log_id > their_last || (answer.last_log_id == their_last && me < them);
        if we_win {
            *self.retry_split.lock().unwrap_or_else(|e| e.into_inner()) = Some(ours.leader_id().get_term());
            self.wake.notify_one();
        }
    }

    /// Hold while passing a Vote or AppendEntries to openraft and recording
    /// what it answered.
    pub async fn gate(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.gate.lock().await
    }

    fn take_retry_split(&self) -> Option<u64> {
        self.retry_split.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A uniformly drawn duration in `[lo, hi)` (`lo` when the range is empty),
/// from the runtime's generator (seeded in the simulator).
pub(crate) fn draw((lo, hi): (Duration, Duration)) -> Duration {
    use rand::Rng;
    let span = u64::try_from(hi.saturating_sub(lo).as_micros()).unwrap_or(u64::MAX);
    if span == 0 {
        return lo;
    }
    let mut rng = <crate::runtime::QuorumRuntime as openraft::AsyncRuntime>::thread_rng();
    lo + Duration::from_micros(rng.gen_range(0..span))
}

/// This node's situation, as far as elections go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Leads, or does not vote: never campaigns.
    Passive,
    /// The only voter, not leading.
    Alone,
    /// A voter following `leader`.
    Following { leader: NodeId },
    /// A voter that knows no leader (a candidate, or after granting a vote).
    Leaderless,
}

/// What became of a decision to campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Campaign {
    /// The election is started.
    Started,
    /// The vote changed meanwhile: decide again.
    Skipped,
    /// The Raft is stopped.
    Stopped,
}

/// The wait drawn for one situation, kept until the situation changes (a
/// fresh draw on every metrics change would shorten every wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    role: Role,
    anchor: Instant,
    wait: Duration,
}

impl<A: QuorumApp> Inner<A> {
    /// This node's role in elections, its current term and vote.
    fn election_role(&self) -> (Role, u64, Vote<NodeId>) {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let me = self.options.node_id;
        let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
        let role = if m.state == ServerState::Leader || !voters.contains(&me) {
            Role::Passive
        } else if voters.len() == 1 {
            Role::Alone
        } else {
            match m.current_leader {
                Some(leader) if leader != me && m.state == ServerState::Follower => Role::Following { leader },
                _ => Role::Leaderless,
            }
        };
        (role, m.current_term, m.vote)
    }

    /// Runs elections for this node until its Raft stops (see the module docs).
    pub(crate) async fn run_elections(self: Arc<Self>) {
        let timing = self.options.timing;
        let mut metrics = self.raft.metrics();
        let mut plan: Option<Plan> = None;
        // When this node last campaigned, and for which term; kept until a
        // leader is seen.
        let mut campaigned: Option<(Instant, u64)> = None;
        let mut failed: u32 = 0;
        // When this node last became leaderless: the metrics can show a
        // vote granted before the request handler records the contact.
        let mut leaderless_since: Option<Instant> = None;
        loop {
            self.end_resignation_if_done();
            let (role, term, vote) = self.election_role();
            let now = Instant::now();
            let contact = self.election.last_contact();
            if role == Role::Leaderless {
                leaderless_since.get_or_insert(now);
            } else {
                leaderless_since = None;
            }
            if let Some(split_term) = self.election.take_retry_split()
                && role == Role::Leaderless
                && term == split_term
            {
                plan = None;
                let reason = format!("split vote in term {term}; this node has the longer log or the lower id");
                match self.campaign(&reason, &vote, contact).await {
                    Campaign::Started => campaigned = Some((now, term + 1)),
                    Campaign::Skipped => {}
                    Campaign::Stopped => return,
                }
                continue;
            }
            let due = match (role, campaigned) {
                // A campaign this node started is not in the metrics yet:
                // wait for it (at most an election timeout).
                (_, Some((at, campaign_term))) if term < campaign_term && now < at + timing.election_timeout => {
                    Some(at + timing.election_timeout)
                }
                (Role::Passive, _) => {
                    (plan, campaigned, failed) = (None, None, 0);
                    None
                }
                (Role::Alone, Some((at, _))) if now < at + timing.election_timeout => {
                    Some(at + timing.election_timeout)
                }
                (Role::Alone, _) => {
                    match self.campaign("it is the only voter", &vote, contact).await {
                        Campaign::Started => campaigned = Some((now, term + 1)),
                        Campaign::Skipped => {}
                        Campaign::Stopped => return,
                    }
                    continue;
                }
                (Role::Following { leader }, _) => {
                    (campaigned, failed) = (None, 0);
                    let p = replan(&mut plan, role, contact, || draw(timing.suspicion()));
                    if now < p.anchor + p.wait {
                        Some(p.anchor + p.wait)
                    } else {
                        plan = None;
                        if self.leader_is_healthy(leader, term).await {
                            tracing::debug!(leader, term, "heartbeats are late but the leader still leads a quorum");
                            self.election.touch();
                            continue;
                        }
                        let reason = format!("no contact with leader {leader} of term {term} within the fetch timeout");
                        match self.campaign(&reason, &vote, contact).await {
                            Campaign::Started => campaigned = Some((Instant::now(), term + 1)),
                            Campaign::Skipped => {}
                            Campaign::Stopped => return,
                        }
                        continue;
                    }
                }
                (Role::Leaderless, _) => {
                    let anchor = [campaigned.map(|(at, _)| at), leaderless_since]
                        .into_iter()
                        .flatten()
                        .fold(contact, Instant::max);
                    let p = replan(&mut plan, role, anchor, || {
                        // A node that just started gives a running leader
                        // the fetch timeout to reach it: a campaign would
                        // end that leader's term on its first heartbeat.
                        let first = campaigned.is_none() && !self.election.heard_anything();
                        let mut wait = draw(if first { timing.suspicion() } else { timing.election_wait() });
                        if campaigned.is_some() {
                            wait += draw((Duration::ZERO, timing.election_backoff_bound(failed)));
                        }
                        if self.election.take_behind() {
                            wait += timing.election_wait().1 * 2;
                        }
                        wait
                    });
                    if now < p.anchor + p.wait {
                        Some(p.anchor + p.wait)
                    } else {
                        plan = None;
                        match self.campaign("no leader within the election timeout", &vote, contact).await {
                            Campaign::Started => {
                                if campaigned.is_some() {
                                    failed = failed.saturating_add(1);
                                }
                                campaigned = Some((Instant::now(), term + 1));
                            }
                            Campaign::Skipped => {}
                            Campaign::Stopped => return,
                        }
                        continue;
                    }
                }
            };
            let changed = match due {
                Some(due) => tokio::select! {
                    changed = metrics.changed() => changed,
                    () = tokio::time::sleep_until(due) => Ok(()),
                    () = self.election.wake.notified() => Ok(()),
                },
                None => tokio::select! {
                    changed = metrics.changed() => changed,
                    () = self.election.wake.notified() => Ok(()),
                },
            };
            if changed.is_err() {
                return;
            }
        }
    }

    /// Starts an election, unless this node's vote or contact changed
    /// since the decision (`decided_on`, `contact`): a vote granted or a
    /// leader heard meanwhile (while the leader check was out, say) means
    /// another candidate is winning or won, and a campaign now would end
    /// its term as soon as it began. The gate keeps votes and AppendEntries
    /// out from this look until openraft has taken the campaign up.
    async fn campaign(&self, reason: &str, decided_on: &Vote<NodeId>, contact: Instant) -> Campaign {
        let _gate = self.election.gate().await;
        let mut metrics = self.raft.metrics();
        let (vote, term) = {
            let m = metrics.borrow_and_update();
            (m.vote, m.current_term)
        };
        if vote != *decided_on || self.election.last_contact() != contact {
            tracing::debug!(node = self.options.node_id, %vote, "a vote or a leader came while deciding to campaign; not campaigning");
            return Campaign::Skipped;
        }
        tracing::info!(node = self.options.node_id, next_term = term + 1, "campaigning: {reason}");
        if self.raft.trigger().elect().await.is_err() {
            return Campaign::Stopped;
        }
        // Until openraft has moved to the new term (or anywhere else).
        let moved = tokio::time::timeout(
            self.options.timing.election_timeout,
            metrics.wait_for(|m| m.vote != vote || m.current_term != term),
        )
        .await;
        match moved {
            Ok(Err(_)) => Campaign::Stopped,
            _ => Campaign::Started,
        }
    }

    /// Asks `leader` whether it still leads `term` with a quorum it heard
    /// from within the fetch timeout; anything else (no answer, refused,
    /// another term) is no.
    async fn leader_is_healthy(&self, leader: NodeId, term: u64) -> bool {
        let address = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            m.membership_config.membership().get_node(&leader).map(|n| n.addr.clone())
        };
        let Some(address) = address else { return false };
        let envelope = self.sender.envelope(leader, Request::LeaderCheck);
        let timeout = self.options.timing.leader_check_timeout();
        match self.transport.call(leader, &address, envelope, timeout).await {
            Ok(Response::LeaderCheck(status)) => status.leading && status.term == term,
            Ok(other) => {
                tracing::debug!(leader, answer = ?other, "leader check not answered");
                false
            }
            Err(e) => {
                tracing::debug!(leader, error = %e, "leader check failed");
                false
            }
        }
    }

    /// This node's answer to a leader check: leading (and not resigning)
    /// with a quorum of every voter set heard from within the fetch timeout.
    pub(crate) fn leader_status(&self) -> LeaderStatus {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let mut leading = m.state == ServerState::Leader && !self.resigning.load(Ordering::SeqCst);
        if leading {
            let since = Instant::now().checked_sub(self.options.timing.fetch_timeout);
            let mut heard = since.map_or_else(BTreeSet::new, |since| self.tracker.heard_from_since(since));
            heard.insert(self.options.node_id);
            leading = m
                .membership_config
                .membership()
                .get_joint_config()
                .iter()
                .all(|voters| voters.iter().filter(|v| heard.contains(v)).count() * 2 > voters.len());
        }
        LeaderStatus { term: m.current_term, leading }
    }

    /// A leader that removed itself stopped heartbeating; once it no
    /// longer leads, heartbeats are turned back on (it is an observer now).
    fn end_resignation_if_done(&self) {
        if self.resigning.load(Ordering::SeqCst) && !self.is_leading_raw() {
            self.raft.runtime_config().heartbeat(true);
            self.resigning.store(false, Ordering::SeqCst);
        }
    }
}

/// The current plan if it is for `role` at `anchor`, else a new one.
fn replan(plan: &mut Option<Plan>, role: Role, anchor: Instant, wait: impl FnOnce() -> Duration) -> Plan {
    match *plan {
        Some(p) if p.role == role && p.anchor == anchor => p,
        _ => {
            let p = Plan { role, anchor, wait: wait() };
            *plan = Some(p);
            p
        }
    }
}
