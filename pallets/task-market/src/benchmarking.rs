//! Benchmarks of every call and hook, at their worst cases:
//! - `create_task`: every input and recipient slot used, the seed queue one short of its cap;
//! - `cancel`: a seeded task, removed from a full claim-closing queue, its fee to the treasury;
//! - `claim`: a full snapshot with the claimant last, a real sr25519 VRF proof verified, a claim
//!   list one short of full, and a best claim to beat;
//! - `submit_result`: a full result list, an Ed25519 signature verified, a deadline removed
//!   from a full queue;
//! - `round_closed`: a passed post-task round paying the most revealers a round can have, the
//!   reward and the reserve's rest;
//! - the hooks: `n` tasks seeded, `n` claim windows closed (each opening a pre-task round),
//!   `n` deadlines missed (each redrawn).
//!
//! The VRF proof is precomputed (no host function signs VRF), for a fixed key, seed and task
//! and the claimant's account bytes; `bench_vrf_proofs_verify` checks it still verifies.
use super::*;
use capsule_primitives::task::MAX_RESULTS;
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Hooks};
use frame_system::RawOrigin;
use sp_core::crypto::KeyTypeId;
use sp_runtime::traits::TrailingZeroInput;

const BENCH_KEYS: KeyTypeId = KeyTypeId(*b"ctbm");

/// The seed of the benchmarked draw.
pub const BENCH_SEED: [u8; 32] = [0x5e; 32];
/// The sr25519 VRF secret seed behind [`BENCH_VRF_PUBLIC`] (for regenerating the proofs).
pub const BENCH_VRF_SECRET: [u8; 32] = [0x42; 32];
/// The claimant's VRF public key.
pub const BENCH_VRF_PUBLIC: [u8; 32] =
    hex_literal::hex!("a4d007a95b28ce117e4051904503612abdcbd22b60475121f92a8b5dedac375a");
/// Proofs of `task_assignment(BENCH_SEED, TaskId(0), account)` by [`BENCH_VRF_PUBLIC`], for
/// the account bytes of the claimant in a runtime with 32-byte accounts and in the mock (u64).
pub const BENCH_VRF_PROOFS: [([u8; 32], [u8; 96]); 2] = [
    (
        [7; 32],
        hex_literal::hex!("a447eda2bfd4fe2297859e83ac660b189db126e64c459fc530a38dc2d18304480239efade36ac0a33a3e4b9f393f53b1d7b319dbf166b310d880e1085878bc06b1e3283149ff200624db8c18e7aa8fb5e3ddd3b31b4600d317bd9f4b8b17f20e"),
    ),
    (
        hex_literal::hex!("8eb087fa596e460776331338109b4827b52eaacf1169f3b381b6ac3556a1c3c0"),
        hex_literal::hex!("5076cd4d4ba94541880491db6f54206d272b1a39515048ce24c15cbf60984a3250a74b0a8b5685f1c80d45fe4a36a675745195cb64a043e90d69e13c7b542c03113c69e2678b6dd8e8b9780770beacc7e2af12c05fa5703f9cf38565c42ab405"),
    ),
];

/// The claimant: an account made of the bytes 7.
fn claimant<T: Config>() -> T::AccountId {
    T::AccountId::decode(&mut TrailingZeroInput::new(&[7u8; 32])).expect("infinite input")
}

/// The precomputed proof for `who`'s account bytes.
fn bench_proof<T: Config>(who: &T::AccountId) -> VrfProofBytes {
    let bytes = account_bytes(who);
    let (_, proof) = BENCH_VRF_PROOFS
        .iter()
        .find(|(account, _)| *account == bytes)
        .expect("a proof for this runtime's account encoding (see bench_vrf_proofs_verify)");
    VrfProofBytes::decode(&mut &proof[..]).expect("96 bytes")
}

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
    let who: T::AccountId = account(name, index, 0);
    let amount = T::MinReward::get()
        .saturating_add(Pallet::<T>::fee_reserve())
        .saturating_mul(1_000u32.into());
    T::Currency::set_balance(&who, amount);
    who
}

fn full_spec<T: Config>() -> TaskSpec<T> {
    TaskSpec {
        image: ImageDigest([1; 32]),
        inputs: BoundedVec::truncate_from(
            (0..T::MaxInputs::get())
                .map(|i| CapsuleCid {
                    codec: capsule_primitives::capsule::CidCodec::DagPb,
                    digest: [i as u8; 32],
                })
                .collect(),
        ),
        policy: PolicyDigest([2; 32]),
        recipients: BoundedVec::truncate_from(
            (0..T::MaxRecipients::get())
                .map(|i| account("recipient", i, 0))
                .collect(),
        ),
        timeout: T::MaxTimeout::get(),
    }
}

