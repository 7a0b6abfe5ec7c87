//! Seeded crash simulation of the metadata log, state machine and
//! single-node store on [`SimDisk`]: random operations interleaved with
//! crashes (unsynced bytes lost, last writes torn), injected I/O failures
//! and power loss, with a model of what must survive, checked after every
//! reopen:
//! - everything acknowledged as durable is there, in order, with its id;
//! - anything else present is exactly what was appended (nothing torn or
//!   unacknowledged is accepted in a damaged form), as a contiguous suffix;
//! - the state rebuilt equals the state from applying the surviving entries;
//! - the vote (and the committed and purge marks) never go backwards.
//!
//! A failing seed prints itself. Reproduce it alone with
//! `SIM_SEED=<seed> cargo test -p tributary-metadata --test simulation`,
//! and keep it by adding it to `REGRESSION_SEEDS`. `SIM_SEEDS=<n>` runs more.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use tributary_metadata::disk::{FaultPlan, SimRng};
use tributary_metadata::frame::encode_snapshot;
use tributary_metadata::{
    BrokerListener, Entry, EntryPayload, LogId, LogOptions, Membership, MetadataCommand, MetadataError, MetadataLog,
    MetadataState, MetadataStateMachine, MetadataStore, PartitionMeta, SimDisk, SnapshotMeta, StoreOptions, TopicMeta,
    Vote,
};

/// Seeds run for each scenario by default.
const SEEDS_PER_SCENARIO: u64 = 1000;
/// Operations per seed.
const OPS_PER_SEED: usize = 250;
/// Seeds that once failed; they run first, always.
const REGRESSION_SEEDS: &[u64] = &[];

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![seed];
    }
    let count = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(SEEDS_PER_SCENARIO);
    REGRESSION_SEEDS.iter().copied().chain(0..count).collect()
}

/// Runs `scenario` for every seed; a failure names the seed and how to rerun it.
fn run(name: &str, scenario: fn(u64) -> Result<Stats, String>) -> Stats {
    let mut total = Stats::default();
    for seed in seeds() {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| scenario(seed)))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(&*p))));
        match outcome {
            Ok(stats) => total.add(&stats),
            Err(why) => panic!(
                "simulation {name}: seed {seed} failed: {why}\n  rerun: SIM_SEED={seed} cargo test -p tributary-metadata --test simulation {name}\n  keep it: add {seed} to REGRESSION_SEEDS"
            ),
        }
    }
    eprintln!("simulation {name}: {} seeds, {total:?}", seeds().len());
    total
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// What a scenario did, so a run that checks nothing is noticed.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    ops: u64,
    reopens: u64,
    crashes: u64,
    failures: u64,
    durable_checked: u64,
    snapshots: u64,
    purges: u64,
    truncates: u64,
    installs: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.ops += o.ops;
        self.reopens += o.reopens;
        self.crashes += o.crashes;
        self.failures += o.failures;
        self.durable_checked += o.durable_checked;
        self.snapshots += o.snapshots;
        self.purges += o.purges;
        self.truncates += o.truncates;
        self.installs += o.installs;
    }
}

/// A seed's fault rates: a third of the seeds run without faults.
fn fault_plan(rng: &mut SimRng) -> FaultPlan {
    match rng.below(3) {
        0 => FaultPlan::none(),
        _ => FaultPlan::uniform(1 + rng.below(12) as u32),
    }
}

/// The leader of a term (one per term, as in KRaft).
fn leader_of(term: u64) -> i32 {
    (term % 3) as i32 + 1
}

