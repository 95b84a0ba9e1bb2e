//! A runtime with only this pallet and balances; snapshots, rounds, randomness and VRF keys are
//! programmable fakes. VRF proofs are real sr25519 proofs.
use crate as pallet_task_market;
use capsule_pallet_traits::{
    account_bytes, AttestationPhase, EpochIndex, EpochSnapshot, EpochSnapshots, HardwareLevel,
    RecentRandomness, ReputationEvents, RoundId, SnapshotEntry, TaskId, TaskRounds, VoteAlignment,
    VrfKeys,
};
use capsule_primitives::{
    keys::HpcSessionKeys,
    vrf::{VrfProofBytes, VrfTranscriptInput, VRF_OUTPUT_CONTEXT},
};
use codec::{Decode, Encode};
use core::cell::RefCell;
use frame_support::{
    derive_impl, parameter_types,
    traits::{ConstU32, ConstU64, ConstU8, Hooks},
    weights::Weight,
    BoundedVec,
};
use sp_core::{
    crypto::{Pair as _, VrfSecret},
    sr25519::{
        self,
        vrf::{VrfSignData, VrfTranscript},
    },
};
use sp_runtime::{BuildStorage, DispatchError};

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        TaskMarket: pallet_task_market,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountData = pallet_balances::AccountData<u64>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
    type AccountStore = System;
}

/// What every numbered account 1..=20 starts with.
pub const ENDOWMENT: u64 = 10_000;
pub const TREASURY: u64 = 99;
pub const VERIFIER_FEE: u64 = 2;
/// Members one round can pay (a first committee of 3 and a re-opened one of 6).
pub const MAX_PAID_MEMBERS: u32 = 9;
pub const MAX_ATTEMPTS: u8 = 2;
/// 2 fees x 9 members x 2 phases x 2 draws.
pub const FEE_RESERVE: u64 = VERIFIER_FEE * MAX_PAID_MEMBERS as u64 * 2 * MAX_ATTEMPTS as u64;
pub const SEED_BLOCKS: u64 = 3;
pub const CLAIM_WINDOW: u64 = 4;
pub const CANCEL_FEE: u64 = 5;
pub const MIN_REWARD: u64 = 10;
pub const MAX_TIMEOUT: u64 = 100;
pub const MAX_TASKS_PER_BLOCK: u32 = 2;
pub const MAX_CLAIMANTS: u32 = 3;

parameter_types! {
    pub static TargetClaimants: u32 = 1_000;
    pub const Treasury: u64 = TREASURY;
}

std::thread_local! {
    static SNAPSHOT: RefCell<Vec<(u64, u128)>> = const { RefCell::new(Vec::new()) };
    static OPENED: RefCell<Vec<(u64, AttestationPhase, TaskId, HpcSessionKeys)>> = const { RefCell::new(Vec::new()) };
    static ROUNDS_FULL: RefCell<bool> = const { RefCell::new(false) };
    static COMPLETED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    static VRF_KEYS: RefCell<Vec<(u64, [u8; 32])>> = const { RefCell::new(Vec::new()) };
}

/// The reputation pallet, as far as completed tasks go.
pub struct FakeReputation;
impl FakeReputation {
    pub fn completed() -> Vec<u64> {
        COMPLETED.with(|c| c.borrow().clone())
    }
}
impl ReputationEvents<u64> for FakeReputation {
    fn round_passed(_: &u64) {}
    fn round_failed(_: &u64) {}
    fn vote_counted(_: &u64, _: VoteAlignment) {}
    fn task_completed(who: &u64) {
        COMPLETED.with(|c| c.borrow_mut().push(*who));
    }
    fn set_hardware_level(_: &u64, _: HardwareLevel) -> sp_runtime::DispatchResult {
        Ok(())
    }
    fn level_allowed(_: HardwareLevel) -> bool {
        true
    }
    fn event_weight() -> Weight {
        Weight::zero()
    }
}

