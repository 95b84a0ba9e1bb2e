//! A runtime with only this pallet; bonds and reputation are programmable fakes.
use crate as pallet_attestation;
use capsule_pallet_traits::{
    AttestationPhase, BondInspect, BondSlash, EpochIndex, EpochSnapshot, EpochSnapshots,
    HardwareLevel, OnRoundClosed, ReputationEvents, RoundId, RoundOutcome, SlashAmount,
    SlashOutcome, SnapshotEntry, TaskId, VoteAlignment,
};
use codec::Encode;
use core::cell::RefCell;
use frame_support::{
    derive_impl,
    traits::{ConstU32, ConstU64, Get, Hooks},
    weights::Weight,
    BoundedVec,
};
use frame_system::EnsureRoot;
use sp_runtime::{BuildStorage, DispatchError, DispatchResult, Perbill};
use std::collections::BTreeSet;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Attestation: pallet_attestation,
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

pub const VERIFIER_FEE: u64 = 10;
/// What every numbered account 1..=20 starts with.
pub const ENDOWMENT: u64 = 1_000;

pub const MAX_GATEWAYS: u32 = 4;
pub const MAX_GOLDEN_PER_KIND: u32 = 2;

pub const SEED_BLOCKS: u64 = 3;
pub const COMMITTEE_SIZE: u32 = 3;
pub const MAX_ROUNDS_PER_BLOCK: u32 = 2;
pub const COMMIT_PERIOD: u64 = 5;
pub const REVEAL_PERIOD: u64 = 5;
/// Larger than a two-member committee (the small-committee test relies on it).
pub const MIN_SLASH_COMMITTEE: u32 = 3;
pub const MAX_RECORDS: u32 = 2;
const _: () = assert!(2 < MIN_SLASH_COMMITTEE);

frame_support::parameter_types! {
    pub const FailSlash: Perbill = Perbill::from_percent(20);
}

std::thread_local! {
    static SNAPSHOT: RefCell<Vec<(u64, u128)>> = const { RefCell::new(Vec::new()) };
    static INELIGIBLE: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
    static BONDED: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
    static SOFTWARE_ALLOWED: RefCell<bool> = const { RefCell::new(true) };
    static REPUTATION: RefCell<Vec<ReputationCall>> = const { RefCell::new(Vec::new()) };
    static SLASHES: RefCell<Vec<(u64, RoundId, Option<u64>)>> = const { RefCell::new(Vec::new()) };
    static CLOSED: RefCell<Vec<(RoundId, u64, RoundOutcome)>> = const { RefCell::new(Vec::new()) };
}

/// What the pallet told the reputation pallet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReputationCall {
    Passed(u64),
    Failed(u64),
    Vote(u64, VoteAlignment),
    Level(u64, HardwareLevel),
}

pub fn reputation_calls() -> Vec<ReputationCall> {
    REPUTATION.with(|r| core::mem::take(&mut *r.borrow_mut()))
}

pub fn slashes() -> Vec<(u64, RoundId, Option<u64>)> {
    SLASHES.with(|s| s.borrow().clone())
}

pub fn closed_rounds() -> Vec<(RoundId, u64, RoundOutcome)> {
    CLOSED.with(|c| c.borrow().clone())
}

/// The task-market's side of a closing round.
pub struct RecordClosed;
impl OnRoundClosed<u64> for RecordClosed {
    fn on_round_closed(
        round: RoundId,
        subject: &u64,
        _: AttestationPhase,
        _: Option<TaskId>,
        outcome: RoundOutcome,
        _: &[u64],
    ) {
        CLOSED.with(|c| c.borrow_mut().push((round, *subject, outcome)));
    }
    fn closed_weight() -> Weight {
        Weight::zero()
    }
}

/// Who holds the minimum bond (the deposit pallet).
pub struct FakeBonds;
impl FakeBonds {
    pub fn bond(who: u64) {
        BONDED.with(|b| b.borrow_mut().insert(who));
    }
}
impl BondSlash<u64> for FakeBonds {
    fn slash(
        who: &u64,
        round: RoundId,
        _: SlashAmount<u64>,
        reporter: Option<&u64>,
    ) -> Result<SlashOutcome<u64>, DispatchError> {
        SLASHES.with(|s| s.borrow_mut().push((*who, round, reporter.copied())));
        Ok(SlashOutcome::default())
    }
    fn slash_weight() -> Weight {
        Weight::zero()
    }
}

impl BondInspect<u64> for FakeBonds {
    type Balance = u64;
    fn bonded(who: &u64) -> u64 {
        if Self::has_minimum_bond(who) {
            100
        } else {
            0
        }
    }
    fn has_minimum_bond(who: &u64) -> bool {
        BONDED.with(|b| b.borrow().contains(who))
    }
}

/// The reputation pallet's epoch snapshot (one, whatever the epoch).
pub struct FakeSnapshots;
impl FakeSnapshots {
    pub fn set(members: Vec<(u64, u128)>) {
        SNAPSHOT.with(|s| *s.borrow_mut() = members);
    }
    pub fn make_ineligible(who: u64) {
        INELIGIBLE.with(|i| i.borrow_mut().insert(who));
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
        !INELIGIBLE.with(|i| i.borrow().contains(who))
    }
}

/// A stand-in for BABE's per-block VRF output: the hash of the block number.
pub struct BlockNumberRandomness;
impl BlockNumberRandomness {
    pub fn at(block: u64) -> [u8; 32] {
        capsule_primitives::hashing::blake2_256(&block.encode())
    }
}
impl Get<Option<[u8; 32]>> for BlockNumberRandomness {
    fn get() -> Option<[u8; 32]> {
        Some(Self::at(System::block_number()))
    }
}

