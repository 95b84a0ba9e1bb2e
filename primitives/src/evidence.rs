//! Cleanup evidence: proof that a run left the executing machine as it found it.
//!
//! The executor digests the host state a task could change, once after the function's image is
//! loaded and once after the run and its cleanup, and the two must be equal. Each category is
//! digested on its own so a mismatch names what was left behind. The post-task round's verifiers
//! check [`CleanupEvidence::is_clean`] on the evidence the attested agent signed, and the
//! [`ResultManifest`](crate::task::ResultManifest) carries [`CleanupEvidence::digest`].
//!
//! A category's digest is `blake2_256(HOST_STATE_TAG ‖ SCALE((category, entries)))` over its
//! entries (one byte string per container, mount, rule...) sorted bytewise, so two machines
//! with the same state give the same digest whatever order they listed it in.
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

use crate::{hashing::tagged_blake2_256, ids::TaskId};

/// Domain tag of a category digest.
pub const HOST_STATE_TAG: &[u8] = b"capsule/host-state/v1";
/// Domain tag of [`CleanupEvidence::digest`].
pub const CLEANUP_EVIDENCE_TAG: &[u8] = b"capsule/cleanup-evidence/v1";
/// How many categories a [`HostStateDigest`] has.
pub const HOST_STATE_CATEGORIES: usize = 8;

/// A kind of host state a task could change.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum HostStateCategory {
    /// The engine's containers (id, name, state, labels).
    Containers,
    /// The engine's volumes.
    Volumes,
    /// The engine's networks.
    Networks,
    /// The host's mount table.
    Mounts,
    /// The run scratch directories.
    ScratchDirs,
    /// The engine's images.
    Images,
    /// The firewall ruleset, without counters.
    FirewallRules,
    /// Processes running under a task uid.
    Processes,
}

impl HostStateCategory {
    /// Every category, in digest order.
    pub const ALL: [Self; HOST_STATE_CATEGORIES] = [
        Self::Containers,
        Self::Volumes,
        Self::Networks,
        Self::Mounts,
        Self::ScratchDirs,
        Self::Images,
        Self::FirewallRules,
        Self::Processes,
    ];

    /// The digest of this category's `entries` (sorted here; order given does not matter).
    pub fn digest(self, mut entries: Vec<Vec<u8>>) -> [u8; 32] {
        entries.sort();
        tagged_blake2_256(HOST_STATE_TAG, &(self, entries).encode())
    }
}

/// The digests of every category of host state at one moment, in [`HostStateCategory::ALL`]
/// order.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
    Default,
)]
pub struct HostStateDigest(pub [[u8; 32]; HOST_STATE_CATEGORIES]);

impl HostStateDigest {
    /// The digest of one category.
    pub fn category(&self, category: HostStateCategory) -> [u8; 32] {
        self.0[category as usize]
    }

    /// The categories whose digests differ between `self` and `other`.
    pub fn differing(&self, other: &Self) -> Vec<HostStateCategory> {
        HostStateCategory::ALL
            .into_iter()
            .filter(|c| self.category(*c) != other.category(*c))
            .collect()
    }
}

/// What an executor declares about the cleanup of one run.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct CleanupEvidence {
    pub task: TaskId,
    /// After the image was loaded, before the run.
    pub before: HostStateDigest,
    /// After the run and its cleanup.
    pub after: HostStateDigest,
}

impl CleanupEvidence {
    /// Whether the run left every category as it found it.
    pub fn is_clean(&self) -> bool {
        self.before == self.after
    }

    /// The categories the run changed.
    pub fn residue(&self) -> Vec<HostStateCategory> {
        self.before.differing(&self.after)
    }

    /// `blake2_256(CLEANUP_EVIDENCE_TAG ‖ SCALE(self))`, what a result manifest carries.
    pub fn digest(&self) -> [u8; 32] {
        tagged_blake2_256(CLEANUP_EVIDENCE_TAG, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn state(seed: u8) -> HostStateDigest {
        HostStateDigest(core::array::from_fn(|i| {
            HostStateCategory::ALL[i].digest(vec![vec![seed, i as u8]])
        }))
    }

    #[test]
    fn category_digests_ignore_order_and_separate_categories() {
        let a = HostStateCategory::Mounts.digest(vec![b"x".to_vec(), b"y".to_vec()]);
        let b = HostStateCategory::Mounts.digest(vec![b"y".to_vec(), b"x".to_vec()]);
        assert_eq!(a, b);
        let other = HostStateCategory::Images.digest(vec![b"x".to_vec(), b"y".to_vec()]);
        assert_ne!(a, other);
        // A duplicate entry counts: two equal mounts are not one.
        let doubled =
            HostStateCategory::Mounts.digest(vec![b"x".to_vec(), b"x".to_vec(), b"y".to_vec()]);
        assert_ne!(a, doubled);
        assert_ne!(HostStateCategory::Mounts.digest(vec![]), a);
    }

    #[test]
    fn residue_names_each_changed_category() {
        let before = state(1);
        let clean = CleanupEvidence {
            task: TaskId(3),
            before,
            after: before,
        };
        assert!(clean.is_clean());
        assert!(clean.residue().is_empty());
        for category in HostStateCategory::ALL {
            let mut after = before;
            after.0[category as usize] = category.digest(vec![b"left behind".to_vec()]);
            let evidence = CleanupEvidence {
                task: TaskId(3),
                before,
                after,
            };
            assert!(!evidence.is_clean());
            assert_eq!(evidence.residue(), vec![category]);
            assert_ne!(evidence.digest(), clean.digest());
        }
    }

    #[test]
    fn encodings_are_pinned() {
        assert_eq!(
            HostStateCategory::ALL.map(|c| c.encode()[0]),
            [0, 1, 2, 3, 4, 5, 6, 7]
        );
        let evidence = CleanupEvidence {
            task: TaskId(7),
            before: state(1),
            after: state(1),
        };
        assert_eq!(evidence.encode().len(), 8 + 2 * 8 * 32);
        assert_eq!(
            hex::encode(HostStateCategory::Containers.digest(vec![])),
            GOLDEN_EMPTY_CONTAINERS
        );
        assert_eq!(hex::encode(evidence.digest()), GOLDEN_EVIDENCE_DIGEST);
    }

    // Computed independently with Python's hashlib.blake2b over the SCALE bytes written out.
    const GOLDEN_EMPTY_CONTAINERS: &str =
        "fc09c54261c761ef56410abf5849ddd45e282a54c7e7c419df9f74d285d29279";
    const GOLDEN_EVIDENCE_DIGEST: &str =
        "55da4c20c635effa57605ae12ab5de17ad9c0bf5d614ac6bb2fb3843cf64b3f0";
}
