//! What the chain records of a task's run: its outcome and the result manifest the executor's
//! attested Ed25519 session key signs.
//!
//! The executor (inside the agent on the HPC) builds the manifest, signs
//! [`ResultManifest::signing_message`] with the session key its pre-task round attested, and the
//! gateway submits both; the task-market pallet checks the signature against that key. Outputs
//! themselves never reach the chain: only their capsule CIDs and an evidence digest.
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

use crate::{capsule::CapsuleCid, hashing::tagged_blake2_256, ids::TaskId, BoundedVec, ConstU32};

/// The most result capsules a task may produce (one per recipient and a few more).
pub const MAX_RESULTS: u32 = 16;

/// The domain tag of [`ResultManifest::signing_message`].
pub const RESULT_MANIFEST_TAG: &[u8] = b"capsule/result-manifest/v1";

/// How a task's run ended, as the chain settles it.
///
/// `TimedOut`, `OomKilled` and `PolicyViolation` are the creator's code misbehaving (it ran too
/// long, used too much memory, or tried a forbidden call or destination): the executor did its
/// job, is paid, and nobody is audited.
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
pub enum TaskOutcome {
    /// The function exited normally; its outputs are sealed to the recipients.
    Completed,
    /// The task's timeout (the gas stand-in) killed it.
    TimedOut,
    /// It exceeded its memory limit.
    OomKilled,
    /// It tried a forbidden system call or destination and was killed or caught.
    PolicyViolation,
}

/// What an executor declares about a run, signed by its attested Ed25519 session key.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct ResultManifest {
    pub task: TaskId,
    pub outcome: TaskOutcome,
    /// The sealed outputs, by capsule CID.
    pub results: BoundedVec<CapsuleCid, ConstU32<MAX_RESULTS>>,
    /// Digest of the run's evidence (cleanup digests, executor log digest).
    pub evidence: [u8; 32],
}

impl ResultManifest {
    /// The 32 bytes the session key signs: `blake2_256(tag ‖ SCALE(manifest))`.
    pub fn signing_message(&self) -> [u8; 32] {
        tagged_blake2_256(RESULT_MANIFEST_TAG, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capsule::CidCodec;

    fn manifest() -> ResultManifest {
        ResultManifest {
            task: TaskId(7),
            outcome: TaskOutcome::Completed,
            results: BoundedVec::truncate_from(vec![CapsuleCid {
                codec: CidCodec::DagPb,
                digest: [3; 32],
            }]),
            evidence: [9; 32],
        }
    }

    #[test]
    fn encodings_are_pinned() {
        assert_eq!(
            [
                TaskOutcome::Completed,
                TaskOutcome::TimedOut,
                TaskOutcome::OomKilled,
                TaskOutcome::PolicyViolation
            ]
            .map(|o| o.encode()[0]),
            [0, 1, 2, 3]
        );
        let encoded = manifest().encode();
        assert_eq!(&encoded[..8], &7u64.to_le_bytes());
        assert_eq!(encoded[8], 0, "outcome");
        assert_eq!(encoded[9], 4, "one result (compact length)");
        assert_eq!(encoded.len(), 8 + 1 + 1 + 33 + 32);
        assert_eq!(
            hex::encode(manifest().signing_message()),
            GOLDEN_SIGNING_MESSAGE
        );
    }

    #[test]
    fn the_signing_message_covers_every_field() {
        let base = manifest().signing_message();
        let mut other = manifest();
        other.task = TaskId(8);
        assert_ne!(other.signing_message(), base);
        let mut other = manifest();
        other.outcome = TaskOutcome::TimedOut;
        assert_ne!(other.signing_message(), base);
        let mut other = manifest();
        other.results = BoundedVec::new();
        assert_ne!(other.signing_message(), base);
        let mut other = manifest();
        other.evidence[0] ^= 1;
        assert_ne!(other.signing_message(), base);
    }

    /// Computed independently: Python's `hashlib.blake2b(tag + encoding, digest_size=32)`.
    const GOLDEN_SIGNING_MESSAGE: &str =
        "a8e4662bcc76b07ca9eedc378189e14faf4cdc4e3a19146688b2b9d1bfafd3f2";
}
