//! Committed offsets, per group and partition, as held in memory and rebuilt
//! from `__consumer_offsets`.

use std::collections::{BTreeMap, HashMap};

use crate::records::OffsetValue;

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch, or -1.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: String,
    /// When it was committed (wall ms).
    pub commit_timestamp_ms: i64,
    /// Explicit expiry (OffsetCommit v2-4 retention), or -1.
    pub expire_timestamp_ms: i64,
    /// Offset of its record in `__consumer_offsets`: of two commits of one
    /// partition, the later record wins, whatever order they complete in.
    pub log_offset: i64,
}

impl CommittedOffset {
    /// From a record value found at `log_offset`.
    pub fn from_value(v: &OffsetValue, log_offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata.clone(),
            commit_timestamp_ms: v.commit_timestamp,
            expire_timestamp_ms: v.expire_timestamp,
            log_offset,
        }
    }

    /// The record value for this offset.
    pub fn to_value(&self) -> OffsetValue {
        OffsetValue {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata.clone(),
            commit_timestamp: self.commit_timestamp_ms,
            expire_timestamp: self.expire_timestamp_ms,
        }
    }
}

/// Topic and partition.
pub type PartitionKey = (String, i32);

/// All committed offsets this coordinator holds.
#[derive(Debug, Clone, Default)]
pub struct OffsetStore {
    groups: HashMap<String, BTreeMap<PartitionKey, CommittedOffset>>,
}

impl OffsetStore {
    /// The committed offset of one partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.groups.get(group)?.get(&(topic.to_string(), partition))
    }

    /// Every committed offset of a group, by topic then partition.
    pub fn all(&self, group: &str) -> impl Iterator<Item = (&PartitionKey, &CommittedOffset)> {
        self.groups.get(group).into_iter().flat_map(|m| m.iter())
    }

    /// Whether the group has any committed offset.
    pub fn has_group(&self, group: &str) -> bool {
        self.groups.get(group).is_some_and(|m| !m.is_empty())
    }

    /// Groups that hold offsets.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().filter(|(_, m)| !m.is_empty()).map(|(g, _)| g.as_str())
    }

    /// Records a commit (or a replayed record).
    pub fn put(&mut self, group: &str, topic: &str, partition: i32, offset: CommittedOffset) {
        let partitions = self.groups.entry(group.to_string()).or_default();
        match partitions.entry((topic.to_string(), partition)) {
            std::collections::btree_map::Entry::Occupied(mut held) => {
                if offset.log_offset >= held.get().log_offset {
                    held.insert(offset);
                }
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(offset);
            }
        }
    }

    /// Removes one partition's offset (tombstone, OffsetDelete).
    pub fn remove(&mut self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        let m = self.groups.get_mut(group)?;
        let removed = m.remove(&(topic.to_string(), partition));
        if m.is_empty() {
            self.groups.remove(group);
        }
        removed
    }

    /// Removes all of a group's offsets, returning the partitions removed.
    pub fn remove_group(&mut self, group: &str) -> Vec<PartitionKey> {
        self.groups.remove(group).map(|m| m.into_keys().collect()).unwrap_or_default()
    }

    /// Offsets to expire: those with an explicit expiry before `wall_ms`, and,
    /// for groups `is_empty_group` says have no members, those committed more
    /// than `retention_ms` before `wall_ms` (Kafka's `offsets.retention.minutes`).
    pub fn expired(
        &self,
        wall_ms: i64,
        retention_ms: i64,
        is_empty_group: impl Fn(&str) -> bool,
    ) -> Vec<(String, PartitionKey)> {
        let mut out = Vec::new();
        for (group, offsets) in &self.groups {
            let empty = is_empty_group(group);
            for (key, o) in offsets {
                let explicit = o.expire_timestamp_ms >= 0 && o.expire_timestamp_ms <= wall_ms;
                let by_age = empty && o.commit_timestamp_ms.saturating_add(retention_ms) <= wall_ms;
                if explicit || by_age {
                    out.push((group.clone(), key.clone()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64, ts: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: ts,
            expire_timestamp_ms: -1,
            log_offset: offset,
        }
    }

    #[test]
    fn put_get_remove() {
        let mut s = OffsetStore::default();
        s.put("g", "t", 0, at(5, 1));
        s.put("g", "t", 1, at(7, 1));
        assert_eq!(s.get("g", "t", 0).map(|o| o.offset), Some(5));
        assert_eq!(s.all("g").count(), 2);
        assert!(s.remove("g", "t", 0).is_some());
        assert_eq!(s.remove_group("g"), vec![("t".to_string(), 1)]);
        assert!(!s.has_group("g"));
    }

    #[test]
    fn later_records_win_whatever_the_completion_order() {
        let mut s = OffsetStore::default();
        s.put("g", "t", 0, CommittedOffset { log_offset: 10, ..at(100, 1) });
        s.put("g", "t", 0, CommittedOffset { log_offset: 9, ..at(90, 1) });
        assert_eq!(s.get("g", "t", 0).map(|o| o.offset), Some(100));
    }

    #[test]
    fn expiry_only_for_empty_groups_or_explicit_deadlines() {
        let mut s = OffsetStore::default();
        s.put("active", "t", 0, at(1, 0));
        s.put("idle", "t", 0, at(1, 0));
        s.put("active", "t", 1, CommittedOffset { expire_timestamp_ms: 50, ..at(1, 0) });
        let mut expired = s.expired(100, 10, |g| g == "idle");
        expired.sort();
        assert_eq!(
            expired,
            vec![("active".to_string(), ("t".to_string(), 1)), ("idle".to_string(), ("t".to_string(), 0))]
        );
    }
}
