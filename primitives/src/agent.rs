//! The messages between a gateway and its HPC's agent, over their Noise channel (ARCHITECTURE,
//! flows 2-3, 5), SCALE-encoded, with the sizes each side accepts; and what the gateway's boot
//! server hands a booting agent before that channel exists.
//!
//! Every gateway message has exactly one answer, so attestation and a task share the channel:
//! challenges keep coming while a task runs. A task goes in as a [`TaskOffer`] and then its
//! bulk data in [`GatewayMessage::TaskData`] pieces, in order: the image archive, then each input
//! capsule (sealed to the HPC's session key). The gateway then polls; the finished task's
//! [`TaskResult`] names the sealed outputs, which the gateway fetches piece by piece.
use bounded_collections::{BoundedVec, ConstU32};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

use crate::{
    evidence::CleanupEvidence,
    ids::TaskId,
    measurement::ImageDigest,
    policy::TaskPolicy,
    report::{Nonce, SignedReport, MAX_DISK_SAMPLES},
    task::{ResultManifest, MAX_RESULTS},
};

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

/// Largest piece of a task's bulk data (image archive, input capsules, sealed outputs) in one
/// message.
pub const MAX_TASK_CHUNK: u32 = 512 << 10;
/// Largest function image archive a task brings (the agent holds it in RAM until it is loaded).
pub const MAX_TASK_IMAGE: u64 = 256 << 20;
/// Input capsules per task.
pub const MAX_TASK_INPUTS: u32 = 16;
/// Largest input capsule.
pub const MAX_TASK_INPUT: u64 = 64 << 20;
/// Recipients the outputs are sealed to.
pub const MAX_TASK_RECIPIENTS: u32 = 16;
/// Longest input or output file name.
pub const MAX_TASK_FILE_NAME: u32 = 64;

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

/// A file a task reads or writes, by name, with its size.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct TaskFile {
    /// The file's name in the function's `/scratch/in` or `/scratch/out`.
    pub name: BoundedVec<u8, ConstU32<MAX_TASK_FILE_NAME>>,
    /// Its size in bytes: an input capsule's, or a sealed output's.
    pub bytes: u64,
}

/// A task for the HPC: what to run, under which policy, on which inputs, and to whom the
/// outputs are sealed. The bulk data follows in [`GatewayMessage::TaskData`] pieces.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct TaskOffer {
    pub task: TaskId,
    /// The function image, pinned by digest: the archive must hold exactly it.
    pub image: ImageDigest,
    /// The policy the executor enforces (the chain holds its digest).
    pub policy: TaskPolicy,
    /// The image archive's size (at most [`MAX_TASK_IMAGE`]).
    pub image_archive_bytes: u64,
    /// The input capsules, in the order their data follows (each at most [`MAX_TASK_INPUT`]).
    pub inputs: BoundedVec<TaskFile, ConstU32<MAX_TASK_INPUTS>>,
    /// The X25519 keys the outputs are sealed to.
    pub recipients: BoundedVec<[u8; 32], ConstU32<MAX_TASK_RECIPIENTS>>,
}

impl TaskOffer {
    /// The bulk data that follows the offer: the image archive and every input.
    pub fn data_bytes(&self) -> u64 {
        self.inputs
            .iter()
            .fold(self.image_archive_bytes, |sum, input| {
                sum.saturating_add(input.bytes)
            })
    }

    /// Why the agent must refuse the offer before any data comes, if it must.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.image_archive_bytes == 0 || self.image_archive_bytes > MAX_TASK_IMAGE {
            return Err("the image archive is empty or larger than an HPC takes");
        }
        if self.inputs.iter().any(|i| i.bytes > MAX_TASK_INPUT) {
            return Err("an input capsule is larger than an HPC takes");
        }
        if self.recipients.is_empty() {
            return Err("a task needs at least one recipient for its outputs");
        }
        Ok(())
    }
}

