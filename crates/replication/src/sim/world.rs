//! One partition's cluster under simulation: brokers with their logs and
//! [`PartitionReplica`]s, the [`ControllerModel`] with broker sessions, the
//! network, producers, and the faults. A run is a chaos phase (random steps
//! with faults, the invariants checked after each) and a heal phase (every
//! broker up, the network whole, no new writes, fair rounds) that must end
//! with every replica in the ISR and every log the same.

use std::collections::BTreeMap;

use super::checker::{Checker, LeaderView};
use super::log::{SimBatch, SimLog};
use super::network::{Endpoint, Network};
use super::rng::SimRng;
use super::trace::{Event, Trace};
use crate::acks::{AckId, AckOutcome, Acks};
use crate::controller_model::ControllerModel;
use crate::follower::{FollowerEvent, FollowerRequest};
use crate::leader::{AlterPartitionSend, LeaderEffects};
use crate::log::ReplicaLog;
use crate::messages::{
    AlterPartitionResponse, FetchDecision, FetchRequest, FetchResponse, FetchedData, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};
use crate::replica::{PartitionReplica, Role, Transition};
use crate::types::{BrokerEpoch, MetadataView, NO_LEADER, NodeId, Offset, ReplicationConfig, TruncationMode};

/// A configuration to run many seeds of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) replicas: usize,
    pub(crate) min_insync: usize,
    pub(crate) unclean_leader_election: bool,
    pub(crate) chaos_steps: usize,
    pub(crate) heal_rounds: usize,
}

const LAG_MAX_MS: u64 = 150;
const SESSION_TIMEOUT_MS: u64 = 120;
const HEARTBEAT_MS: u64 = 25;
const REGISTER_RETRY_MS: u64 = 50;
const PRODUCE_TIMEOUT_MS: u64 = 2_000;
const MAX_FETCH_RECORDS: usize = 16;
const HEAL_ROUND_MS: u64 = 10;

/// What travels between brokers and the controller.
#[derive(Debug)]
enum Message {
    Fetch(FetchRequest),
    FetchResponse(FetchResponse<SimBatch>),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    OffsetForLeaderEpochResponse(OffsetForLeaderEpochResponse),
    AlterPartition(AlterPartitionSend),
    AlterPartitionResponse(AlterPartitionSend, AlterPartitionResponse),
    Heartbeat { node: NodeId, broker_epoch: BrokerEpoch },
    Metadata(MetadataView),
    Register { node: NodeId, incarnation: u64 },
    Registered { incarnation: u64, broker_epoch: BrokerEpoch },
}

impl Message {
    fn name(&self) -> &'static str {
        match self {
            Message::Fetch(_) => "Fetch",
            Message::FetchResponse(_) => "FetchResponse",
            Message::OffsetForLeaderEpoch(_) => "OffsetForLeaderEpoch",
            Message::OffsetForLeaderEpochResponse(_) => "OffsetForLeaderEpochResponse",
            Message::AlterPartition(_) => "AlterPartition",
            Message::AlterPartitionResponse(..) => "AlterPartitionResponse",
            Message::Heartbeat { .. } => "Heartbeat",
            Message::Metadata(_) => "Metadata",
            Message::Register { .. } => "Register",
            Message::Registered { .. } => "Registered",
        }
    }
}

/// One broker.
#[derive(Debug)]
struct Node {
    id: NodeId,
    alive: bool,
    incarnation: u64,
    /// A paused process (SIGSTOP, a long GC) neither runs nor reads its
    /// sockets until then; time goes on around it.
    paused_until_ms: u64,
    registered: Option<BrokerEpoch>,
    register_sent_ms: Option<u64>,
    last_heartbeat_ms: u64,
    replica: Option<PartitionReplica>,
    log: SimLog,
    /// How often it gets to run (a lagging broker runs rarely).
    speed: u64,
    /// Per mille chance, on each run, that a follower's appended records
    /// get flushed (a slow disk flushes rarely).
    flush_per_mille: u64,
}

/// An appended produce request.
#[derive(Debug)]
struct Batch {
    acks: Acks,
    first: Offset,
    ids: Vec<u64>,
}

