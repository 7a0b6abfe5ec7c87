//! DescribeTopicPartitions (key 75, KIP-966): topics and their partitions in
//! name order, paged by a partition budget, as Kafka's
//! `DescribeTopicPartitionsRequestHandler` answers it:
//!
//! - no topics in the request means every topic; otherwise the named ones
//!   (deduplicated), and names the cursor's topic must be among;
//! - only names at or after the cursor's topic are considered, and the
//!   cursor's partition index is where that topic starts;
//! - the budget is the smaller of `response_partition_limit` and the broker's
//!   `max.request.partition.size.limit` (2000). A topic that does not fit
//!   ends the page with a cursor at its first partition left out; a topic
//!   reached with the budget spent gets a cursor at its partition 0 and is
//!   left out;
//! - a named topic that does not exist is answered UNKNOWN_TOPIC_OR_PARTITION
//!   (INVALID_TOPIC_EXCEPTION for an invalid name) while budget remains;
//!   with every topic listed, only existing ones appear;
//! - a cursor naming a topic the request does not name fails the request:
//!   every requested topic gets INVALID_REQUEST.
//!
//! Every partition has this node as its only replica; eligible leader
//! replicas and last known ELR are empty lists (no ELR on a single node).

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use tributary_protocol::{ErrorCode, RequestHeader};
use tributary_types::validate_topic_name;
use uuid::Uuid;

use super::{Reply, respond, str_bytes, topic_operations};
use crate::cluster::{Cluster, INTERNAL_TOPICS, TopicState};

/// `max.request.partition.size.limit` when it is not set.
const PARTITION_LIMIT_DEFAULT: i32 = 2000;

/// One topic of the page: its partitions `from..to` (clipped to the ones it
/// has), or `None` for a topic that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PageTopic {
    name: String,
    range: Option<(i64, i64)>,
}

/// The topics of one page and the cursor for the next.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Page {
    topics: Vec<PageTopic>,
    next: Option<(String, i32)>,
}

/// Pages `names` (sorted, all at or after the cursor's topic); `partitions`
/// gives a topic's partition count, `None` if it does not exist.
fn page(
    names: &BTreeSet<String>,
    partitions: impl Fn(&str) -> Option<i32>,
    cursor: Option<(&str, i32)>,
    limit: i32,
    list_missing: bool,
) -> Page {
    let mut remaining = i64::from(limit);
    let mut topics = Vec::new();
    for name in names {
        if remaining > 0 {
            match partitions(name) {
                Some(count) => {
                    let count = i64::from(count);
                    let start = match cursor {
                        Some((topic, index)) if !topic.is_empty() && topic == name => i64::from(index),
                        _ => 0,
                    };
                    let end = count.min(start + remaining);
                    let taken = (start.max(0)..end.max(0)).count() as i64;
                    topics.push(PageTopic { name: name.clone(), range: Some((start, end)) });
                    if end < count {
                        let next = i32::try_from(end).unwrap_or(i32::MAX);
                        return Page { topics, next: Some((name.clone(), next)) };
                    }
                    remaining -= taken;
                }
                None if list_missing => topics.push(PageTopic { name: name.clone(), range: None }),
                None => {}
            }
        } else if remaining == 0 {
            return Page { topics, next: Some((name.clone(), 0)) };
        }
    }
    Page { topics, next: None }
}

fn partition_entry(
    _cluster: &Cluster,
    topic: &TopicState,
    index: i64,
) -> Option<DescribeTopicPartitionsResponsePartition> {
    let index = i32::try_from(index).ok()?;
    let meta = topic.image.partitions.get(usize::try_from(index).ok()?)?;
    let offline = topic.partition(index).is_some_and(|p| p.progress().offline);
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    Some(
        DescribeTopicPartitionsResponsePartition::default()
            .with_error_code(0)
            .with_partition_index(index)
            .with_leader_id(BrokerId(if offline { -1 } else { meta.leader }))
            .with_leader_epoch(meta.leader_epoch)
            .with_replica_nodes(ids(&meta.replicas))
            .with_isr_nodes(if offline { Vec::new() } else { ids(&meta.isr) })
            .with_eligible_leader_replicas(Some(Vec::new()))
            .with_last_known_elr(Some(Vec::new()))
            .with_offline_replicas(if offline { ids(&meta.replicas) } else { Vec::new() }),
    )
}

fn topic_name(name: &str) -> Option<TopicName> {
    Some(TopicName(str_bytes(name)))
}

