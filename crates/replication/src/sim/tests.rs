//! The scenarios, each run over many seeds, and the proof that the
//! invariants catch known bugs.

use std::panic::AssertUnwindSafe;

use super::world::{Scenario, Stats, World};
use crate::bugs::{self, Bug};

/// Seeds run for each scenario by default (`SIM_SEEDS` overrides).
const SEEDS_PER_SCENARIO: u64 = 1000;

/// Seeds that once failed: (scenario, seed, chaos steps). They run first,
/// always.
const REGRESSION_SEEDS: &[(&str, u64, usize)] = &[
    // A broker paused while metadata electing it was in flight became leader
    // of that old epoch after newer leaders had committed records it lacks
    // (a zombie, not a clean election: the checker now holds only the
    // controller's current choice to "holds every acknowledged record").
    ("rf3_min2", 15556, 700),
    ("rf5_min3", 10245, 700),
];

/// Replication factor 3, `min.insync.replicas=2`: the setting Tributary's
/// acks=all promise is about.
const RF3_MIN2: Scenario = Scenario {
    name: "rf3_min2",
    replicas: 3,
    min_insync: 2,
    unclean_leader_election: false,
    chaos_steps: 700,
    heal_rounds: 150,
};

/// Replication factor 5, `min.insync.replicas=3`.
const RF5_MIN3: Scenario = Scenario {
    name: "rf5_min3",
    replicas: 5,
    min_insync: 3,
    unclean_leader_election: false,
    chaos_steps: 700,
    heal_rounds: 200,
};

/// Kafka's default `min.insync.replicas=1`: the ISR may shrink to the
/// leader alone, and the high watermark still never covers what a crash
/// could take.
const RF3_MIN1: Scenario = Scenario {
    name: "rf3_min1",
    replicas: 3,
    min_insync: 1,
    unclean_leader_election: false,
    chaos_steps: 700,
    heal_rounds: 150,
};

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![seed];
    }
    let count = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(SEEDS_PER_SCENARIO);
    (0..count).collect()
}

fn run_seed(scenario: Scenario, seed: u64) -> Result<Stats, String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| World::new(scenario, seed).run()))
        .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(&*p))))
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// Runs the scenario's regression seeds and then `seeds()`; the first
/// failure panics with what to rerun. `SIM_STEPS` lengthens the chaos.
fn run(scenario: Scenario) -> Stats {
    let steps = std::env::var("SIM_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(scenario.chaos_steps);
    // Longer runs leave longer logs to catch up on: the healing bound grows
    // with them.
    let heal_rounds = scenario.heal_rounds * steps.max(scenario.chaos_steps) / scenario.chaos_steps;
    let scenario = Scenario { chaos_steps: steps, heal_rounds, ..scenario };
    let regressions = REGRESSION_SEEDS
        .iter()
        .filter(|(name, _, _)| *name == scenario.name)
        .map(|&(_, seed, chaos_steps)| (seed, Scenario { chaos_steps, ..scenario }));
    let mut total = Stats::default();
    for (seed, scenario) in regressions.chain(seeds().into_iter().map(|seed| (seed, scenario))) {
        match run_seed(scenario, seed) {
            Ok(stats) => total.add(&stats),
            Err(why) => panic!(
                "replication simulation {name}, seed {seed}: {why}\n  rerun: SIM_SEED={seed} SIM_STEPS={steps} cargo test -p tributary-replication sim::tests::{name}\n  keep it: add (\"{name}\", {seed}, {steps}) to REGRESSION_SEEDS in src/sim/tests.rs",
                name = scenario.name,
                steps = scenario.chaos_steps,
            ),
        }
    }
    eprintln!("replication simulation {}: {total:?}", scenario.name);
    total
}

/// A full run must have exercised what it claims to test.
fn assert_exercised(scenario: Scenario, stats: &Stats) {
    if stats.seeds < 100 {
        return;
    }
    assert!(stats.acked_all > stats.seeds && stats.acked_leader > 0, "too few acknowledgements: {stats:?}");
    assert!(stats.crashes > stats.seeds && stats.partitions > stats.seeds / 2, "too few faults: {stats:?}");
    assert!(stats.elections > stats.seeds / 2 && stats.truncations > 0 && stats.isr_changes > stats.seeds, "{stats:?}");
    assert!(stats.failed > 0, "no produce ever failed: {stats:?}");
    if scenario.min_insync > 1 {
        assert!(stats.refused > 0, "the ISR never fell below min.insync.replicas: {stats:?}");
    }
}

#[test]
fn rf3_min2() {
    assert_exercised(RF3_MIN2, &run(RF3_MIN2));
}

#[test]
fn rf5_min3() {
    assert_exercised(RF5_MIN3, &run(RF5_MIN3));
}

#[test]
fn rf3_min1() {
    assert_exercised(RF3_MIN1, &run(RF3_MIN1));
}

#[test]
fn a_seed_replays_identically() {
    for seed in [3, 17] {
        let a = run_seed(RF3_MIN2, seed).map(|s| format!("{s:?}"));
        let b = run_seed(RF3_MIN2, seed).map(|s| format!("{s:?}"));
        assert_eq!(a, b);
    }
}

/// Runs seeds with `bug` switched on until the checker fails one; returns
/// the failure.
fn first_failure(scenario: Scenario, bug: Option<Bug>, seeds: u64) -> (u64, String) {
    for seed in 0..seeds {
        let outcome = match bug {
            Some(bug) => bugs::with(bug, || run_seed(scenario, seed)),
            None => run_seed(scenario, seed),
        };
        if let Err(why) = outcome {
            return (seed, why);
        }
    }
    panic!("{bug:?} went unnoticed by {seeds} seeds of {}", scenario.name);
}

fn expect_caught(scenario: Scenario, bug: Option<Bug>, seeds: u64, rules: &[&str]) {
    let (seed, why) = first_failure(scenario, bug, seeds);
    let first_line = why.lines().next().unwrap_or_default();
    eprintln!("{bug:?} caught in {} at seed {seed}: {first_line}", scenario.name);
    assert!(rules.iter().any(|rule| first_line.contains(rule)), "{bug:?} was caught for another reason: {why}");
}

#[test]
fn the_checker_catches_a_follower_reporting_unflushed_records() {
    expect_caught(RF3_MIN2, Some(Bug::FollowerReportsWrittenOffset), 300, &["disk", "acknowledged", "committed"]);
}

#[test]
fn the_checker_catches_a_high_watermark_over_the_committed_isr() {
    expect_caught(RF3_MIN2, Some(Bug::HighWatermarkOverCommittedIsr), 300, &["ISR member"]);
}

#[test]
fn the_checker_catches_a_leader_keeping_its_epoch_across_a_restart() {
    expect_caught(
        RF3_MIN2,
        Some(Bug::LeaderKeepsEpochAcrossRestart),
        300,
        &["committed", "disk", "acknowledged", "went back", "below its high watermark"],
    );
}

#[test]
fn the_checker_catches_an_election_outside_the_isr() {
    expect_caught(
        RF3_MIN2,
        Some(Bug::ElectOutsideIsr),
        300,
        &["acknowledged", "committed", "disk", "below its high watermark"],
    );
}

#[test]
fn the_checker_catches_what_unclean_election_loses() {
    let unclean = Scenario { name: "rf3_min2_unclean", unclean_leader_election: true, ..RF3_MIN2 };
    expect_caught(unclean, None, 300, &["acknowledged", "committed", "disk"]);
}
