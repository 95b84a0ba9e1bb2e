//! Pallet configurations of the runtime.
use capsule_pallet_traits::EpochIndex;
use frame_support::{
    derive_impl,
    dispatch::DispatchClass,
    parameter_types,
    traits::{ConstU128, ConstU32, ConstU64, ConstU8, Get, VariantCountOf},
    weights::{
        constants::{ParityDbWeight, WEIGHT_REF_TIME_PER_SECOND},
        IdentityFee, Weight,
    },
    PalletId,
};
use frame_system::limits::{BlockLength, BlockWeights};
use pallet_transaction_payment::{ConstFeeMultiplier, FungibleAdapter, Multiplier};
use sp_runtime::{traits::One, Perbill};
use sp_version::RuntimeVersion;

use super::{
    AccountId, Attestation, Babe, Balance, Balances, Block, BlockNumber, Deposit, Hash, Nonce,
    PalletInfo, Reputation, Runtime, RuntimeCall, RuntimeEvent, RuntimeFreezeReason,
    RuntimeHoldReason, RuntimeOrigin, RuntimeTask, SessionKeys, System, TaskMarket, DAYS,
    EXISTENTIAL_DEPOSIT, HOURS, MILLISECS_PER_BLOCK, MINUTES, SLOT_DURATION, SS58_PREFIX, UNIT,
    VERSION,
};

const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);

/// Validators BABE and GRANDPA can hold in one set.
pub const MAX_AUTHORITIES: u32 = 100;

parameter_types! {
    pub const BlockHashCount: BlockNumber = 2400;
    pub const Version: RuntimeVersion = VERSION;
    /// One second of compute in a 3 s block.
    pub RuntimeBlockWeights: BlockWeights = BlockWeights::with_sensible_defaults(
        Weight::from_parts(WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
        NORMAL_DISPATCH_RATIO,
    );
    /// 5 MiB blocks, of which normal extrinsics may fill 75 %.
    pub RuntimeBlockLength: BlockLength = BlockLength::builder()
        .max_length(5 * 1024 * 1024)
        .modify_max_length_for_class(DispatchClass::Normal, |max| *max = NORMAL_DISPATCH_RATIO * *max)
        .build();
    pub const SS58Prefix: u16 = SS58_PREFIX;
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
    type Block = Block;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type AccountId = AccountId;
    type Nonce = Nonce;
    type Hash = Hash;
    type BlockHashCount = BlockHashCount;
    type DbWeight = ParityDbWeight;
    type Version = Version;
    type AccountData = pallet_balances::AccountData<Balance>;
    type SS58Prefix = SS58Prefix;
    type MaxConsumers = ConstU32<16>;
}

impl crate::chain_params::Config for Runtime {}

impl pallet_timestamp::Config for Runtime {
    /// Milliseconds since the Unix epoch.
    type Moment = u64;
    type OnTimestampSet = Babe;
    type MinimumPeriod = ConstU64<{ SLOT_DURATION / 2 }>;
    type WeightInfo = ();
}

impl pallet_session::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type ValidatorId = AccountId;
    type ValidatorIdOf = sp_runtime::traits::ConvertInto;
    type ShouldEndSession = Babe;
    type NextSessionRotation = Babe;
    // The reputation-ranked set replaces this once the attestation pallets land.
    type SessionManager = ();
    type SessionHandler = <SessionKeys as sp_runtime::traits::OpaqueKeys>::KeyTypeIdProviders;
    type Keys = SessionKeys;
    type DisablingStrategy = ();
    type WeightInfo = pallet_session::weights::SubstrateWeight<Runtime>;
    type Currency = Balances;
    type KeyDeposit = ConstU128<0>;
}

impl pallet_babe::Config for Runtime {
    type EpochDuration = crate::chain_params::EpochDurationFromGenesis<Runtime>;
    type ExpectedBlockTime = ConstU64<MILLISECS_PER_BLOCK>;
    // Session rotation drives epoch changes, so sessions and epochs stay one and the same.
    type EpochChangeTrigger = pallet_babe::ExternalTrigger;
    type DisabledValidators = ();
    type WeightInfo = ();
    type MaxAuthorities = ConstU32<MAX_AUTHORITIES>;
    type MaxNominators = ConstU32<0>;
    type KeyOwnerProof = sp_core::Void;
    type EquivocationReportSystem = ();
}

impl pallet_grandpa::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type WeightInfo = ();
    type MaxAuthorities = ConstU32<MAX_AUTHORITIES>;
    type MaxNominators = ConstU32<0>;
    type MaxSetIdSessionEntries = ConstU64<0>;
    type KeyOwnerProof = sp_core::Void;
    type EquivocationReportSystem = ();
}