/// A finished task, as the agent declares it: the result manifest signed by the boot's
/// Ed25519 session key (the key the pre-task round attested), the cleanup evidence the
/// manifest's evidence digest names, the process's exit code where it exited by itself, and
/// the sealed outputs in the manifest's order.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct TaskResult {
    pub manifest: ResultManifest,
    /// Ed25519 over [`ResultManifest::signing_message`].
    pub signature: [u8; 64],
    pub evidence: CleanupEvidence,
    pub exit_code: Option<i64>,
    /// Each sealed output: its name and size; `manifest.results` holds its CID.
    pub outputs: BoundedVec<TaskFile, ConstU32<MAX_RESULTS>>,
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
    /// Run this task (one at a time): answered with [`AgentMessage::TaskAck`] or
    /// [`AgentMessage::TaskRefused`].
    TaskOffer(TaskOffer),
    /// The next piece of the offered task's data; after the last one the task starts.
    TaskData(BoundedVec<u8, ConstU32<MAX_TASK_CHUNK>>),
    /// How is the task? [`AgentMessage::TaskRunning`], [`AgentMessage::TaskFinished`] or
    /// [`AgentMessage::TaskRefused`].
    TaskPoll,
    /// Up to [`MAX_TASK_CHUNK`] bytes of sealed output `index`, from `offset`.
    TaskOutputRequest { index: u32, offset: u64 },
    /// The gateway has the outputs: the agent forgets the task.
    TaskDone,
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
    /// The offer or piece was taken.
    TaskAck,
    /// The task cannot run, or could not: why. The agent has forgotten it.
    TaskRefused(BoundedVec<u8, ConstU32<MAX_REASON>>),
    /// The task is still running (or its image is loading).
    TaskRunning,
    /// The task ended (however its function did).
    TaskFinished(TaskResult),
    /// A piece of a sealed output (empty past its end).
    TaskOutputChunk(BoundedVec<u8, ConstU32<MAX_TASK_CHUNK>>),
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

    fn offer() -> TaskOffer {
        TaskOffer {
            task: TaskId(5),
            image: ImageDigest([1; 32]),
            policy: TaskPolicy {
                egress: BoundedVec::new(),
                limits: crate::policy::ResourceLimits {
                    memory_bytes: 64 << 20,
                    cpu_millis: 1000,
                    pids: 32,
                    tmpfs_bytes: 1 << 20,
                    output_bytes: 1 << 20,
                },
                timeout_secs: 10,
            },
            image_archive_bytes: 4 << 20,
            inputs: BoundedVec::truncate_from(vec![
                TaskFile {
                    name: BoundedVec::truncate_from(b"b.list".to_vec()),
                    bytes: 300,
                },
                TaskFile {
                    name: BoundedVec::truncate_from(b"c.list".to_vec()),
                    bytes: 200,
                },
            ]),
            recipients: BoundedVec::truncate_from(vec![[9; 32]]),
        }
    }

    #[test]
    fn task_messages_fit_the_channel_and_offers_are_checked_before_data() {
        assert!(GatewayMessage::max_encoded_len() <= MAX_ATTESTATION_MESSAGE as usize);
        assert!(AgentMessage::max_encoded_len() <= MAX_ATTESTATION_MESSAGE as usize);
        let offer = offer();
        assert_eq!(offer.data_bytes(), (4 << 20) + 500);
        assert_eq!(offer.check(), Ok(()));
        let encoded = GatewayMessage::TaskOffer(offer.clone()).encode();
        assert_eq!(encoded[0], 4, "variant");
        assert_eq!(
            GatewayMessage::decode(&mut &encoded[..]).ok(),
            Some(GatewayMessage::TaskOffer(offer.clone()))
        );
        for bad in [
            TaskOffer {
                image_archive_bytes: 0,
                ..offer.clone()
            },
            TaskOffer {
                image_archive_bytes: MAX_TASK_IMAGE + 1,
                ..offer.clone()
            },
            TaskOffer {
                recipients: BoundedVec::new(),
                ..offer.clone()
            },
            TaskOffer {
                inputs: BoundedVec::truncate_from(vec![TaskFile {
                    name: BoundedVec::truncate_from(b"huge".to_vec()),
                    bytes: MAX_TASK_INPUT + 1,
                }]),
                ..offer.clone()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        // A piece above the limit does not decode.
        let too_long = [&[5u8][..], &codec::Compact(MAX_TASK_CHUNK + 1).encode()].concat();
        assert!(GatewayMessage::decode(&mut &too_long[..]).is_err());
        assert_eq!(GatewayMessage::TaskDone.encode(), [8]);
        assert_eq!(AgentMessage::TaskRunning.encode(), [9]);
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