/// What a run did, so a run that exercised nothing is noticed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) seeds: u64,
    pub(crate) steps: u64,
    pub(crate) batches: u64,
    pub(crate) acked_all: u64,
    pub(crate) acked_leader: u64,
    pub(crate) refused: u64,
    pub(crate) failed: u64,
    pub(crate) crashes: u64,
    pub(crate) partitions: u64,
    pub(crate) elections: u64,
    pub(crate) truncations: u64,
    pub(crate) isr_changes: u64,
    pub(crate) committed: u64,
    pub(crate) heal_rounds_max: u64,
}

impl Stats {
    pub(crate) fn add(&mut self, o: &Stats) {
        self.seeds += o.seeds;
        self.steps += o.steps;
        self.batches += o.batches;
        self.acked_all += o.acked_all;
        self.acked_leader += o.acked_leader;
        self.refused += o.refused;
        self.failed += o.failed;
        self.crashes += o.crashes;
        self.partitions += o.partitions;
        self.elections += o.elections;
        self.truncations += o.truncations;
        self.isr_changes += o.isr_changes;
        self.committed += o.committed;
        self.heal_rounds_max = self.heal_rounds_max.max(o.heal_rounds_max);
    }
}

/// The simulated cluster.
pub(crate) struct World {
    scenario: Scenario,
    rng: SimRng,
    now_ms: u64,
    healing: bool,
    faults: bool,
    config: ReplicationConfig,
    controller: ControllerModel,
    sessions: BTreeMap<NodeId, u64>,
    registrations: BTreeMap<NodeId, (u64, BrokerEpoch)>,
    nodes: Vec<Node>,
    net: Network<Message>,
    next_record_id: u64,
    next_batch_id: u64,
    batches: BTreeMap<u64, Batch>,
    checker: Checker,
    trace: Trace,
    stats: Stats,
}

impl World {
    pub(crate) fn new(scenario: Scenario, seed: u64) -> World {
        let mut rng = SimRng::new(seed);
        let config = ReplicationConfig {
            min_insync_replicas: scenario.min_insync,
            replica_lag_time_max_ms: LAG_MAX_MS,
            alter_partition_retry_ms: 60,
            fetch_timeout_ms: 80,
            fetch_backoff_ms: 20,
            truncation: if rng.chance(500) { TruncationMode::OnFetch } else { TruncationMode::OffsetForLeaderEpoch },
        };
        let ids: Vec<NodeId> = (1..=scenario.replicas as NodeId).collect();
        let controller = ControllerModel::new(ids.clone(), scenario.unclean_leader_election);
        let lagging = rng.chance(300).then(|| ids[rng.index(ids.len())]);
        let mut world = World {
            faults: !rng.chance(100),
            scenario,
            now_ms: 0,
            healing: false,
            config,
            sessions: ids.iter().map(|&id| (id, 0)).collect(),
            registrations: BTreeMap::new(),
            nodes: Vec::new(),
            net: Network::new(),
            next_record_id: 1,
            next_batch_id: 1,
            batches: BTreeMap::new(),
            checker: Checker::default(),
            trace: Trace::default(),
            stats: Stats { seeds: 1, ..Stats::default() },
            controller,
            rng,
        };
        let view = world.controller.view();
        for &id in &ids {
            let broker_epoch = world.controller.broker(id).map_or(0, |b| b.epoch);
            world.registrations.insert(id, (0, broker_epoch));
            let mut log = SimLog::default();
            let mut replica = PartitionReplica::new(id, broker_epoch, config);
            let outcome = replica.apply_metadata(0, &view, &mut log).expect("a fresh log takes metadata");
            assert!(outcome.effects.acks.is_empty());
            let speed = if lagging == Some(id) { 1 } else { world.rng.between(3, 8) };
            let flush_per_mille = if lagging == Some(id) { 100 } else { world.rng.between(300, 900) };
            world.nodes.push(Node {
                id,
                alive: true,
                incarnation: 0,
                paused_until_ms: 0,
                registered: Some(broker_epoch),
                register_sent_ms: None,
                last_heartbeat_ms: 0,
                replica: Some(replica),
                log,
                speed,
                flush_per_mille,
            });
        }
        world
    }

