//! Where to move a group's committed offsets: the target syntax, the topic
//! selection syntax, and the per-partition computation. Pure functions; the
//! broker round trips are in [`crate::admin`].
//!
//! | target | new offset |
//! |---|---|
//! | `earliest` (`start`) | log start offset |
//! | `latest` (`end`) | log end offset (high watermark) |
//! | `<N>` | N, clamped into [log start, log end] |
//! | `@<ms>`, `@<RFC 3339>`, `<RFC 3339>` | first offset whose timestamp is at or after it; log end if none |
//! | `shift-by:<N>` (N may be negative) | committed + N, clamped; refused where nothing is committed |
//!
//! Clamping follows Kafka's offset reset tool: an offset outside the log is
//! moved to the nearest end, so a consumer never starts out of range.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::admin::TopicPartition;

/// Where to move committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTarget {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// The first offset at or after this time (ms since the epoch).
    Timestamp(i64),
    /// This offset.
    Offset(i64),
    /// The committed offset plus this (negative moves back).
    ShiftBy(i64),
}

impl fmt::Display for SeekTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeekTarget::Earliest => f.write_str("earliest"),
            SeekTarget::Latest => f.write_str("latest"),
            SeekTarget::Timestamp(ms) => write!(f, "@{ms}"),
            SeekTarget::Offset(n) => write!(f, "{n}"),
            SeekTarget::ShiftBy(n) => write!(f, "shift-by:{n}"),
        }
    }
}

impl FromStr for SeekTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<SeekTarget, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "\"{s}\" is not a seek target: use earliest, latest, an offset (42), a time (@1700000000000 in ms, \
                 or 2024-05-01T12:00:00Z), or shift-by:<N> (shift-by:-10)"
            )
        };
        match s.to_ascii_lowercase().as_str() {
            "earliest" | "start" | "beginning" => return Ok(SeekTarget::Earliest),
            "latest" | "end" => return Ok(SeekTarget::Latest),
            _ => {}
        }
        if let Some(n) = s.strip_prefix("shift-by:") {
            let n = n.trim();
            let n = n.strip_prefix('+').unwrap_or(n);
            return n.parse::<i64>().map(SeekTarget::ShiftBy).map_err(|_| bad());
        }
        if let Some(t) = s.strip_prefix('@') {
            return parse_timestamp_ms(t).map(SeekTarget::Timestamp).map_err(|e| format!("{}: {e}", bad()));
        }
        if s.contains(['T', 't', ' ']) || s.matches('-').count() >= 2 {
            return parse_rfc3339_ms(s).map(SeekTarget::Timestamp).map_err(|e| format!("{}: {e}", bad()));
        }
        match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(SeekTarget::Offset(n)),
            _ => Err(bad()),
        }
    }
}

/// Milliseconds since the epoch, or an RFC 3339 time.
pub fn parse_timestamp_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().map_err(|_| "the timestamp is too large".to_string());
    }
    parse_rfc3339_ms(s)
}

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `days` after 1970-01-01, as (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Milliseconds since the epoch as RFC 3339 in UTC with milliseconds,
/// `2024-05-01T12:00:00.250Z`, the form kafka-rest writes timestamps in.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1_000 % 60, in_day % 1_000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// `2024-05-01T12:00:00Z`, `2024-05-01 12:00:00.250+02:00`, or a bare date (midnight UTC),
/// as milliseconds since the epoch.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, String> {
    let err = |what: &str| format!("\"{s}\" is not an RFC 3339 time ({what}); write it like 2024-05-01T12:00:00Z");
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = b.get(from..from + len).ok_or_else(|| err("too short"))?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(err("expected digits"));
        }
        Ok(part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let expect = |at: usize, chars: &[u8], what: &str| -> Result<(), String> {
        match b.get(at) {
            Some(c) if chars.contains(c) => Ok(()),
            _ => Err(err(what)),
        }
    };
    let year = num(0, 4)?;
    expect(4, b"-", "expected - after the year")?;
    let month = num(5, 2)?;
    expect(7, b"-", "expected - after the month")?;
    let day = num(8, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(err("no such date"));
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Ok(days * 86_400_000);
    }
    expect(10, b"Tt ", "expected T between date and time")?;
    let hour = num(11, 2)?;
    expect(13, b":", "expected : after the hour")?;
    let minute = num(14, 2)?;
    expect(16, b":", "expected : after the minutes")?;
    let second = num(17, 2)?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(err("no such time of day"));
    }
    let mut at = 19;
    let mut millis = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(err("expected digits after ."));
        }
        // Keep milliseconds; finer digits are dropped.
        for i in 0..3 {
            millis = millis * 10 + if i < digits { i64::from(b[at + i] - b'0') } else { 0 };
        }
        at += digits;
    }
    let offset_minutes = match b.get(at) {
        Some(b'Z' | b'z') if b.len() == at + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == at + 6 => {
            let h = num(at + 1, 2)?;
            expect(at + 3, b":", "expected : in the UTC offset")?;
            let m = num(at + 4, 2)?;
            if h > 23 || m > 59 {
                return Err(err("bad UTC offset"));
            }
            let total = h * 60 + m;
            if *sign == b'-' { -total } else { total }
        }
        _ => return Err(err("expected Z or a UTC offset such as +02:00 at the end")),
    };
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second.min(59) - offset_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

