//! The merge rule of DESIGN §1: `(system, kind, record_id)` identifies a source record and the
//! greatest `(version, deleted, content hash)` wins. Ties on version are broken by content so
//! that the winner never depends on arrival order, even when a partner re-sends a version with
//! different content.

use std::cmp::Ordering;

/// The ordering key of one version of a source record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionKey {
    /// The source version.
    pub version: i64,
    /// Tombstones win over live records of the same version.
    pub deleted: bool,
    /// Hex SHA-256 of the canonical content.
    pub content_hash: String,
}

/// What merging an incoming version against the stored one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No version stored yet: store it.
    Insert,
    /// The incoming version wins: replace the stored one.
    Replace,
    /// Exactly this version and content is stored already.
    Duplicate,
    /// The stored version wins.
    Superseded,
}

impl Decision {
    /// Whether the decision changes what is stored.
    pub fn stores(self) -> bool {
        matches!(self, Decision::Insert | Decision::Replace)
    }
}

/// Decides the fate of `incoming` against `stored`.
pub fn decide(stored: Option<&VersionKey>, incoming: &VersionKey) -> Decision {
    match stored.map(|s| incoming.cmp(s)) {
        None => Decision::Insert,
        Some(Ordering::Greater) => Decision::Replace,
        Some(Ordering::Equal) => Decision::Duplicate,
        Some(Ordering::Less) if stored.is_some_and(|s| s.version == incoming.version) => {
            // Same version, different content: the other content is the deterministic winner.
            Decision::Superseded
        }
        Some(Ordering::Less) => Decision::Superseded,
    }
}

/// The outcome reported for one record (DESIGN §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeStatus {
    /// Stored; the person is known.
    Accepted,
    /// Same version already stored.
    Duplicate,
    /// Older than the stored version.
    Superseded,
    /// Stored; the person is not known yet.
    Parked,
    /// Refused and dead-lettered.
    Rejected,
}

impl OutcomeStatus {
    /// How much an outcome says about a set of records it is one of (a replayed letter whose
    /// bytes made several): a refusal most, then a record stored (accepted or parked), then a
    /// superseded one, then a duplicate.
    pub fn weight(self) -> u8 {
        match self {
            OutcomeStatus::Rejected => 4,
            OutcomeStatus::Accepted | OutcomeStatus::Parked => 3,
            OutcomeStatus::Superseded => 2,
            OutcomeStatus::Duplicate => 1,
        }
    }

    /// Stable lower-case name (metrics, CLI summaries).
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Accepted => "accepted",
            OutcomeStatus::Duplicate => "duplicate",
            OutcomeStatus::Superseded => "superseded",
            OutcomeStatus::Parked => "parked",
            OutcomeStatus::Rejected => "rejected",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(version: i64, deleted: bool, hash: &str) -> VersionKey {
        VersionKey {
            version,
            deleted,
            content_hash: hash.into(),
        }
    }

    #[test]
    fn table() {
        let v2 = key(2, false, "b");
        assert_eq!(decide(None, &v2), Decision::Insert);
        assert_eq!(decide(Some(&key(1, false, "z")), &v2), Decision::Replace);
        assert_eq!(decide(Some(&v2), &v2.clone()), Decision::Duplicate);
        assert_eq!(decide(Some(&key(3, false, "a")), &v2), Decision::Superseded);
        assert_eq!(decide(Some(&v2), &key(2, true, "a")), Decision::Replace);
        assert_eq!(decide(Some(&key(2, true, "a")), &v2), Decision::Superseded);
    }

    proptest! {
        /// Applying versions in any order leaves the maximum stored.
        #[test]
        fn any_order_keeps_the_maximum(mut keys in proptest::collection::vec(
            (0i64..4, any::<bool>(), "[ab]"), 1..12), seed in any::<u64>()) {
            let keys: Vec<VersionKey> = keys.drain(..).map(|(v, d, h)| key(v, d, &h)).collect();
            let mut shuffled = keys.clone();
            let n = shuffled.len();
            for i in 0..n { shuffled.swap(i, (seed as usize).wrapping_mul(i + 7) % n); }
            let mut stored: Option<VersionKey> = None;
            for k in &shuffled {
                if decide(stored.as_ref(), k).stores() { stored = Some(k.clone()); }
            }
            prop_assert_eq!(stored, keys.iter().max().cloned());
        }
    }
}
