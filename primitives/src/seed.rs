//! Seeds of rounds and tasks: never randomness anyone knows when the round or task opens.
//!
//! A round (or task) opened at block `b` waits until block `b + L`; its seed is the BLAKE2b-256
//! of a domain tag, its id and the BABE VRF outputs of blocks `b + 1 ..= b + L`, in block order
//! (ARCHITECTURE, "Randomness"). Each author knows its own block's output in advance, but none
//! knows the others'; the residual bias is the last author withholding its block.
use crate::{
    hashing::blake2_256,
    ids::{RoundId, TaskId},
};
use codec::Encode;

/// The domain tag of round seeds.
pub const ROUND_SEED_TAG: &[u8] = b"capsule/round-seed/v1";
/// The domain tag of task seeds.
pub const TASK_SEED_TAG: &[u8] = b"capsule/task-seed/v1";

/// The seed of `round` from the VRF outputs of the `L` blocks after its opening.
pub fn round_seed(round: RoundId, vrf_outputs: &[[u8; 32]]) -> [u8; 32] {
    seed(ROUND_SEED_TAG, &round.encode(), vrf_outputs)
}

/// The seed of `task` from the VRF outputs of the `L` blocks after its creation.
pub fn task_seed(task: TaskId, vrf_outputs: &[[u8; 32]]) -> [u8; 32] {
    seed(TASK_SEED_TAG, &task.encode(), vrf_outputs)
}

fn seed(tag: &[u8], id: &[u8], vrf_outputs: &[[u8; 32]]) -> [u8; 32] {
    let mut input = alloc::vec::Vec::with_capacity(tag.len() + id.len() + 32 * vrf_outputs.len());
    input.extend_from_slice(tag);
    input.extend_from_slice(id);
    for output in vrf_outputs {
        input.extend_from_slice(output);
    }
    blake2_256(&input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_separate_rounds_tasks_and_outputs() {
        let outputs = [[1u8; 32], [2; 32], [3; 32]];
        let round = round_seed(RoundId(5), &outputs);
        assert_ne!(
            round,
            task_seed(TaskId(5), &outputs),
            "the tag separates rounds and tasks"
        );
        assert_ne!(round, round_seed(RoundId(6), &outputs));
        assert_ne!(
            round,
            round_seed(RoundId(5), &[[1; 32], [3; 32], [2; 32]]),
            "order counts"
        );
        // Pinned: blake2b(b"capsule/round-seed/v1" + (5).to_bytes(8, "little") + outputs).
        assert_eq!(hex::encode(round), PINNED_ROUND_SEED);
    }

    const PINNED_ROUND_SEED: &str =
        "4b962dc2e5cf8c897eeedb2c085eba1a67923fc891dff8d9f6b21bbbbf4c98bd";
}
