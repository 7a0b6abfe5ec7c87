//! The leader's side of AlterPartition: asking the active controller to
//! change a partition's ISR, as Kafka's `AlterPartitionManager` does.
//!
//! ```text
//! replication core's driver ──▶ Cluster::alter_partition(IsrChange)
//!        │ MetadataCommand::AlterPartition (this broker's id and epoch)
//!        ▼
//! Quorum::propose ── forwarded to the quorum leader (the active controller) ── committed
//!        │ applied on every node by the metadata state machine: Kafka's checks
//!        │ (tributary_metadata::alter_partition), then the partition change
//!        ▼
//! outcome ──▶ Ok(PartitionState) once this node has published it, or Err(Kafka error code)
//! ```
//!
//! The request is judged where its entry lands in the metadata log, so a
//! change committed meanwhile (a broker fenced, another partition change)
//! is never overlooked. Kafka sends AlterPartition (API 56) from broker to
//! controller only, on the controller listener; here brokers reach the
//! controller through the quorum's forwarding, so API 56 is served on no
//! listener: the Kafka listener does not offer it (as Kafka's brokers do
//! not) and the controller listener speaks the quorum's own messages.

use tributary_metadata::{ApplyOutcome, BrokerState, MetadataCommand};
use tributary_protocol::ErrorCode;
use tributary_quorum::MetadataQuorum;
use tributary_types::TopicId;

use crate::backend::{PUBLISH_WAIT, quorum_error};
use crate::cluster::Cluster;

/// An ISR change a partition's leader asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    /// The topic.
    pub topic_id: TopicId,
    /// Partition index.
    pub partition: i32,
    /// The leader epoch this node leads in.
    pub leader_epoch: i32,
    /// The partition epoch this node last saw (from the metadata image, or
    /// from the answer to its previous change).
    pub partition_epoch: i32,
    /// The ISR to have: the leader and each in-sync follower, with the
    /// broker epoch its fetches carried (-1 when unknown).
    pub new_isr: Vec<BrokerState>,
}

/// The partition as the controller left it (Kafka's AlterPartition answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Leader.
    pub leader_id: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// ISR.
    pub isr: Vec<i32>,
    /// Partition epoch (the next change must name it).
    pub partition_epoch: i32,
}

impl Cluster {
    /// Asks the controller to change a partition's ISR, as this broker
    /// (its id and current broker epoch). Returns the partition as it is
    /// after the change (also when nothing needed changing), once this
    /// node's image shows it; or Kafka's error: STALE_BROKER_EPOCH,
    /// UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION, NOT_CONTROLLER,
    /// FENCED_LEADER_EPOCH, INVALID_REQUEST, INVALID_UPDATE_VERSION,
    /// INELIGIBLE_REPLICA (see `tributary_metadata::alter_partition`), or,
    /// from the quorum, NOT_CONTROLLER (no reachable leader) and
    /// REQUEST_TIMED_OUT (the outcome is not known: ask again).
    pub async fn alter_partition(&self, change: IsrChange) -> Result<PartitionState, ErrorCode> {
        let broker_epoch = self.image().brokers.get(&self.node_id).map_or(-1, |b| b.broker_epoch);
        let command = MetadataCommand::AlterPartition {
            broker_id: self.node_id,
            broker_epoch,
            topic_id: change.topic_id.0,
            partition: change.partition,
            leader_epoch: change.leader_epoch,
            partition_epoch: change.partition_epoch,
            new_isr: change.new_isr,
        };
        let outcome = match self.quorum() {
            Some(q) => {
                let (log_id, outcome) = q.quorum.propose(command).await.map_err(|e| quorum_error(&e).code)?;
                let index = crate::cluster_mode::metadata_index(log_id);
                let mut published = q.published.subscribe();
                match tokio::time::timeout(PUBLISH_WAIT, published.wait_for(|p| *p >= index)).await {
                    Ok(Ok(_)) => outcome,
                    _ => return Err(ErrorCode::RequestTimedOut),
                }
            }
            None => crate::cpu::off_workers(|| {
                let mut turn = self.metadata();
                self.propose(&mut turn, command)
            })
            .map_err(|e| e.code)?,
        };
        answer(outcome)
    }
}

/// The answer for an applied AlterPartition's outcome.
fn answer(outcome: ApplyOutcome) -> Result<PartitionState, ErrorCode> {
    use tributary_metadata::AlterPartitionError as E;
    match outcome {
        ApplyOutcome::AlterPartitionApplied { leader, leader_epoch, isr, partition_epoch } => {
            Ok(PartitionState { leader_id: leader, leader_epoch, isr, partition_epoch })
        }
        ApplyOutcome::AlterPartitionRefused { error } => Err(match error {
            E::StaleBrokerEpoch => ErrorCode::StaleBrokerEpoch,
            E::UnknownTopicId => ErrorCode::UnknownTopicId,
            E::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            E::NotController => ErrorCode::NotController,
            E::FencedLeaderEpoch => ErrorCode::FencedLeaderEpoch,
            E::InvalidRequest { reason } => {
                tracing::warn!(%reason, "AlterPartition refused as invalid");
                ErrorCode::InvalidRequest
            }
            E::InvalidUpdateVersion => ErrorCode::InvalidUpdateVersion,
            E::IneligibleReplica { reason } => {
                tracing::info!(%reason, "AlterPartition refused: ineligible replicas");
                ErrorCode::IneligibleReplica
            }
        }),
        other => {
            tracing::error!(?other, "an AlterPartition entry applied with an unexpected outcome");
            Err(ErrorCode::UnknownServerError)
        }
    }
}

#[cfg(test)]
mod tests {
    use tributary_metadata::AlterPartitionError as E;

    use super::*;

    #[test]
    fn every_refusal_is_kafkas_error_code() {
        let cases = [
            (E::StaleBrokerEpoch, 77),
            (E::UnknownTopicId, 100),
            (E::UnknownTopicOrPartition, 3),
            (E::NotController, 41),
            (E::FencedLeaderEpoch, 74),
            (E::InvalidRequest { reason: String::new() }, 42),
            (E::InvalidUpdateVersion, 95),
            (E::IneligibleReplica { reason: String::new() }, 107),
        ];
        for (error, code) in cases {
            let got = answer(ApplyOutcome::AlterPartitionRefused { error: error.clone() }).expect_err("refused");
            assert_eq!(got.code(), code, "{error:?}");
        }
        let applied =
            ApplyOutcome::AlterPartitionApplied { leader: 1, leader_epoch: 2, isr: vec![1, 3], partition_epoch: 4 };
        assert_eq!(
            answer(applied),
            Ok(PartitionState { leader_id: 1, leader_epoch: 2, isr: vec![1, 3], partition_epoch: 4 })
        );
        assert_eq!(answer(ApplyOutcome::TopicCreated), Err(ErrorCode::UnknownServerError));
    }
}
