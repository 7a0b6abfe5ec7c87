//! Electing the one instance that writes, through a Kafka group
//! (`schema.registry.group.id`), in the format Confluent's registry uses so
//! both can share a group during a migration.
//!
//! ```text
//! JoinGroup  protocol type "sr", protocol "v0", metadata = identity:
//!            {"version":1,"host":"h","port":8081,"master_eligibility":true,"scheme":"http","leader":false}
//! group leader picks the writer: the eligible member that already writes (if exactly one
//!            says so), else the eligible member with the smallest URL
//! SyncGroup  every member gets {"version":1,"error":0,"master":"<member id>","master_identity":{...}}
//! heartbeat  every session/3; a rebalance or a lost coordinator ─▶ leader unknown until the next sync
//! ```

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tributary_client::{Client, ClientConfig, GroupMembership, Heartbeat, JoinedMember};

/// Assignment error: two members advertise the same URL.
const DUPLICATE_URLS: i16 = 1;

/// How an instance describes itself to the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Format version (1).
    #[serde(default = "one")]
    pub version: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Whether it may be elected.
    #[serde(rename = "master_eligibility", default)]
    pub leader_eligibility: bool,
    /// `http` or `https`.
    #[serde(default = "http")]
    pub scheme: String,
    /// Whether it is the writer now (keeps the writer in place across rebalances).
    #[serde(default)]
    pub leader: bool,
}

fn one() -> i32 {
    1
}

fn http() -> String {
    "http".to_string()
}

impl Identity {
    /// `scheme://host:port`.
    pub fn url(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// What every member receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Assignment {
    version: i32,
    error: i16,
    #[serde(rename = "master")]
    leader: Option<String>,
    #[serde(rename = "master_identity")]
    leader_identity: Option<Identity>,
}

/// Who writes, as this instance knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Leadership {
    /// This instance writes.
    pub is_leader: bool,
    /// The writer's URL, if one is known.
    pub leader_url: Option<String>,
}

/// Election settings.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// Kafka bootstrap addresses.
    pub bootstrap: String,
    /// The group id.
    pub group_id: String,
    /// This instance.
    pub identity: Identity,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Kafka client timeout.
    pub timeout: Duration,
}

/// The group leader's choice: every member's assignment.
fn assign(members: &[JoinedMember]) -> Vec<(String, Bytes)> {
    let identities: Vec<(&str, Option<Identity>)> =
        members.iter().map(|m| (m.member_id.as_str(), serde_json::from_slice::<Identity>(&m.metadata).ok())).collect();
    let eligible =
        || identities.iter().filter_map(|(id, i)| i.as_ref().filter(|i| i.leader_eligibility).map(|i| (*id, i)));
    let sitting: Vec<(&str, &Identity)> = eligible().filter(|(_, i)| i.leader).collect();
    let chosen = if sitting.len() == 1 { sitting.first().copied() } else { eligible().min_by_key(|(_, i)| i.url()) };
    let mut urls: Vec<String> = identities.iter().filter_map(|(_, i)| i.as_ref().map(Identity::url)).collect();
    urls.sort();
    let before = urls.len();
    urls.dedup();
    let error = if urls.len() != before {
        tracing::error!(
            "two schema registry instances advertise the same URL; set host.name (and the listener port) so each \
             instance has its own address"
        );
        DUPLICATE_URLS
    } else {
        0
    };
    let assignment = Assignment {
        version: 1,
        error,
        leader: chosen.map(|(id, _)| id.to_string()),
        leader_identity: chosen.map(|(_, i)| Identity { leader: false, ..i.clone() }),
    };
    let bytes = Bytes::from(serde_json::to_vec(&assignment).unwrap_or_default());
    members.iter().map(|m| (m.member_id.clone(), bytes.clone())).collect()
}

