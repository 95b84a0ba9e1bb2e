//! A gateway's side of executor sortition: its private VRF ticket for a task.
//!
//! Every gateway of the task's epoch snapshot proves its sr25519 VRF over
//! `VrfTranscriptInput::task_assignment(seed, task, account)` (the transcript the runtime
//! verifies, defined once in `capsule_primitives::vrf`), turns the output into a
//! [`Ticket`] with its snapshot weight, and claims only if the ticket is under the draw's
//! threshold. Nobody else can compute the ticket before the gateway reveals it in its claim.
use capsule_primitives::{
    ids::TaskId,
    sortition::{Threshold, Ticket},
    vrf::{VrfProofBytes, VrfTranscriptInput, VRF_OUTPUT_CONTEXT},
};
use schnorrkel::{ExpansionMode, MiniSecretKey};

/// A gateway's sr25519 VRF key (the one it registered as `vrf_key`).
pub struct VrfSigner(schnorrkel::Keypair);

impl VrfSigner {
    /// The key of a 32-byte secret seed, expanded as `sp_core::sr25519::Pair::from_seed` and
    /// `subxt_signer::sr25519::Keypair::from_secret_key` expand it, so the public key is the
    /// one those tools show for the seed.
    pub fn from_seed(seed: [u8; 32]) -> Result<Self, schnorrkel::SignatureError> {
        Ok(Self(
            MiniSecretKey::from_bytes(&seed)?.expand_to_keypair(ExpansionMode::Ed25519),
        ))
    }

    /// The public key, as registered on chain.
    pub fn public(&self) -> [u8; 32] {
        self.0.public.to_bytes()
    }

    /// Proves this key's VRF for `task` drawn with `seed`, as `account`, and returns the proof
    /// with the output bytes sortition scores.
    pub fn prove_task(
        &self,
        seed: [u8; 32],
        task: TaskId,
        account: [u8; 32],
    ) -> (VrfProofBytes, [u8; 16]) {
        let input = VrfTranscriptInput::task_assignment(seed, task, account);
        let (in_out, proof, _) = self.0.vrf_sign(input.transcript());
        let output = in_out.make_bytes::<[u8; 16]>(VRF_OUTPUT_CONTEXT);
        let proof = VrfProofBytes {
            pre_output: in_out.to_preout().to_bytes(),
            proof: proof.to_bytes(),
        };
        (proof, output)
    }

    /// This gateway's ticket for `task`, if it may claim it: proved for `account` with the
    /// gateway's snapshot `weight`, `None` when the score is not under `threshold`.
    pub fn task_ticket(
        &self,
        seed: [u8; 32],
        task: TaskId,
        account: [u8; 32],
        weight: u128,
        threshold: Threshold,
    ) -> Option<TaskTicket> {
        let (proof, output) = self.prove_task(seed, task, account);
        let ticket = Ticket::new(output, weight);
        ticket
            .is_under(threshold)
            .then_some(TaskTicket { proof, ticket })
    }
}

impl core::fmt::Debug for VrfSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the secret.
        f.debug_tuple("VrfSigner").field(&self.public()).finish()
    }
}

/// A claimable ticket: the proof to send and the score it proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskTicket {
    pub proof: VrfProofBytes,
    pub ticket: Ticket,
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_primitives::sortition::ONE;

    const SEED: [u8; 32] = [3; 32];

    fn signer() -> VrfSigner {
        VrfSigner::from_seed([9; 32]).expect("any 32 bytes are a mini secret key")
    }

    #[test]
    fn the_public_key_is_the_one_subxt_signer_derives_from_the_seed() {
        let ours = signer().public();
        let theirs = subxt_signer::sr25519::Keypair::from_secret_key([9; 32])
            .expect("valid seed")
            .public_key()
            .0;
        assert_eq!(ours, theirs);
    }

    #[test]
    fn the_output_is_a_function_of_key_seed_task_and_account() {
        let signer = signer();
        let (_, output) = signer.prove_task(SEED, TaskId(1), [1; 32]);
        // Proofs are randomized; the output is not.
        assert_eq!(signer.prove_task(SEED, TaskId(1), [1; 32]).1, output);
        assert_ne!(signer.prove_task(SEED, TaskId(2), [1; 32]).1, output);
        assert_ne!(signer.prove_task(SEED, TaskId(1), [2; 32]).1, output);
        assert_ne!(signer.prove_task([4; 32], TaskId(1), [1; 32]).1, output);
        let other = VrfSigner::from_seed([10; 32]).unwrap();
        assert_ne!(other.prove_task(SEED, TaskId(1), [1; 32]).1, output);
    }

    #[test]
    fn a_ticket_is_offered_only_under_the_threshold() {
        let signer = signer();
        let (_, output) = signer.prove_task(SEED, TaskId(5), [1; 32]);
        let score = Ticket::new(output, 1);
        // A threshold of target t over total weight 1 admits scores under t.
        let above = Threshold {
            target: score.neg_ln.saturating_sub(1),
            total_weight: 1,
        };
        let under = Threshold {
            target: score.neg_ln.saturating_add(ONE),
            total_weight: 1,
        };
        assert_eq!(signer.task_ticket(SEED, TaskId(5), [1; 32], 1, above), None);
        let ticket = signer
            .task_ticket(SEED, TaskId(5), [1; 32], 1, under)
            .expect("under the threshold");
        assert_eq!(ticket.ticket, score);
    }
}
