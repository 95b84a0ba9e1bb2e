//! The messages between a gateway and its HPC's agent, over their Noise channel (ARCHITECTURE,
//! flows 2-3), SCALE-encoded, with the sizes each side accepts; and what the gateway's boot
//! server hands a booting agent before that channel exists.
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
/// Largest firmware event log an agent sends (OVMF's is ~4 KiB, a server's some tens of KiB).
pub const MAX_EVENT_LOG: u32 = 256 << 10;

/// The boot server's HTTP port on the HPC link. The image is the same for every gateway, so the
/// port is fixed; the address is the DHCP server's.
pub const BOOT_SERVER_PORT: u16 = 4280;
/// Where the boot server serves [`BootConfig`], once per boot.
pub const BOOT_CONFIG_PATH: &str = "/boot/config";
/// Where it serves the unified kernel image the HPC booted (the agent measures it).
pub const BOOT_IMAGE_PATH: &str = "/boot.efi";

/// What this boot's agent needs before it can open its channel, from the gateway's boot server
/// on the HPC link (SCALE, `GET` [`BOOT_CONFIG_PATH`]). The boot server hands it out once per
/// boot: a second fetch, by anyone, is refused until the gateway power-cycles the HPC.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct BootConfig {
    /// The attestation server's TCP port, at the boot server's address.
    pub attestation_port: u16,
    /// The gateway's Noise static public key (X25519).
    pub gateway_key: [u8; 32],
    /// This boot's secret: the channel's pre-shared key.
    pub boot_secret: [u8; 32],
    /// The salt of this HPC's hardware fingerprint leaves.
    pub fingerprint_salt: [u8; 32],
}

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
    /// Send the firmware's TPM event log (what it measured into each PCR, as the kernel
    /// exposes it).
    EventLogRequest,
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
    /// The firmware's TPM event log (TCG crypto-agile format), as the kernel read it.
    EventLog(BoundedVec<u8, ConstU32<MAX_EVENT_LOG>>),
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
        assert_eq!(GatewayMessage::EventLogRequest.encode(), [3]);
        let log = AgentMessage::EventLog(BoundedVec::truncate_from(vec![7; 3]));
        assert_eq!(log.encode(), [6, 3 << 2, 7, 7, 7]);
        let too_long = [&[6u8][..], &codec::Compact(MAX_EVENT_LOG + 1).encode()].concat();
        assert!(
            AgentMessage::decode(&mut &too_long[..]).is_err(),
            "a log above the limit is refused before it is read"
        );
    }

    #[test]
    fn a_boot_config_is_its_fields_in_order() {
        let config = BootConfig {
            attestation_port: 0x1b58,
            gateway_key: [1; 32],
            boot_secret: [2; 32],
            fingerprint_salt: [3; 32],
        };
        let bytes = config.encode();
        assert_eq!(bytes.len(), BootConfig::max_encoded_len());
        assert_eq!(&bytes[..2], &[0x58, 0x1b]);
        assert_eq!(
            (&bytes[2..34], &bytes[34..66], &bytes[66..]),
            (&[1; 32][..], &[2; 32][..], &[3; 32][..])
        );
        assert_eq!(BootConfig::decode(&mut &bytes[..]).ok(), Some(config));
        assert!(
            BootConfig::decode(&mut &bytes[..97]).is_err(),
            "a cut config is refused"
        );
    }
}
