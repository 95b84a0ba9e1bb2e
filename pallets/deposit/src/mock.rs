//! A runtime with balances and this pallet; the attestation and task-market sides of the
//! coupling traits are small programmable fakes.
use crate as pallet_deposit;
use capsule_pallet_traits::{OnBondBelowMinimum, WithdrawalBlock, WithdrawalGuard};
use core::cell::RefCell;
use frame_support::{
    derive_impl, parameter_types,
    traits::{ConstU32, ConstU64, Hooks},
    weights::Weight,
    PalletId,
};
use sp_runtime::{BuildStorage, Perbill};
use std::collections::BTreeMap;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Deposit: pallet_deposit,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountData = pallet_balances::AccountData<u64>;
}

pub const EXISTENTIAL_DEPOSIT: u64 = 10;

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
    type AccountStore = System;
    type ExistentialDeposit = ConstU64<EXISTENTIAL_DEPOSIT>;
}

pub const MINIMUM_BOND: u64 = 100;
pub const UNBONDING_DELAY: u64 = 50;
pub const RETENTION: u64 = 30;
pub const MAX_CHUNKS: u32 = 4;
pub const MAX_SLASHES_PER_BLOCK: u32 = 3;

parameter_types! {
    pub const TreasuryPalletId: PalletId = PalletId(*b"cap/trsy");
    pub const ReporterShare: Perbill = Perbill::from_percent(10);
}

std::thread_local! {
    static BLOCKED: RefCell<BTreeMap<u64, WithdrawalBlock>> = const { RefCell::new(BTreeMap::new()) };
    static BELOW_MINIMUM: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// What the attestation and task-market pallets will say about withdrawals.
pub struct FakeGuard;
impl FakeGuard {
    pub fn block(who: u64, why: WithdrawalBlock) {
        BLOCKED.with(|b| b.borrow_mut().insert(who, why));
    }
    pub fn unblock(who: u64) {
        BLOCKED.with(|b| b.borrow_mut().remove(&who));
    }
}
impl WithdrawalGuard<u64> for FakeGuard {
    fn withdrawal_block(who: &u64) -> Option<WithdrawalBlock> {
        BLOCKED.with(|b| b.borrow().get(who).copied())
    }
    fn guard_weight() -> Weight {
        Weight::from_parts(1_000, 0)
    }
}

/// Records who fell below the minimum, as the attestation pallet will (to suspend them).
pub struct RecordBelowMinimum;
impl RecordBelowMinimum {
    pub fn taken() -> Vec<u64> {
        BELOW_MINIMUM.with(|b| core::mem::take(&mut *b.borrow_mut()))
    }
}
impl OnBondBelowMinimum<u64> for RecordBelowMinimum {
    fn on_bond_below_minimum(who: &u64) {
        BELOW_MINIMUM.with(|b| b.borrow_mut().push(*who));
    }
    fn notify_weight() -> Weight {
        Weight::from_parts(1_000, 0)
    }
}

impl pallet_deposit::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type MinimumBond = ConstU64<MINIMUM_BOND>;
    type UnbondingDelay = ConstU64<UNBONDING_DELAY>;
    type LongestRound = ConstU64<20>;
    type LongestTaskDeadline = ConstU64<20>;
    type MaxUnbondingChunks = ConstU32<MAX_CHUNKS>;
    type TreasuryPalletId = TreasuryPalletId;
    type ReporterShare = ReporterShare;
    type SlashRecordRetention = ConstU64<RETENTION>;
    type MaxSlashesPerBlock = ConstU32<MAX_SLASHES_PER_BLOCK>;
    type WithdrawalGuard = FakeGuard;
    type OnBondBelowMinimum = RecordBelowMinimum;
    type WeightInfo = ();
}

/// Accounts 1..=5 hold 1,000 each and account 6 holds 50; `bonds` are bonded at genesis.
#[derive(Default)]
pub struct ExtBuilder {
    bonds: Vec<(u64, u64)>,
}

impl ExtBuilder {
    pub fn with_bond(mut self, who: u64, amount: u64) -> Self {
        self.bonds.push((who, amount));
        self
    }

    pub fn build(self) -> sp_io::TestExternalities {
        let mut storage = frame_system::GenesisConfig::<Test>::default()
            .build_storage()
            .unwrap();
        pallet_balances::GenesisConfig::<Test> {
            balances: vec![
                (1, 1_000),
                (2, 1_000),
                (3, 1_000),
                (4, 1_000),
                (5, 1_000),
                (6, 50),
            ],
            ..Default::default()
        }
        .assimilate_storage(&mut storage)
        .unwrap();
        pallet_deposit::GenesisConfig::<Test> { bonds: self.bonds }
            .assimilate_storage(&mut storage)
            .unwrap();
        let mut ext = sp_io::TestExternalities::new(storage);
        ext.execute_with(|| System::set_block_number(1));
        ext
    }

    /// Runs `test`, then checks the pallet's invariants.
    pub fn build_and_execute(self, test: impl FnOnce()) {
        self.build().execute_with(|| {
            test();
            Deposit::do_try_state().expect("the deposit invariants hold after the test");
        });
        BLOCKED.with(|b| b.borrow_mut().clear());
        BELOW_MINIMUM.with(|b| b.borrow_mut().clear());
    }
}

/// Moves to block `n`, running the pallet's `on_initialize` as the executive would.
pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let next = System::block_number() + 1;
        System::set_block_number(next);
        Deposit::on_initialize(next);
    }
}

/// This pallet's events so far, oldest first.
pub fn pallet_events() -> Vec<pallet_deposit::Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|record| match record.event {
            RuntimeEvent::Deposit(event) => Some(event),
            _ => None,
        })
        .collect()
}

/// The last event of this pallet.
pub fn last_event() -> pallet_deposit::Event<Test> {
    pallet_events().pop().expect("the pallet emitted an event")
}
