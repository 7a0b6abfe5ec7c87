//! Following the registry's storage topic over the network, on a broker of a
//! cluster that holds no replica of it: the index is fed by fetches from the
//! partition's leader (whichever broker that is now), as a consumer would
//! read it, instead of from the local log.
//!
//! ```text
//! tail_loop ─▶ follow_step: Fetch storage-0 from the leader (waits ≤ 500 ms at the end)
//!                ─▶ SchemaValidation::apply_fetched ─▶ index, cursor
//!                ─▶ the fetch reached the high watermark it saw? ─▶ caught_up = its sequence number
//! produce naming an unknown id ─▶ settle_remote: wait until a fetch that began after
//!                                 it has caught up (so what the registry acknowledged before
//!                                 the produce is in), at most UNKNOWN_ID_WAIT; done at once
//!                                 when a pass of the tail loop finds no storage topic
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tributary_client::{Client, ClientConfig, OffsetSpec, TopicPartition};
use tributary_types::TopicId;

use super::{STEP_BYTES, SchemaValidation, Settled};
use crate::cluster::Cluster;

/// How long a fetch waits at the end of the storage topic.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// Pause after a failed fetch (the leader moving, a broker gone).
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How often a waiting produce looks at the follower's progress.
const SETTLE_POLL: Duration = Duration::from_millis(5);

/// Where the network follower stands, readable without locks.
#[derive(Debug, Default)]
pub(crate) struct FollowProgress {
    /// Fetches begun so far (the sequence number of the latest).
    started: AtomicU64,
    /// The sequence number of the latest fetch after which the index held
    /// everything below the high watermark that fetch saw.
    caught_up: AtomicU64,
    /// Passes of the tail loop begun so far.
    passes: AtomicU64,
}

impl FollowProgress {
    /// Counts a pass of the tail loop.
    pub(crate) fn next_pass(&self) {
        self.passes.fetch_add(1, Ordering::AcqRel);
    }
}

/// The network follower's connection and position.
#[derive(Default)]
pub(crate) struct Follower {
    client: Option<Client>,
    topic_id: Option<TopicId>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("connected", &self.client.is_some()).field("topic_id", &self.topic_id).finish()
    }
}

/// The storage topic's id when this node is a broker of a cluster that has
/// the topic but holds no replica of it: then it is followed over the network.
pub(crate) fn followed_remotely(cluster: &Cluster) -> Option<TopicId> {
    cluster.quorum()?;
    let name = cluster.schema_validation.storage_topic();
    if cluster.registry().topics.get(name).and_then(|t| t.partition(0)).is_some() {
        return None;
    }
    cluster.image().topics.get(name).map(|t| t.topic_id)
}

/// One fetch from the storage topic's leader, applied to the index.
pub(crate) async fn follow_step(cluster: &Cluster, follower: &mut Follower, topic_id: TopicId) {
    let validation = &cluster.schema_validation;
    if follower.topic_id != Some(topic_id) {
        follower.topic_id = Some(topic_id);
        tracing::info!(topic = %validation.storage_topic(), "no replica of the schema storage topic here; following it from its leader");
    }
    if follower.client.is_none() {
        match Client::connect(client_config(cluster)).await {
            Ok(c) => follower.client = Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "schema validation cannot reach the cluster to read the storage topic; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
                return;
            }
        }
    }
    let Some(client) = follower.client.as_mut() else { return };
    let tp = TopicPartition::new(validation.storage_topic(), 0);
    let from = validation.remote_position(topic_id);
    let seq = validation.follow.started.fetch_add(1, Ordering::AcqRel) + 1;
    let bytes = i32::try_from(STEP_BYTES).unwrap_or(i32::MAX);
    match client.fetch(&tp, from, FETCH_WAIT, bytes).await {
        Ok(fetched) => {
            let records =
                fetched.records.iter().map(|r| (r.offset, r.key.as_deref().unwrap_or_default(), r.value.as_deref()));
            // An answer without batches below the high watermark: compaction removed them.
            let mut next = fetched.next_offset.max(from);
            if next == from && fetched.high_watermark > from && fetched.records.is_empty() {
                next = fetched.high_watermark;
            }
            validation.apply_fetched(topic_id, from, records, next);
            if next >= fetched.high_watermark {
                validation.follow.caught_up.fetch_max(seq, Ordering::AcqRel);
            }
        }
        Err(e) if e.kafka().is_some_and(|k| k.code == 1) => {
            // OFFSET_OUT_OF_RANGE: the log start moved past the position; go on from there.
            let tps = [tp.clone()];
            if let Ok(answer) = client.list_offsets(&tps, OffsetSpec::Earliest).await
                && let Some(Ok(start)) = answer.into_values().next()
                && start.offset > from
            {
                validation.apply_fetched(topic_id, from, std::iter::empty(), start.offset);
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "fetching the schema storage topic failed; retrying");
            if matches!(e, tributary_client::ClientError::Io { .. } | tributary_client::ClientError::Connect { .. }) {
                follower.client = None;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// A client of the cluster's live brokers, as this node's listener reaches them.
fn client_config(cluster: &Cluster) -> ClientConfig {
    let listener = cluster.advertised_listeners().first().map(|l| l.name.clone()).unwrap_or_default();
    let bootstrap: Vec<String> =
        cluster
            .live_brokers(&listener)
            .iter()
            .map(|b| {
                if b.host.contains(':') { format!("[{}]:{}", b.host, b.port) } else { format!("{}:{}", b.host, b.port) }
            })
            .collect();
    let mut config = ClientConfig::new(&bootstrap.join(","));
    config.client_id = format!("broker-{}-schema-validation", cluster.node_id);
    config.timeout = Duration::from_secs(5);
    config.response_bytes_max = STEP_BYTES + (1 << 20);
    config
}

impl SchemaValidation {
    /// Waits until a fetch begun after this call has caught up with the
    /// leader's high watermark, or `deadline`. Blocks: call it off the
    /// runtime's workers.
    pub(crate) fn settle_remote(&self, deadline: Instant) -> Settled {
        let begun = self.follow.started.load(Ordering::Acquire);
        let passes = self.follow.passes.load(Ordering::Acquire);
        loop {
            if self.follow.caught_up.load(Ordering::Acquire) > begun {
                return Settled::Complete;
            }
            // A whole pass of the tail loop found no storage topic to follow: no id is registered.
            if self.follow.passes.load(Ordering::Acquire) > passes + 1 && !self.remote.load(Ordering::Acquire) {
                return Settled::Complete;
            }
            if Instant::now() >= deadline {
                let next_offset = self.applied.load(Ordering::Acquire);
                return Settled::Behind { next_offset, end: next_offset };
            }
            std::thread::sleep(SETTLE_POLL);
        }
    }
}