    /// Runs the chaos phase, then heals; the error names the broken rule
    /// and ends with the trace.
    pub(crate) fn run(mut self) -> Result<Stats, String> {
        let outcome = self.run_phases();
        outcome.map_err(|why| {
            format!(
                "{why}\n  at t={} ms, truncation {:?}, controller {:?}\n  last events:\n{}",
                self.now_ms,
                self.config.truncation,
                self.controller.partition(),
                self.trace.render()
            )
        })
    }

    fn run_phases(&mut self) -> Result<Stats, String> {
        for _ in 0..self.scenario.chaos_steps {
            self.chaos_step()?;
            self.stats.steps += 1;
            self.check()?;
        }
        let rounds = self.heal()?;
        self.stats.heal_rounds_max = rounds as u64;
        self.stats.committed = self.checker.committed_len() as u64;
        Ok(self.stats)
    }

    fn chaos_step(&mut self) -> Result<(), String> {
        self.now_ms += self.rng.below(3);
        let faults = u64::from(self.faults);
        let any_dead = self.nodes.iter().any(|n| !n.alive);
        // deliver, run a node, produce, flush, controller, drop, crash,
        // restart, partition, heal, time jump, pause a broker
        let weights = [
            400,
            300,
            80,
            60,
            40,
            15 * faults,
            4 * faults,
            if any_dead { 25 } else { 0 },
            4 * faults,
            if self.net.has_cuts() { 12 } else { 0 },
            3 * faults,
            3 * faults,
        ];
        match self.rng.weighted(&weights) {
            0 => {
                let now_ms = self.now_ms;
                let paused: Vec<Endpoint> =
                    self.nodes.iter().filter(|n| n.paused_until_ms > now_ms).map(|n| Endpoint::Node(n.id)).collect();
                let ready = |to: Endpoint| !paused.contains(&to);
                if let Some((from, to, message)) = self.net.take_due(now_ms, &mut self.rng, ready) {
                    self.deliver(from, to, message)?;
                }
            }
            1 => {
                let speeds: Vec<u64> = self.nodes.iter().map(|n| n.speed).collect();
                let id = self.nodes[self.rng.weighted(&speeds)].id;
                self.run_node(id)?;
            }
            2 => self.produce()?,
            3 => {
                let id = self.nodes[self.rng.index(self.nodes.len())].id;
                self.flush(id)?;
            }
            4 => self.controller_tick(),
            5 => {
                if self.net.drop_random(&mut self.rng) {
                    self.trace.push(self.now_ms, Event::Dropped);
                }
            }
            6 => self.crash_random(),
            7 => self.restart_random(),
            8 => self.partition(),
            9 => {
                self.net.heal();
                self.trace.push(self.now_ms, Event::Heal);
            }
            10 => {
                let jump = self.rng.between(50, 300);
                self.now_ms += jump;
                self.trace.push(self.now_ms, Event::TimeJump(jump));
            }
            _ => {
                let id = self.nodes[self.rng.index(self.nodes.len())].id;
                let pause = self.rng.between(50, 400);
                self.node_mut(id).paused_until_ms = self.now_ms + pause;
                self.trace.push(self.now_ms, Event::Pause { node: id, ms: pause });
            }
        }
        Ok(())
    }

    /// Every broker up, the network whole, fair rounds until the partition
    /// has a full ISR and identical logs; returns the rounds it took.
    fn heal(&mut self) -> Result<usize, String> {
        self.healing = true;
        self.net.heal();
        for node in &mut self.nodes {
            node.paused_until_ms = 0;
        }
        self.trace.push(self.now_ms, Event::Heal);
        for i in 0..self.nodes.len() {
            if !self.nodes[i].alive {
                self.restart(self.nodes[i].id);
            }
        }
        for round in 1..=self.scenario.heal_rounds {
            self.now_ms += HEAL_ROUND_MS;
            for i in 0..self.nodes.len() {
                let id = self.nodes[i].id;
                self.run_node(id)?;
                self.flush(id)?;
            }
            self.controller_tick();
            let mut budget = 100_000;
            while let Some((from, to, message)) = self.net.take_oldest_due(self.now_ms) {
                self.deliver(from, to, message)?;
                budget -= 1;
                if budget == 0 {
                    return Err("the heal phase never went quiet".to_string());
                }
            }
            self.check()?;
            if self.converged() {
                return self.check_converged().map(|()| round);
            }
        }
        Err(format!("not converged after {} rounds of healing: {}", self.scenario.heal_rounds, self.describe()))
    }

