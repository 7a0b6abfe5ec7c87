//! Server-side partition assignors of the consumer group protocol:
//! `uniform` (the default) and `range`.
//!
//! Both are pure functions of their input: members and their subscribed
//! topics, the partition count of every topic, and (for `uniform`) the
//! previous target assignment. Members, topics and partitions are visited in
//! sorted order, so the same input always yields the same assignment.
//!
//! - `uniform` spreads all partitions over all members as evenly as the
//!   subscriptions allow and keeps each partition where it was when that
//!   does not make the spread uneven (fewer partitions move, so fewer
//!   revocations).
//! - `range` gives each member a contiguous range of every topic it
//!   subscribes to, members in id order, the first `partitions % members`
//!   members one partition more. Members that subscribe to the same topics
//!   with the same partition count get the same partition numbers
//!   (co-partitioning).

use std::collections::{BTreeMap, BTreeSet};

use crate::consumer::{Assignment, TopicUuid};

/// The server-side assignors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignorKind {
    /// Balanced and sticky.
    Uniform,
    /// Contiguous ranges per topic.
    Range,
}

impl AssignorKind {
    /// The name clients send in `ServerAssignor`.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Uniform => "uniform",
            AssignorKind::Range => "range",
        }
    }

    /// The assignor of a name (Kafka's short names, or its class names).
    pub fn from_name(name: &str) -> Option<AssignorKind> {
        match name.trim() {
            "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => Some(AssignorKind::Uniform),
            "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => Some(AssignorKind::Range),
            _ => None,
        }
    }
}

/// What an assignor works from.
#[derive(Debug, Clone, Default)]
pub struct AssignmentInput<'a> {
    /// Each member's subscribed topics (only topics that exist).
    pub subscriptions: BTreeMap<&'a str, BTreeSet<TopicUuid>>,
    /// Partition count of every subscribed topic.
    pub partitions: BTreeMap<TopicUuid, i32>,
    /// The previous target assignment (used by `uniform` for stickiness).
    pub previous: BTreeMap<&'a str, &'a Assignment>,
}

/// Computes the target assignment of every member in `input`.
pub fn assign(kind: AssignorKind, input: &AssignmentInput<'_>) -> BTreeMap<String, Assignment> {
    match kind {
        AssignorKind::Uniform => uniform(input),
        AssignorKind::Range => range(input),
    }
}

