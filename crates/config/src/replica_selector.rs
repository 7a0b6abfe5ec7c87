//! `replica.selector.class`: how a partition leader picks the replica a
//! consumer should fetch from (KIP-392). Kafka loads a class by name; this
//! broker implements Kafka's two selectors and refuses any other name at
//! startup.

/// Kafka's rack-aware selector: a replica in the consumer's rack.
pub const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";
/// Kafka's selector that always names the leader.
pub const LEADER_SELECTOR: &str = "org.apache.kafka.common.replica.LeaderSelector";

/// The configured replica selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaSelector {
    /// Unset (Kafka's default): consumers always fetch from the leader.
    #[default]
    None,
    /// `LeaderSelector`: the leader, as with no selector.
    Leader,
    /// `RackAwareReplicaSelector`: the leader if it is in the consumer's
    /// rack, else the most caught-up in-sync replica in that rack.
    RackAware,
}

impl ReplicaSelector {
    /// Parses `replica.selector.class`; blank means unset.
    pub fn parse(value: Option<&str>) -> Result<ReplicaSelector, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(ReplicaSelector::None),
            Some(RACK_AWARE_SELECTOR) => Ok(ReplicaSelector::RackAware),
            Some(LEADER_SELECTOR) => Ok(ReplicaSelector::Leader),
            Some(other) => Err(format!(
                "Invalid value {other} for configuration replica.selector.class: this broker implements \
                 {RACK_AWARE_SELECTOR} and {LEADER_SELECTOR}; leave it unset to have consumers fetch from the leader"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_two_selectors_are_known_and_other_classes_are_refused() {
        assert_eq!(ReplicaSelector::parse(None), Ok(ReplicaSelector::None));
        assert_eq!(ReplicaSelector::parse(Some(" ")), Ok(ReplicaSelector::None));
        assert_eq!(ReplicaSelector::parse(Some(RACK_AWARE_SELECTOR)), Ok(ReplicaSelector::RackAware));
        assert_eq!(ReplicaSelector::parse(Some(LEADER_SELECTOR)), Ok(ReplicaSelector::Leader));
        let refused = ReplicaSelector::parse(Some("com.example.MySelector")).expect_err("unknown class");
        assert!(refused.contains("com.example.MySelector") && refused.contains(RACK_AWARE_SELECTOR), "{refused}");
        assert!(ReplicaSelector::parse(Some("RackAwareReplicaSelector")).is_err(), "Kafka wants the full class name");
    }
}