/// A random command; `n` makes names unique.
fn command(rng: &mut SimRng, n: u64) -> MetadataCommand {
    let id = |k: u64| [(k % 6) as u8 + 1; 16];
    let partition = PartitionMeta {
        replicas: vec![1, 2, 3],
        leader: 1,
        leader_epoch: 0,
        isr: vec![1, 2, 3],
        partition_epoch: 0,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    };
    match rng.below(9) {
        0 | 1 => MetadataCommand::CreateTopic {
            topic: TopicMeta {
                name: format!("t{}", n % 6),
                topic_id: id(n),
                partitions: vec![partition; 1 + rng.below_usize(3)],
                configs: BTreeMap::new(),
            },
        },
        2 => MetadataCommand::DeleteTopic { topic_id: id(rng.below(6)) },
        3 => MetadataCommand::SetTopicConfigs {
            topic_id: id(rng.below(6)),
            configs: BTreeMap::from([("retention.ms".to_string(), n.to_string())]),
        },
        4 => MetadataCommand::AllocateProducerIdBlock { broker_id: 1 },
        5 => MetadataCommand::RegisterBroker {
            broker_id: (n % 3) as i32 + 1,
            incarnation_id: [(n % 2) as u8; 16],
            listeners: vec![BrokerListener {
                name: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
                security_protocol: "PLAINTEXT".into(),
            }],
            rack: None,
        },
        6 => MetadataCommand::UnfenceBroker { broker_id: (n % 3) as i32 + 1, broker_epoch: rng.below(40) as i64 },
        7 => MetadataCommand::ChangePartition {
            topic_id: id(rng.below(6)),
            partition: 0,
            expected_partition_epoch: rng.chance(500).then(|| rng.below(3) as i32),
            leader: Some((rng.below(3) + 1) as i32),
            isr: Some(vec![1, 2]),
            replicas: None,
            adding: None,
            removing: None,
        },
        _ => MetadataCommand::SetBrokerConfigs {
            broker: Some(1),
            configs: BTreeMap::from([("k".to_string(), n.to_string())]),
        },
    }
}

fn fold(history: &BTreeMap<u64, Entry>, upto: u64) -> MetadataState {
    let mut state = MetadataState::default();
    for entry in history.range(..=upto).map(|(_, e)| e) {
        state.apply_entry(entry);
    }
    state
}

fn is_io(e: &MetadataError) -> bool {
    matches!(e, MetadataError::Io { .. } | MetadataError::Poisoned { .. })
}

// ---------------------------------------------------------------------------
// Scenario 1: the log and state machine driven the way a Raft library
// drives them (append/flush, commit + apply, snapshot, purge, truncate of an
// uncommitted suffix, snapshot install from a leader ahead, votes).
// ---------------------------------------------------------------------------

/// An entry the model expects in the log.
#[derive(Debug, Clone)]
struct Expected {
    entry: Entry,
    /// Acknowledged durable: must survive any crash.
    durable: bool,
}

struct RaftSim {
    rng: SimRng,
    disk: SimDisk,
    faults: FaultPlan,
    options: LogOptions,
    log: Option<MetadataLog<SimDisk>>,
    machine: Option<MetadataStateMachine<SimDisk>>,
    /// Entries after the purge mark, contiguous.
    entries: Vec<Expected>,
    purged: Option<LogId>,
    purge_attempt: Option<LogId>,
    vote: Option<Vote>,
    vote_attempt: Option<Vote>,
    committed: Option<LogId>,
    committed_attempt: Option<LogId>,
    /// The committed history (every entry ever committed, by index).
    history: BTreeMap<u64, Entry>,
    term: u64,
    n: u64,
    /// Index of the first entry (openraft starts at 0).
    first_index: u64,
    /// Entries carry no leader (a Raft library whose log ids are term and index).
    unknown_leaders: bool,
    stats: Stats,
}

impl RaftSim {
    fn leader(&self, term: u64) -> i32 {
        if self.unknown_leaders { LogId::UNKNOWN_LEADER } else { leader_of(term) }
    }

    fn log(&mut self) -> &mut MetadataLog<SimDisk> {
        self.log.as_mut().expect("open")
    }

    /// The highest index that may no longer be truncated or committed again.
    fn floor(&self) -> Option<u64> {
        [self.committed, self.purged].into_iter().flatten().map(|l| l.index).max()
    }

    fn last(&self) -> Option<LogId> {
        self.entries.last().map(|e| e.entry.log_id).or(self.purged)
    }

    fn applied(&self) -> u64 {
        self.machine.as_ref().map_or(0, |m| m.state().applied_index())
    }

    /// Handles a failed call: I/O failures reopen (crashing when the disk
    /// was poisoned or lost power); anything else is a bug.
    fn failed(&mut self, what: &str, e: MetadataError) -> Result<(), String> {
        if !is_io(&e) {
            return Err(format!("{what}: unexpected {e}"));
        }
        self.stats.failures += 1;
        let poisoned = self.log.as_ref().is_some_and(|l| l.poisoned().is_some());
        if poisoned || self.rng.chance(300) {
            let crash = self.rng.chance(700) || matches!(e, MetadataError::Poisoned { .. });
            self.reopen(crash)?;
        }
        Ok(())
    }

