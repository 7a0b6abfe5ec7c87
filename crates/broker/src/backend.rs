//! The metadata backend: where this node's proposals go and where the
//! committed metadata it publishes comes from. One seam, two backends:
//!
//! | config | backend | proposals | committed metadata |
//! |---|---|---|---|
//! | no `process.roles` | [`Backend::Local`]: the single-node `MetadataStore` in `<data>/__cluster_metadata` | appended, fsynced and applied in place | the store's state, published before the proposal returns |
//! | `process.roles` set (KRaft) | [`Backend::Quorum`]: a member of the metadata quorum on the same directory | `Quorum::propose` (forwarded to the leader from a follower or observer) | every applied entry, in log order, from `take_applied()` (see `cluster_mode.rs`) |
//!
//! Admin operations stay synchronous (they run on blocking threads, as the
//! single-node store's fsync needs): a proposal through the quorum blocks
//! its thread on the runtime handle until this node has *published* the
//! entry (image, reconcile, registry), so the request that proposed a topic
//! finds it hosted when `propose` returns, on whichever node took the
//! request. Keeping them synchronous keeps the validate-then-propose
//! critical section one plain function under one lock, the same on both
//! backends.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tributary_metadata::{ApplyOutcome, FsDisk, MetadataState, MetadataStateMachine, MetadataStore, ReassignmentError};
use tributary_protocol::ErrorCode;
use tributary_quorum::QuorumError;
use tributary_quorum::config::KraftConfig;
use tributary_quorum::net::tcp::ControllerServer;
use tributary_quorum::storage::metadata::MetadataApp;

use crate::error::ApiError;

/// The quorum member a KRaft node runs on its metadata log.
pub type MetadataQuorumNode = tributary_quorum::Quorum<MetadataApp, MetadataStateMachine<FsDisk>>;

/// How long an admin proposal may take before the client hears
/// REQUEST_TIMED_OUT (the quorum's own deadline is shorter: NOT_CONTROLLER).
pub(crate) const PUBLISH_WAIT: Duration = Duration::from_secs(15);

/// A KRaft node's metadata side.
pub struct QuorumBackend {
    /// The quorum member.
    pub quorum: MetadataQuorumNode,
    /// The KRaft settings it was started with.
    pub kraft: KraftConfig,
    /// The runtime the quorum runs on (admin threads block on it).
    pub(crate) runtime: tokio::runtime::Handle,
    /// This node's proposals, one at a time (validated against the image
    /// the previous one produced).
    pub(crate) proposals: Mutex<()>,
    /// The broker's own copy of the metadata state, advanced by every
    /// applied entry in log order (replaced whole on a snapshot restore).
    pub(crate) state: Mutex<MetadataState>,
    /// The metadata log index (the metadata crate's numbering) whose state
    /// the image and registry show.
    pub(crate) published: watch::Sender<u64>,
    /// This process's run of the broker (RegisterBroker's incarnation id).
    pub(crate) incarnation: [u8; 16],
    /// The cluster id `meta.properties` names, if the directory was formatted.
    pub(crate) formatted_cluster_id: Option<String>,
    /// The controller listener's server (none on a broker-only node's
    /// ephemeral replication port until bound).
    pub(crate) server: Mutex<Option<ControllerServer>>,
}

impl std::fmt::Debug for QuorumBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumBackend").field("node_id", &self.kraft.node_id).finish_non_exhaustive()
    }
}

/// Where metadata comes from.
#[derive(Debug)]
pub enum Backend {
    /// A node alone: its own store.
    Local(Box<Mutex<MetadataStore>>),
    /// A member of a metadata quorum.
    Quorum(Box<QuorumBackend>),
}