/// Topics (all partitions) or chosen partitions of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSelection {
    /// The topic.
    pub topic: String,
    /// `None` = every partition.
    pub partitions: Option<Vec<i32>>,
}

/// Parses `--topics` values: comma-separated topics, `topic:0,1,2` for
/// chosen partitions (the numbers after a colon belong to that topic until
/// the next name). Repeat the flag to name a topic that looks like a number
/// after a partition list.
pub fn parse_topic_selection(values: &[String]) -> Result<Vec<TopicSelection>, String> {
    let mut picked: BTreeMap<String, Option<Vec<i32>>> = BTreeMap::new();
    for value in values {
        let mut open: Option<String> = None;
        for token in value.split(',').map(str::trim) {
            if token.is_empty() {
                return Err(format!("\"{value}\": empty entry in the topic list"));
            }
            if let Some((topic, partition)) = token.split_once(':') {
                let partition = parse_partition(partition, value)?;
                if topic.is_empty() {
                    return Err(format!("\"{value}\": missing topic before :{partition}"));
                }
                add(&mut picked, topic, Some(partition));
                open = Some(topic.to_string());
            } else if let (Some(topic), true) = (&open, token.bytes().all(|c| c.is_ascii_digit())) {
                let partition = parse_partition(token, value)?;
                add(&mut picked, topic, Some(partition));
            } else {
                add(&mut picked, token, None);
                open = None;
            }
        }
    }
    Ok(picked
        .into_iter()
        .map(|(topic, partitions)| TopicSelection {
            topic,
            partitions: partitions.map(|mut p| {
                p.sort_unstable();
                p.dedup();
                p
            }),
        })
        .collect())
}

fn parse_partition(token: &str, value: &str) -> Result<i32, String> {
    token
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p >= 0)
        .ok_or_else(|| format!("\"{value}\": \"{token}\" is not a partition number (write topic:0,1,2)"))
}

fn add(picked: &mut BTreeMap<String, Option<Vec<i32>>>, topic: &str, partition: Option<i32>) {
    let entry = picked.entry(topic.to_string()).or_insert_with(|| partition.map(|_| Vec::new()));
    match (entry, partition) {
        (Some(list), Some(p)) => list.push(p),
        // A topic named without partitions anywhere means all of them.
        (entry, None) => *entry = None,
        (None, Some(_)) => {}
    }
}

/// What is known about one partition when computing its new offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// First offset in the log.
    pub log_start: i64,
    /// Log end offset (high watermark).
    pub log_end: i64,
    /// For a time target: the first offset at or after the time, `None` if no record is that new.
    pub at_timestamp: Option<i64>,
}

/// One partition of a seek plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekPartition {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// The committed offset now, if any.
    pub current_offset: Option<i64>,
    /// The offset to commit.
    pub new_offset: i64,
    /// First offset in the log.
    pub log_start_offset: i64,
    /// Log end offset.
    pub log_end_offset: i64,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeekError {
    /// `shift-by` on partitions without a committed offset.
    #[error(
        "shift-by moves committed offsets, and the group has none for {}; seek those partitions to earliest, \
         latest or an offset first, or leave them out of the topic selection",
        list(.0)
    )]
    NoCommittedOffset(Vec<TopicPartition>),
}