    fn op_append(&mut self) -> Result<(), String> {
        let mut batch = Vec::new();
        let mut next = self.last().map_or(self.first_index, |l| l.index + 1);
        if self.rng.chance(80) || self.term == 0 {
            self.term += 1 + self.rng.below(2);
            batch.push(Entry::blank(LogId::new(self.term, self.leader(self.term), next)));
            next += 1;
        }
        for _ in 0..self.rng.below(4) + usize::from(batch.is_empty()) as u64 {
            let id = LogId::new(self.term, self.leader(self.term), next);
            let entry = if self.rng.chance(40) {
                Entry { log_id: id, payload: EntryPayload::Membership(Membership::single(leader_of(self.term), "x:1")) }
            } else {
                self.n += 1;
                Entry::command(id, command(&mut self.rng, self.n))
            };
            batch.push(entry);
            next += 1;
        }
        let before = self.log().log_state().last;
        match self.log().append(&batch) {
            Ok(()) => {
                self.entries.extend(batch.into_iter().map(|entry| Expected { entry, durable: false }));
                Ok(())
            }
            Err(e) => {
                // A prefix of the batch may be in; the log says how much.
                let now = self.log().log_state().last;
                let got = now.map_or(0, |l| l.index).saturating_sub(before.map_or(0, |l| l.index));
                // A write cut back (and fsynced) is gone; one that could not
                // be cut back poisons the log and may still be on disk.
                let may_be_there = if self.log().poisoned().is_some() { batch.len() } else { got as usize };
                self.entries
                    .extend(batch.into_iter().take(may_be_there).map(|entry| Expected { entry, durable: false }));
                self.failed("append", e)
            }
        }
    }

    fn op_flush(&mut self) -> Result<(), String> {
        match self.log().flush() {
            Ok(last) => {
                if last != self.last() {
                    return Err(format!("flush says {last:?}, the model {:?}", self.last()));
                }
                for e in &mut self.entries {
                    e.durable = true;
                }
                Ok(())
            }
            Err(e) => self.failed("flush", e),
        }
    }

    fn op_commit(&mut self) -> Result<(), String> {
        let floor = self.floor();
        let durable: Vec<LogId> = self
            .entries
            .iter()
            .filter(|e| e.durable && floor.is_none_or(|f| e.entry.log_id.index > f))
            .map(|e| e.entry.log_id)
            .collect();
        if durable.is_empty() {
            return Ok(());
        }
        let c = durable[self.rng.below_usize(durable.len())];
        self.committed_attempt = Some(c);
        match self.log().save_committed(c) {
            Ok(()) => {
                self.committed = Some(c);
                for e in self.entries.iter().filter(|e| e.entry.log_id.index <= c.index) {
                    self.history.insert(e.entry.log_id.index, e.entry.clone());
                }
                self.apply_committed()
            }
            Err(e) => self.failed("save_committed", e),
        }
    }

    /// Applies committed entries to the state machine, as the Raft library would.
    fn apply_committed(&mut self) -> Result<(), String> {
        let Some(c) = self.committed else { return Ok(()) };
        let next = self.machine.as_ref().and_then(|m| m.state().last_applied).map_or(0, |l| l.index + 1);
        if c.index < next {
            return Ok(());
        }
        let entries = self.log.as_ref().expect("open").entries(next..=c.index).map_err(|e| format!("read: {e}"))?;
        let machine = self.machine.as_mut().expect("open");
        for entry in &entries {
            machine.apply(entry);
        }
        Ok(())
    }

    fn op_snapshot(&mut self) -> Result<(), String> {
        match self.machine.as_mut().expect("open").build_snapshot() {
            Ok(meta) => {
                self.stats.snapshots += u64::from(meta.is_some());
                Ok(())
            }
            // A failed snapshot leaves the old one; the next try writes it again.
            Err(e) if is_io(&e) => {
                self.stats.failures += 1;
                Ok(())
            }
            Err(e) => Err(format!("snapshot: {e}")),
        }
    }