/// The reputation pallet's epoch snapshot (one, whatever the epoch).
pub struct FakeSnapshots;
impl FakeSnapshots {
    pub fn set(members: Vec<(u64, u128)>) {
        SNAPSHOT.with(|s| *s.borrow_mut() = members);
    }
}
impl EpochSnapshots<u64> for FakeSnapshots {
    type MaxGateways = ConstU32<16>;
    fn current_epoch() -> EpochIndex {
        EpochIndex(0)
    }
    fn snapshot(epoch: EpochIndex) -> Option<EpochSnapshot<u64, ConstU32<16>>> {
        let members: Vec<SnapshotEntry<u64>> = SNAPSHOT
            .with(|s| s.borrow().clone())
            .into_iter()
            .map(|(account, weight)| SnapshotEntry {
                account,
                level: HardwareLevel::HpcTpm,
                weight,
            })
            .collect();
        let total_weight = members.iter().map(|e| e.weight).sum();
        Some(EpochSnapshot {
            epoch,
            members: BoundedVec::truncate_from(members),
            total_weight,
        })
    }
    fn is_eligible(who: &u64) -> bool {
        SNAPSHOT.with(|s| s.borrow().iter().any(|(account, _)| account == who))
    }
}

/// The attestation pallet's side: records the rounds the market opens.
pub struct FakeRounds;
impl FakeRounds {
    pub fn opened() -> Vec<(u64, AttestationPhase, TaskId, HpcSessionKeys)> {
        OPENED.with(|o| o.borrow().clone())
    }
    /// Makes every later `open_task_round` fail (or succeed again), as a full block would.
    pub fn fill(full: bool) {
        ROUNDS_FULL.with(|f| *f.borrow_mut() = full);
    }
}
impl TaskRounds<u64> for FakeRounds {
    type Balance = u64;
    fn open_task_round(
        executor: &u64,
        phase: AttestationPhase,
        task: TaskId,
        session_keys: HpcSessionKeys,
    ) -> Result<RoundId, DispatchError> {
        if ROUNDS_FULL.with(|f| *f.borrow()) {
            return Err(DispatchError::Other("rounds full"));
        }
        OPENED.with(|o| {
            let mut opened = o.borrow_mut();
            opened.push((*executor, phase, task, session_keys));
            Ok(RoundId(opened.len() as u64 - 1))
        })
    }
    fn open_weight() -> Weight {
        Weight::zero()
    }
    fn verifier_fee() -> u64 {
        VERIFIER_FEE
    }
    fn max_paid_members() -> u32 {
        MAX_PAID_MEMBERS
    }
}

/// A stand-in for BABE's per-block VRF outputs: the hash of each recent block number.
pub struct BlockNumberRandomness;
impl BlockNumberRandomness {
    pub fn at(block: u64) -> [u8; 32] {
        capsule_primitives::hashing::blake2_256(&block.encode())
    }
}
impl RecentRandomness for BlockNumberRandomness {
    fn seed_blocks() -> u32 {
        SEED_BLOCKS as u32
    }
    fn recent_outputs() -> Vec<[u8; 32]> {
        let now = System::block_number();
        (now.saturating_sub(SEED_BLOCKS - 1)..=now)
            .map(Self::at)
            .collect()
    }
}

/// Account `n`'s sr25519 VRF key pair (accounts 1..=20 have keys; others have none).
pub fn vrf_pair(who: u64) -> sr25519::Pair {
    sr25519::Pair::from_seed(&[who as u8; 32])
}

pub struct FakeVrfKeys;
impl VrfKeys<u64> for FakeVrfKeys {
    fn vrf_key(who: &u64, _: EpochIndex) -> Option<[u8; 32]> {
        let set = VRF_KEYS.with(|k| {
            k.borrow()
                .iter()
                .find(|(account, _)| account == who)
                .map(|(_, key)| *key)
        });
        set.or_else(|| (1..=20).contains(who).then(|| vrf_pair(*who).public().0))
    }
}

#[cfg(feature = "runtime-benchmarks")]
impl crate::benchmarking::BenchmarkHelper<u64> for FakeVrfKeys {
    fn set_snapshot(members: Vec<(u64, u128)>) {
        FakeSnapshots::set(members);
    }
    fn set_vrf_key(who: &u64, key: [u8; 32]) {
        VRF_KEYS.with(|k| k.borrow_mut().push((*who, key)));
    }
}

