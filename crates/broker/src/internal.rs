//! Reading the records of a partition from the local log: group state replay
//! (`__consumer_offsets`) and the schema index (the registry's storage topic).

use tributary_record::BatchIter;
use tributary_record::batch::BATCH_HEADER_LEN;
use tributary_record::records::RecordIter;

use crate::partition::Partition;

/// Largest decompressed batch of an internal topic.
const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;
/// Bytes read per step.
const READ_STEP_BYTES: usize = 1 << 20;

/// Calls `f(offset, key, value)` for every record of `partition` from its log
/// start up to (excluding) `upper`, in offset order. Control batches are skipped.
pub(crate) fn for_each_record(
    partition: &Partition,
    upper: i64,
    f: impl FnMut(i64, &[u8], Option<&[u8]>),
) -> Result<(), String> {
    read_records(partition, i64::MIN, upper, usize::MAX, f).map(|_| ())
}

/// Calls `f(offset, key, value)` for the records of `partition` from `from`
/// (or the log start, if later) towards `upper` (excluded), in offset order,
/// stopping once about `budget_bytes` of batches were read (whole batches,
/// at least one). Returns the offset to continue from: `upper` when every
/// record below it was seen. Control batches are skipped; a null key is
/// passed as empty.
pub(crate) fn read_records(
    partition: &Partition,
    from: i64,
    upper: i64,
    budget_bytes: usize,
    mut f: impl FnMut(i64, &[u8], Option<&[u8]>),
) -> Result<i64, String> {
    let mut offset = from.max(partition.log().log_start_offset());
    let mut read = 0usize;
    while offset < upper && read < budget_bytes {
        let plan = partition.log().plan_read(offset, upper).map_err(|e| e.to_string())?;
        let Some(plan) = plan else { return Ok(upper) };
        let bytes = plan.execute(READ_STEP_BYTES, true).map_err(|e| e.to_string())?;
        if bytes.is_empty() {
            break;
        }
        read = read.saturating_add(bytes.len());
        for item in BatchIter::new(&bytes) {
            let (header, raw) = item.map_err(|e| e.to_string())?;
            if !header.is_control() {
                let codec = header.compression().map_err(|e| e.to_string())?;
                let records =
                    codec.decompress(&raw[BATCH_HEADER_LEN..], DECOMPRESSED_BYTES_MAX).map_err(|e| e.to_string())?;
                for record in RecordIter::new(&records) {
                    let record =
                        record.map_err(|(i, why)| format!("record {i} at batch {}: {why}", header.base_offset))?;
                    let at = header.base_offset + i64::from(record.offset_delta);
                    if at >= offset {
                        f(at, record.key.unwrap_or_default(), record.value);
                    }
                }
            }
            offset = header.next_offset();
        }
    }
    Ok(offset)
}