    fn op_purge(&mut self) -> Result<(), String> {
        let Some(snap) = self.machine.as_ref().and_then(|m| m.snapshot_meta()).map(|m| m.last_included) else {
            return Ok(());
        };
        let candidates: Vec<LogId> =
            self.entries.iter().map(|e| e.entry.log_id).filter(|id| id.index <= snap.index).collect();
        let Some(&upto) = candidates.get(self.rng.below_usize(candidates.len().max(1))) else {
            return Ok(());
        };
        self.purge_attempt = Some(upto);
        match self.log().purge(upto) {
            Ok(()) => {
                self.stats.purges += 1;
                self.purged = Some(upto);
                self.entries.retain(|e| e.entry.log_id.index > upto.index);
                Ok(())
            }
            Err(e) => self.failed("purge", e),
        }
    }

    fn op_truncate(&mut self) -> Result<(), String> {
        let floor = self.floor();
        let candidates: Vec<u64> =
            self.entries.iter().map(|e| e.entry.log_id.index).filter(|&i| floor.is_none_or(|f| i > f)).collect();
        let Some(&from) = candidates.get(self.rng.below_usize(candidates.len().max(1))) else {
            return Ok(());
        };
        match self.log().truncate(from) {
            Ok(()) => {
                self.stats.truncates += 1;
                self.entries.retain(|e| e.entry.log_id.index < from);
                for e in &mut self.entries {
                    e.durable = true;
                }
                // The entries that replace them come from a later leader.
                self.term += 1;
                Ok(())
            }
            Err(e) => {
                // The cut may or may not have happened: what it would remove is no longer owed.
                for e in self.entries.iter_mut().filter(|e| e.entry.log_id.index >= from) {
                    e.durable = false;
                }
                self.term += 1;
                self.failed("truncate", e)
            }
        }
    }

    /// A leader ahead of this node sends a snapshot covering entries this
    /// log never had; the log is purged up to it (openraft's behaviour).
    fn op_install(&mut self) -> Result<(), String> {
        // The leader's state: everything this node has applied (committed
        // entries, earlier installs), then entries this log never saw.
        let applied = self.applied().max(self.committed.map_or(0, |c| c.index));
        if applied == 0 {
            return Ok(());
        }
        let last = self.last().map_or(0, |l| l.index);
        let mut state = fold(&self.history, applied);
        self.term += 1;
        let extra = 1 + self.rng.below(5);
        for index in last + 1..=last + extra {
            self.n += 1;
            let entry =
                Entry::command(LogId::new(self.term, self.leader(self.term), index), command(&mut self.rng, self.n));
            state.apply_entry(&entry);
            self.history.insert(index, entry);
        }
        let covered = state.last_applied.ok_or("a snapshot of nothing")?;
        let meta = SnapshotMeta {
            last_included: covered,
            membership: state.membership.clone(),
            snapshot_id: format!("leader-{}", covered.index),
        };
        let bytes = encode_snapshot(&meta, &state).map_err(|e| e.to_string())?;
        self.stats.installs += 1;
        // Installing implies the purge that follows (a reopen finishes it).
        self.purge_attempt = Some(covered);
        if let Err(e) = self.machine.as_mut().expect("open").install_snapshot(&bytes) {
            // A storage error stops a Raft node; it restarts from what is on disk.
            if !is_io(&e) {
                return Err(format!("install_snapshot: {e}"));
            }
            self.stats.failures += 1;
            let crash = self.rng.chance(500);
            return self.reopen(crash);
        }
        match self.log().purge(covered) {
            Ok(()) => {
                self.purged = Some(covered);
                self.entries.clear();
                Ok(())
            }
            Err(e) => self.failed("purge after install", e),
        }
    }

    fn op_vote(&mut self) -> Result<(), String> {
        let current = self.vote.unwrap_or(Vote { term: 0, voted_for: None, committed: false });
        let node = (self.rng.below(3) + 1) as i32;
        let vote = match self.rng.below(4) {
            0 if current.voted_for.is_some() => Vote { committed: true, ..current },
            0 | 1 => Vote {
                term: current.term + 1 + self.rng.below(2),
                voted_for: Some(node),
                committed: self.rng.chance(400),
            },
            2 => Vote { term: current.term + 1, voted_for: None, committed: false },
            _ if current.term > 0 => {
                // Going back must be refused and change nothing.
                let back = Vote { term: current.term - 1, voted_for: Some(node), committed: true };
                return match self.log().save_vote(&back) {
                    Err(MetadataError::Refused(_)) if self.log().read_vote() == self.vote => Ok(()),
                    Err(e) if is_io(&e) => self.failed("save_vote", e),
                    other => Err(format!("a vote going back from {current} to {back} gave {other:?}")),
                };
            }
            _ => Vote { term: 1, voted_for: Some(node), committed: false },
        };
        self.vote_attempt = Some(vote);
        match self.log().save_vote(&vote) {
            Ok(()) => {
                self.vote = Some(vote);
                Ok(())
            }
            Err(e) => self.failed("save_vote", e),
        }
    }

