//! A runtime with only this pallet; the registry and the bonds are programmable fakes.
use crate as pallet_reputation;
use capsule_pallet_traits::{BondInspect, EpochIndex, GatewayRegistry, HardwareLevel};
use core::cell::RefCell;
use frame_support::{
    derive_impl, parameter_types,
    traits::{ConstU32, ConstU64, Hooks},
    weights::Weight,
    BoundedVec,
};
use sp_runtime::{BuildStorage, Perbill};
use std::collections::BTreeMap;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Reputation: pallet_reputation,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
}

pub const MAX_GATEWAYS: u32 = 8;
pub const MAX_SCORE: u32 = 1_000;
pub const PASSED: u32 = 10;
pub const COMPLETED: u32 = 5;
pub const ABSENT: u32 = 2;
pub const AGAINST: u32 = 3;
pub const LOCKOUT: u64 = 100;
pub const DECAY_PERIOD: u64 = 10;

parameter_types! {
    pub storage Epoch: EpochIndex = EpochIndex(0);
    pub const DecayPerPeriod: Perbill = Perbill::from_percent(90);
}

std::thread_local! {
    static ACTIVE: RefCell<Vec<(u64, HardwareLevel)>> = const { RefCell::new(Vec::new()) };
    static BONDS: RefCell<BTreeMap<u64, u128>> = const { RefCell::new(BTreeMap::new()) };
}

/// The attestation pallet's list of Active gateways.
pub struct FakeRegistry;
impl FakeRegistry {
    pub fn set(gateways: Vec<(u64, HardwareLevel)>) {
        ACTIVE.with(|a| *a.borrow_mut() = gateways);
    }
}
impl GatewayRegistry<u64> for FakeRegistry {
    type MaxGateways = ConstU32<MAX_GATEWAYS>;
    fn active_gateways() -> BoundedVec<(u64, HardwareLevel), ConstU32<MAX_GATEWAYS>> {
        BoundedVec::truncate_from(ACTIVE.with(|a| a.borrow().clone()))
    }
    fn is_active(who: &u64) -> bool {
        ACTIVE.with(|a| a.borrow().iter().any(|(account, _)| account == who))
    }
    fn active_gateways_weight() -> Weight {
        Weight::from_parts(1_000, 0)
    }
}

/// The deposit pallet's active bonds.
pub struct FakeBonds;
impl FakeBonds {
    pub fn set(who: u64, amount: u128) {
        BONDS.with(|b| b.borrow_mut().insert(who, amount));
    }
}
impl BondInspect<u64> for FakeBonds {
    type Balance = u128;
    fn bonded(who: &u64) -> u128 {
        BONDS.with(|b| b.borrow().get(who).copied().unwrap_or_default())
    }
    fn has_minimum_bond(who: &u64) -> bool {
        Self::bonded(who) > 0
    }
}

#[cfg(feature = "runtime-benchmarks")]
impl capsule_pallet_traits::BenchmarkBonds<u64> for FakeBonds {
    fn bond(who: &u64) {
        FakeBonds::set(*who, 1_000_000);
    }
}

impl pallet_reputation::Config for Test {
    type Registry = FakeRegistry;
    type Bonds = FakeBonds;
    type CurrentEpoch = Epoch;
    type MaxScore = ConstU32<MAX_SCORE>;
    type PassedRoundReward = ConstU32<PASSED>;
    type CompletedTaskReward = ConstU32<COMPLETED>;
    type AbsentVotePenalty = ConstU32<ABSENT>;
    type MinorityVotePenalty = ConstU32<AGAINST>;
    type LockoutPeriod = ConstU64<LOCKOUT>;
    type DecayPeriod = ConstU64<DECAY_PERIOD>;
    type DecayPerPeriod = DecayPerPeriod;
    type WeightInfo = ();
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = FakeBonds;
}

pub struct ExtBuilder {
    genesis: pallet_reputation::GenesisConfig<Test>,
}

impl Default for ExtBuilder {
    fn default() -> Self {
        Self {
            genesis: pallet_reputation::GenesisConfig {
                allow_software_level: true,
                ..Default::default()
            },
        }
    }
}

impl ExtBuilder {
    pub fn production(mut self) -> Self {
        self.genesis.allow_software_level = false;
        self
    }

    pub fn with_score(mut self, who: u64, score: u32) -> Self {
        self.genesis.scores.push((who, score));
        self
    }

    pub fn with_level(mut self, who: u64, level: HardwareLevel) -> Self {
        self.genesis.levels.push((who, level));
        self
    }

    pub fn build(self) -> sp_io::TestExternalities {
        let mut storage = frame_system::GenesisConfig::<Test>::default()
            .build_storage()
            .unwrap();
        self.genesis.assimilate_storage(&mut storage).unwrap();
        let mut ext = sp_io::TestExternalities::new(storage);
        ext.execute_with(|| System::set_block_number(1));
        ext
    }

    /// Runs `test`, then checks the pallet's invariants.
    pub fn build_and_execute(self, test: impl FnOnce()) {
        self.build().execute_with(|| {
            test();
            Reputation::do_try_state().expect("the reputation invariants hold after the test");
        });
        ACTIVE.with(|a| a.borrow_mut().clear());
        BONDS.with(|b| b.borrow_mut().clear());
    }
}

/// Moves to block `n`, running the pallet's `on_initialize` as the executive would.
pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let next = System::block_number() + 1;
        System::set_block_number(next);
        Reputation::on_initialize(next);
    }
}

/// Starts epoch `epoch` at the next block.
pub fn start_epoch(epoch: u64) {
    Epoch::set(&EpochIndex(epoch));
    run_to_block(System::block_number() + 1);
}

/// This pallet's events so far, oldest first.
pub fn pallet_events() -> Vec<pallet_reputation::Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|record| match record.event {
            RuntimeEvent::Reputation(event) => Some(event),
            _ => None,
        })
        .collect()
}

pub fn last_event() -> pallet_reputation::Event<Test> {
    pallet_events().pop().expect("the pallet emitted an event")
}
