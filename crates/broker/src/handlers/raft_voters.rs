//! AddRaftVoter (key 80) and RemoveRaftVoter (key 81), KIP-853: change the
//! metadata quorum's voters. Any node takes them and the quorum forwards
//! them to the leader, which makes one voter change at a time.
//!
//! | outcome | error code |
//! |---|---|
//! | done: the new voter set is committed | NONE |
//! | no process.roles (a node alone), or static voters (`controller.quorum.voters`, Kafka's kraft.version 0) | UNSUPPORTED_VERSION |
//! | ClusterId present and not this cluster's | INCONSISTENT_CLUSTER_ID |
//! | no listener named in this node's `controller.listener.names` | INVALID_REQUEST |
//! | VoterId negative | INVALID_REQUEST |
//! | AddRaftVoter for a voter | DUPLICATE_VOTER |
//! | RemoveRaftVoter for a node that is not a voter, or the last voter | VOTER_NOT_FOUND |
//! | another voter change pending, a leader that has not committed in its epoch, a new voter that does not catch up | REQUEST_TIMED_OUT |
//! | no leader reachable before the quorum's deadline | NOT_LEADER_OR_FOLLOWER |
//! | the change may or may not have happened (an answer lost) | REQUEST_TIMED_OUT |
//!
//! The VoterDirectoryId is accepted and not checked: directories (KIP-853's
//! replica directory ids) are not modelled, a node id names one voter.

use std::sync::Arc;

use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, ApiKey, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};
use tributary_protocol::{ErrorCode, RequestHeader};
use tributary_quorum::{MetadataQuorum, QuorumError, VoterRefusal};

use super::{Reply, encode_later, str_bytes};
use crate::cluster::Cluster;
use crate::outgoing::Outgoing;

/// An error code and its message.
type Refusal = (ErrorCode, String);

/// Checks what every voter change checks before the quorum sees it.
fn precheck(cluster: &Cluster, cluster_id: Option<&str>, voter_id: i32) -> Result<(), Refusal> {
    if cluster.quorum().is_none() {
        return Err((
            ErrorCode::UnsupportedVersion,
            "this node runs alone (no process.roles): there is no metadata quorum to change".into(),
        ));
    }
    if let Some(theirs) = cluster_id {
        let ours = cluster.cluster_id();
        if !ours.is_empty() && theirs != ours {
            return Err((
                ErrorCode::InconsistentClusterId,
                format!("the request names cluster {theirs}, this is cluster {ours}"),
            ));
        }
    }
    if voter_id < 0 {
        return Err((ErrorCode::InvalidRequest, format!("VoterId {voter_id} is not a node id")));
    }
    Ok(())
}

/// Kafka's code for a quorum failure.
fn refusal(e: &QuorumError) -> ErrorCode {
    match e {
        QuorumError::VoterChange { refusal, .. } => match refusal {
            VoterRefusal::StaticVoters => ErrorCode::UnsupportedVersion,
            VoterRefusal::DuplicateVoter => ErrorCode::DuplicateVoter,
            VoterRefusal::VoterNotFound => ErrorCode::VoterNotFound,
            VoterRefusal::ChangeInProgress | VoterRefusal::NotCaughtUp => ErrorCode::RequestTimedOut,
        },
        QuorumError::NotController { .. } => ErrorCode::NotLeaderOrFollower,
        QuorumError::OutcomeUnknown(_) | QuorumError::NotYetApplied { .. } => ErrorCode::RequestTimedOut,
        QuorumError::Refused(_) | QuorumError::Stopped(_) | QuorumError::Rejected(_) | QuorumError::Config(_) => {
            ErrorCode::UnknownServerError
        }
    }
}

fn add_response(header: &RequestHeader, outcome: Result<(), Refusal>) -> Option<Outgoing> {
    let body = match outcome {
        Ok(()) => AddRaftVoterResponse::default().with_error_code(0).with_error_message(None),
        Err((code, message)) => {
            AddRaftVoterResponse::default().with_error_code(code.code()).with_error_message(Some(str_bytes(&message)))
        }
    };
    encode_later(ApiKey::AddRaftVoter, header, &body)
}

fn remove_response(header: &RequestHeader, outcome: Result<(), Refusal>) -> Option<Outgoing> {
    let body = match outcome {
        Ok(()) => RemoveRaftVoterResponse::default().with_error_code(0).with_error_message(None),
        Err((code, message)) => RemoveRaftVoterResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(&message))),
    };
    encode_later(ApiKey::RemoveRaftVoter, header, &body)
}