    fn node(&self, id: NodeId) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn send(&mut self, from: Endpoint, to: Endpoint, message: Message) {
        let delay = if self.healing {
            0
        } else if self.rng.chance(50) {
            self.rng.between(10, 80)
        } else {
            self.rng.below(6)
        };
        self.net.send(from, to, self.now_ms + delay, message);
    }

    fn deliver(&mut self, from: Endpoint, to: Endpoint, message: Option<Message>) -> Result<(), String> {
        let Some(message) = message else {
            return Ok(());
        };
        match to {
            Endpoint::Controller => {
                self.controller_receive(from, message);
                Ok(())
            }
            Endpoint::Node(id) => {
                if !self.node(id).alive {
                    self.trace.push(
                        self.now_ms,
                        Event::Lost { from: format!("{from:?}"), to: format!("{to:?}"), what: message.name() },
                    );
                    return Ok(());
                }
                self.node_receive(id, from, message)
            }
        }
    }

    fn controller_receive(&mut self, from: Endpoint, message: Message) {
        match message {
            Message::AlterPartition(send) => {
                let response = self.controller.alter_partition(&send.request);
                if response.result.is_ok() {
                    self.stats.isr_changes += 1;
                }
                self.trace.push(
                    self.now_ms,
                    Event::AlterPartition {
                        leader: send.request.broker_id,
                        isr: send.request.isr_ids(),
                        result: format!("{:?}", response.result.as_ref().map(|a| a.partition_epoch)),
                    },
                );
                self.send(Endpoint::Controller, from, Message::AlterPartitionResponse(send, response));
            }
            Message::Heartbeat { node, broker_epoch } => {
                if self.controller.broker(node).is_some_and(|b| b.epoch == broker_epoch) {
                    self.sessions.insert(node, self.now_ms);
                    if self.controller.unfence_broker(node, broker_epoch) {
                        self.trace.push(self.now_ms, Event::Unfenced(node));
                    }
                    let view = self.controller.view();
                    self.send(Endpoint::Controller, from, Message::Metadata(view));
                }
            }
            Message::Register { node, incarnation } => {
                // A retried registration of the same incarnation gets the
                // same epoch (Kafka amends it).
                let broker_epoch = match self.registrations.get(&node) {
                    Some(&(known, epoch)) if known == incarnation => epoch,
                    _ => {
                        let epoch = self.controller.register_broker(node);
                        self.registrations.insert(node, (incarnation, epoch));
                        self.trace.push(self.now_ms, Event::Registered { node, broker_epoch: epoch });
                        epoch
                    }
                };
                self.sessions.insert(node, self.now_ms);
                self.send(Endpoint::Controller, from, Message::Registered { incarnation, broker_epoch });
            }
            other => unreachable!("the controller got {}", other.name()),
        }
    }

