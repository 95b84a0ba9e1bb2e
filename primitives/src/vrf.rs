//! VRF proofs for sortition, and the transcript every one of them signs.
//!
//! Daemons prove with schnorrkel (`keypair.vrf_sign(input.transcript())`); the runtime verifies
//! with `sp_core::sr25519` (`public.vrf_verify(&VrfSignData::new(VrfTranscript(input.transcript())),
//! &signature)`). Both sides build the transcript here, so they cannot drift apart. The
//! transcript binds a domain tag, the seed, the id and the signer's account: a proof made for one
//! task, round or account proves nothing for another.
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use merlin::Transcript;
use scale_info::TypeInfo;

use crate::{RoundId, TaskId};

/// Context under which a VRF output is turned into sortition bytes (`make_bytes`).
pub const VRF_OUTPUT_CONTEXT: &[u8] = b"capsule/vrf-output/v1";

/// A VRF signature as it crosses the chain boundary: raw bytes, parsed inside the call, so that
/// a malformed proof is a typed error rather than an undecodable extrinsic. The layout is that of
/// `sp_core::sr25519::vrf::VrfSignature` and of schnorrkel's `to_bytes`.
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
pub struct VrfProofBytes {
    /// The VRF pre-output (a compressed Ristretto point).
    pub pre_output: [u8; 32],
    /// The DLEQ proof that the pre-output belongs to the signer's key.
    pub proof: [u8; 64],
}

/// What a VRF proof is drawn for. Each has its own transcript label.
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
pub enum VrfDomain {
    /// Executor sortition: a gateway's ticket for a task.
    TaskAssignment,
    /// A gateway's ticket for an attestation round's committee.
    CommitteeSeat,
}

impl VrfDomain {
    /// The merlin transcript label of this domain.
    pub const fn label(self) -> &'static [u8] {
        match self {
            Self::TaskAssignment => b"capsule/vrf/task-assignment/v1",
            Self::CommitteeSeat => b"capsule/vrf/committee-seat/v1",
        }
    }
}

/// Everything a sortition proof signs.
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
pub struct VrfTranscriptInput {
    /// What the draw is for.
    pub domain: VrfDomain,
    /// The draw's seed: mixed from BABE VRF outputs nobody knew when the task or round opened.
    pub seed: [u8; 32],
    /// The task or round id.
    pub id: u64,
    /// The signer's account id (an `AccountId32`).
    pub signer: [u8; 32],
}

impl VrfTranscriptInput {
    /// The input of a gateway's ticket for a task.
    pub fn task_assignment(seed: [u8; 32], task: TaskId, signer: [u8; 32]) -> Self {
        Self {
            domain: VrfDomain::TaskAssignment,
            seed,
            id: task.0,
            signer,
        }
    }

    /// The input of a gateway's ticket for a round's committee.
    pub fn committee_seat(seed: [u8; 32], round: RoundId, signer: [u8; 32]) -> Self {
        Self {
            domain: VrfDomain::CommitteeSeat,
            seed,
            id: round.0,
            signer,
        }
    }

