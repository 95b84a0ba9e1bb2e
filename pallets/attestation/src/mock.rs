//! A runtime with only this pallet; bonds and reputation are programmable fakes.
use crate as pallet_attestation;
use capsule_pallet_traits::{BondInspect, HardwareLevel, ReputationEvents, VoteAlignment};
use core::cell::RefCell;
use frame_support::{derive_impl, traits::ConstU32, weights::Weight};
use frame_system::EnsureRoot;
use sp_runtime::{BuildStorage, DispatchResult};
use std::collections::BTreeSet;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Attestation: pallet_attestation,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
}

pub const MAX_GATEWAYS: u32 = 4;
pub const MAX_GOLDEN_PER_KIND: u32 = 2;

std::thread_local! {
    static BONDED: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
    static SOFTWARE_ALLOWED: RefCell<bool> = const { RefCell::new(true) };
}

/// Who holds the minimum bond (the deposit pallet).
pub struct FakeBonds;
impl FakeBonds {
    pub fn bond(who: u64) {
        BONDED.with(|b| b.borrow_mut().insert(who));
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

/// The reputation pallet, as far as levels go.
pub struct FakeReputation;
impl FakeReputation {
    pub fn forbid_software() {
        SOFTWARE_ALLOWED.with(|s| *s.borrow_mut() = false);
    }
}
impl ReputationEvents<u64> for FakeReputation {
    fn round_passed(_: &u64) {}
    fn round_failed(_: &u64) {}
    fn vote_counted(_: &u64, _: VoteAlignment) {}
    fn task_completed(_: &u64) {}
    fn set_hardware_level(_: &u64, _: HardwareLevel) -> DispatchResult {
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
    type Bonds = FakeBonds;
    type Reputation = FakeReputation;
    type MaxGateways = ConstU32<MAX_GATEWAYS>;
    type MaxGoldenPerKind = ConstU32<MAX_GOLDEN_PER_KIND>;
    type GovernanceOrigin = EnsureRoot<u64>;
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
    }
}

pub fn last_event() -> pallet_attestation::Event<Test> {
    System::events()
        .into_iter()
        .filter_map(|record| match record.event {
            RuntimeEvent::Attestation(event) => Some(event),
            _ => None,
        })
        .next_back()
        .expect("the pallet emitted an event")
}