    fn node_receive(&mut self, id: NodeId, from: Endpoint, message: Message) -> Result<(), String> {
        let now_ms = self.now_ms;
        if let Message::Registered { incarnation, broker_epoch } = message {
            let config = self.config;
            let node = self.node_mut(id);
            if node.registered.is_none() && node.incarnation == incarnation {
                node.registered = Some(broker_epoch);
                node.replica = Some(PartitionReplica::new(id, broker_epoch, config));
                node.last_heartbeat_ms = 0;
            }
            return Ok(());
        }
        let node = self.node_mut(id);
        let Some(replica) = node.replica.as_mut() else {
            return Ok(());
        };
        let log = &mut node.log;
        match message {
            Message::Metadata(view) => {
                let outcome =
                    replica.apply_metadata(now_ms, &view, log).map_err(|e| format!("node {id} metadata: {e}"))?;
                let leader_epoch = replica.leader_epoch();
                if outcome.transition != Transition::Unchanged {
                    self.trace.push(
                        now_ms,
                        Event::Role {
                            node: id,
                            leader: view.partition.leader,
                            leader_epoch,
                            isr: view.partition.isr.clone(),
                            change: format!("{:?}", outcome.transition),
                        },
                    );
                }
                if outcome.transition == Transition::BecameLeader {
                    self.stats.elections += 1;
                    // A broker applying an old image (it was paused, its
                    // metadata was slow) leads an old epoch for a while: a
                    // zombie, which can commit nothing the current leader
                    // lacks. The rule is for the controller's current choice.
                    if leader_epoch == self.controller.partition().leader_epoch {
                        self.checker.on_become_leader(id, leader_epoch, &self.node(id).log)?;
                    }
                }
                self.apply_effects(id, outcome.effects)
            }
            Message::Fetch(request) => {
                let (decision, effects) = replica.handle_fetch(now_ms, &request, log);
                let result = match decision {
                    Ok(FetchDecision::Read { high_watermark, .. }) => Ok(FetchedData::Records {
                        records: log.read(request.fetch_offset, MAX_FETCH_RECORDS),
                        high_watermark,
                    }),
                    Ok(FetchDecision::Diverging(end)) => Ok(FetchedData::Diverging(end)),
                    Err(error) => Err(error),
                };
                let response = FetchResponse { request_id: request.request_id, result };
                self.send(Endpoint::Node(id), from, Message::FetchResponse(response));
                self.apply_effects(id, effects)
            }
            Message::FetchResponse(response) => {
                let Some(follower) = replica.follower_mut() else {
                    return Ok(());
                };
                let event = follower
                    .handle_fetch_response(now_ms, response, log)
                    .map_err(|e| format!("node {id} fetch response: {e}"))?;
                self.on_follower_event(id, event)
            }
            Message::OffsetForLeaderEpoch(request) => {
                let response = replica.handle_offset_for_leader_epoch(&request, log);
                self.send(Endpoint::Node(id), from, Message::OffsetForLeaderEpochResponse(response));
                Ok(())
            }
            Message::OffsetForLeaderEpochResponse(response) => {
                let Some(follower) = replica.follower_mut() else {
                    return Ok(());
                };
                let event = follower
                    .handle_offset_for_leader_epoch_response(now_ms, &response, log)
                    .map_err(|e| format!("node {id} OffsetForLeaderEpoch response: {e}"))?;
                self.on_follower_event(id, event)
            }
            Message::AlterPartitionResponse(send, response) => {
                let Some(leader) = replica.leader_mut() else {
                    return Ok(());
                };
                let effects = leader.handle_alter_partition_response(now_ms, &send, &response, log);
                self.apply_effects(id, effects)
            }
            other => unreachable!("node {id} got {}", other.name()),
        }
    }

    /// Counts and traces a follower's event. Without unclean elections a
    /// follower never cuts below its high watermark: everything below it
    /// is committed, and every leader it can follow holds that.
    fn on_follower_event(&mut self, id: NodeId, event: FollowerEvent) -> Result<(), String> {
        match event {
            FollowerEvent::Ignored | FollowerEvent::Appended { .. } => {}
            FollowerEvent::Truncated { offset, below_high_watermark } => {
                self.stats.truncations += 1;
                self.trace.push(self.now_ms, Event::Follower { node: id, event: format!("truncated to {offset}") });
                if below_high_watermark && !self.scenario.unclean_leader_election {
                    return Err(format!("follower {id} truncated to {offset}, below its high watermark"));
                }
            }
            other => self.trace.push(self.now_ms, Event::Follower { node: id, event: format!("{other:?}") }),
        }
        Ok(())
    }

    fn apply_effects(&mut self, id: NodeId, effects: LeaderEffects) -> Result<(), String> {
        if let Some(hw) = effects.high_watermark {
            self.trace.push(self.now_ms, Event::HighWatermark { node: id, hw });
        }
        for outcome in effects.acks {
            self.on_ack(id, outcome)?;
        }
        if let Some(send) = effects.alter_partition {
            self.send(Endpoint::Node(id), Endpoint::Controller, Message::AlterPartition(send));
        }
        Ok(())
    }