fn range(input: &AssignmentInput<'_>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> =
        input.subscriptions.keys().map(|m| (m.to_string(), Assignment::new())).collect();
    for (topic, &count) in &input.partitions {
        let members: Vec<&str> =
            input.subscriptions.iter().filter(|(_, topics)| topics.contains(topic)).map(|(m, _)| *m).collect();
        if members.is_empty() || count <= 0 {
            continue;
        }
        let n = members.len() as i32;
        let (base, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in members.iter().enumerate() {
            let take = base + i32::from((i as i32) < extra);
            if take > 0
                && let Some(a) = out.get_mut(*member)
            {
                a.entry(*topic).or_default().extend(next..next + take);
            }
            next += take;
        }
    }
    out
}

fn uniform(input: &AssignmentInput<'_>) -> BTreeMap<String, Assignment> {
    let members: Vec<&str> = input.subscriptions.keys().copied().collect();
    let eligible = |member: &str, topic: &TopicUuid| input.subscriptions.get(member).is_some_and(|t| t.contains(topic));
    let mut owner: BTreeMap<(TopicUuid, i32), &str> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = members.iter().map(|m| (*m, 0)).collect();

    // Every partition that some member subscribes to, and how many members could take it.
    let mut all: Vec<((TopicUuid, i32), usize)> = Vec::new();
    for (topic, &count) in &input.partitions {
        let candidates = members.iter().filter(|m| eligible(m, topic)).count();
        if candidates == 0 {
            continue;
        }
        for p in 0..count.max(0) {
            all.push(((*topic, p), candidates));
        }
    }
    let total = all.len();
    // With identical subscriptions no member should hold more than this.
    let quota = if members.is_empty() { 0 } else { total.div_ceil(members.len()) };

    // 1. Keep previous owners where still valid, up to the quota.
    for (member, previous) in &input.previous {
        for (topic, partitions) in previous.iter() {
            for &p in partitions {
                let key = (*topic, p);
                let exists = input.partitions.get(topic).is_some_and(|&c| p >= 0 && p < c);
                if exists
                    && eligible(member, topic)
                    && !owner.contains_key(&key)
                    && counts.get(member).is_some_and(|&c| c < quota)
                {
                    owner.insert(key, member);
                    *counts.entry(member).or_default() += 1;
                }
            }
        }
    }

    // 2. Place the rest, most constrained partitions first, each on the
    //    eligible member holding the fewest (ties: member id).
    let mut unplaced: Vec<((TopicUuid, i32), usize)> =
        all.into_iter().filter(|(k, _)| !owner.contains_key(k)).collect();
    unplaced.sort_by_key(|(key, candidates)| (*candidates, *key));
    for (key, _) in unplaced {
        let best = members.iter().filter(|m| eligible(m, &key.0)).min_by_key(|m| (counts[*m], **m)).copied();
        if let Some(member) = best {
            owner.insert(key, member);
            *counts.entry(member).or_default() += 1;
        }
    }

    // 3. Even out: move a partition from a fuller member to an eligible
    //    member holding at least two fewer, until no such move exists. Each
    //    move lowers the sum of squared counts, so this ends.
    let moves_max = total.saturating_mul(members.len()).max(1);
    for _ in 0..moves_max {
        let mut by_count: Vec<&str> = members.clone();
        by_count.sort_by_key(|m| (std::cmp::Reverse(counts[m]), *m));
        let mut moved = false;
        'search: for from in &by_count {
            let mut receivers: Vec<&str> = members.iter().filter(|m| counts[*m] + 1 < counts[from]).copied().collect();
            receivers.sort_by_key(|m| (counts[*m], *m));
            for to in receivers {
                let candidate =
                    owner.iter().rev().find(|(key, o)| **o == *from && eligible(to, &key.0)).map(|(k, _)| *k);
                if let Some(key) = candidate {
                    owner.insert(key, to);
                    *counts.entry(from).or_default() -= 1;
                    *counts.entry(to).or_default() += 1;
                    moved = true;
                    break 'search;
                }
            }
        }
        if !moved {
            break;
        }
    }

    let mut out: BTreeMap<String, Assignment> = members.iter().map(|m| (m.to_string(), Assignment::new())).collect();
    for ((topic, p), member) in owner {
        if let Some(a) = out.get_mut(member) {
            a.entry(topic).or_default().insert(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn topic(n: u8) -> TopicUuid {
        [n; 16]
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    fn input<'a>(
        subs: &'a [(String, Vec<u8>)],
        topics: &[(u8, i32)],
        previous: &'a BTreeMap<String, Assignment>,
    ) -> AssignmentInput<'a> {
        AssignmentInput {
            subscriptions: subs.iter().map(|(m, ts)| (m.as_str(), ts.iter().map(|t| topic(*t)).collect())).collect(),
            partitions: topics.iter().map(|(t, n)| (topic(*t), *n)).collect(),
            previous: previous.iter().map(|(m, a)| (m.as_str(), a)).collect(),
        }
    }

    /// Every subscribed partition is assigned exactly once, to a subscriber.
    fn check_complete(input: &AssignmentInput<'_>, out: &BTreeMap<String, Assignment>) {
        let mut seen = BTreeSet::new();
        for (member, a) in out {
            for (t, ps) in a {
                assert!(input.subscriptions[member.as_str()].contains(t), "{member} is not subscribed");
                for p in ps {
                    assert!(seen.insert((*t, *p)), "partition {p} assigned twice");
                }
            }
        }
        for (t, n) in &input.partitions {
            if input.subscriptions.values().any(|s| s.contains(t)) {
                for p in 0..*n {
                    assert!(seen.contains(&(*t, p)), "partition {p} left unassigned");
                }
            }
        }
    }

    #[test]
    fn range_gives_contiguous_ranges_in_member_order() {
        let subs = vec![("a".to_string(), vec![1, 2]), ("b".to_string(), vec![1, 2])];
        let prev = BTreeMap::new();
        let i = input(&subs, &[(1, 5), (2, 2)], &prev);
        let out = assign(AssignorKind::Range, &i);
        check_complete(&i, &out);
        assert_eq!(out["a"][&topic(1)], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&topic(1)], BTreeSet::from([3, 4]));
        assert_eq!(out["a"][&topic(2)], BTreeSet::from([0]));
        assert_eq!(out["b"][&topic(2)], BTreeSet::from([1]));
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins() {
        let prev_subs = vec![("a".to_string(), vec![1])];
        let none = BTreeMap::new();
        let first = assign(AssignorKind::Uniform, &input(&prev_subs, &[(1, 6)], &none));
        assert_eq!(count(&first["a"]), 6);
        let subs = vec![("a".to_string(), vec![1]), ("b".to_string(), vec![1])];
        let second = assign(AssignorKind::Uniform, &input(&subs, &[(1, 6)], &first));
        assert_eq!((count(&second["a"]), count(&second["b"])), (3, 3));
        // a keeps three of the partitions it had; none moves between the kept ones.
        assert!(second["a"][&topic(1)].is_subset(&first["a"][&topic(1)]));
    }

    #[test]
    fn assignor_names() {
        assert_eq!(AssignorKind::from_name("uniform"), Some(AssignorKind::Uniform));
        assert_eq!(AssignorKind::from_name("range"), Some(AssignorKind::Range));
        assert_eq!(AssignorKind::from_name("sticky"), None);
    }

    /// Members with their topics, topics with their partition counts, and
    /// whether every member subscribes to every topic.
    type Case = (Vec<(String, Vec<u8>)>, Vec<(u8, i32)>, bool);

    fn arb_case() -> impl Strategy<Value = Case> {
        (
            proptest::collection::btree_map("[a-f]{1,3}", proptest::collection::btree_set(0u8..4, 0..4), 0..7),
            proptest::collection::vec(0i32..9, 4),
            any::<bool>(),
        )
            .prop_map(|(members, counts, homogeneous)| {
                let subs = members
                    .into_iter()
                    .map(|(m, ts)| (m, if homogeneous { vec![0, 1, 2, 3] } else { ts.into_iter().collect() }))
                    .collect();
                let topics = counts.into_iter().enumerate().map(|(i, n)| (i as u8, n)).collect();
                (subs, topics, homogeneous)
            })
    }

    proptest! {
        #[test]
        fn assignors_are_complete_balanced_and_deterministic(
            (subs, topics, homogeneous) in arb_case(),
            (subs2, _, _) in arb_case(),
        ) {
            for kind in [AssignorKind::Uniform, AssignorKind::Range] {
                // A previous assignment from an unrelated membership, for stickiness.
                let none = BTreeMap::new();
                let prev = assign(kind, &input(&subs2, &topics, &none));
                let i = input(&subs, &topics, &prev);
                let out = assign(kind, &i);
                check_complete(&i, &out);
                prop_assert_eq!(&out, &assign(kind, &i), "same input, same output");
                if homogeneous && kind == AssignorKind::Uniform && !out.is_empty() {
                    let counts: Vec<usize> = out.values().map(count).collect();
                    let (min, max) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
                    prop_assert!(max - min <= 1, "unbalanced: {:?}", counts);
                }
                if kind == AssignorKind::Uniform {
                    // No partition could move to a member holding two fewer.
                    for (from, a) in &out {
                        for (to, b) in &out {
                            if count(a) > count(b) + 1 {
                                let movable = a.keys().any(|t| i.subscriptions[to.as_str()].contains(t));
                                prop_assert!(!movable, "{} could give {} a partition", from, to);
                            }
                        }
                    }
                }
            }
        }
    }
}