    /// Drops everything, maybe crashes, opens again and checks it all.
    fn reopen(&mut self, crash: bool) -> Result<(), String> {
        self.log = None;
        self.machine = None;
        self.stats.reopens += 1;
        if crash {
            self.disk.crash();
            self.stats.crashes += 1;
        }
        let mut tries = 0;
        let (log, machine) = loop {
            tries += 1;
            if tries > 4 {
                self.disk.set_faults(FaultPlan::none());
            }
            match self.open_both() {
                Ok(opened) => break opened,
                Err(e) if is_io(&e) && tries < 10 => {
                    self.disk.crash();
                    self.stats.crashes += 1;
                }
                Err(e) => return Err(format!("reopen failed: {e}")),
            }
        };
        self.disk.set_faults(self.faults);
        self.log = Some(log);
        self.machine = Some(machine);
        self.check_after_reopen()
    }

    fn open_both(&mut self) -> Result<(MetadataLog<SimDisk>, MetadataStateMachine<SimDisk>), MetadataError> {
        let mut log = MetadataLog::open(self.disk.clone(), self.options)?;
        let machine = MetadataStateMachine::open(self.disk.clone(), &log)?;
        // A snapshot installed but not yet followed by its purge: finish it.
        if let Some(meta) = machine.snapshot_meta()
            && log.log_state().last.is_none_or(|l| l.index < meta.last_included.index)
        {
            log.purge(meta.last_included)?;
        }
        Ok((log, machine))
    }

    fn check_after_reopen(&mut self) -> Result<(), String> {
        let log = self.log.as_ref().expect("open");
        let machine = self.machine.as_ref().expect("open");
        let state = log.log_state();
        let index = |id: Option<LogId>| id.map_or(0, |l| l.index);

        // Marks never go back, and never past what was attempted.
        let purged = state.last_purged;
        let purge_max = index(self.purge_attempt).max(index(self.purged));
        if index(purged) < index(self.purged) || index(purged) > purge_max {
            return Err(format!(
                "purge mark {purged:?}: acknowledged {:?}, attempted {:?}",
                self.purged, self.purge_attempt
            ));
        }
        let vote = log.read_vote();
        if vote != self.vote && vote != self.vote_attempt {
            return Err(format!("vote {vote:?}: acknowledged {:?}, attempted {:?}", self.vote, self.vote_attempt));
        }
        if let (Some(acked), Some(now)) = (self.vote, vote)
            && !acked.may_be_replaced_by(&now)
        {
            return Err(format!("the vote went back from {acked} to {now}"));
        }
        let committed = log.read_committed();
        if committed != self.committed && committed != self.committed_attempt {
            return Err(format!(
                "committed {committed:?}: acknowledged {:?}, attempted {:?}",
                self.committed, self.committed_attempt
            ));
        }

        // Entries: the durable ones, then at most a contiguous run of the rest, exactly as appended.
        let present = log.entries(..).map_err(|e| format!("read: {e}"))?;
        let mut present_at: BTreeMap<u64, &Entry> = present.iter().map(|e| (e.log_id.index, e)).collect();
        let mut missing_from: Option<u64> = None;
        for expected in self.entries.iter().filter(|e| purged.is_none_or(|p| e.entry.log_id.index > p.index)) {
            let i = expected.entry.log_id.index;
            match present_at.remove(&i) {
                Some(got) if *got == expected.entry => {
                    if let Some(gap) = missing_from {
                        return Err(format!("entry {i} is present but {gap} before it is not"));
                    }
                    self.stats.durable_checked += u64::from(expected.durable);
                }
                Some(got) => return Err(format!("entry {i}: expected {:?}, found {got:?}", expected.entry)),
                None if expected.durable => return Err(format!("durable entry {} is gone", expected.entry.log_id)),
                None => {
                    missing_from.get_or_insert(i);
                }
            }
        }
        if let Some((i, e)) = present_at.iter().next() {
            return Err(format!("entry {i} was never appended: {e:?}"));
        }
        if let Some(c) = committed
            && index(state.last) < c.index
        {
            return Err(format!("committed {c} but the log ends at {:?}", state.last));
        }

        // A committed mark whose save failed may have reached the disk: its
        // entries (checked above) are committed now.
        for entry in present.iter().filter(|e| committed.is_some_and(|c| e.log_id.index <= c.index)) {
            self.history.entry(entry.log_id.index).or_insert_with(|| entry.clone());
        }

        // The state: the snapshot plus the committed entries after it.
        let snapshot = machine.snapshot_meta().map(|m| m.last_included.index);
        let upto = [committed.map(|c| c.index), snapshot].into_iter().flatten().max();
        let expected = upto.map_or_else(MetadataState::default, |upto| fold(&self.history, upto));
        if machine.state() != &expected {
            return Err(format!(
                "state after reopen differs from the committed entries up to {upto:?} (snapshot {snapshot:?}, committed {committed:?}):\n  got {:?}\n  want {:?}",
                machine.state(),
                expected
            ));
        }

        // What is on disk now is the model.
        self.entries = present.into_iter().map(|entry| Expected { entry, durable: true }).collect();
        self.purged = purged;
        self.purge_attempt = purged;
        self.vote = vote;
        self.vote_attempt = vote;
        self.committed = committed;
        self.committed_attempt = committed;
        // Entries a failed install added but no durable snapshot holds are not history.
        self.history.retain(|&i, _| upto.is_some_and(|u| i <= u));
        self.term = self.term.max(self.last().map_or(0, |l| l.term)) + 1;
        Ok(())
    }
}