    fn on_ack(&mut self, id: NodeId, outcome: AckOutcome) -> Result<(), String> {
        let batch = self.batches.remove(&outcome.id.0).ok_or_else(|| format!("answer to unknown batch {outcome:?}"))?;
        self.trace.push(self.now_ms, Event::Ack { batch: outcome.id.0, result: format!("{:?}", outcome.result) });
        match (outcome.result, batch.acks) {
            (Ok(()), Acks::All) => {
                self.stats.acked_all += 1;
                self.checker.on_acknowledged_all(id, &self.nodes[(id - 1) as usize].log, batch.first, &batch.ids)
            }
            (Ok(()), Acks::Leader) => {
                self.stats.acked_leader += 1;
                self.checker.on_acknowledged_leader(id, &self.node(id).log, batch.first, &batch.ids)
            }
            (Err(_), _) => {
                self.stats.failed += 1;
                Ok(())
            }
        }
    }

    /// A broker's turn: register, heartbeat, perhaps a flush (a slow disk
    /// flushes rarely), and its role's periodic work.
    fn run_node(&mut self, id: NodeId) -> Result<(), String> {
        let now_ms = self.now_ms;
        if !self.node(id).alive || self.node(id).paused_until_ms > now_ms {
            return Ok(());
        }
        let Some(broker_epoch) = self.node(id).registered else {
            let node = self.node_mut(id);
            if node.register_sent_ms.is_none_or(|t| now_ms.saturating_sub(t) >= REGISTER_RETRY_MS) {
                node.register_sent_ms = Some(now_ms);
                let incarnation = node.incarnation;
                self.send(Endpoint::Node(id), Endpoint::Controller, Message::Register { node: id, incarnation });
            }
            return Ok(());
        };
        if now_ms.saturating_sub(self.node(id).last_heartbeat_ms) >= HEARTBEAT_MS {
            self.node_mut(id).last_heartbeat_ms = now_ms;
            self.send(Endpoint::Node(id), Endpoint::Controller, Message::Heartbeat { node: id, broker_epoch });
        }
        if self.rng.chance(self.node(id).flush_per_mille) {
            self.flush(id)?;
        }
        let node = &mut self.nodes[(id - 1) as usize];
        let Some(replica) = node.replica.as_mut() else {
            return Ok(());
        };
        if let Some(follower) = replica.follower_mut() {
            let request = follower.poll(now_ms, &node.log);
            let leader = follower.leader();
            if let Some(request) = request {
                let message = match request {
                    FollowerRequest::Fetch(r) => Message::Fetch(r),
                    FollowerRequest::OffsetForLeaderEpoch(r) => Message::OffsetForLeaderEpoch(r),
                };
                self.send(Endpoint::Node(id), Endpoint::Node(leader), message);
            }
            return Ok(());
        }
        if let Some(leader) = replica.leader_mut() {
            let effects = leader.tick(now_ms, &mut node.log);
            return self.apply_effects(id, effects);
        }
        Ok(())
    }

    fn flush(&mut self, id: NodeId) -> Result<(), String> {
        let now_ms = self.now_ms;
        let node = self.node_mut(id);
        if !node.alive || node.paused_until_ms > now_ms || node.log.durable_offset() == node.log.log_end_offset() {
            return Ok(());
        }
        node.log.flush();
        let durable = node.log.durable_offset();
        let effects = node.replica.as_mut().and_then(|r| r.leader_mut()).map(|l| l.on_flushed(now_ms, &mut node.log));
        self.trace.push(now_ms, Event::Flush { node: id, durable });
        match effects {
            Some(effects) => self.apply_effects(id, effects),
            None => Ok(()),
        }
    }

    fn controller_tick(&mut self) {
        for i in 0..self.nodes.len() {
            let id = self.nodes[i].id;
            let last = self.sessions.get(&id).copied().unwrap_or(0);
            let unfenced = self.controller.broker(id).is_some_and(|b| !b.fenced);
            if unfenced && self.now_ms.saturating_sub(last) > SESSION_TIMEOUT_MS && self.controller.fence_broker(id) {
                self.trace.push(self.now_ms, Event::Fenced(id));
            }
        }
    }