impl pallet_balances::Config for Runtime {
    type MaxLocks = ConstU32<50>;
    type MaxReserves = ();
    type ReserveIdentifier = [u8; 8];
    type Balance = Balance;
    type RuntimeEvent = RuntimeEvent;
    type DustRemoval = ();
    type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
    type AccountStore = System;
    type WeightInfo = crate::weights::pallet_balances::WeightInfo<Runtime>;
    type FreezeIdentifier = RuntimeFreezeReason;
    type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
    type RuntimeHoldReason = RuntimeHoldReason;
    type RuntimeFreezeReason = RuntimeFreezeReason;
    type DoneSlashHandler = ();
}

parameter_types! {
    pub FeeMultiplier: Multiplier = Multiplier::one();
}

impl pallet_transaction_payment::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type OnChargeTransaction = FungibleAdapter<Balances, ()>;
    type OperationalFeeMultiplier = ConstU8<5>;
    type WeightToFee = IdentityFee<Balance>;
    type LengthToFee = IdentityFee<Balance>;
    type FeeMultiplierUpdate = ConstFeeMultiplier<FeeMultiplier>;
    type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

/// The longest an attestation round may stay open.
pub const LONGEST_ROUND: BlockNumber = 10 * MINUTES;
/// The longest deadline a task may have.
pub const LONGEST_TASK_DEADLINE: BlockNumber = DAYS;
/// Most gateways the registry lists, and so the most a snapshot holds.
pub const MAX_GATEWAYS: u32 = 256;

parameter_types! {
    pub const MinimumBond: Balance = 1_000 * UNIT;
    pub const TreasuryPalletId: PalletId = PalletId(*b"cap/trsy");
    pub const ReporterShare: Perbill = Perbill::from_percent(10);
    /// About a 30-day half-life: 0.5^(1/720) per hour.
    pub const DecayPerHour: Perbill = Perbill::from_parts(999_037_759);
}

impl pallet_deposit::Config for Runtime {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type MinimumBond = MinimumBond;
    // Longer than a round plus a task deadline, so a cheat cannot withdraw before its verdict.
    type UnbondingDelay = ConstU32<{ 2 * DAYS }>;
    type LongestRound = ConstU32<LONGEST_ROUND>;
    type LongestTaskDeadline = ConstU32<LONGEST_TASK_DEADLINE>;
    type MaxUnbondingChunks = ConstU32<16>;
    type TreasuryPalletId = TreasuryPalletId;
    type ReporterShare = ReporterShare;
    type SlashRecordRetention = ConstU32<DAYS>;
    type MaxSlashesPerBlock = ConstU32<16>;
    // No withdrawal while the subject of a round or the executor of an unsettled task.
    type WithdrawalGuard = (Attestation, TaskMarket);
    type OnBondBelowMinimum = Attestation;
    type WeightInfo = pallet_deposit::weights::SubstrateWeight<Runtime>;
}

/// The current BABE epoch, for the reputation pallet's snapshot.
pub struct BabeEpochIndex;
impl Get<EpochIndex> for BabeEpochIndex {
    fn get() -> EpochIndex {
        EpochIndex(pallet_babe::EpochIndex::<Runtime>::get())
    }
}

impl pallet_reputation::Config for Runtime {
    type Registry = Attestation;
    type Bonds = Deposit;
    type CurrentEpoch = BabeEpochIndex;
    type MaxScore = ConstU32<1_000_000>;
    type PassedRoundReward = ConstU32<1_000>;
    type CompletedTaskReward = ConstU32<2_000>;
    type AbsentVotePenalty = ConstU32<500>;
    type MinorityVotePenalty = ConstU32<1_000>;
    type LockoutPeriod = ConstU32<{ 7 * DAYS }>;
    type DecayPeriod = ConstU32<HOURS>;
    type DecayPerPeriod = DecayPerHour;
    type WeightInfo = pallet_reputation::weights::SubstrateWeight<Runtime>;
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = BondForBenchmarks;
}

/// Bonds benchmark accounts through the deposit pallet.
#[cfg(feature = "runtime-benchmarks")]
pub struct BondForBenchmarks;
#[cfg(feature = "runtime-benchmarks")]
impl capsule_pallet_traits::BenchmarkBonds<AccountId> for BondForBenchmarks {
    fn bond(who: &AccountId) {
        use frame_support::traits::fungible::Mutate;
        let amount = MinimumBond::get();
        Balances::set_balance(who, amount.saturating_mul(2));
        let origin = RuntimeOrigin::signed(who.clone());
        Deposit::bond(origin, amount).expect("funded with twice the bond");
    }
}

parameter_types! {
    pub const VerifierFee: Balance = UNIT;
    pub const FailSlash: Perbill = Perbill::from_percent(10);
}

/// This block's BABE VRF output (every block has one: primary and secondary VRF slots).
pub struct BabeBlockRandomness;
impl Get<Option<[u8; 32]>> for BabeBlockRandomness {
    fn get() -> Option<[u8; 32]> {
        pallet_babe::AuthorVrfRandomness::<Runtime>::get()
    }
}