/// This node's turn to propose (held while validating and proposing).
pub(crate) enum Turn<'a> {
    /// The store itself, locked.
    Local(MutexGuard<'a, MetadataStore>),
    /// The quorum's proposal lock.
    Quorum(#[allow(dead_code, reason = "held for the turn, never read")] MutexGuard<'a, ()>),
}

/// The Kafka error an admin request gets when the quorum could not take its change.
pub(crate) fn quorum_error(e: &QuorumError) -> ApiError {
    match e {
        QuorumError::NotController { .. } | QuorumError::Stopped(_) => {
            ApiError::new(ErrorCode::NotController, format!("The metadata quorum has no reachable leader: {e}"))
        }
        QuorumError::OutcomeUnknown(_) | QuorumError::NotYetApplied { .. } => {
            ApiError::new(ErrorCode::RequestTimedOut, format!("The metadata change did not complete in time: {e}"))
        }
        QuorumError::Rejected(_)
        | QuorumError::Refused(_)
        | QuorumError::Config(_)
        | QuorumError::VoterChange { .. } => ApiError::new(ErrorCode::UnknownServerError, e.to_string()),
    }
}

/// The Kafka error for an outcome that means "not done", `None` for success.
/// The proposer validated against its image, but in a replicated log
/// another proposal may have won the race; this is what the client sees then.
pub(crate) fn outcome_error(outcome: &ApplyOutcome) -> Option<ApiError> {
    let (code, message) = match outcome {
        ApplyOutcome::TopicAlreadyExists => (ErrorCode::TopicAlreadyExists, "Topic already exists.".to_string()),
        ApplyOutcome::TopicIdInUse { name } => {
            (ErrorCode::TopicAlreadyExists, format!("The topic id is already used by topic '{name}'."))
        }
        ApplyOutcome::TopicNotFound => {
            (ErrorCode::UnknownTopicOrPartition, "This server does not host this topic.".to_string())
        }
        ApplyOutcome::PartitionNotFound => {
            (ErrorCode::UnknownTopicOrPartition, "This server does not host this topic-partition.".to_string())
        }
        ApplyOutcome::BrokerNotFound => (ErrorCode::BrokerIdNotRegistered, "The broker is not registered.".to_string()),
        ApplyOutcome::StaleBrokerEpoch { current } => {
            (ErrorCode::StaleBrokerEpoch, format!("The broker's registration changed (epoch now {current})."))
        }
        ApplyOutcome::PartitionEpochMismatch { current } => {
            (ErrorCode::InvalidUpdateVersion, format!("The partition changed meanwhile (partition epoch {current})."))
        }
        ApplyOutcome::InvalidPartitionChange { reason } => (ErrorCode::InvalidRequest, reason.clone()),
        ApplyOutcome::ReassignmentRefused { error } => match error {
            ReassignmentError::UnknownTopicOrPartition => {
                (ErrorCode::UnknownTopicOrPartition, "This server does not host this topic-partition.".to_string())
            }
            ReassignmentError::NoReassignmentInProgress => (
                ErrorCode::NoReassignmentInProgress,
                "No partition reassignment is in progress for this partition.".to_string(),
            ),
            ReassignmentError::InvalidReplicaAssignment { reason } => {
                (ErrorCode::InvalidReplicaAssignment, reason.clone())
            }
        },
        _ => return None,
    };
    Some(ApiError::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_the_errors_kafka_admin_clients_know() {
        assert_eq!(
            outcome_error(&ApplyOutcome::TopicAlreadyExists).map(|e| e.code),
            Some(ErrorCode::TopicAlreadyExists)
        );
        assert_eq!(
            outcome_error(&ApplyOutcome::TopicNotFound).map(|e| e.code),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        assert!(outcome_error(&ApplyOutcome::TopicCreated).is_none());
        assert!(outcome_error(&ApplyOutcome::ConfigsSet).is_none());
        let not_controller = QuorumError::NotController { leader_id: None, leader_address: None };
        assert_eq!(quorum_error(&not_controller).code, ErrorCode::NotController);
        assert_eq!(quorum_error(&QuorumError::OutcomeUnknown("lost".into())).code, ErrorCode::RequestTimedOut);
    }
}
