//! Which segments a clean must rewrite. A pass only rewrites a segment that
//! cleaning would change: one with a record shadowed by the offset map (its
//! key has a later record in the dirty part), a tombstone whose delete
//! horizon has passed, a kept tombstone still without a horizon, or a batch
//! left without records. Every other segment is left as it is (no copy, no
//! swap): rewriting it would reproduce it byte for byte.
//!
//! Finding out reads the segment, batch by batch, checking each record's key
//! against the map, and stops at the first change. A segment that changes
//! nothing is therefore read whole once per pass, but never written; the
//! bytes a pass writes follow what it removes.
//!
//! The decision for one record ([`record_fate`]) is the one the rewrite
//! applies, so a segment the survey leaves alone is exactly one the rewrite
//! would have copied unchanged.

use std::ops::ControlFlow;

use tributary_record::BatchHeader;
use tributary_record::records::{Record, RecordIter};

use super::{OffsetMap, SourceSegment, Throttle, corrupt, for_each_batch, records_of};
use crate::error::Result;

/// What cleaning does with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecordFate {
    /// It stays.
    Kept,
    /// A later record in the dirty part has its key: it goes.
    Shadowed,
    /// A tombstone whose batch's delete horizon has passed: it goes.
    ExpiredTombstone,
}

/// Whether the delete horizon stamped on `h` (if any) has passed at `now_ms`.
pub(super) fn delete_horizon_passed(h: &BatchHeader, now_ms: i64) -> bool {
    h.has_delete_horizon() && now_ms >= h.base_timestamp
}

/// What cleaning does with record `r` of the batch `h`.
pub(super) fn record_fate(map: &OffsetMap, h: &BatchHeader, r: &Record<'_>, horizon_passed: bool) -> RecordFate {
    if !map.is_latest(r.key, h.base_offset + i64::from(r.offset_delta)) {
        RecordFate::Shadowed
    } else if r.value.is_none() && horizon_passed {
        RecordFate::ExpiredTombstone
    } else {
        RecordFate::Kept
    }
}

/// What a clean would do to a segment, or to one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Survey {
    /// Cleaning changes it: it is rewritten.
    Changes,
    /// Cleaning leaves it byte for byte as it is: it is left alone. Carries
    /// the earliest delete horizon of the tombstones it keeps.
    Unchanged { tombstone_horizon: Option<i64> },
}

/// Whether cleaning would change the batch `h` (whose bytes are `batch`).
fn survey_batch(h: &BatchHeader, batch: &[u8], map: &OffsetMap, now_ms: i64, scratch: &mut Vec<u8>) -> Result<Survey> {
    // Control batches are always kept as they are (see `filter_batch`).
    if h.is_control() {
        return Ok(Survey::Unchanged { tombstone_horizon: None });
    }
    let horizon_passed = delete_horizon_passed(h, now_ms);
    let mut kept_any = false;
    let mut tombstones_kept = false;
    for r in RecordIter::new(records_of(h, batch, scratch)?) {
        let r = r.map_err(|(i, why)| corrupt(format!("record {i} of batch {}: {why}", h.base_offset)))?;
        if record_fate(map, h, &r, horizon_passed) != RecordFate::Kept {
            return Ok(Survey::Changes);
        }
        kept_any = true;
        tombstones_kept |= r.value.is_none();
    }
    // An empty batch is dropped; a kept tombstone gets its horizon stamped once.
    if !kept_any || (tombstones_kept && !h.has_delete_horizon()) {
        return Ok(Survey::Changes);
    }
    Ok(Survey::Unchanged { tombstone_horizon: tombstones_kept.then_some(h.base_timestamp) })
}

/// Reads `segment` until the first batch cleaning would change.
pub(super) fn survey_segment(
    segment: &SourceSegment,
    map: &OffsetMap,
    now_ms: i64,
    throttle: &mut Throttle,
    buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<Survey> {
    let mut changes = false;
    let mut earliest: Option<i64> = None;
    for_each_batch(segment, buf, |h, batch| {
        throttle.account(batch.len() as u64);
        match survey_batch(h, batch, map, now_ms, scratch)? {
            Survey::Changes => {
                changes = true;
                return Ok(ControlFlow::Break(()));
            }
            Survey::Unchanged { tombstone_horizon: Some(t) } => earliest = Some(earliest.map_or(t, |e| e.min(t))),
            Survey::Unchanged { tombstone_horizon: None } => {}
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(if changes { Survey::Changes } else { Survey::Unchanged { tombstone_horizon: earliest } })
}