/// `who`'s proof for `task` with `seed`, signed by `signer`'s key, and its output.
pub fn prove_as(signer: u64, who: u64, task: TaskId, seed: [u8; 32]) -> (VrfProofBytes, [u8; 16]) {
    let input = VrfTranscriptInput::task_assignment(seed, task, account_bytes(&who));
    let data = VrfSignData::new(VrfTranscript(input.transcript()));
    let pair = vrf_pair(signer);
    let signature = pair.vrf_sign(&data);
    let output = pair.make_bytes::<16>(VRF_OUTPUT_CONTEXT, &VrfTranscript(input.transcript()));
    let proof = VrfProofBytes::decode(&mut &signature.encode()[..]).expect("same layout");
    (proof, output)
}

/// `who`'s own proof for `task` with `seed`.
pub fn prove(who: u64, task: TaskId, seed: [u8; 32]) -> VrfProofBytes {
    prove_as(who, who, task, seed).0
}

/// Account `n`'s HPC session Ed25519 key pair (the key its pre-task round attests).
pub fn session_pair(who: u64) -> sp_core::ed25519::Pair {
    sp_core::ed25519::Pair::from_seed(&[who as u8 + 100; 32])
}

pub fn session_keys(who: u64) -> HpcSessionKeys {
    HpcSessionKeys {
        x25519: [who as u8; 32],
        ed25519: session_pair(who).public().0,
    }
}

impl pallet_task_market::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type Snapshots = FakeSnapshots;
    type Rounds = FakeRounds;
    type Randomness = BlockNumberRandomness;
    type VrfKeys = FakeVrfKeys;
    type Reputation = FakeReputation;
    type Treasury = Treasury;
    type CancelFee = ConstU64<CANCEL_FEE>;
    type MinReward = ConstU64<MIN_REWARD>;
    type ClaimWindow = ConstU64<CLAIM_WINDOW>;
    type TargetClaimants = TargetClaimants;
    type MaxAttempts = ConstU8<MAX_ATTEMPTS>;
    type MaxClaimants = ConstU32<MAX_CLAIMANTS>;
    type MaxInputs = ConstU32<4>;
    type MaxRecipients = ConstU32<4>;
    type MaxTimeout = ConstU64<MAX_TIMEOUT>;
    type MaxTasksPerBlock = ConstU32<MAX_TASKS_PER_BLOCK>;
    type WeightInfo = ();
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = FakeVrfKeys;
}

pub fn build() -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .unwrap();
    pallet_balances::GenesisConfig::<Test> {
        balances: (1..=20)
            .map(|who| (who, ENDOWMENT))
            .chain([(TREASURY, 1)])
            .collect(),
        ..Default::default()
    }
    .assimilate_storage(&mut storage)
    .unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    // The benchmarks make session keys in a keystore, as the benchmark CLI provides.
    ext.register_extension(sp_keystore::KeystoreExt::new(
        sp_keystore::testing::MemoryKeystore::new(),
    ));
    ext.execute_with(|| System::set_block_number(1));
    ext
}

/// Runs `test`, then checks the pallet's invariants (escrow equals open tasks' holds).
pub fn build_and_execute(test: impl FnOnce()) {
    build().execute_with(|| {
        test();
        TaskMarket::do_try_state().expect("the task-market invariants hold after the test");
    });
    SNAPSHOT.with(|s| s.borrow_mut().clear());
    OPENED.with(|o| o.borrow_mut().clear());
    ROUNDS_FULL.with(|f| *f.borrow_mut() = false);
    COMPLETED.with(|c| c.borrow_mut().clear());
    VRF_KEYS.with(|k| k.borrow_mut().clear());
    TargetClaimants::set(1_000);
}

/// Moves to block `n`, running the pallet's `on_initialize` as the executive would.
pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let next = System::block_number() + 1;
        System::set_block_number(next);
        TaskMarket::on_initialize(next);
    }
}

pub fn last_event() -> pallet_task_market::Event<Test> {
    System::events()
        .into_iter()
        .filter_map(|record| match record.event {
            RuntimeEvent::TaskMarket(event) => Some(event),
            _ => None,
        })
        .next_back()
        .expect("an event")
}
