//! Replica placement for new partitions, as Kafka's striped placer does it:
//! over the brokers that can lead (registered, unfenced), leaders spread
//! evenly (round-robin that continues where the cluster's partitions left
//! off), replicas of one partition on distinct brokers and, when racks are
//! set (`broker.rack`), on as many distinct racks as the replication factor
//! allows.
//!
//! ```text
//! racks (sorted) ─▶ each rack's brokers (sorted)
//! partition g (= partitions already in the cluster + i):
//!   replica j: rack (g + j) mod racks, broker (g / racks + j / racks + skip) mod brokers-in-rack
//! ```

use std::collections::BTreeMap;

use tributary_protocol::ErrorCode;

use crate::error::ApiError;

/// A broker as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Broker id.
    pub id: i32,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

/// Kafka's refusal when there are fewer usable brokers than replicas.
pub fn replication_error(rf: i16, brokers: usize) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidReplicationFactor,
        format!(
            "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {brokers} broker(s) are registered."
        ),
    )
}

/// Replica lists (leader first) for `partitions` new partitions of `rf`
/// replicas each; `start` is how many partitions the cluster has already
/// (so leaders keep rotating across topics).
pub fn place(candidates: &[Candidate], partitions: i32, rf: i16, start: usize) -> Result<Vec<Vec<i32>>, ApiError> {
    let rf_count = usize::try_from(rf).unwrap_or(0);
    if rf_count == 0 {
        return Err(ApiError::new(ErrorCode::InvalidReplicationFactor, "Replication factor must be larger than 0."));
    }
    if rf_count > candidates.len() {
        return Err(replication_error(rf, candidates.len()));
    }
    let mut racks: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for c in candidates {
        racks.entry(c.rack.as_deref().unwrap_or("")).or_default().push(c.id);
    }
    for brokers in racks.values_mut() {
        brokers.sort_unstable();
        brokers.dedup();
    }
    let racks: Vec<Vec<i32>> = racks.into_values().collect();
    let rack_count = racks.len();
    let mut out = Vec::with_capacity(usize::try_from(partitions).unwrap_or(0));
    for i in 0..usize::try_from(partitions).unwrap_or(0) {
        let g = start + i;
        let mut replicas: Vec<i32> = Vec::with_capacity(rf_count);
        let mut j = 0usize;
        // Each step takes the next rack in turn; a rack whose brokers are all
        // taken is passed over (rf ≤ brokers, so this ends).
        let mut attempts = 0usize;
        while replicas.len() < rf_count && attempts < rf_count * rack_count * 2 + candidates.len() {
            attempts += 1;
            let rack = &racks[(g + j) % rack_count];
            let base = g / rack_count + j / rack_count;
            let pick = (0..rack.len()).map(|skip| rack[(base + skip) % rack.len()]).find(|b| !replicas.contains(b));
            if let Some(b) = pick {
                replicas.push(b);
            }
            j += 1;
        }
        if replicas.len() < rf_count {
            return Err(replication_error(rf, candidates.len()));
        }
        out.push(replicas);
    }
    Ok(out)
}

