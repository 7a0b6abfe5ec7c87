//! Membership in a classic group (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) for services that use a group to elect one of their
//! instances, as Kafka Connect workers and schema registries do.
//!
//! ```text
//! join ──▶ JoinGroup (held by the coordinator until every member rejoined)
//!          MEMBER_ID_REQUIRED ─▶ rejoin with the id it gave; UNKNOWN_MEMBER_ID ─▶ rejoin as new
//!      ──▶ the group leader computes every member's assignment (caller's function)
//!      ──▶ SyncGroup ─▶ this member's assignment      REBALANCE_IN_PROGRESS ─▶ join again
//! heartbeat ──▶ Ok | Rejoin (a rebalance started, or this member was dropped)
//! leave ──▶ LeaveGroup (the others rebalance at once instead of after a session timeout)
//! ```
//!
//! The caller owns the loop: join, then heartbeat every
//! [`GroupMembership::heartbeat_interval`] until told to rejoin.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use tokio::time::Instant;

use crate::client::{Client, coordinator_retriable, str_bytes};
use crate::error::{ClientError, KafkaError};

const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// One member as the group leader sees it after a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// The metadata it joined with for the chosen protocol.
    pub metadata: Bytes,
}

/// The outcome of a completed join and sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The group generation.
    pub generation: i32,
    /// This member's id.
    pub member_id: String,
    /// The member id of the group leader (the member that computed assignments).
    pub leader_id: String,
    /// The assignment the leader gave this member.
    pub assignment: Bytes,
}

/// What a heartbeat found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// Still a member of the current generation.
    Ok,
    /// A rebalance started or this member was dropped: join again.
    Rejoin,
}

/// This process's membership in one group.
#[derive(Debug, Clone)]
pub struct GroupMembership {
    group_id: String,
    protocol_type: String,
    /// (protocol name, metadata), in order of preference.
    protocols: Vec<(String, Bytes)>,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    member_id: String,
    generation: i32,
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl GroupMembership {
    /// A member of `group_id` speaking `protocol_type` with the given protocols.
    pub fn new(
        group_id: &str,
        protocol_type: &str,
        protocols: Vec<(String, Bytes)>,
        session_timeout: Duration,
        rebalance_timeout: Duration,
    ) -> GroupMembership {
        GroupMembership {
            group_id: group_id.to_string(),
            protocol_type: protocol_type.to_string(),
            protocols,
            session_timeout,
            rebalance_timeout,
            member_id: String::new(),
            generation: -1,
        }
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// This member's id (empty before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The generation of the last completed join (-1 before it or after leaving).
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// How often to heartbeat: a third of the session timeout, as Kafka's clients do.
    pub fn heartbeat_interval(&self) -> Duration {
        self.session_timeout / 3
    }

    /// Replaces the metadata sent on the next join.
    pub fn set_protocols(&mut self, protocols: Vec<(String, Bytes)>) {
        self.protocols = protocols;
    }

    /// Joins (or rejoins) the group and syncs. When this member is elected
    /// group leader, `assign` gets every member and returns each member's
    /// assignment. Returns once a generation completed, or with an error
    /// after the rebalance timeout plus the client timeout.
    pub async fn join<F>(&mut self, client: &mut Client, mut assign: F) -> Result<Joined, ClientError>
    where
        F: FnMut(&[JoinedMember]) -> Vec<(String, Bytes)>,
    {
        let deadline = Instant::now() + self.rebalance_timeout + client.config().timeout;
        let context = |what: &str| format!("{what} group \"{}\"", self.group_id);
        let mut pause = Duration::from_millis(50);
        loop {
            if Instant::now() > deadline {
                return Err(ClientError::Refused(format!(
                    "could not join group \"{}\" within {} ms; check that the group coordinator is healthy",
                    self.group_id,
                    (self.rebalance_timeout + client.config().timeout).as_millis()
                )));
            }
            let wait = self.rebalance_timeout + client.config().timeout;
            let conn = client.coordinator_connection(&self.group_id).await?;
            let v = conn.version(ApiKey::JoinGroup)?;
            let protocols = self
                .protocols
                .iter()
                .map(|(name, metadata)| {
                    JoinGroupRequestProtocol::default().with_name(str_bytes(name)).with_metadata(metadata.clone())
                })
                .collect();
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(&self.group_id)))
                .with_session_timeout_ms(millis(self.session_timeout))
                .with_rebalance_timeout_ms(millis(self.rebalance_timeout))
                .with_member_id(str_bytes(&self.member_id))
                .with_protocol_type(str_bytes(&self.protocol_type))
                .with_protocols(protocols);
            let response = conn.call_within(&request, v, wait).await?;
            match response.error_code {
                0 => {}
                MEMBER_ID_REQUIRED => {
                    self.member_id = response.member_id.to_string();
                    continue;
                }
                UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                    continue;
                }
                REBALANCE_IN_PROGRESS => continue,
                code if coordinator_retriable(code) => {
                    client.forget_coordinator(&self.group_id);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                    continue;
                }
                code => return Err(KafkaError::new(code, context("join")).into()),
            }
            self.member_id = response.member_id.to_string();
            self.generation = response.generation_id;
            let leader_id = response.leader.to_string();
            let assignments = if leader_id == self.member_id {
                let members: Vec<JoinedMember> = response
                    .members
                    .iter()
                    .map(|m| JoinedMember { member_id: m.member_id.to_string(), metadata: m.metadata.clone() })
                    .collect();
                assign(&members)
                    .into_iter()
                    .map(|(member, assignment)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(str_bytes(&member))
                            .with_assignment(assignment)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let protocol_name = response.protocol_name.as_deref().map(str::to_string);
            let conn = client.coordinator_connection(&self.group_id).await?;
            let v = conn.version(ApiKey::SyncGroup)?;
            let mut request = SyncGroupRequest::default()
                .with_group_id(GroupId(str_bytes(&self.group_id)))
                .with_generation_id(self.generation)
                .with_member_id(str_bytes(&self.member_id))
                .with_assignments(assignments);
            if v >= 5 {
                request = request
                    .with_protocol_type(Some(str_bytes(&self.protocol_type)))
                    .with_protocol_name(protocol_name.as_deref().map(str_bytes));
            }
            let response = conn.call_within(&request, v, wait).await?;
            match response.error_code {
                0 => {
                    return Ok(Joined {
                        generation: self.generation,
                        member_id: self.member_id.clone(),
                        leader_id,
                        assignment: response.assignment,
                    });
                }
                REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => continue,
                UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                    continue;
                }
                code if coordinator_retriable(code) => {
                    client.forget_coordinator(&self.group_id);
                    continue;
                }
                code => return Err(KafkaError::new(code, context("sync with")).into()),
            }
        }
    }

