//! Outcomes and levels of remote attestation.
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// What a verifier concluded about a subject's evidence.
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
pub enum Verdict {
    /// The evidence matched the golden measurements.
    Pass,
    /// The evidence did not match, or none came.
    Fail,
}

/// The domain tag of [`vote_commitment`].
pub const VOTE_COMMITMENT_TAG: &[u8] = b"capsule/vote-commitment/v1";

/// What a committee member commits to before revealing: BLAKE2b-256 of a domain tag and the
/// SCALE encoding of `(round, member, verdict, evidence digest, salt)`. The member's account is
/// inside, so nobody can copy another member's commitment and reveal its vote as their own.
pub fn vote_commitment(
    round: crate::ids::RoundId,
    member: &[u8; 32],
    verdict: Verdict,
    evidence: &[u8; 32],
    salt: &[u8; 32],
) -> [u8; 32] {
    crate::hashing::tagged_blake2_256(
        VOTE_COMMITMENT_TAG,
        &(round, member, verdict, evidence, salt).encode(),
    )
}

/// How much of a gateway's trust can be proven, weakest first. The order matters: a higher
/// level never counts for less.
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HardwareLevel {
    /// Keys in software files: dev and local chains only, never on a committee elsewhere.
    Software,
    /// Keys held by the gateway's hardware module (Zymbit). A claim: the module offers no vendor
    /// attestation certificate.
    GatewayHsm,
    /// The HPC's own TPM: an attestation key activated against an EK certificate chaining to a
    /// pinned CA, quoting pinned PCRs.
    HpcTpm,
}

/// Why an attestation round was opened.
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
pub enum AttestationPhase {
    /// A gateway asks to join (or rejoin) the network.
    Registration,
    /// The drawn executor of a task, before it receives any data key.
    PreTask,
    /// The executor after a task: did it wipe and reboot fresh?
    PostTask,
    /// Someone reported the gateway.
    Audit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "serde")]
    #[test]
    fn hardware_levels_are_named_in_genesis_json() {
        let json =
            serde_json::to_string(&[HardwareLevel::Software, HardwareLevel::HpcTpm]).unwrap();
        assert_eq!(json, r#"["Software","HpcTpm"]"#);
        let back: HardwareLevel = serde_json::from_str(r#""GatewayHsm""#).unwrap();
        assert_eq!(back, HardwareLevel::GatewayHsm);
        assert!(serde_json::from_str::<HardwareLevel>(r#""Gold""#).is_err());
    }

    #[test]
    fn vote_commitments_bind_every_field() {
        let round = crate::ids::RoundId(3);
        let base = vote_commitment(round, &[1; 32], Verdict::Pass, &[2; 32], &[3; 32]);
        assert_ne!(
            base,
            vote_commitment(round, &[9; 32], Verdict::Pass, &[2; 32], &[3; 32])
        );
        assert_ne!(
            base,
            vote_commitment(round, &[1; 32], Verdict::Fail, &[2; 32], &[3; 32])
        );
        assert_ne!(
            base,
            vote_commitment(round, &[1; 32], Verdict::Pass, &[9; 32], &[3; 32])
        );
        assert_ne!(
            base,
            vote_commitment(round, &[1; 32], Verdict::Pass, &[2; 32], &[9; 32])
        );
        assert_ne!(
            base,
            vote_commitment(
                crate::ids::RoundId(4),
                &[1; 32],
                Verdict::Pass,
                &[2; 32],
                &[3; 32]
            )
        );
        // Pinned: blake2b(tag + u64 LE 3 + [1]*32 + [0] + [2]*32 + [3]*32).
        assert_eq!(hex::encode(base), PINNED_COMMITMENT);
    }

    const PINNED_COMMITMENT: &str =
        "a0571fad9c6fd89077e7382c976af99bcdca0fda6388ddcfca0a0ab70c4d82b3";

    #[test]
    fn enums_encode_as_their_index() {
        assert_eq!(Verdict::Pass.encode(), [0]);
        assert_eq!(Verdict::Fail.encode(), [1]);
        assert_eq!(
            [
                HardwareLevel::Software,
                HardwareLevel::GatewayHsm,
                HardwareLevel::HpcTpm
            ]
            .map(|l| l.encode()[0]),
            [0, 1, 2]
        );
        assert_eq!(
            [
                AttestationPhase::Registration,
                AttestationPhase::PreTask,
                AttestationPhase::PostTask,
                AttestationPhase::Audit
            ]
            .map(|p| p.encode()[0]),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn hardware_levels_are_ordered_by_strength() {
        assert!(HardwareLevel::Software < HardwareLevel::GatewayHsm);
        assert!(HardwareLevel::GatewayHsm < HardwareLevel::HpcTpm);
    }

    #[test]
    fn unknown_variants_do_not_decode() {
        assert!(Verdict::decode(&mut &[2u8][..]).is_err());
        assert!(HardwareLevel::decode(&mut &[3u8][..]).is_err());
    }
}