    /// A producer sends one batch, mostly to the leader the controller
    /// names, sometimes to any broker (stale metadata).
    fn produce(&mut self) -> Result<(), String> {
        let now_ms = self.now_ms;
        let target = if self.rng.chance(700) {
            self.controller.partition().leader
        } else {
            self.nodes[self.rng.index(self.nodes.len())].id
        };
        if target == NO_LEADER || !self.node(target).alive || self.node(target).paused_until_ms > now_ms {
            return Ok(());
        }
        let acks = if self.rng.chance(750) { Acks::All } else { Acks::Leader };
        let count = self.rng.between(1, 3);
        let ids: Vec<u64> = (0..count).map(|i| self.next_record_id + i).collect();
        let batch_id = self.next_batch_id;
        let node = self.node_mut(target);
        let Some(leader) = node.replica.as_mut().and_then(|r| r.leader_mut()) else {
            return Ok(());
        };
        if let Err(why) = leader.check_produce(Some(acks)) {
            self.stats.refused += 1;
            self.trace.push(now_ms, Event::Refused { node: target, why: format!("{why:?}") });
            return Ok(());
        }
        let epoch = leader.leader_epoch();
        let last = node.log.append_as_leader(epoch, &ids);
        let effects = leader.on_appended(now_ms, AckId(batch_id), acks, last, PRODUCE_TIMEOUT_MS, &mut node.log);
        let first = last + 1 - count as Offset;
        self.next_record_id += count;
        self.next_batch_id += 1;
        self.stats.batches += 1;
        self.batches.insert(batch_id, Batch { acks, first, ids });
        self.trace.push(now_ms, Event::Produce { node: target, epoch, all: acks == Acks::All, first, last });
        self.checker.on_write(target, epoch)?;
        self.apply_effects(target, effects)
    }

    fn crash_random(&mut self) {
        let alive: Vec<NodeId> = self.nodes.iter().filter(|n| n.alive).map(|n| n.id).collect();
        if alive.is_empty() {
            return;
        }
        let id = alive[self.rng.index(alive.len())];
        let node = self.node_mut(id);
        node.alive = false;
        node.paused_until_ms = 0;
        node.log.crash();
        node.replica = None;
        node.registered = None;
        node.register_sent_ms = None;
        node.incarnation += 1;
        self.net.drop_to(Endpoint::Node(id));
        self.net.drop_from(Endpoint::Node(id));
        self.stats.crashes += 1;
        self.trace.push(self.now_ms, Event::Crash(id));
    }

    fn restart_random(&mut self) {
        let dead: Vec<NodeId> = self.nodes.iter().filter(|n| !n.alive).map(|n| n.id).collect();
        if !dead.is_empty() {
            let id = dead[self.rng.index(dead.len())];
            self.restart(id);
        }
    }

    fn restart(&mut self, id: NodeId) {
        self.node_mut(id).alive = true;
        self.trace.push(self.now_ms, Event::Restart(id));
    }

    fn partition(&mut self) {
        let mut endpoints = vec![Endpoint::Controller];
        endpoints.extend(self.nodes.iter().map(|n| Endpoint::Node(n.id)));
        let cut_both = |net: &mut Network<Message>, a: Endpoint, b: Endpoint| {
            net.cut(a, b);
            net.cut(b, a);
        };
        let description = match self.rng.below(4) {
            0 => {
                let leader = self.controller.partition().leader;
                let isolated = if leader == NO_LEADER {
                    endpoints[1 + self.rng.index(self.nodes.len())]
                } else {
                    Endpoint::Node(leader)
                };
                for &e in endpoints.iter().filter(|&&e| e != isolated) {
                    cut_both(&mut self.net, isolated, e);
                }
                format!("isolate {isolated:?}")
            }
            1 => {
                let sides: Vec<bool> = endpoints.iter().map(|_| self.rng.chance(500)).collect();
                for (i, &a) in endpoints.iter().enumerate() {
                    for (j, &b) in endpoints.iter().enumerate() {
                        if sides[i] != sides[j] {
                            self.net.cut(a, b);
                        }
                    }
                }
                let side: Vec<Endpoint> = endpoints.iter().zip(&sides).filter(|(_, s)| **s).map(|(e, _)| *e).collect();
                format!("split off {side:?}")
            }
            2 => {
                let from = endpoints[self.rng.index(endpoints.len())];
                let to = endpoints[self.rng.index(endpoints.len())];
                if from != to {
                    self.net.cut(from, to);
                }
                format!("one-way {from:?} -> {to:?}")
            }
            _ => {
                for &e in &endpoints[1..] {
                    cut_both(&mut self.net, Endpoint::Controller, e);
                }
                "isolate the controller".to_string()
            }
        };
        self.stats.partitions += 1;
        self.trace.push(self.now_ms, Event::Partition(description));
    }