fn raft_scenario(seed: u64) -> Result<Stats, String> {
    let mut rng = SimRng::new(seed);
    let disk = SimDisk::new(rng.next_u64());
    let faults = fault_plan(&mut rng);
    let options = LogOptions { segment_bytes: 200 + rng.below(800) };
    let first_index = rng.below(2);
    let unknown_leaders = rng.chance(300);
    let mut sim = RaftSim {
        rng,
        disk: disk.clone(),
        faults,
        options,
        log: None,
        machine: None,
        entries: Vec::new(),
        purged: None,
        purge_attempt: None,
        vote: None,
        vote_attempt: None,
        committed: None,
        committed_attempt: None,
        history: BTreeMap::new(),
        term: 0,
        n: 0,
        first_index,
        unknown_leaders,
        stats: Stats::default(),
    };
    sim.reopen(false)?;
    disk.set_faults(faults);
    let trace = std::env::var("SIM_TRACE").is_ok();
    for step in 0..OPS_PER_SEED {
        sim.stats.ops += 1;
        let op = sim.rng.below(100);
        if trace {
            eprintln!(
                "step {step}: op {op}; last {:?} purged {:?} committed {:?} history {:?} entries {:?}",
                sim.last().map(|l| l.to_string()),
                sim.purged.map(|l| l.to_string()),
                sim.committed.map(|l| l.to_string()),
                sim.history.keys().collect::<Vec<_>>(),
                sim.entries.iter().map(|e| (e.entry.log_id.to_string(), e.durable)).collect::<Vec<_>>()
            );
        }
        match op {
            0..=29 => sim.op_append()?,
            30..=44 => sim.op_flush()?,
            45..=59 => sim.op_commit()?,
            60..=64 => sim.op_snapshot()?,
            65..=69 => sim.op_purge()?,
            70..=74 => sim.op_truncate()?,
            75..=76 => sim.op_install()?,
            77..=84 => sim.op_vote()?,
            85..=91 => sim.reopen(true)?,
            92..=95 => sim.reopen(false)?,
            _ => {
                // The disk starts dying; the next failures lead to a crash.
                let budget = sim.rng.below(12);
                disk.lose_power_after(budget);
            }
        }
    }
    sim.reopen(true)?;
    Ok(sim.stats)
}

