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
