//! Reading the records of an internal topic partition (group state replay).

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
    mut f: impl FnMut(i64, &[u8], Option<&[u8]>),
) -> Result<(), String> {
    let mut offset = partition.log().log_start_offset();
    while offset < upper {
        let plan = partition.log().plan_read(offset, upper).map_err(|e| e.to_string())?;
        let Some(plan) = plan else { break };
        let bytes = plan.execute(READ_STEP_BYTES, true).map_err(|e| e.to_string())?;
        if bytes.is_empty() {
            break;
        }
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
    Ok(())
}