impl pallet_attestation::Config for Runtime {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type VerifierFee = VerifierFee;
    type Bonds = Deposit;
    type Reputation = Reputation;
    type MaxGateways = ConstU32<MAX_GATEWAYS>;
    type MaxGoldenPerKind = ConstU32<16>;
    type GovernanceOrigin = frame_system::EnsureRoot<AccountId>;
    type Snapshots = Reputation;
    type BlockRandomness = BabeBlockRandomness;
    type SeedBlocks = ConstU32<3>;
    type CommitteeSize = ConstU32<5>;
    type MaxCommittee = ConstU32<10>;
    type MaxRoundsPerBlock = ConstU32<4>;
    // 30 s to commit and 30 s to reveal: two rounds (a re-draw) fit LONGEST_ROUND.
    type CommitPeriod = ConstU32<10>;
    type RevealPeriod = ConstU32<10>;
    type MinSlashCommittee = ConstU32<3>;
    type FailSlash = FailSlash;
    // Pre- and post-task rounds settle their tasks.
    type OnRoundClosed = TaskMarket;
    type MaxRecordsPerGateway = ConstU32<16>;
    type WeightInfo = pallet_attestation::weights::SubstrateWeight<Runtime>;
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = BondForBenchmarks;
}

#[cfg(feature = "runtime-benchmarks")]
impl pallet_attestation::BenchmarkHelper<AccountId> for BondForBenchmarks {
    fn set_snapshot(epoch: EpochIndex, members: alloc::vec::Vec<(AccountId, u128)>) {
        use capsule_pallet_traits::{EpochSnapshot, HardwareLevel, SnapshotEntry};
        let total_weight = members
            .iter()
            .fold(0u128, |sum, (_, w)| sum.saturating_add(*w));
        let members = members
            .into_iter()
            .map(|(account, weight)| SnapshotEntry {
                account,
                level: HardwareLevel::HpcTpm,
                weight,
            })
            .collect::<alloc::vec::Vec<_>>();
        pallet_reputation::Snapshots::<Runtime>::insert(
            epoch,
            EpochSnapshot {
                epoch,
                members: frame_support::BoundedVec::truncate_from(members),
                total_weight,
            },
        );
    }
}

parameter_types! {
    pub const CancelFee: Balance = UNIT;
    pub const MinReward: Balance = UNIT;
}

/// The treasury account (the deposit pallet's), which takes cancellation fees.
pub struct TreasuryAccount;
impl Get<AccountId> for TreasuryAccount {
    fn get() -> AccountId {
        Deposit::treasury_account()
    }
}

impl pallet_task_market::Config for Runtime {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type Snapshots = Reputation;
    type Rounds = Attestation;
    type Randomness = Attestation;
    type VrfKeys = Attestation;
    type Reputation = Reputation;
    type Treasury = TreasuryAccount;
    type CancelFee = CancelFee;
    type MinReward = MinReward;
    // 15 s to claim.
    type ClaimWindow = ConstU32<5>;
    type TargetClaimants = ConstU32<2>;
    type MaxAttempts = ConstU8<3>;
    type MaxClaimants = ConstU32<16>;
    type MaxInputs = ConstU32<16>;
    type MaxRecipients = ConstU32<8>;
    type MaxTimeout = ConstU32<LONGEST_TASK_DEADLINE>;
    // As many as the attestation pallet's rounds per block, so every winner's round can open.
    type MaxTasksPerBlock = ConstU32<4>;
    type WeightInfo = pallet_task_market::weights::SubstrateWeight<Runtime>;
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = BondForBenchmarks;
}

#[cfg(feature = "runtime-benchmarks")]
impl pallet_task_market::benchmarking::BenchmarkHelper<AccountId> for BondForBenchmarks {
    fn set_snapshot(members: alloc::vec::Vec<(AccountId, u128)>) {
        let epoch =
            <Reputation as capsule_pallet_traits::EpochSnapshots<AccountId>>::current_epoch();
        <Self as pallet_attestation::BenchmarkHelper<AccountId>>::set_snapshot(epoch, members);
    }

    fn set_vrf_key(who: &AccountId, key: [u8; 32]) {
        use capsule_primitives::keys::{DevicePublicKey, FingerprintRoot};
        pallet_attestation::Gateways::<Runtime>::insert(
            who,
            pallet_attestation::GatewayInfo {
                device_key: DevicePublicKey::Ed25519(key),
                vrf_key: key,
                network_key: key,
                level: capsule_pallet_traits::HardwareLevel::HpcTpm,
                fingerprint: FingerprintRoot([0; 32]),
                status: pallet_attestation::GatewayStatus::Active,
                registered_at: 0,
            },
        );
    }
}