/// The reputation pallet, as far as levels go.
pub struct FakeReputation;
impl FakeReputation {
    pub fn forbid_software() {
        SOFTWARE_ALLOWED.with(|s| *s.borrow_mut() = false);
    }
}
impl ReputationEvents<u64> for FakeReputation {
    fn round_passed(who: &u64) {
        REPUTATION.with(|r| r.borrow_mut().push(ReputationCall::Passed(*who)));
    }
    fn round_failed(who: &u64) {
        REPUTATION.with(|r| r.borrow_mut().push(ReputationCall::Failed(*who)));
    }
    fn vote_counted(who: &u64, alignment: VoteAlignment) {
        REPUTATION.with(|r| r.borrow_mut().push(ReputationCall::Vote(*who, alignment)));
    }
    fn task_completed(_: &u64) {}
    fn set_hardware_level(who: &u64, level: HardwareLevel) -> DispatchResult {
        REPUTATION.with(|r| r.borrow_mut().push(ReputationCall::Level(*who, level)));
        Ok(())
    }
    fn level_allowed(level: HardwareLevel) -> bool {
        level != HardwareLevel::Software || SOFTWARE_ALLOWED.with(|s| *s.borrow())
    }
    fn event_weight() -> Weight {
        Weight::zero()
    }
}

impl pallet_attestation::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type VerifierFee = ConstU64<VERIFIER_FEE>;
    type Bonds = FakeBonds;
    type Reputation = FakeReputation;
    type MaxGateways = ConstU32<MAX_GATEWAYS>;
    type MaxGoldenPerKind = ConstU32<MAX_GOLDEN_PER_KIND>;
    type GovernanceOrigin = EnsureRoot<u64>;
    type Snapshots = FakeSnapshots;
    type BlockRandomness = BlockNumberRandomness;
    type SeedBlocks = ConstU32<{ SEED_BLOCKS as u32 }>;
    type CommitteeSize = ConstU32<COMMITTEE_SIZE>;
    type MaxCommittee = ConstU32<{ 2 * COMMITTEE_SIZE }>;
    type MaxRoundsPerBlock = ConstU32<MAX_ROUNDS_PER_BLOCK>;
    type CommitPeriod = ConstU64<COMMIT_PERIOD>;
    type RevealPeriod = ConstU64<REVEAL_PERIOD>;
    type MinSlashCommittee = ConstU32<MIN_SLASH_COMMITTEE>;
    type FailSlash = FailSlash;
    type OnRoundClosed = RecordClosed;
    type MaxRecordsPerGateway = ConstU32<MAX_RECORDS>;
    type WeightInfo = ();
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = FakeBonds;
}

#[cfg(feature = "runtime-benchmarks")]
impl capsule_pallet_traits::BenchmarkBonds<u64> for FakeBonds {
    fn bond(who: &u64) {
        FakeBonds::bond(*who);
    }
}

#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<u64> for FakeBonds {
    fn set_snapshot(_: EpochIndex, members: Vec<(u64, u128)>) {
        FakeSnapshots::set(members);
    }
}

#[derive(Default)]
pub struct ExtBuilder {
    genesis: pallet_attestation::GenesisConfig<Test>,
}

impl ExtBuilder {
    pub fn with_genesis_gateway(mut self, gateway: crate::GenesisGateway<u64>) -> Self {
        self.genesis.gateways.push(gateway);
        self
    }

    pub fn build(self) -> sp_io::TestExternalities {
        let mut storage = frame_system::GenesisConfig::<Test>::default()
            .build_storage()
            .unwrap();
        pallet_balances::GenesisConfig::<Test> {
            balances: (1..=20).map(|who| (who, ENDOWMENT)).collect(),
            ..Default::default()
        }
        .assimilate_storage(&mut storage)
        .unwrap();
        self.genesis.assimilate_storage(&mut storage).unwrap();
        let mut ext = sp_io::TestExternalities::new(storage);
        // The benchmarks make keys in a keystore, as the benchmark CLI provides.
        ext.register_extension(sp_keystore::KeystoreExt::new(
            sp_keystore::testing::MemoryKeystore::new(),
        ));
        ext.execute_with(|| System::set_block_number(1));
        ext
    }

    /// Runs `test`, then checks the pallet's invariants.
    pub fn build_and_execute(self, test: impl FnOnce()) {
        self.build().execute_with(|| {
            test();
            Attestation::do_try_state().expect("the attestation invariants hold after the test");
        });
        BONDED.with(|b| b.borrow_mut().clear());
        SOFTWARE_ALLOWED.with(|s| *s.borrow_mut() = true);
        SNAPSHOT.with(|s| s.borrow_mut().clear());
        INELIGIBLE.with(|i| i.borrow_mut().clear());
        REPUTATION.with(|r| r.borrow_mut().clear());
        SLASHES.with(|s| s.borrow_mut().clear());
        CLOSED.with(|c| c.borrow_mut().clear());
    }
}

/// Moves to block `n`, running the pallet's `on_initialize` as the executive would.
pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let next = System::block_number() + 1;
        System::set_block_number(next);
        Attestation::on_initialize(next);
    }
}

/// This pallet's events so far, oldest first.
pub fn pallet_events() -> Vec<pallet_attestation::Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|record| match record.event {
            RuntimeEvent::Attestation(event) => Some(event),
            _ => None,
        })
        .collect()
}

/// The last event of this pallet that `pick` accepts.
pub fn last_event_matching(
    pick: impl Fn(&pallet_attestation::Event<Test>) -> bool,
) -> Option<pallet_attestation::Event<Test>> {
    pallet_events().into_iter().rev().find(|event| pick(event))
}

pub fn last_event() -> pallet_attestation::Event<Test> {
    pallet_events().pop().expect("the pallet emitted an event")
}