pub(super) fn handle(cluster: &Arc<Cluster>, header: &RequestHeader, request: DescribeTopicPartitionsRequest) -> Reply {
    let registry = cluster.registry();
    let cursor = request.cursor.as_ref().map(|c| (c.topic_name.0.to_string(), c.partition_index));
    let cursor_topic = cursor.as_ref().map_or("", |(t, _)| t.as_str());
    let list_all = request.topics.is_empty();
    let names: BTreeSet<String> = if list_all {
        registry.topics.keys().filter(|n| n.as_str() >= cursor_topic).cloned().collect()
    } else {
        request.topics.iter().map(|t| t.name.0.to_string()).filter(|n| n.as_str() >= cursor_topic).collect()
    };
    if !list_all && cursor.is_some() && !names.contains(cursor_topic) {
        // Kafka fails the whole request; each requested topic carries the error.
        let topics = request
            .topics
            .iter()
            .map(|t| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ErrorCode::InvalidRequest.code())
                    .with_name(topic_name(&t.name.0))
                    .with_is_internal(false)
                    .with_partitions(Vec::new())
            })
            .collect();
        return respond(
            ApiKey::DescribeTopicPartitions,
            header,
            &DescribeTopicPartitionsResponse::default().with_topics(topics),
        );
    }
    let broker_limit = cluster
        .layers()
        .broker_value("max.request.partition.size.limit")
        .and_then(|v| v.value)
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(PARTITION_LIMIT_DEFAULT);
    let limit = request.response_partition_limit.min(broker_limit);
    let counts = |name: &str| registry.topics.get(name).map(|t| i32::try_from(t.partition_count()).unwrap_or(i32::MAX));
    let plan = page(&names, counts, cursor.as_ref().map(|(t, i)| (t.as_str(), *i)), limit, !list_all);

    let topics = plan
        .topics
        .iter()
        .map(|entry| {
            let found = entry.range.and_then(|range| registry.topics.get(&entry.name).map(|t| (t, range)));
            let topic = match found {
                Some((topic, (from, to))) => DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(0)
                    .with_name(topic_name(&topic.name))
                    .with_topic_id(Uuid::from_bytes(topic.topic_id.0))
                    .with_is_internal(topic.is_internal())
                    .with_partitions((from..to).filter_map(|i| partition_entry(cluster, topic, i)).collect()),
                None => {
                    let error = match validate_topic_name(&entry.name) {
                        Ok(()) => ErrorCode::UnknownTopicOrPartition,
                        Err(_) => ErrorCode::InvalidTopicException,
                    };
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(error.code())
                        .with_name(topic_name(&entry.name))
                        .with_topic_id(Uuid::nil())
                        .with_is_internal(INTERNAL_TOPICS.contains(&entry.name.as_str()))
                        .with_partitions(Vec::new())
                }
            };
            topic.with_topic_authorized_operations(topic_operations())
        })
        .collect();
    let next_cursor = plan.next.map(|(name, index)| {
        Cursor::default().with_topic_name(TopicName(str_bytes(&name))).with_partition_index(index)
    });
    respond(
        ApiKey::DescribeTopicPartitions,
        header,
        &DescribeTopicPartitionsResponse::default().with_topics(topics).with_next_cursor(next_cursor),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn counts(name: &str) -> Option<i32> {
        match name {
            "a" => Some(3),
            "b" => Some(2),
            "c" => Some(4),
            "empty" => Some(0),
            _ => None,
        }
    }

    fn t(name: &str, from: i64, to: i64) -> PageTopic {
        PageTopic { name: name.to_string(), range: Some((from, to)) }
    }

    #[test]
    fn pages_walk_every_partition_once() {
        let all = names(&["a", "b", "c"]);
        let first = page(&all, counts, None, 4, false);
        assert_eq!(first.topics, vec![t("a", 0, 3), t("b", 0, 1)]);
        assert_eq!(first.next, Some(("b".to_string(), 1)));
        let after = names(&["b", "c"]);
        let second = page(&after, counts, Some(("b", 1)), 4, false);
        assert_eq!(second.topics, vec![t("b", 1, 2), t("c", 0, 3)]);
        assert_eq!(second.next, Some(("c".to_string(), 3)));
        let third = page(&names(&["c"]), counts, Some(("c", 3)), 4, false);
        assert_eq!((third.topics, third.next), (vec![t("c", 3, 4)], None));
    }

    #[test]
    fn a_spent_budget_points_the_cursor_at_the_next_topic() {
        let page = page(&names(&["a", "b"]), counts, None, 3, false);
        assert_eq!(page.topics, vec![t("a", 0, 3)]);
        assert_eq!(page.next, Some(("b".to_string(), 0)));
    }

    #[test]
    fn missing_topics_are_listed_only_when_named_and_budget_remains() {
        let named = page(&names(&["a", "nope"]), counts, None, 10, true);
        assert_eq!(named.topics, vec![t("a", 0, 3), PageTopic { name: "nope".to_string(), range: None }]);
        let all = page(&names(&["a", "nope"]), counts, None, 10, false);
        assert_eq!(all.topics, vec![t("a", 0, 3)]);
        // budget spent on "a": the missing topic gets the cursor, not an error
        let spent = page(&names(&["a", "nope"]), counts, None, 3, true);
        assert_eq!((spent.topics, spent.next), (vec![t("a", 0, 3)], Some(("nope".to_string(), 0))));
    }

    #[test]
    fn odd_limits_and_cursors() {
        // no budget at all: the first topic becomes the cursor
        assert_eq!(page(&names(&["a"]), counts, None, 0, false).next, Some(("a".to_string(), 0)));
        // a negative budget answers nothing and no cursor
        assert_eq!(page(&names(&["a"]), counts, None, -1, false), Page { topics: vec![], next: None });
        // a cursor past the end of its topic: the topic with no partitions
        let past = page(&names(&["a", "b"]), counts, Some(("a", 9)), 10, false);
        assert_eq!(past.topics, vec![t("a", 9, 3), t("b", 0, 2)]);
        // a topic without partitions takes no budget
        let empty = page(&names(&["a", "empty"]), counts, None, 3, false);
        assert_eq!((empty.topics, empty.next), (vec![t("a", 0, 3)], Some(("empty".to_string(), 0))));
    }
}