// ---------------------------------------------------------------------------
// Scenario 2: the single-node store (propose = append + fsync + apply),
// with snapshots and purges it takes itself, under crashes and failures.
// ---------------------------------------------------------------------------

struct StoreSim {
    rng: SimRng,
    disk: SimDisk,
    faults: FaultPlan,
    options: StoreOptions,
    node_id: i32,
    store: Option<MetadataStore<SimDisk>>,
    /// Every entry applied (acknowledged proposals and the store's own blank and membership entries).
    history: BTreeMap<u64, Entry>,
    /// The applied state the model expects.
    state: MetadataState,
    /// A proposal whose outcome is unknown (failed with the log poisoned).
    maybe: Option<Entry>,
    vote: Option<Vote>,
    n: u64,
    /// Last seen snapshot and purge mark (to count them).
    snapshot: Option<u64>,
    purged: Option<LogId>,
    stats: Stats,
}

impl StoreSim {
    fn open(&mut self) -> Result<(), String> {
        let mut tries = 0;
        let store = loop {
            tries += 1;
            if tries > 4 {
                self.disk.set_faults(FaultPlan::none());
            }
            match MetadataStore::open_on(self.disk.clone(), self.node_id, self.options) {
                Ok(store) => break store,
                Err(e) if is_io(&e) && tries < 10 => {
                    self.disk.crash();
                    self.stats.crashes += 1;
                }
                Err(e) => return Err(format!("open failed: {e}")),
            }
        };
        self.disk.set_faults(self.faults);
        self.store = Some(store);
        self.check_after_open()
    }

    fn reopen(&mut self, crash: bool) -> Result<(), String> {
        self.store = None;
        self.stats.reopens += 1;
        if crash {
            self.disk.crash();
            self.stats.crashes += 1;
        }
        self.open()
    }

    fn check_after_open(&mut self) -> Result<(), String> {
        let store = self.store.as_ref().expect("open");
        let last_known = self.history.keys().next_back().copied().unwrap_or(0);
        let newer = store.log().entries(last_known + 1..).map_err(|e| format!("read: {e}"))?;
        let mut newer = newer.into_iter().peekable();
        if let Some(maybe) = self.maybe.take()
            && newer.peek() == Some(&maybe)
        {
            let entry = newer.next().ok_or("vanished")?;
            self.state.apply_entry(&entry);
            self.history.insert(entry.log_id.index, entry);
        }
        // Only the store's own leadership entries may appear on their own: a
        // blank opening a new term, then perhaps a membership in that term
        // (an open that failed half-way may have left some already).
        let mut prev_term = self.history.values().next_back().map_or(0, |e| e.log_id.term);
        let mut opened_term = false;
        for entry in newer {
            let fits = match entry.payload {
                EntryPayload::Blank => entry.log_id.term > prev_term,
                EntryPayload::Membership(_) => opened_term && entry.log_id.term == prev_term,
                EntryPayload::Command(_) => false,
            };
            if !fits || entry.log_id.leader != self.node_id {
                return Err(format!("entry {entry:?} appeared at open (after term {prev_term})"));
            }
            opened_term = true;
            prev_term = entry.log_id.term;
            self.state.apply_entry(&entry);
            self.history.insert(entry.log_id.index, entry);
        }
        if store.state() != &self.state {
            return Err(format!("state after open:\n  got  {:?}\n  want {:?}", store.state(), self.state));
        }
        let last = self.history.values().next_back().map(|e| e.log_id);
        if store.state().last_applied != last {
            return Err(format!("last applied {:?}, the model {last:?}", store.state().last_applied));
        }
        let vote = store.log().read_vote();
        if let (Some(acked), Some(now)) = (self.vote, vote)
            && !acked.may_be_replaced_by(&now)
        {
            return Err(format!("the vote went back from {acked} to {now}"));
        }
        if vote.map(|v| (v.term, v.voted_for, v.committed)) != Some((store.term(), Some(self.node_id), true)) {
            return Err(format!("vote {vote:?} after open, term {}", store.term()));
        }
        self.vote = vote;
        self.stats.durable_checked += self.history.len() as u64;
        Ok(())
    }