/// Creates a task by `creator` (queued for seeding).
fn create<T: Config>(creator: &T::AccountId) -> TaskId {
    let id = NextTaskId::<T>::get();
    Pallet::<T>::create_task(
        RawOrigin::Signed(creator.clone()).into(),
        alloc::boxed::Box::new(full_spec::<T>()),
        T::MinReward::get(),
    )
    .expect("funded, within the caps");
    id
}

/// A claim that any valid claim beats.
fn weak_claim<T: Config>(executor: T::AccountId) -> Claim<T::AccountId> {
    Claim {
        executor,
        ticket: Ticket {
            neg_ln: u64::MAX,
            weight: 1,
        },
        session_keys: HpcSessionKeys {
            x25519: [3; 32],
            ed25519: [4; 32],
        },
    }
}

/// Puts task `id` in its claim window with `BENCH_SEED`, a threshold everyone is under, and
/// `claimants` claims so far (the last of them leading with a weak claim).
fn claiming<T: Config>(id: TaskId, claimants: u32, closes_at: BlockNumberFor<T>) {
    let mut task = Tasks::<T>::get(id).expect("created");
    let list: alloc::vec::Vec<T::AccountId> =
        (0..claimants).map(|i| account("claimed", i, 0)).collect();
    task.status = TaskStatus::Claiming {
        epoch: T::Snapshots::current_epoch(),
        seed: BENCH_SEED,
        threshold: Threshold {
            target: u64::MAX,
            total_weight: 1,
        },
        closes_at,
        best: list.last().cloned().map(weak_claim::<T>),
        claimants: BoundedVec::truncate_from(list),
    };
    Tasks::<T>::insert(id, task);
}

/// `count` snapshot members of weight 1, then `last` (if any).
fn snapshot<T: Config>(count: u32, last: Option<T::AccountId>) {
    let mut members: alloc::vec::Vec<(T::AccountId, u128)> =
        (0..count).map(|i| (account("member", i, 0), 1)).collect();
    if let Some(last) = last {
        members.push((last, 1));
    }
    T::BenchmarkHelper::set_snapshot(members);
}

/// Makes task `id` running for `executor`, whose session Ed25519 key is `session`.
fn running<T: Config>(id: TaskId, executor: &T::AccountId, session: [u8; 32]) -> BlockNumberFor<T> {
    let mut task = Tasks::<T>::get(id).expect("created");
    let mut claim = weak_claim::<T>(executor.clone());
    claim.session_keys.ed25519 = session;
    let until = frame_system::Pallet::<T>::block_number().saturating_add(T::MaxTimeout::get());
    task.status = TaskStatus::Running { claim, until };
    Tasks::<T>::insert(id, task);
    ExecutorOf::<T>::insert(executor, id);
    until
}

/// Prepares what the benchmarks need of the neighbouring pallets.
pub trait BenchmarkHelper<AccountId> {
    /// Makes `members` (account, weight) the snapshot of the current epoch.
    fn set_snapshot(members: alloc::vec::Vec<(AccountId, u128)>);
    /// Gives `who` the VRF key `key` in every epoch.
    fn set_vrf_key(who: &AccountId, key: [u8; 32]);
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn create_task() {
        let creator = funded::<T>("creator", 0);
        // The benchmark runner moves a genesis state to block 1 for the call: start there.
        let now: BlockNumberFor<T> = One::one();
        frame_system::Pallet::<T>::set_block_number(now);
        let due = now.saturating_add(T::Randomness::seed_blocks().into());
        let filler = funded::<T>("creator", 1);
        for _ in 1..T::MaxTasksPerBlock::get() {
            create::<T>(&filler);
        }
        let spec = alloc::boxed::Box::new(full_spec::<T>());
        #[extrinsic_call]
        _(RawOrigin::Signed(creator), spec, T::MinReward::get());
        assert_eq!(
            SeedQueue::<T>::get(due).len() as u32,
            T::MaxTasksPerBlock::get()
        );
    }

    #[benchmark]
    fn cancel() {
        let creator = funded::<T>("creator", 0);
        let filler = funded::<T>("creator", 1);
        let closes_at = frame_system::Pallet::<T>::block_number().saturating_add(10u32.into());
        let close = closes_at.saturating_add(One::one());
        let mut queue = BoundedVec::<TaskId, T::MaxTasksPerBlock>::new();
        for _ in 1..T::MaxTasksPerBlock::get() {
            let id = create::<T>(&filler);
            claiming::<T>(id, 0, closes_at);
            queue.try_push(id).expect("within the cap");
        }
        let id = create::<T>(&creator);
        claiming::<T>(id, 0, closes_at);
        queue.try_push(id).expect("within the cap");
        let _ = SeedQueue::<T>::clear(u32::MAX, None);
        CloseQueue::<T>::insert(close, queue);
        #[extrinsic_call]
        _(RawOrigin::Signed(creator), id);
        assert!(Tasks::<T>::get(id).is_none());
    }