/// The new voter's controller address: its listener named first in this
/// node's `controller.listener.names` (Kafka's default controller listener).
fn controller_address(cluster: &Cluster, request: &AddRaftVoterRequest) -> Result<String, Refusal> {
    let names = cluster.quorum().map(|q| q.kraft.controller_listener_names.clone()).unwrap_or_default();
    let listener = names
        .iter()
        .find_map(|name| request.listeners.iter().find(|l| l.name.as_str() == name.as_str()))
        .ok_or_else(|| {
            let sent: Vec<&str> = request.listeners.iter().map(|l| l.name.as_str()).collect();
            (
                ErrorCode::InvalidRequest,
                format!(
                    "the request has no endpoint for the controller listener {} (it has {sent:?})",
                    names.join(",")
                ),
            )
        })?;
    let host = listener.host.as_str();
    if host.is_empty() || listener.port == 0 {
        return Err((ErrorCode::InvalidRequest, format!("listener {} has no host or port", listener.name.as_str())));
    }
    Ok(if host.contains(':') { format!("[{host}]:{}", listener.port) } else { format!("{host}:{}", listener.port) })
}

pub(super) fn add_raft_voter(cluster: &Arc<Cluster>, header: &RequestHeader, request: AddRaftVoterRequest) -> Reply {
    let header = header.clone();
    let cluster = cluster.clone();
    Reply::Later(Box::pin(async move {
        let checked = precheck(&cluster, request.cluster_id.as_deref(), request.voter_id)
            .and_then(|()| controller_address(&cluster, &request));
        let address = match checked {
            Ok(a) => a,
            Err(refused) => return add_response(&header, Err(refused)),
        };
        let Some(q) = cluster.quorum() else {
            return add_response(&header, Err((ErrorCode::UnsupportedVersion, String::new())));
        };
        let voter = request.voter_id;
        let outcome = match q.quorum.add_voter(voter, &address).await {
            Ok(log_id) => {
                tracing::info!(voter, %address, %log_id, "AddRaftVoter: voter added");
                Ok(())
            }
            Err(e) => {
                tracing::info!(voter, %address, error = %e, "AddRaftVoter refused");
                Err((refusal(&e), e.to_string()))
            }
        };
        add_response(&header, outcome)
    }))
}

pub(super) fn remove_raft_voter(
    cluster: &Arc<Cluster>,
    header: &RequestHeader,
    request: RemoveRaftVoterRequest,
) -> Reply {
    let header = header.clone();
    let cluster = cluster.clone();
    Reply::Later(Box::pin(async move {
        if let Err(refused) = precheck(&cluster, request.cluster_id.as_deref(), request.voter_id) {
            return remove_response(&header, Err(refused));
        }
        let Some(q) = cluster.quorum() else {
            return remove_response(&header, Err((ErrorCode::UnsupportedVersion, String::new())));
        };
        let voter = request.voter_id;
        let outcome = match q.quorum.remove_voter(voter).await {
            Ok(log_id) => {
                tracing::info!(voter, %log_id, "RemoveRaftVoter: voter removed");
                Ok(())
            }
            Err(e) => {
                tracing::info!(voter, error = %e, "RemoveRaftVoter refused");
                Err((refusal(&e), e.to_string()))
            }
        };
        remove_response(&header, outcome)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_quorum::types::log_id;

    #[test]
    fn quorum_refusals_map_onto_kafkas_codes() {
        let change = |refusal| QuorumError::VoterChange { refusal, message: String::new() };
        assert_eq!(refusal(&change(VoterRefusal::StaticVoters)), ErrorCode::UnsupportedVersion);
        assert_eq!(refusal(&change(VoterRefusal::DuplicateVoter)).code(), 126);
        assert_eq!(refusal(&change(VoterRefusal::VoterNotFound)).code(), 127);
        assert_eq!(refusal(&change(VoterRefusal::ChangeInProgress)), ErrorCode::RequestTimedOut);
        assert_eq!(refusal(&change(VoterRefusal::NotCaughtUp)), ErrorCode::RequestTimedOut);
        assert_eq!(
            refusal(&QuorumError::NotController { leader_id: None, leader_address: None }),
            ErrorCode::NotLeaderOrFollower
        );
        assert_eq!(refusal(&QuorumError::NotYetApplied { log_id: log_id(1, 2) }), ErrorCode::RequestTimedOut);
    }
}