/// Runs the membership loop until shutdown, publishing who writes.
pub async fn run(config: ElectionConfig, leadership: watch::Sender<Leadership>, mut shutdown: watch::Receiver<bool>) {
    let mut client_config = ClientConfig::new(&config.bootstrap);
    client_config.client_id = "schema-registry-election".to_string();
    client_config.timeout = config.timeout;
    let mut pause = Duration::from_millis(200);
    let mut client = loop {
        match Client::connect(client_config.clone()).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "schema registry election cannot reach Kafka; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => return,
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    };
    let mut identity = config.identity.clone();
    let metadata = |identity: &Identity| Bytes::from(serde_json::to_vec(identity).unwrap_or_default());
    let mut member = GroupMembership::new(
        &config.group_id,
        "sr",
        vec![("v0".to_string(), metadata(&identity))],
        config.session_timeout,
        config.session_timeout * 3,
    );
    loop {
        if *shutdown.borrow() {
            break;
        }
        member.set_protocols(vec![("v0".to_string(), metadata(&identity))]);
        let joined = tokio::select! {
            r = member.join(&mut client, assign) => r,
            _ = shutdown.changed() => break,
        };
        let joined = match joined {
            Ok(j) => j,
            Err(e) => {
                leadership.send_replace(Leadership::default());
                tracing::warn!(error = %e, group = %config.group_id, "schema registry election: join failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => break,
                }
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        pause = Duration::from_millis(200);
        let assignment: Option<Assignment> = serde_json::from_slice(&joined.assignment).ok();
        let state = match assignment {
            Some(a) if a.leader.is_some() => Leadership {
                is_leader: a.leader.as_deref() == Some(joined.member_id.as_str()),
                leader_url: a.leader_identity.as_ref().map(Identity::url),
            },
            _ => Leadership::default(),
        };
        if state != *leadership.borrow() {
            match (&state.leader_url, state.is_leader) {
                (_, true) => {
                    tracing::info!(generation = joined.generation, "this schema registry instance is the writer")
                }
                (Some(url), false) => {
                    tracing::info!(generation = joined.generation, writer = %url, "schema registry writer elected")
                }
                (None, _) => tracing::warn!(
                    generation = joined.generation,
                    "no schema registry instance is eligible to write (leader.eligibility=false everywhere)"
                ),
            }
        }
        identity.leader = state.is_leader;
        leadership.send_replace(state);
        // Heartbeat until a rebalance.
        loop {
            tokio::select! {
                _ = tokio::time::sleep(member.heartbeat_interval()) => {}
                _ = shutdown.changed() => {
                    let _ = member.leave(&mut client).await;
                    leadership.send_replace(Leadership::default());
                    return;
                }
            }
            match member.heartbeat(&mut client).await {
                Ok(Heartbeat::Ok) => {}
                Ok(Heartbeat::Rejoin) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "schema registry election: heartbeat failed; rejoining");
                    break;
                }
            }
        }
    }
    let _ = member.leave(&mut client).await;
    leadership.send_replace(Leadership::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, host: &str, eligible: bool, leader: bool) -> JoinedMember {
        let identity = Identity {
            version: 1,
            host: host.to_string(),
            port: 8081,
            leader_eligibility: eligible,
            scheme: "http".to_string(),
            leader,
        };
        JoinedMember { member_id: id.to_string(), metadata: Bytes::from(serde_json::to_vec(&identity).expect("json")) }
    }

    fn chosen(members: &[JoinedMember]) -> Option<String> {
        let out = assign(members);
        let a: Assignment = serde_json::from_slice(&out[0].1).expect("assignment");
        a.leader
    }

    #[test]
    fn smallest_eligible_url_wins_unless_a_writer_sits() {
        assert_eq!(chosen(&[member("m1", "b", true, false), member("m2", "a", true, false)]).as_deref(), Some("m2"));
        assert_eq!(chosen(&[member("m1", "b", true, true), member("m2", "a", true, false)]).as_deref(), Some("m1"));
        assert_eq!(chosen(&[member("m1", "b", true, false), member("m2", "a", false, false)]).as_deref(), Some("m1"));
        assert_eq!(chosen(&[member("m1", "b", false, false)]), None);
    }

    #[test]
    fn identities_read_confluents_json() {
        let i: Identity =
            serde_json::from_str(r#"{"version":1,"host":"sr-1","port":8081,"master_eligibility":true}"#).expect("json");
        assert_eq!(i.url(), "http://sr-1:8081");
        assert!(i.leader_eligibility && !i.leader);
    }
}