    #[benchmark]
    fn claim() {
        let creator = funded::<T>("creator", 0);
        let id = create::<T>(&creator);
        assert_eq!(id, TaskId(0), "the precomputed proof is for task 0");
        let who = claimant::<T>();
        let max = <T::Snapshots as EpochSnapshots<T::AccountId>>::MaxGateways::get();
        snapshot::<T>(max.saturating_sub(1), Some(who.clone()));
        T::BenchmarkHelper::set_vrf_key(&who, BENCH_VRF_PUBLIC);
        let closes_at = frame_system::Pallet::<T>::block_number().saturating_add(10u32.into());
        claiming::<T>(id, T::MaxClaimants::get().saturating_sub(1), closes_at);
        let proof = bench_proof::<T>(&who);
        let keys = HpcSessionKeys {
            x25519: [5; 32],
            ed25519: [6; 32],
        };
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), id, proof, keys);
        let TaskStatus::Claiming { best, .. } = Tasks::<T>::get(id).expect("open").status else {
            panic!("claiming")
        };
        assert_eq!(best.map(|leading| leading.executor), Some(who));
    }

    #[benchmark]
    fn submit_result() {
        let creator = funded::<T>("creator", 0);
        let filler = funded::<T>("creator", 1);
        let executor: T::AccountId = account("executor", 0, 0);
        let session = sp_io::crypto::ed25519_generate(BENCH_KEYS, None);
        let id = create::<T>(&creator);
        let until = running::<T>(id, &executor, session.0);
        let deadline = until.saturating_add(One::one());
        let mut queue = BoundedVec::<TaskId, T::MaxTasksPerBlock>::new();
        for _ in 1..T::MaxTasksPerBlock::get() {
            let other = create::<T>(&filler);
            queue.try_push(other).expect("within the cap");
        }
        queue.try_push(id).expect("within the cap");
        DeadlineQueue::<T>::insert(deadline, queue);
        let manifest = ResultManifest {
            task: id,
            outcome: TaskOutcome::Completed,
            results: BoundedVec::truncate_from(
                (0..MAX_RESULTS)
                    .map(|i| CapsuleCid {
                        codec: capsule_primitives::capsule::CidCodec::Raw,
                        digest: [i as u8; 32],
                    })
                    .collect(),
            ),
            evidence: [9; 32],
        };
        let signature =
            sp_io::crypto::ed25519_sign(BENCH_KEYS, &session, &manifest.signing_message())
                .expect("the key is in the keystore");
        #[extrinsic_call]
        _(RawOrigin::Signed(executor), manifest, signature.0);
        assert!(matches!(
            Tasks::<T>::get(id).expect("open").status,
            TaskStatus::Verifying { .. }
        ));
    }

    #[benchmark]
    fn round_closed(r: Linear<0, { T::Rounds::max_paid_members() }>) {
        let creator = funded::<T>("creator", 0);
        let executor: T::AccountId = account("executor", 0, 0);
        let id = create::<T>(&creator);
        let mut task = Tasks::<T>::get(id).expect("created");
        let round = RoundId(7);
        task.status = TaskStatus::Verifying {
            claim: weak_claim::<T>(executor.clone()),
            round,
            outcome: TaskOutcome::Completed,
        };
        Tasks::<T>::insert(id, task);
        ExecutorOf::<T>::insert(&executor, id);
        let revealers: alloc::vec::Vec<T::AccountId> =
            (0..r).map(|i| account("revealer", i, 0)).collect();
        #[block]
        {
            Pallet::<T>::round_closed(
                round,
                AttestationPhase::PostTask,
                id,
                RoundOutcome::Passed,
                &revealers,
            );
        }
        assert!(Tasks::<T>::get(id).is_none());
    }

    #[benchmark]
    fn on_initialize_seeding(n: Linear<0, { T::MaxTasksPerBlock::get() }>) {
        let creator = funded::<T>("creator", 0);
        let max = <T::Snapshots as EpochSnapshots<T::AccountId>>::MaxGateways::get();
        snapshot::<T>(max, None);
        let ids: alloc::vec::Vec<TaskId> = (0..n).map(|_| create::<T>(&creator)).collect();
        let due = frame_system::Pallet::<T>::block_number()
            .saturating_add(T::Randomness::seed_blocks().into());
        frame_system::Pallet::<T>::set_block_number(due);
        #[block]
        {
            Pallet::<T>::on_initialize(due);
        }
        for id in ids {
            assert!(matches!(
                Tasks::<T>::get(id).expect("open").status,
                TaskStatus::Claiming { .. }
            ));
        }
    }

    #[benchmark]
    fn on_initialize_closing(n: Linear<0, { T::MaxTasksPerBlock::get() }>) {
        let creator = funded::<T>("creator", 0);
        let now = frame_system::Pallet::<T>::block_number().saturating_add(100u32.into());
        let closes_at = now.saturating_sub(One::one());
        let mut queue = BoundedVec::<TaskId, T::MaxTasksPerBlock>::new();
        for index in 0..n {
            let id = create::<T>(&creator);
            claiming::<T>(id, 0, closes_at);
            let mut task = Tasks::<T>::get(id).expect("created");
            if let TaskStatus::Claiming { best, .. } = &mut task.status {
                *best = Some(weak_claim::<T>(account("winner", index, 0)));
            }
            Tasks::<T>::insert(id, task);
            queue.try_push(id).expect("within the cap");
        }
        let _ = SeedQueue::<T>::clear(u32::MAX, None);
        CloseQueue::<T>::insert(now, queue);
        frame_system::Pallet::<T>::set_block_number(now);
        #[block]
        {
            Pallet::<T>::on_initialize(now);
        }
        assert!(CloseQueue::<T>::get(now).is_empty());
    }

    #[benchmark]
    fn on_initialize_deadlines(n: Linear<0, { T::MaxTasksPerBlock::get() }>) {
        let creator = funded::<T>("creator", 0);
        let mut queue = BoundedVec::<TaskId, T::MaxTasksPerBlock>::new();
        let mut deadline = Zero::zero();
        for index in 0..n {
            let id = create::<T>(&creator);
            let until = running::<T>(id, &account("executor", index, 0), [4; 32]);
            deadline = until.saturating_add(One::one());
            queue.try_push(id).expect("within the cap");
        }
        let _ = SeedQueue::<T>::clear(u32::MAX, None);
        if n == 0 {
            deadline = frame_system::Pallet::<T>::block_number()
                .saturating_add(T::MaxTimeout::get())
                .saturating_add(One::one());
        }
        DeadlineQueue::<T>::insert(deadline, queue);
        frame_system::Pallet::<T>::set_block_number(deadline);
        #[block]
        {
            Pallet::<T>::on_initialize(deadline);
        }
        assert!(ExecutorOf::<T>::iter().next().is_none());
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::build(), crate::mock::Test);
}

