//! The seeded simulator of one partition's replication (compiled into this
//! crate's tests only). Brokers run the real [`crate::PartitionReplica`]
//! over an in-memory log with a disk model; the controller is the
//! [`crate::ControllerModel`]; a network drops, delays, reorders (across
//! links) and partitions messages; producers append with acks=all and
//! acks=1; brokers crash (losing what was not fsynced), restart, lag and
//! pause. After every step the invariants of [`checker`] are checked; a run
//! ends by healing everything and requiring convergence.
//!
//! A failing seed prints its scenario, seed, the broken rule and the last
//! events. Rerun one seed with
//! `SIM_SEED=<seed> cargo test -p tributary-replication sim::tests::<scenario>`,
//! more seeds with `SIM_SEEDS=<n>`, longer runs with `SIM_STEPS=<n>` (chaos
//! steps per seed); keep a failing seed in `tests::REGRESSION_SEEDS`.

mod checker;
pub(crate) mod log;
mod network;
mod rng;
mod trace;
mod world;

mod tests;