/// Checks explicit replica assignments: consecutive partition indexes from
/// `first_index`, every broker registered, no broker twice in a partition,
/// one replication factor for all.
pub fn check_assignments(
    assignments: &[(i32, Vec<i32>)],
    first_index: i32,
    registered: &[i32],
) -> Result<(), ApiError> {
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidReplicaAssignment, m);
    let rf = assignments.first().map(|(_, b)| b.len());
    for (i, (index, brokers)) in assignments.iter().enumerate() {
        if *index != first_index + i as i32 {
            return Err(invalid("Partitions should be a consecutive 0-based integer sequence.".into()));
        }
        if brokers.is_empty() {
            return Err(invalid(format!("The manual partition assignment for partition {index} is empty.")));
        }
        if Some(brokers.len()) != rf {
            return Err(invalid(format!(
                "The manual partition assignment for partition {index} has {} replicas, but the others have {}.",
                brokers.len(),
                rf.unwrap_or(0)
            )));
        }
        if brokers.iter().enumerate().any(|(k, b)| brokers[..k].contains(b)) {
            return Err(invalid(format!(
                "The manual partition assignment for partition {index} contains a duplicate broker."
            )));
        }
        if let Some(b) = brokers.iter().find(|b| !registered.contains(b)) {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicaAssignment,
                format!("The manual partition assignment includes broker {b}, but no such broker is registered."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn brokers(racks: &[Option<&str>]) -> Vec<Candidate> {
        racks.iter().enumerate().map(|(i, r)| Candidate { id: i as i32 + 1, rack: r.map(str::to_string) }).collect()
    }

    fn leader_counts(placed: &[Vec<i32>]) -> BTreeMap<i32, usize> {
        let mut counts = BTreeMap::new();
        for replicas in placed {
            *counts.entry(replicas[0]).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn leaders_spread_evenly_and_replicas_are_distinct() {
        let three = brokers(&[None, None, None]);
        for rf in 1..=3 {
            for partitions in [1, 3, 6, 7, 50] {
                let placed = place(&three, partitions, rf, 0).expect("places");
                assert_eq!(placed.len(), partitions as usize);
                for replicas in &placed {
                    assert_eq!(replicas.len(), rf as usize);
                    assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), rf as usize, "{replicas:?}");
                }
                let counts = leader_counts(&placed);
                let (min, max) =
                    (counts.values().min().copied().unwrap_or(0), counts.values().max().copied().unwrap_or(0));
                assert!(max - min <= 1 || partitions < 3, "uneven leaders {counts:?} for {partitions} partitions");
            }
        }
    }

    #[test]
    fn leadership_keeps_rotating_across_topics() {
        let three = brokers(&[None, None, None]);
        let mut all = Vec::new();
        let mut start = 0;
        for _ in 0..6 {
            let placed = place(&three, 1, 1, start).expect("places");
            start += placed.len();
            all.extend(placed);
        }
        assert_eq!(leader_counts(&all), BTreeMap::from([(1, 2), (2, 2), (3, 2)]), "six one-partition topics");
    }

    #[test]
    fn replicas_span_racks() {
        // Racks a: 1, 2; b: 3, 4; c: 5, 6.
        let six = brokers(&[Some("a"), Some("a"), Some("b"), Some("b"), Some("c"), Some("c")]);
        let rack_of = |id: i32| six.iter().find(|c| c.id == id).and_then(|c| c.rack.clone());
        let placed = place(&six, 12, 3, 0).expect("places");
        for replicas in &placed {
            let racks: BTreeSet<_> = replicas.iter().map(|b| rack_of(*b)).collect();
            assert_eq!(racks.len(), 3, "one replica per rack: {replicas:?}");
        }
        let counts = leader_counts(&placed);
        assert_eq!(counts.len(), 6, "every broker leads: {counts:?}");
        assert!(counts.values().all(|c| *c == 2), "{counts:?}");
        // Two racks, rf 2: always one replica in each.
        let uneven = brokers(&[Some("a"), Some("a"), Some("a"), Some("b")]);
        for replicas in place(&uneven, 8, 2, 0).expect("places") {
            let racks: BTreeSet<_> = replicas.iter().map(|b| uneven[(*b - 1) as usize].rack.clone()).collect();
            assert_eq!(racks.len(), 2, "{replicas:?}");
        }
    }

    #[test]
    fn too_few_brokers_is_kafkas_error() {
        let e = place(&brokers(&[None, None]), 1, 3, 0).expect_err("refused");
        assert_eq!(e.code, ErrorCode::InvalidReplicationFactor);
        assert_eq!(
            e.message,
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 2 broker(s) are registered."
        );
        assert_eq!(place(&[], 1, 1, 0).expect_err("none").code, ErrorCode::InvalidReplicationFactor);
    }

    #[test]
    fn explicit_assignments_name_registered_brokers() {
        let registered = [1, 2, 3];
        assert!(check_assignments(&[(0, vec![2]), (1, vec![3])], 0, &registered).is_ok());
        let unknown = check_assignments(&[(0, vec![7])], 0, &registered).expect_err("unknown");
        assert!(unknown.message.contains("broker 7"), "{}", unknown.message);
        assert!(check_assignments(&[(0, vec![1, 1])], 0, &registered).is_err());
        assert!(check_assignments(&[(0, vec![1]), (2, vec![2])], 0, &registered).is_err());
        assert!(check_assignments(&[(0, vec![1]), (1, vec![2, 3])], 0, &registered).is_err());
    }
}