    /// The merlin transcript: label = domain, then `seed`, `id` (u64 little-endian) and
    /// `signer`, in that order. `sp_core::sr25519::vrf::VrfTranscript(..)` wraps it unchanged.
    pub fn transcript(&self) -> Transcript {
        let mut transcript = Transcript::new(self.domain.label());
        transcript.append_message(b"seed", &self.seed);
        transcript.append_message(b"id", &self.id.to_le_bytes());
        transcript.append_message(b"signer", &self.signer);
        transcript
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schnorrkel::{
        vrf::{VRFPreOut, VRFProof},
        ExpansionMode, Keypair, MiniSecretKey,
    };
    use sp_core::{
        crypto::{Pair as _, VrfPublic},
        sr25519::{
            self,
            vrf::{VrfSignData, VrfSignature, VrfTranscript},
        },
    };

    const SEED: [u8; 32] = [0x5e; 32];
    const SECRET: [u8; 32] = [0x11; 32];

    /// The keypair sp-core derives from the same 32-byte seed (`Pair::from_seed`).
    fn daemon_keypair() -> Keypair {
        MiniSecretKey::from_bytes(&SECRET)
            .unwrap()
            .expand_to_keypair(ExpansionMode::Ed25519)
    }

    fn signer_account() -> [u8; 32] {
        daemon_keypair().public.to_bytes()
    }

    /// As a daemon proves: schnorrkel, no sp-core.
    fn daemon_prove(input: &VrfTranscriptInput) -> (VrfProofBytes, [u8; 16]) {
        let (inout, proof, _) = daemon_keypair().vrf_sign(input.transcript());
        let bytes = VrfProofBytes {
            pre_output: inout.to_preout().to_bytes(),
            proof: proof.to_bytes(),
        };
        (bytes, inout.make_bytes::<[u8; 16]>(VRF_OUTPUT_CONTEXT))
    }

    /// As the runtime will verify: sp-core's sr25519 VRF over the raw bytes.
    fn runtime_verify(
        public: &sr25519::Public,
        input: &VrfTranscriptInput,
        proof: &VrfProofBytes,
    ) -> Option<[u8; 16]> {
        let signature = VrfSignature::decode(&mut &proof.encode()[..]).ok()?;
        let transcript = VrfTranscript(input.transcript());
        if !public.vrf_verify(&VrfSignData::new(transcript.clone()), &signature) {
            return None;
        }
        public
            .make_bytes::<16>(VRF_OUTPUT_CONTEXT, &transcript, &signature.pre_output)
            .ok()
    }

    #[test]
    fn encodings_are_pinned() {
        let input = VrfTranscriptInput::task_assignment([1; 32], TaskId(0x0203), [4; 32]);
        let expected = ["00", &"01".repeat(32), "0302000000000000", &"04".repeat(32)].concat();
        assert_eq!(hex::encode(input.encode()), expected);
        assert_eq!(VrfDomain::CommitteeSeat.encode(), [1]);
        let proof = VrfProofBytes {
            pre_output: [5; 32],
            proof: [6; 64],
        };
        assert_eq!(proof.encode(), [[5u8; 32].as_slice(), &[6u8; 64]].concat());
        assert_eq!(VrfTranscriptInput::max_encoded_len(), 73);
    }

    #[test]
    fn sp_core_derives_the_same_key_as_schnorrkel() {
        let pair = sr25519::Pair::from_seed(&SECRET);
        assert_eq!(pair.public().0, signer_account());
    }

    #[test]
    fn a_schnorrkel_proof_verifies_with_sp_core_and_gives_the_same_output() {
        let public = sr25519::Public::from_raw(signer_account());
        let input = VrfTranscriptInput::task_assignment(SEED, TaskId(42), signer_account());
        let (proof, daemon_output) = daemon_prove(&input);
        assert_eq!(runtime_verify(&public, &input, &proof), Some(daemon_output));
    }

    #[test]
    fn a_proof_is_bound_to_its_task_seed_domain_and_signer() {
        let public = sr25519::Public::from_raw(signer_account());
        let input = VrfTranscriptInput::task_assignment(SEED, TaskId(42), signer_account());
        let (proof, _) = daemon_prove(&input);
        let other_task = VrfTranscriptInput { id: 43, ..input };
        let other_seed = VrfTranscriptInput {
            seed: [0; 32],
            ..input
        };
        let other_domain = VrfTranscriptInput {
            domain: VrfDomain::CommitteeSeat,
            ..input
        };
        let other_signer = VrfTranscriptInput {
            signer: [7; 32],
            ..input
        };
        for wrong in [other_task, other_seed, other_domain, other_signer] {
            assert_eq!(runtime_verify(&public, &wrong, &proof), None, "{wrong:?}");
        }
    }

    #[test]
    fn a_tampered_proof_is_rejected_not_a_panic() {
        let public = sr25519::Public::from_raw(signer_account());
        let input = VrfTranscriptInput::committee_seat(SEED, RoundId(9), signer_account());
        let (proof, _) = daemon_prove(&input);
        let mut flipped = proof;
        flipped.proof[0] ^= 1;
        assert_eq!(runtime_verify(&public, &input, &flipped), None);
        let garbage = VrfProofBytes {
            pre_output: [0xff; 32],
            proof: [0xff; 64],
        };
        assert_eq!(runtime_verify(&public, &input, &garbage), None);
    }

    /// Golden vector: the output is a function of key and input alone, and a proof made once
    /// must keep verifying. If this fails, every deployed daemon and the chain disagree.
    #[test]
    fn golden_vector() {
        let input = VrfTranscriptInput::task_assignment(SEED, TaskId(42), signer_account());
        let (fresh, output) = daemon_prove(&input);
        assert_eq!(hex::encode(output), GOLDEN_OUTPUT);
        // The pre-output is deterministic; the proof is randomized, so a fresh one differs.
        assert_eq!(hex::encode(fresh.pre_output), GOLDEN_PRE_OUTPUT);
        let proof = VrfProofBytes {
            pre_output: hex::decode(GOLDEN_PRE_OUTPUT).unwrap().try_into().unwrap(),
            proof: hex::decode(GOLDEN_PROOF).unwrap().try_into().unwrap(),
        };
        let public = sr25519::Public::from_raw(signer_account());
        assert_eq!(
            runtime_verify(&public, &input, &proof)
                .map(hex::encode)
                .as_deref(),
            Some(GOLDEN_OUTPUT)
        );
        // The same bytes parse as schnorrkel types, as a daemon receiving them would.
        assert!(VRFPreOut::from_bytes(&proof.pre_output).is_ok());
        assert!(VRFProof::from_bytes(&proof.proof).is_ok());
    }

    const GOLDEN_OUTPUT: &str = "67383fb297c3b4bb3a0b55e28b14693e";
    const GOLDEN_PRE_OUTPUT: &str =
        "9cdb2adb57bd4e9e40a6585bdaceb1877353e9c7236e23a57afcd75166be0447";
    const GOLDEN_PROOF: &str = concat!(
        "68f5aad224f0e1a3336d70edb840a9b165a66adcc6074611adb4a9d25573c602",
        "9011a0275b00c1daa4f105cc67119e5702d2c251cfbf9e5245c44f3f86733a0a",
    );
}
