//! Weights of `pallet_task_market`.
//!
//! Until `scripts/bench/weights.sh pallet_task_market` has measured them on our runtime (with
//! the pallet's benchmarks, still to be written), the `()` implementation below is a deliberate
//! over-estimate: the storage accesses each call makes at ParityDB prices, plus 2 ms of execution
//! for the sr25519 VRF verification in `claim` and 100 µs elsewhere. Nothing in the runtime uses
//! these yet: the pallet is not in the runtime.
#![allow(missing_docs)]

use frame_support::weights::{constants::ParityDbWeight, Weight};

/// What the calls and hooks of `pallet_task_market` cost.
pub trait WeightInfo {
    fn create_task() -> Weight;
    fn cancel() -> Weight;
    fn claim() -> Weight;
    fn on_initialize_seeding(n: u32) -> Weight;
    fn on_initialize_closing(n: u32) -> Weight;
    fn on_initialize_deadlines(n: u32) -> Weight;
    fn submit_result() -> Weight;
    fn round_closed(revealers: u32) -> Weight;
}

const EXECUTION: u64 = 100_000_000; // 100 µs
const VRF_VERIFICATION: u64 = 2_000_000_000; // 2 ms
const TASK_PROOF: u64 = 4_000; // a task's record, with bounded inputs and recipients, in bytes

impl WeightInfo for () {
    fn create_task() -> Weight {
        // NextTaskId, SeedQueue, Tasks, the hold (balance and holds).
        Weight::from_parts(EXECUTION, TASK_PROOF)
            .saturating_add(ParityDbWeight::get().reads_writes(4, 5))
    }
    fn cancel() -> Weight {
        // Tasks, a queue, the holds of creator and treasury, the treasury account.
        Weight::from_parts(EXECUTION, TASK_PROOF)
            .saturating_add(ParityDbWeight::get().reads_writes(6, 6))
    }
    fn claim() -> Weight {
        // Tasks, the snapshot (up to 256 members), the registry for the VRF key.
        Weight::from_parts(VRF_VERIFICATION, TASK_PROOF + 16_000)
            .saturating_add(ParityDbWeight::get().reads_writes(4, 1))
    }
    fn on_initialize_seeding(n: u32) -> Weight {
        // Per task: Tasks, the snapshot's total, the randomness ring, a close queue.
        ParityDbWeight::get().reads_writes(1, 1).saturating_add(
            Weight::from_parts(EXECUTION, TASK_PROOF + 16_000)
                .saturating_add(ParityDbWeight::get().reads_writes(4, 2))
                .saturating_mul(n.into()),
        )
    }
    fn on_initialize_closing(n: u32) -> Weight {
        // Per task: Tasks, and a redraw's seed queue or a refund's holds (the round it opens is
        // weighed by the attestation pallet's `open_weight`).
        ParityDbWeight::get().reads_writes(1, 1).saturating_add(
            Weight::from_parts(EXECUTION, TASK_PROOF)
                .saturating_add(ParityDbWeight::get().reads_writes(4, 4))
                .saturating_mul(n.into()),
        )
    }
    fn on_initialize_deadlines(n: u32) -> Weight {
        // Per task: Tasks, ExecutorOf, and a redraw's seed queue or a refund's holds.
        ParityDbWeight::get().reads_writes(1, 1).saturating_add(
            Weight::from_parts(EXECUTION, TASK_PROOF)
                .saturating_add(ParityDbWeight::get().reads_writes(5, 5))
                .saturating_mul(n.into()),
        )
    }
    fn submit_result() -> Weight {
        // Tasks, the Ed25519 check, the deadline queue (the round it opens is weighed by the
        // attestation pallet's `open_weight`, added here).
        Weight::from_parts(EXECUTION + 100_000_000, TASK_PROOF)
            .saturating_add(ParityDbWeight::get().reads_writes(3, 3))
    }
    fn round_closed(revealers: u32) -> Weight {
        // Tasks, ExecutorOf, a deadline queue or the executor's and creator's holds, plus a
        // fee transfer (holds and accounts of both sides) per revealer.
        Weight::from_parts(EXECUTION, TASK_PROOF)
            .saturating_add(ParityDbWeight::get().reads_writes(6, 6))
            .saturating_add(
                ParityDbWeight::get()
                    .reads_writes(2, 2)
                    .saturating_mul(revealers.into()),
            )
    }
}
