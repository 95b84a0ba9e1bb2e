//! The messages between a gateway and its HPC's agent, over their Noise channel (ARCHITECTURE,
//! flows 2-3), SCALE-encoded, with the sizes each side accepts. The task messages join them
//! with the PXE issue.
use bounded_collections::{BoundedVec, ConstU32};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

use crate::report::{Nonce, SignedReport, MAX_DISK_SAMPLES};

/// Largest attestation message either side accepts (a report is far smaller).
pub const MAX_ATTESTATION_MESSAGE: u32 = 1 << 20;
/// Longest reason an agent gives for refusing a challenge.
pub const MAX_REASON: u32 = 256;
/// Largest EK certificate (DER) an agent sends.
pub const MAX_EK_CERTIFICATE: u32 = 4096;
/// Largest credential part (`TPM2B_ID_OBJECT`, `TPM2B_ENCRYPTED_SECRET` contents).
pub const MAX_CREDENTIAL_PART: u32 = 512;
/// Largest marshalled `TPMT_PUBLIC` of an attestation key.
pub const MAX_TPM_PUBLIC: u32 = 512;

/// From the gateway.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub enum GatewayMessage {
    /// Report now, over this nonce, with this many disk blocks sampled (at most
    /// [`MAX_DISK_SAMPLES`]).
    Challenge { nonce: Nonce, disk_samples: u32 },
    /// Which TPM is this? (At the start of every boot's session, on a gateway that attests TPMs.)
    TpmIdentityRequest,
    /// Recover this credential with the boot's attestation key (`TPM2_ActivateCredential`).
    ActivateCredential {
        id_object: BoundedVec<u8, ConstU32<MAX_CREDENTIAL_PART>>,
        encrypted_secret: BoundedVec<u8, ConstU32<MAX_CREDENTIAL_PART>>,
    },
}

/// From the agent. (Its report variant is the large one; each message is built, sent and
/// dropped at once, so it is not boxed.)
#[allow(clippy::large_enum_variant)]
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub enum AgentMessage {
    /// The agent's first message after the handshake: it holds the boot's keys and is live (a
    /// replayed first handshake message cannot send it).
    Hello,
    /// The answer to a challenge.
    Report(SignedReport),
    /// The agent could not measure (a source it needs failed): why, for the gateway's log.
    CannotReport(BoundedVec<u8, ConstU32<MAX_REASON>>),
    /// The HPC's TPM: its EK certificate and the boot's attestation key as its marshalled
    /// `TPMT_PUBLIC` (the gateway checks it and computes its name itself).
    TpmIdentity {
        ek_certificate: BoundedVec<u8, ConstU32<MAX_EK_CERTIFICATE>>,
        attestation_key_public: BoundedVec<u8, ConstU32<MAX_TPM_PUBLIC>>,
    },
    /// This HPC has no TPM.
    NoTpm,
    /// The recovered credential.
    CredentialActivated([u8; 32]),
}

impl GatewayMessage {
    /// A challenge, its sample count capped at [`MAX_DISK_SAMPLES`].
    pub fn challenge(nonce: Nonce, disk_samples: u32) -> Self {
        Self::Challenge {
            nonce,
            disk_samples: disk_samples.min(MAX_DISK_SAMPLES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_messages_fit_the_limit_and_encodings_are_pinned() {
        assert!(AgentMessage::max_encoded_len() <= MAX_ATTESTATION_MESSAGE as usize);
        let challenge = GatewayMessage::challenge(Nonce([3; 32]), 99);
        let bytes = challenge.encode();
        assert_eq!(bytes[0], 0, "variant");
        assert_eq!(&bytes[1..33], &[3; 32]);
        assert_eq!(bytes[33..], 16u32.to_le_bytes(), "capped");
    }
}
