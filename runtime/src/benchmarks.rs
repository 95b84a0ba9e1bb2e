//! The pallets whose benchmarks this runtime runs (`runtime-benchmarks` only).
//! `scripts/bench/weights.sh` drives them; see `docs/weights.md`.
frame_benchmarking::define_benchmarks!(
    [frame_benchmarking, BaselineBench::<Runtime>]
    [frame_system, SystemBench::<Runtime>]
    [pallet_balances, Balances]
    [pallet_timestamp, Timestamp]
    [pallet_sudo, Sudo]
    [pallet_deposit, Deposit]
    [pallet_reputation, Reputation]
    [pallet_attestation, Attestation]
    [pallet_task_market, TaskMarket]
);