fn list(partitions: &[TopicPartition]) -> String {
    partitions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The offset `target` gives a partition, or `None` for shift-by without a committed offset.
pub fn new_offset(target: SeekTarget, p: &PartitionOffsets) -> Option<i64> {
    let clamp = |o: i64| o.clamp(p.log_start, p.log_end.max(p.log_start));
    Some(match target {
        SeekTarget::Earliest => p.log_start,
        SeekTarget::Latest => p.log_end,
        SeekTarget::Offset(n) => clamp(n),
        SeekTarget::ShiftBy(n) => clamp(p.committed?.saturating_add(n)),
        SeekTarget::Timestamp(_) => match p.at_timestamp {
            Some(o) if o >= 0 => clamp(o),
            _ => p.log_end,
        },
    })
}

/// The new offset of every partition, in partition order.
pub fn plan(
    target: SeekTarget,
    partitions: &BTreeMap<TopicPartition, PartitionOffsets>,
) -> Result<Vec<SeekPartition>, SeekError> {
    let mut out = Vec::with_capacity(partitions.len());
    let mut missing = Vec::new();
    for (tp, p) in partitions {
        match new_offset(target, p) {
            Some(new_offset) => out.push(SeekPartition {
                topic_partition: tp.clone(),
                current_offset: p.committed,
                new_offset,
                log_start_offset: p.log_start,
                log_end_offset: p.log_end,
            }),
            None => missing.push(tp.clone()),
        }
    }
    if missing.is_empty() { Ok(out) } else { Err(SeekError::NoCommittedOffset(missing)) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formatting_round_trips_through_parsing() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339_ms(1_650_638_927_650), "2022-04-22T14:48:47.650Z");
        assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
        for ms in [0, 951_782_400_000, 4_107_542_400_123, 1_709_210_096_001, -86_400_001] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Ok(ms), "{ms}");
        }
    }

    use super::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    #[test]
    fn targets_parse() {
        let p = |s: &str| s.parse::<SeekTarget>();
        assert_eq!(p("earliest"), Ok(SeekTarget::Earliest));
        assert_eq!(p("START"), Ok(SeekTarget::Earliest));
        assert_eq!(p("latest"), Ok(SeekTarget::Latest));
        assert_eq!(p("end"), Ok(SeekTarget::Latest));
        assert_eq!(p("42"), Ok(SeekTarget::Offset(42)));
        assert_eq!(p("0"), Ok(SeekTarget::Offset(0)));
        assert_eq!(p("shift-by:-10"), Ok(SeekTarget::ShiftBy(-10)));
        assert_eq!(p("shift-by:+3"), Ok(SeekTarget::ShiftBy(3)));
        assert_eq!(p("@1700000000000"), Ok(SeekTarget::Timestamp(1_700_000_000_000)));
        assert_eq!(p("@2023-11-14T22:13:20Z"), Ok(SeekTarget::Timestamp(1_700_000_000_000)));
        assert_eq!(p("2023-11-14T22:13:20Z"), Ok(SeekTarget::Timestamp(1_700_000_000_000)));
        for bad in ["", "-1", "soon", "shift-by:", "shift-by:x", "@", "@yesterday", "2023-13-01T00:00:00Z", "1.5"] {
            let e = p(bad).expect_err(bad);
            assert!(e.contains("earliest, latest"), "{bad}: {e}");
        }
        for t in ["earliest", "latest", "42", "shift-by:-10", "@1700000000000"] {
            assert_eq!(p(t).expect("parses").to_string(), t);
        }
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01"), Ok(0));
        assert_eq!(parse_rfc3339_ms("2024-02-29T12:00:00Z"), Ok(1_709_208_000_000));
        assert_eq!(parse_rfc3339_ms("2024-02-29 14:00:00+02:00"), Ok(1_709_208_000_000));
        assert_eq!(parse_rfc3339_ms("2024-02-29t07:30:00.250-04:30"), Ok(1_709_208_000_250));
        assert_eq!(parse_rfc3339_ms("2000-03-01T00:00:00.123456789Z"), Ok(951_868_800_123));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z"), Ok(-1_000));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-02-29T24:00:00Z",
            "2024-02-29T12:00:00",
            "2024-02-29T12:00Z",
            "2024-02-29T12:00:00+2:00",
            "2024-02-29T12:00:00.Z",
            "2024/02/29",
            "24-02-29T12:00:00Z",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_timestamp_ms("1709208000000"), Ok(1_709_208_000_000));
    }

    #[test]
    fn topic_selections() {
        let p = |v: &[&str]| parse_topic_selection(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let all = |t: &str| TopicSelection { topic: t.to_string(), partitions: None };
        let some = |t: &str, ps: &[i32]| TopicSelection { topic: t.to_string(), partitions: Some(ps.to_vec()) };
        assert_eq!(p(&["a,b"]), Ok(vec![all("a"), all("b")]));
        assert_eq!(p(&["a:2,0,b"]), Ok(vec![some("a", &[0, 2]), all("b")]));
        assert_eq!(p(&["a:1", "a:0,1"]), Ok(vec![some("a", &[0, 1])]));
        assert_eq!(p(&["a:1", "a"]), Ok(vec![all("a")]));
        assert_eq!(p(&["x:0", "123"]), Ok(vec![all("123"), some("x", &[0])]));
        assert_eq!(p(&["orders.v2-eu"]), Ok(vec![all("orders.v2-eu")]));
        for bad in [&["a,,b"][..], &["a:x"], &["a:-1"], &[":1"], &[""]] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    fn offsets(committed: Option<i64>, at: Option<i64>) -> PartitionOffsets {
        PartitionOffsets { committed, log_start: 10, log_end: 100, at_timestamp: at }
    }

    #[test]
    fn new_offsets_follow_the_target_and_stay_in_the_log() {
        let p = offsets(Some(50), Some(70));
        assert_eq!(new_offset(SeekTarget::Earliest, &p), Some(10));
        assert_eq!(new_offset(SeekTarget::Latest, &p), Some(100));
        assert_eq!(new_offset(SeekTarget::Offset(42), &p), Some(42));
        assert_eq!(new_offset(SeekTarget::Offset(5), &p), Some(10), "below the log start");
        assert_eq!(new_offset(SeekTarget::Offset(500), &p), Some(100), "past the end");
        assert_eq!(new_offset(SeekTarget::ShiftBy(-5), &p), Some(45));
        assert_eq!(new_offset(SeekTarget::ShiftBy(7), &p), Some(57));
        assert_eq!(new_offset(SeekTarget::ShiftBy(-1000), &p), Some(10));
        assert_eq!(new_offset(SeekTarget::ShiftBy(i64::MAX), &p), Some(100), "no overflow");
        assert_eq!(new_offset(SeekTarget::ShiftBy(1), &offsets(None, None)), None);
        assert_eq!(new_offset(SeekTarget::Timestamp(1), &p), Some(70));
        assert_eq!(new_offset(SeekTarget::Timestamp(1), &offsets(None, None)), Some(100), "nothing that new");
        assert_eq!(new_offset(SeekTarget::Timestamp(1), &offsets(None, Some(-1))), Some(100));
        // An empty log: start == end.
        let empty = PartitionOffsets { committed: Some(3), log_start: 7, log_end: 7, at_timestamp: None };
        assert_eq!(new_offset(SeekTarget::ShiftBy(-1), &empty), Some(7));
    }

    #[test]
    fn plans_list_every_partition_or_refuse_shift_without_commits() {
        let mut parts = BTreeMap::new();
        parts.insert(tp("b", 0), offsets(Some(20), None));
        parts.insert(tp("a", 1), offsets(Some(30), None));
        let planned = plan(SeekTarget::ShiftBy(-5), &parts).expect("plan");
        assert_eq!(
            planned.iter().map(|p| (p.topic_partition.to_string(), p.new_offset)).collect::<Vec<_>>(),
            vec![("a:1".to_string(), 25), ("b:0".to_string(), 15)]
        );
        assert_eq!(planned[0].current_offset, Some(30));
        assert_eq!((planned[0].log_start_offset, planned[0].log_end_offset), (10, 100));

        parts.insert(tp("c", 2), offsets(None, None));
        let err = plan(SeekTarget::ShiftBy(1), &parts).expect_err("c:2 has no commit");
        assert_eq!(err, SeekError::NoCommittedOffset(vec![tp("c", 2)]));
        assert!(err.to_string().contains("c:2"));
        assert_eq!(plan(SeekTarget::Earliest, &parts).expect("plan").len(), 3);
    }
}