    fn op_propose(&mut self) -> Result<(), String> {
        self.n += 1;
        let command = command(&mut self.rng, self.n);
        let store = self.store.as_mut().expect("open");
        let expected_id =
            LogId::new(store.term(), self.node_id, store.log().log_state().last.map_or(1, |l| l.index + 1));
        match store.propose(command.clone()) {
            Ok((id, outcome)) => {
                let entry = Entry::command(id, command);
                if id != expected_id {
                    return Err(format!("proposal got {id}, expected {expected_id}"));
                }
                let want = self.state.apply_entry(&entry);
                if outcome != want {
                    return Err(format!("outcome {outcome:?}, the model says {want:?}"));
                }
                self.history.insert(id.index, entry);
                if store.state() != &self.state {
                    return Err("the state differs from the model after a proposal".into());
                }
                let snapshot = store.machine().snapshot_meta().map(|m| m.last_included.index);
                if snapshot != self.snapshot {
                    self.snapshot = snapshot;
                    self.stats.snapshots += 1;
                }
                let purged = store.log().log_state().last_purged;
                if purged != self.purged {
                    self.purged = purged;
                    self.stats.purges += 1;
                }
                Ok(())
            }
            Err(e) if is_io(&e) => {
                self.stats.failures += 1;
                if store.log().poisoned().is_some() || matches!(e, MetadataError::Poisoned { .. }) {
                    if !matches!(e, MetadataError::Poisoned { .. }) {
                        self.maybe = Some(Entry::command(expected_id, command));
                    }
                    let crash = self.rng.chance(600);
                    self.reopen(crash)
                } else {
                    // Cut back: the entry is not in the log; the next proposal takes its index.
                    Ok(())
                }
            }
            Err(e) => Err(format!("propose: unexpected {e}")),
        }
    }
}

fn store_scenario(seed: u64) -> Result<Stats, String> {
    let mut rng = SimRng::new(seed ^ 0x05EE_D0F5_702E);
    let disk = SimDisk::new(rng.next_u64());
    let faults = fault_plan(&mut rng);
    let options =
        StoreOptions { log: LogOptions { segment_bytes: 200 + rng.below(1000) }, snapshot_every: 5 + rng.below(40) };
    let mut sim = StoreSim {
        rng,
        disk: disk.clone(),
        faults,
        options,
        node_id: 1,
        store: None,
        history: BTreeMap::new(),
        state: MetadataState::default(),
        maybe: None,
        vote: None,
        n: 0,
        snapshot: None,
        purged: None,
        stats: Stats::default(),
    };
    sim.open()?;
    let trace = std::env::var("SIM_TRACE").is_ok();
    for step in 0..OPS_PER_SEED {
        sim.stats.ops += 1;
        let op = sim.rng.below(100);
        if trace {
            let last = sim.history.values().next_back().map(|e| e.log_id.to_string());
            eprintln!(
                "step {step}: op {op}; node {} history last {last:?} maybe {:?}",
                sim.node_id,
                sim.maybe.as_ref().map(|e| e.log_id.to_string())
            );
        }
        match op {
            0..=79 => sim.op_propose()?,
            80..=82 => {
                if let Err(e) = sim.store.as_mut().expect("open").snapshot()
                    && !is_io(&e)
                {
                    return Err(format!("snapshot: {e}"));
                }
            }
            83..=89 => sim.reopen(true)?,
            90..=93 => sim.reopen(false)?,
            94 => {
                sim.node_id = if sim.node_id == 1 { 2 } else { 1 };
                let crash = sim.rng.chance(500);
                sim.reopen(crash)?;
            }
            _ => {
                let budget = sim.rng.below(10);
                disk.lose_power_after(budget);
            }
        }
    }
    sim.reopen(true)?;
    Ok(sim.stats)
}

#[test]
fn raft_log_and_state_machine_survive_crashes() {
    let stats = run("raft_log_and_state_machine_survive_crashes", raft_scenario);
    assert!(stats.crashes > 1000 && stats.durable_checked > 10_000, "{stats:?}");
    assert!(stats.purges > 100 && stats.truncates > 100 && stats.installs > 100 && stats.failures > 100, "{stats:?}");
}

#[test]
fn single_node_store_survives_crashes() {
    let stats = run("single_node_store_survives_crashes", store_scenario);
    assert!(stats.crashes > 1000 && stats.durable_checked > 10_000 && stats.failures > 100, "{stats:?}");
    assert!(stats.snapshots > 1000 && stats.purges > 1000, "{stats:?}");
}