    /// One heartbeat for the current generation.
    pub async fn heartbeat(&mut self, client: &mut Client) -> Result<Heartbeat, ClientError> {
        let conn = client.coordinator_connection(&self.group_id).await?;
        let v = conn.version(ApiKey::Heartbeat)?;
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(&self.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id));
        let response = conn.call(&request, v).await?;
        match response.error_code {
            0 => Ok(Heartbeat::Ok),
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => Ok(Heartbeat::Rejoin),
            UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                Ok(Heartbeat::Rejoin)
            }
            code if coordinator_retriable(code) => {
                client.forget_coordinator(&self.group_id);
                Ok(Heartbeat::Rejoin)
            }
            code => Err(KafkaError::new(code, format!("heartbeat in group \"{}\"", self.group_id)).into()),
        }
    }

    /// Leaves the group, so the others rebalance now rather than after the session timeout.
    pub async fn leave(&mut self, client: &mut Client) -> Result<(), ClientError> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let conn = client.coordinator_connection(&self.group_id).await?;
        let v = conn.version(ApiKey::LeaveGroup)?;
        let mut request = LeaveGroupRequest::default().with_group_id(GroupId(str_bytes(&self.group_id)));
        if v >= 3 {
            request = request.with_members(vec![MemberIdentity::default().with_member_id(str_bytes(&self.member_id))]);
        } else {
            request = request.with_member_id(str_bytes(&self.member_id));
        }
        let response = conn.call(&request, v).await?;
        self.member_id.clear();
        self.generation = -1;
        match response.error_code {
            0 | UNKNOWN_MEMBER_ID => Ok(()),
            code => Err(KafkaError::new(code, format!("leave group \"{}\"", self.group_id)).into()),
        }
    }
}