#[cfg(test)]
mod vectors {
    use super::*;
    use sp_core::{
        crypto::{Pair as _, VrfSecret},
        sr25519::{
            self,
            vrf::{VrfSignData, VrfTranscript},
        },
    };

    /// The precomputed proofs verify for their account bytes; on failure, prints fresh ones.
    #[test]
    fn bench_vrf_proofs_verify() {
        let pair = sr25519::Pair::from_seed(&BENCH_VRF_SECRET);
        assert_eq!(pair.public().0, BENCH_VRF_PUBLIC, "BENCH_VRF_PUBLIC");
        let mock_account = account_bytes(&claimant::<crate::mock::Test>());
        assert_eq!(
            BENCH_VRF_PROOFS[1].0, mock_account,
            "the mock claimant's bytes"
        );
        for (account, proof) in BENCH_VRF_PROOFS {
            let input = VrfTranscriptInput::task_assignment(BENCH_SEED, TaskId(0), account);
            let proof = VrfProofBytes::decode(&mut &proof[..]).expect("96 bytes");
            if verified_output(&BENCH_VRF_PUBLIC, &input, &proof).is_none() {
                let fresh = pair.vrf_sign(&VrfSignData::new(VrfTranscript(input.transcript())));
                panic!(
                    "no valid proof for account {}; use {}",
                    hex(&account),
                    hex(&fresh.encode())
                );
            }
        }
    }

    /// Prints fresh constants: `cargo test -p pallet-task-market --features runtime-benchmarks
    /// --lib print_bench_vrf_vectors -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn print_bench_vrf_vectors() {
        let pair = sr25519::Pair::from_seed(&BENCH_VRF_SECRET);
        println!("BENCH_VRF_PUBLIC {}", hex(&pair.public().0));
        let mock_account = account_bytes(&claimant::<crate::mock::Test>());
        for account in [[7u8; 32], mock_account] {
            let input = VrfTranscriptInput::task_assignment(BENCH_SEED, TaskId(0), account);
            let proof = pair.vrf_sign(&VrfSignData::new(VrfTranscript(input.transcript())));
            println!("account {} proof {}", hex(&account), hex(&proof.encode()));
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