    /// The invariants of [`super::checker`], for every broker.
    fn check(&mut self) -> Result<(), String> {
        for node in &self.nodes {
            self.checker.check_log(node.id, &node.log)?;
        }
        let nodes = &self.nodes;
        let logs = |id: NodeId| nodes.get((id - 1) as usize).map(|n| &n.log);
        for node in nodes.iter().filter(|n| n.alive) {
            let Some(leader) = node.replica.as_ref().and_then(|r| r.leader()) else {
                continue;
            };
            let view = LeaderView {
                node: node.id,
                epoch: leader.leader_epoch(),
                log: &node.log,
                maximal_isr: leader.maximal_isr().into_iter().collect(),
                shown_high_watermark: leader.high_watermark_for_clients(&node.log),
            };
            self.checker.check_leader(&view, &logs)?;
        }
        for &member in &self.controller.partition().isr {
            self.checker.check_isr_member(member, &nodes[(member - 1) as usize].log)?;
        }
        Ok(())
    }

    fn converged(&self) -> bool {
        let p = self.controller.partition();
        if p.leader == NO_LEADER || p.isr.len() != self.nodes.len() {
            return false;
        }
        if !self.nodes.iter().all(|n| n.alive && self.controller.broker(n.id).is_some_and(|b| !b.fenced)) {
            return false;
        }
        let leader_node = self.node(p.leader);
        let Some(leader) = leader_node.replica.as_ref().and_then(|r| r.leader()) else {
            return false;
        };
        let end = leader_node.log.log_end_offset();
        leader.leader_epoch() == p.leader_epoch
            && leader.pending_isr_change().is_none()
            && leader.committed_isr().len() == self.nodes.len()
            && leader_node.log.high_watermark() == end
            && self.nodes.iter().all(|n| {
                n.log.records() == leader_node.log.records()
                    && n.replica.as_ref().is_some_and(|r| r.leader_epoch() == p.leader_epoch)
            })
    }

    /// What must hold once converged, beyond the per-step invariants.
    fn check_converged(&self) -> Result<(), String> {
        let p = self.controller.partition();
        let leader = self.node(p.leader);
        self.checker.on_become_leader(p.leader, p.leader_epoch, &leader.log)?;
        if self.checker.committed_len() as Offset > leader.log.high_watermark() {
            return Err(format!(
                "after healing the high watermark {} is below what was committed ({})",
                leader.log.high_watermark(),
                self.checker.committed_len()
            ));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let mut out = format!("controller {:?}", self.controller.partition());
        for n in &self.nodes {
            let role = match n.replica.as_ref().map(|r| r.role()) {
                Some(Role::Leader(l)) => format!(
                    "leader e{} isr {:?} pending {:?}",
                    l.leader_epoch(),
                    l.committed_isr(),
                    l.pending_isr_change().map(|p| p.request.isr_ids())
                ),
                Some(Role::Follower(f)) => format!("follower of {} e{} {:?}", f.leader(), f.leader_epoch(), f.phase()),
                Some(Role::None) => "none".to_string(),
                None => "unregistered".to_string(),
            };
            out.push_str(&format!(
                "\n    node {}: alive {} fenced {:?} {role}; end {} durable {} hw {} epochs {:?}",
                n.id,
                n.alive,
                self.controller.broker(n.id).map(|b| b.fenced),
                n.log.log_end_offset(),
                n.log.durable_offset(),
                n.log.high_watermark(),
                n.log.cache().entries()
            ));
        }
        out
    }
}
