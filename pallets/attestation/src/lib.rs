//! # Attestation pallet
//!
//! The heart of the chain: who the gateways are, what their machines must measure, and the
//! rounds in which a random committee of gateways decides whether one of them passed.
//!
//! - the **registry**: [`Pallet::register`] records a gateway's device key (ECDSA P-256,
//!   ECDSA secp256k1 or Ed25519), its sr25519 VRF key and its libp2p Ed25519 network key, each
//!   proven by a signature over a domain tag, the genesis hash and the account
//!   (`capsule_primitives::keys`), plus its claimed hardware level and the Merkle root of its
//!   HPC's hardware fingerprint. No key may belong to two gateways. A registrant must hold the
//!   minimum bond; it stays Pending until its registration round passes (or root activates
//!   it). Statuses: Pending, Active, Suspended, LockedOut.
//! - the **golden measurements** root approves ([`Pallet::add_golden`], [`Pallet::retire_golden`]),
//!   bounded per kind.
//! - **rounds** (registration, pre-task, post-task, audit): seeded from the BABE VRF outputs of
//!   the blocks after their opening, a committee drawn by weight from the epoch snapshot
//!   ([`sampling`]), commit-reveal voting decided by a two-thirds supermajority ([`tally`]),
//!   closed in `on_initialize` with fees, reputation, slashing and a bounded record per gateway.
//! - the **views** the runtime API (`pallet-attestation-runtime-api`) serves:
//!   [`Pallet::open_rounds`], [`Pallet::rounds_of_member`], [`Pallet::golden_measurements`].
//! - the coupling with the deposit and reputation pallets: it is their
//!   [`GatewayRegistry`] and [`WithdrawalGuard`], and suspends a gateway whose bond falls below
//!   the minimum ([`OnBondBelowMinimum`]).
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
pub mod keys;
#[cfg(test)]
mod mock;
pub mod sampling;
pub mod tally;
#[cfg(test)]
mod tests;
pub mod weights;
pub use weights::WeightInfo;

use capsule_pallet_traits::{
    BondInspect, BondSlash, EpochIndex, EpochSnapshots, GatewayRegistry, HardwareLevel,
    OnBondBelowMinimum, OnRoundClosed, RecentRandomness as RecentRandomnessSource,
    ReputationEvents, RoundId, RoundOutcome, SlashAmount, TaskRounds, VoteAlignment, VrfKeys,
    WithdrawalBlock, WithdrawalGuard,
};
use capsule_primitives::{
    attestation::{vote_commitment, AttestationPhase, Verdict},
    golden::{GoldenId, GoldenKind, GoldenMeasurement},
    hashing::blake2_256,
    ids::TaskId,
    keys::{DevicePublicKey, DeviceSignature, FingerprintRoot, HpcSessionKeys, KeyRole},
    seed::round_seed,
};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
    pallet_prelude::*,
    traits::{
        fungible::{self, Inspect, InspectHold, MutateHold},
        tokens::{Fortitude, Precision, Restriction},
    },
    CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};

/// The balance type of the currency verifier fees are paid in.
pub type BalanceOf<T> =
    <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_runtime::{
    traits::{One, Saturating, Zero},
    Perbill,
};

/// The most blocks a seed may be drawn from (`Config::SeedBlocks` is at most this).
pub const MAX_SEED_BLOCKS: u32 = 16;

/// Where a round stands.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum RoundStatus<BlockNumber> {
    /// Waiting for the VRF outputs of the blocks after its opening; seeded at block `due`.
    AwaitingSeed { due: BlockNumber },
    /// The committee commits until `commit_until`, then reveals until `reveal_until`.
    Voting {
        commit_until: BlockNumber,
        reveal_until: BlockNumber,
    },
    /// No eligible committee could be drawn: root decides.
    AwaitingRoot,
}

/// An attestation round.
#[derive(
    CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub struct Round<T: Config> {
    pub subject: T::AccountId,
    pub phase: AttestationPhase,
    /// The task a pre- or post-task round is about.
    pub task: Option<TaskId>,
    /// Who reported the subject (audits); never on its committee.
    pub reporter: Option<T::AccountId>,
    pub opened_at: BlockNumberFor<T>,
    /// The epoch whose snapshot the committee is drawn from.
    pub epoch: EpochIndex,
    pub status: RoundStatus<BlockNumberFor<T>>,
    /// Known from the seeding block on.
    pub seed: Option<[u8; 32]>,
    pub committee: BoundedVec<T::AccountId, T::MaxCommittee>,
    /// The committee's votes, seat by seat.
    pub votes: BoundedVec<MemberVote, T::MaxCommittee>,
    /// 0, or 1 once re-opened with a larger committee after an inconclusive vote.
    pub attempt: u8,
    /// The HPC session keys a pre-task round attests (bound to the task's claim).
    pub session_keys: Option<HpcSessionKeys>,
    /// Who holds the verifier fees, and how much is still held: the registrant or the
    /// reporter. Rounds about a task hold nothing here; the task-market pays from its escrow.
    pub fee_payer: Option<(T::AccountId, BalanceOf<T>)>,
}

/// What a closed round leaves on chain: never task data, only the verdict and digests.
#[derive(
    CloneNoBound,
    PartialEqNoBound,
    EqNoBound,
    DebugNoBound,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub struct ClosedRecord<T: Config> {
    pub round: RoundId,
    pub subject: T::AccountId,
    pub phase: AttestationPhase,
    pub outcome: RoundOutcome,
    /// The evidence digests the committee revealed.
    pub evidence: BoundedVec<[u8; 32], T::MaxCommittee>,
    /// The HPC session keys the round attested, if it was about a task.
    pub session_keys: Option<HpcSessionKeys>,
    pub task: Option<TaskId>,
    pub closed_at: BlockNumberFor<T>,
}

/// An open round as the runtime API shows it to the gateways' verifier services: what a member
/// needs to vote (status and deadlines, seed, committee, every seat's vote so far). The held
/// fees are left out.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct RoundView<AccountId, BlockNumber> {
    pub id: RoundId,
    pub subject: AccountId,
    pub phase: AttestationPhase,
    pub task: Option<TaskId>,
    pub reporter: Option<AccountId>,
    pub opened_at: BlockNumber,
    pub epoch: EpochIndex,
    pub status: RoundStatus<BlockNumber>,
    pub seed: Option<[u8; 32]>,
    pub committee: alloc::vec::Vec<AccountId>,
    /// The committee's votes, seat by seat (same order as `committee`).
    pub votes: alloc::vec::Vec<MemberVote>,
    pub attempt: u8,
    pub session_keys: Option<HpcSessionKeys>,
}

/// Where a gateway stands.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum GatewayStatus {
    /// Registered; its registration round has not passed yet.
    Pending,
    /// May serve and be drawn.
    Active,
    /// Taken out of service (bond below the minimum, or a Fail from a small committee); root
    /// decides.
    Suspended,
    /// Failed a round: out until its reputation lockout ends and it passes a new round.
    LockedOut,
}

/// Why a gateway was suspended.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum SuspensionReason {
    BondBelowMinimum,
    /// A committee smaller than `MinSlashCommittee` found it failing: root decides.
    FailedBeforeSmallCommittee,
}

/// One committee member's vote.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Default,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct MemberVote {
    /// `capsule_primitives::attestation::vote_commitment` of the vote to come.
    pub commitment: Option<[u8; 32]>,
    /// The verdict and the evidence digest, once revealed.
    pub reveal: Option<(Verdict, [u8; 32])>,
}

/// The keys a gateway registers, each with its proof of possession.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct GatewayKeys {
    pub device_key: DevicePublicKey,
    pub device_proof: DeviceSignature,
    /// sr25519.
    pub vrf_key: [u8; 32],
    pub vrf_proof: [u8; 64],
    /// libp2p Ed25519; the peer id is `capsule_primitives::keys::peer_id_of_ed25519` of it.
    pub network_key: [u8; 32],
    pub network_proof: [u8; 64],
}

/// What the chain knows of a gateway.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct GatewayInfo<BlockNumber> {
    pub device_key: DevicePublicKey,
    pub vrf_key: [u8; 32],
    pub network_key: [u8; 32],
    /// The level it claims; rounds prove it and tell the reputation pallet.
    pub level: HardwareLevel,
    pub fingerprint: FingerprintRoot,
    pub status: GatewayStatus,
    pub registered_at: BlockNumber,
}

/// New keys waiting for the rotation round that proves them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct PendingKeys {
    pub device_key: DevicePublicKey,
    pub vrf_key: [u8; 32],
    pub network_key: [u8; 32],
}

/// A gateway listed in a genesis config: Active from the first block, no proofs needed.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct GenesisGateway<AccountId> {
    pub account: AccountId,
    /// The SCALE encoding of its `DevicePublicKey`, in hex.
    #[serde(with = "sp_core::bytes")]
    pub device_key: alloc::vec::Vec<u8>,
    pub vrf_key: [u8; 32],
    pub network_key: [u8; 32],
    pub level: HardwareLevel,
    pub fingerprint: [u8; 32],
}

/// Prepares what the benchmarks need of the neighbouring pallets.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId>: capsule_pallet_traits::BenchmarkBonds<AccountId> {
    /// Makes `members` (account, weight) the snapshot that draws of `epoch` use.
    fn set_snapshot(epoch: EpochIndex, members: alloc::vec::Vec<(AccountId, u128)>);
}

pub use capsule_pallet_traits::account_bytes;

/// The key under which [`KeyOwners`] records who holds a key.
fn key_id(role: KeyRole, key: &[u8]) -> [u8; 32] {
    blake2_256(&(role, key).encode())
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config {
        /// The currency verifier fees are held and paid in.
        type Currency: fungible::Mutate<Self::AccountId>
            + fungible::MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

        /// The runtime's hold reasons, of which [`HoldReason::RoundFees`] is ours.
        type RuntimeHoldReason: From<HoldReason>;

        /// What each committee member who reveals earns, whatever the verdict.
        #[pallet::constant]
        type VerifierFee: Get<BalanceOf<Self>>;

        /// Bonds and slashes (the deposit pallet).
        type Bonds: BondSlash<Self::AccountId>;

        /// Scores and levels (the reputation pallet).
        type Reputation: ReputationEvents<Self::AccountId>;

        /// The most gateways the registry holds (of any status).
        #[pallet::constant]
        type MaxGateways: Get<u32>;

        /// The most golden measurements of one kind in force at once.
        #[pallet::constant]
        type MaxGoldenPerKind: Get<u32>;

        /// Who approves golden measurements and activates gateways by hand.
        type GovernanceOrigin: EnsureOrigin<Self::RuntimeOrigin>;

        /// The epoch snapshots committees are drawn from (the reputation pallet).
        type Snapshots: EpochSnapshots<Self::AccountId>;

        /// The BABE VRF output of the current block.
        type BlockRandomness: Get<Option<[u8; 32]>>;

        /// L: a round is seeded from the VRF outputs of the L blocks after its opening
        /// (at least 3, at most [`MAX_SEED_BLOCKS`]).
        #[pallet::constant]
        type SeedBlocks: Get<u32>;

        /// k: the committee size a round asks for.
        #[pallet::constant]
        type CommitteeSize: Get<u32>;

        /// The largest committee (a re-opened round asks for more than k).
        #[pallet::constant]
        type MaxCommittee: Get<u32>;

        /// Rounds one block may open (bounds the seeding work of a later block).
        #[pallet::constant]
        type MaxRoundsPerBlock: Get<u32>;

        /// Blocks the committee has to commit, from seeding.
        #[pallet::constant]
        type CommitPeriod: Get<BlockNumberFor<Self>>;

        /// Blocks the committee has to reveal, after the commit period.
        #[pallet::constant]
        type RevealPeriod: Get<BlockNumberFor<Self>>;

        /// The smallest committee whose Fail slashes; a smaller one only suspends.
        #[pallet::constant]
        type MinSlashCommittee: Get<u32>;

        /// The part of the bond a failed round slashes.
        #[pallet::constant]
        type FailSlash: Get<Perbill>;

        /// Told when a round closes (the task-market).
        type OnRoundClosed: OnRoundClosed<Self::AccountId>;

        /// R: closed-round records kept per gateway (older ones live on as events only); an
        /// evidence digest in them may not be revealed again about the same gateway.
        #[pallet::constant]
        type MaxRecordsPerGateway: Get<u32>;

        type WeightInfo: WeightInfo;

        /// Bonds gateways and installs snapshots in the benchmarks.
        #[cfg(feature = "runtime-benchmarks")]
        type BenchmarkHelper: BenchmarkHelper<Self::AccountId>;
    }

    /// Why this pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// Verifier fees for a round the holder opened (registration, audit report).
        #[codec(index = 0)]
        RoundFees,
    }

    /// Every registered gateway.
    #[pallet::storage]
    pub type Gateways<T: Config> =
        StorageMap<_, Blake2_128Concat, T::AccountId, GatewayInfo<BlockNumberFor<T>>>;

    /// How many gateways are registered (of any status).
    #[pallet::storage]
    pub type GatewayCount<T: Config> = StorageValue<_, u32, ValueQuery>;

    /// Keys a gateway asked to rotate to, until its rotation round closes.
    #[pallet::storage]
    pub type RotatingKeys<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, PendingKeys>;

    /// A rotated VRF key and the epoch from which it counts (two epochs after its round
    /// passed); until then the old key draws.
    #[pallet::storage]
    pub type NextVrfKey<T: Config> =
        StorageMap<_, Blake2_128Concat, T::AccountId, ([u8; 32], EpochIndex)>;

    /// Who holds each registered key, by role and key.
    #[pallet::storage]
    pub type KeyOwners<T: Config> = StorageMap<_, Identity, [u8; 32], T::AccountId>;

    /// The Active gateways with their claimed levels, in activation order.
    #[pallet::storage]
    pub type ActiveGateways<T: Config> =
        StorageValue<_, BoundedVec<(T::AccountId, HardwareLevel), T::MaxGateways>, ValueQuery>;

    /// The VRF outputs of the last `SeedBlocks` blocks, oldest first.
    #[pallet::storage]
    pub type RecentRandomness<T: Config> =
        StorageValue<_, BoundedVec<[u8; 32], ConstU32<MAX_SEED_BLOCKS>>, ValueQuery>;

    /// The id the next round gets.
    #[pallet::storage]
    pub type NextRoundId<T: Config> = StorageValue<_, RoundId, ValueQuery>;

    /// Rounds that have not closed.
    #[pallet::storage]
    pub type Rounds<T: Config> = StorageMap<_, Twox64Concat, RoundId, Round<T>>;

    /// The open round each subject is in (one at a time).
    #[pallet::storage]
    pub type RoundOf<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, RoundId>;

    /// Rounds to seed at a block: those opened `SeedBlocks` earlier.
    #[pallet::storage]
    pub type SeedQueue<T: Config> = StorageMap<
        _,
        Twox64Concat,
        BlockNumberFor<T>,
        BoundedVec<RoundId, T::MaxRoundsPerBlock>,
        ValueQuery,
    >;

    /// Each gateway's most recent closed-round records, oldest first.
    #[pallet::storage]
    pub type Records<T: Config> = StorageMap<
        _,
        Blake2_128Concat,
        T::AccountId,
        BoundedVec<ClosedRecord<T>, T::MaxRecordsPerGateway>,
        ValueQuery,
    >;

    /// Rounds to close at a block: the block after their reveal deadline.
    #[pallet::storage]
    pub type CloseQueue<T: Config> = StorageMap<
        _,
        Twox64Concat,
        BlockNumberFor<T>,
        BoundedVec<RoundId, T::MaxRoundsPerBlock>,
        ValueQuery,
    >;

    /// Golden measurements in force, by id.
    #[pallet::storage]
    pub type Golden<T: Config> = StorageMap<_, Identity, GoldenId, GoldenMeasurement>;

    /// How many golden measurements of each kind are in force.
    #[pallet::storage]
    pub type GoldenCount<T: Config> = StorageMap<_, Twox64Concat, GoldenKind, u32, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// `who` registered, claiming `level`; it is Pending.
        Registered {
            who: T::AccountId,
            level: HardwareLevel,
        },
        /// `who` left the registry.
        Deregistered { who: T::AccountId },
        /// `who` is Active.
        Activated { who: T::AccountId },
        /// `who` was suspended.
        Suspended {
            who: T::AccountId,
            reason: SuspensionReason,
        },
        /// A round opened; it is seeded at block `seeded_at`.
        RoundOpened {
            round: RoundId,
            subject: T::AccountId,
            phase: AttestationPhase,
            seeded_at: BlockNumberFor<T>,
        },
        /// A round was seeded and drew its committee.
        CommitteeDrawn {
            round: RoundId,
            committee: BoundedVec<T::AccountId, T::MaxCommittee>,
        },
        /// No eligible gateway could sit on the round's committee, or the vote was
        /// inconclusive twice: root decides.
        RoundToRoot { round: RoundId },
        /// `member` committed its vote.
        Committed {
            round: RoundId,
            member: T::AccountId,
        },
        /// `member` revealed its vote.
        Revealed {
            round: RoundId,
            member: T::AccountId,
            verdict: Verdict,
        },
        /// A supermajority revealed `verdict`; reveals are still taken until the deadline.
        OutcomeReached { round: RoundId, verdict: Verdict },
        /// No supermajority by the deadline: the round is drawn again with a larger committee.
        RoundReopened {
            round: RoundId,
            seeded_at: BlockNumberFor<T>,
        },
        /// The round closed.
        RoundClosed {
            record: ClosedRecord<T>,
            committee: u32,
            passes: u32,
            fails: u32,
        },
        /// `who` failed a round and is locked out.
        LockedOut { who: T::AccountId },
        /// `reporter` reported `subject` with `evidence`; audit `round` is open.
        Reported {
            round: RoundId,
            reporter: T::AccountId,
            subject: T::AccountId,
            evidence: [u8; 32],
        },
        /// `who` asked to rotate its keys; its rotation `round` is open.
        KeysRotationRequested { who: T::AccountId, round: RoundId },
        /// `who`'s new keys passed: device and network keys now, the VRF key from `vrf_from`.
        KeysRotated {
            who: T::AccountId,
            vrf_from: EpochIndex,
        },
        /// `who`'s rotation round did not pass: its old keys stay.
        KeysRotationDropped { who: T::AccountId },
        /// `member` earned its verifier fee for revealing in `round`.
        VerifierPaid {
            round: RoundId,
            member: T::AccountId,
            fee: BalanceOf<T>,
        },
        /// A golden measurement came into force.
        GoldenAdded { id: GoldenId, kind: GoldenKind },
        /// A golden measurement was retired.
        GoldenRetired { id: GoldenId, kind: GoldenKind },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The account already registered a gateway.
        AlreadyRegistered,
        /// The account has no gateway.
        NotRegistered,
        /// Registering needs the minimum bond: bond first (deposit pallet).
        InsufficientBond,
        /// The device key's proof does not verify (or is of another key kind).
        InvalidDeviceProof,
        /// The VRF key's proof does not verify.
        InvalidVrfProof,
        /// The network key's proof does not verify.
        InvalidNetworkProof,
        /// One of the keys belongs to another gateway.
        KeyInUse,
        /// The registry is full.
        TooManyGateways,
        /// This chain does not allow the claimed hardware level (Software outside dev chains).
        LevelNotAllowed,
        /// The gateway is already Active.
        AlreadyActive,
        /// The Active set is full.
        ActiveSetFull,
        /// The gateway is the subject of an open round; wait for it to close.
        SubjectOfOpenRound,
        /// This block has opened as many rounds as it may; retry in the next block.
        TooManyRounds,
        /// The subject is already in an open round.
        RoundAlreadyOpen,
        /// The round id counter is exhausted.
        RoundIdsExhausted,
        /// Not enough free balance to hold the round's verifier fees.
        InsufficientFeeDeposit,
        /// Only an Active gateway may rotate its keys.
        NotActive,
        /// A rotated VRF key has not come into force yet; rotate again after it does.
        RotationPending,
        /// A gateway cannot report itself.
        CannotReportSelf,
        /// Only an Active gateway may report another.
        ReporterNotActive,
        /// No open round has this id.
        UnknownRound,
        /// The caller is not on this round's committee.
        NotAMember,
        /// The round is not taking commitments now.
        NotInCommitPhase,
        /// The round is not taking reveals now.
        NotInRevealPhase,
        /// The member already committed.
        AlreadyCommitted,
        /// The member never committed, so it cannot reveal.
        NotCommitted,
        /// The member already revealed.
        AlreadyRevealed,
        /// The reveal does not match the commitment.
        RevealMismatch,
        /// This evidence digest was already revealed in this round, or in one of the subject's
        /// recent records.
        EvidenceReplayed,
        /// This golden measurement is already in force.
        GoldenExists,
        /// No golden measurement has this id.
        UnknownGolden,
        /// This kind has as many golden measurements as it may; retire one first.
        TooManyGolden,
        /// The measurement is malformed (a PCR selection out of range or out of order).
        MalformedGolden,
    }

    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Gateways Active from the first block, so a network can start.
        pub gateways: alloc::vec::Vec<GenesisGateway<T::AccountId>>,
        /// Golden measurements in force from the first block, each the hex of its SCALE
        /// encoding.
        pub golden: alloc::vec::Vec<sp_core::Bytes>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            for gateway in &self.gateways {
                let device_key = DevicePublicKey::decode(&mut &gateway.device_key[..])
                    .expect("genesis: a gateway's device_key is a SCALE-encoded DevicePublicKey");
                let info = GatewayInfo {
                    device_key,
                    vrf_key: gateway.vrf_key,
                    network_key: gateway.network_key,
                    level: gateway.level,
                    fingerprint: FingerprintRoot(gateway.fingerprint),
                    status: GatewayStatus::Pending,
                    registered_at: Zero::zero(),
                };
                Pallet::<T>::insert_gateway(&gateway.account, info)
                    .expect("genesis: gateways are distinct, within bounds, with distinct keys");
                Pallet::<T>::activate(&gateway.account)
                    .expect("genesis: the Active set holds every genesis gateway");
            }
            for encoded in &self.golden {
                let measurement = GoldenMeasurement::decode(&mut &encoded[..])
                    .expect("genesis: golden members are SCALE-encoded GoldenMeasurements");
                Pallet::<T>::insert_golden(measurement)
                    .expect("genesis: golden measurements are distinct, well formed, bounded");
            }
        }
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(now: BlockNumberFor<T>) -> Weight {
            Self::note_randomness();
            let due = SeedQueue::<T>::take(now);
            let seeded = due.len() as u32;
            for round in due {
                Self::seed_round(round, now);
            }
            let closing = CloseQueue::<T>::take(now);
            let closed = closing.len() as u32;
            for round in closing {
                Self::close_round(round, now);
            }
            T::WeightInfo::on_initialize_seeding(seeded)
                .saturating_add(T::WeightInfo::on_initialize_closing(closed))
                .saturating_add(T::OnRoundClosed::closed_weight().saturating_mul(closed.into()))
        }

        fn integrity_test() {
            assert!(
                (3..=MAX_SEED_BLOCKS).contains(&T::SeedBlocks::get()),
                "SeedBlocks must be within 3..=MAX_SEED_BLOCKS"
            );
            assert!(
                T::CommitteeSize::get() > 0,
                "CommitteeSize must be positive"
            );
            assert!(
                T::MaxCommittee::get() >= T::CommitteeSize::get().saturating_mul(2),
                "MaxCommittee must hold a re-opened round's doubled committee"
            );
            assert!(
                T::MaxRoundsPerBlock::get() > 0,
                "MaxRoundsPerBlock must be positive"
            );
        }
    }

    #[pallet::call(weight(<T as Config>::WeightInfo))]
    impl<T: Config> Pallet<T> {
        /// Registers the caller's gateway with its keys (each proven), claimed hardware level and
        /// fingerprint root. Needs the minimum bond. The gateway is Pending until its
        /// registration round passes.
        #[pallet::call_index(0)]
        pub fn register(
            origin: OriginFor<T>,
            keys: alloc::boxed::Box<GatewayKeys>,
            level: HardwareLevel,
            fingerprint: FingerprintRoot,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(
                !Gateways::<T>::contains_key(&who),
                Error::<T>::AlreadyRegistered
            );
            ensure!(
                T::Bonds::has_minimum_bond(&who),
                Error::<T>::InsufficientBond
            );
            ensure!(
                T::Reputation::level_allowed(level),
                Error::<T>::LevelNotAllowed
            );
            Self::ensure_proofs(&who, &keys)?;
            let info = GatewayInfo {
                device_key: keys.device_key,
                vrf_key: keys.vrf_key,
                network_key: keys.network_key,
                level,
                fingerprint,
                status: GatewayStatus::Pending,
                registered_at: frame_system::Pallet::<T>::block_number(),
            };
            Self::insert_gateway(&who, info)?;
            Self::deposit_event(Event::Registered {
                who: who.clone(),
                level,
            });
            Self::open_round(&who, AttestationPhase::Registration, None, None, None)?;
            Ok(())
        }

        /// Removes the caller's gateway and frees its keys. Not while it is the subject of an
        /// open round (a Pending gateway's registration round).
        #[pallet::call_index(1)]
        pub fn deregister(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let info = Gateways::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
            ensure!(
                !RoundOf::<T>::contains_key(&who),
                Error::<T>::SubjectOfOpenRound
            );
            Self::remove_from_active(&who);
            for (role, key) in Self::key_ids(&info) {
                KeyOwners::<T>::remove(key_id(role, &key));
            }
            if let Some((key, _)) = NextVrfKey::<T>::take(&who) {
                KeyOwners::<T>::remove(key_id(KeyRole::Vrf, &key));
            }
            Gateways::<T>::remove(&who);
            GatewayCount::<T>::mutate(|count| *count = count.saturating_sub(1));
            Self::deposit_event(Event::Deregistered { who });
            Ok(())
        }

        /// Makes a registered gateway Active without a round, so a network can start (or root can
        /// settle a round that had no eligible committee).
        #[pallet::call_index(2)]
        pub fn force_activate(origin: OriginFor<T>, who: T::AccountId) -> DispatchResult {
            T::GovernanceOrigin::ensure_origin(origin)?;
            Self::activate(&who)?;
            // Root settles the gateway's registration round, if one is open.
            if let Some(id) = RoundOf::<T>::get(&who) {
                if let Some(round) =
                    Rounds::<T>::get(id).filter(|r| r.phase == AttestationPhase::Registration)
                {
                    Self::release_fees(&round);
                    if let RoundStatus::AwaitingSeed { due } = round.status {
                        SeedQueue::<T>::mutate(due, |queue| queue.retain(|queued| *queued != id));
                    }
                    Rounds::<T>::remove(id);
                    RoundOf::<T>::remove(&who);
                }
            }
            Ok(())
        }

        /// Puts a golden measurement in force.
        #[pallet::call_index(3)]
        pub fn add_golden(origin: OriginFor<T>, measurement: GoldenMeasurement) -> DispatchResult {
            T::GovernanceOrigin::ensure_origin(origin)?;
            Self::insert_golden(measurement)
        }

        /// Retires a golden measurement.
        #[pallet::call_index(4)]
        pub fn retire_golden(origin: OriginFor<T>, id: GoldenId) -> DispatchResult {
            T::GovernanceOrigin::ensure_origin(origin)?;
            let measurement = Golden::<T>::take(id).ok_or(Error::<T>::UnknownGolden)?;
            let kind = measurement.kind();
            GoldenCount::<T>::mutate(kind, |count| *count = count.saturating_sub(1));
            Self::deposit_event(Event::GoldenRetired { id, kind });
            Ok(())
        }

        /// A committee member commits to its vote: `vote_commitment(round, member, verdict,
        /// evidence, salt)`, during the commit period.
        #[pallet::call_index(5)]
        pub fn commit(
            origin: OriginFor<T>,
            round: RoundId,
            commitment: [u8; 32],
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut state = Rounds::<T>::get(round).ok_or(Error::<T>::UnknownRound)?;
            let seat = Self::seat_of(&state, &who)?;
            let now = frame_system::Pallet::<T>::block_number();
            match state.status {
                RoundStatus::Voting { commit_until, .. } if now <= commit_until => {}
                _ => return Err(Error::<T>::NotInCommitPhase.into()),
            }
            let vote = state.votes.get_mut(seat).ok_or(Error::<T>::NotAMember)?;
            ensure!(vote.commitment.is_none(), Error::<T>::AlreadyCommitted);
            vote.commitment = Some(commitment);
            Rounds::<T>::insert(round, state);
            Self::deposit_event(Event::Committed { round, member: who });
            Ok(())
        }

        /// A committee member reveals the vote it committed to, during the reveal period.
        #[pallet::call_index(6)]
        pub fn reveal(
            origin: OriginFor<T>,
            round: RoundId,
            verdict: Verdict,
            evidence: [u8; 32],
            salt: [u8; 32],
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut state = Rounds::<T>::get(round).ok_or(Error::<T>::UnknownRound)?;
            let seat = Self::seat_of(&state, &who)?;
            let now = frame_system::Pallet::<T>::block_number();
            match state.status {
                RoundStatus::Voting {
                    commit_until,
                    reveal_until,
                } if now > commit_until && now <= reveal_until => {}
                _ => return Err(Error::<T>::NotInRevealPhase.into()),
            }
            let vote = state
                .votes
                .get(seat)
                .copied()
                .ok_or(Error::<T>::NotAMember)?;
            let commitment = vote.commitment.ok_or(Error::<T>::NotCommitted)?;
            ensure!(vote.reveal.is_none(), Error::<T>::AlreadyRevealed);
            let expected = vote_commitment(round, &account_bytes(&who), verdict, &evidence, &salt);
            ensure!(commitment == expected, Error::<T>::RevealMismatch);
            ensure!(
                !state
                    .votes
                    .iter()
                    .any(|vote| vote.reveal.is_some_and(|(_, e)| e == evidence)),
                Error::<T>::EvidenceReplayed
            );
            ensure!(
                !Records::<T>::get(&state.subject)
                    .iter()
                    .any(|record| record.evidence.contains(&evidence)),
                Error::<T>::EvidenceReplayed
            );
            let before = Self::outcome_of(&state);
            if let Some(vote) = state.votes.get_mut(seat) {
                vote.reveal = Some((verdict, evidence));
            }
            let after = Self::outcome_of(&state);
            Rounds::<T>::insert(round, &state);
            Self::deposit_event(Event::Revealed {
                round,
                member: who,
                verdict,
            });
            if let (None, Some(verdict)) = (before, after) {
                Self::deposit_event(Event::OutcomeReached { round, verdict });
            }
            Ok(())
        }

        /// An Active gateway reports evidence against another: an audit round opens about the
        /// subject, with the reporter off its committee. The reporter holds the round's verifier
        /// fees (so spam costs) and, if the subject is slashed, gets the reporter's share.
        #[pallet::call_index(7)]
        pub fn report(
            origin: OriginFor<T>,
            subject: T::AccountId,
            evidence: [u8; 32],
        ) -> DispatchResult {
            let reporter = ensure_signed(origin)?;
            ensure!(reporter != subject, Error::<T>::CannotReportSelf);
            ensure!(Self::is_active(&reporter), Error::<T>::ReporterNotActive);
            ensure!(
                Gateways::<T>::contains_key(&subject),
                Error::<T>::NotRegistered
            );
            let round = Self::open_round(
                &subject,
                AttestationPhase::Audit,
                None,
                Some(reporter.clone()),
                None,
            )?;
            Self::deposit_event(Event::Reported {
                round,
                reporter,
                subject,
                evidence,
            });
            Ok(())
        }

        /// An Active gateway asks to rotate its keys (each proven, as at registration). A
        /// rotation round opens; if it passes, the device and network keys change at once and
        /// the VRF key counts from two epochs later, so nobody can rotate into a draw.
        #[pallet::call_index(8)]
        pub fn rotate_keys(
            origin: OriginFor<T>,
            keys: alloc::boxed::Box<GatewayKeys>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut info = Gateways::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
            ensure!(info.status == GatewayStatus::Active, Error::<T>::NotActive);
            ensure!(
                !RoundOf::<T>::contains_key(&who),
                Error::<T>::RoundAlreadyOpen
            );
            if let Some((key, from)) = NextVrfKey::<T>::get(&who) {
                ensure!(
                    T::Snapshots::current_epoch() >= from,
                    Error::<T>::RotationPending
                );
                // Promote the rotated VRF key that is in force by now.
                KeyOwners::<T>::remove(key_id(KeyRole::Vrf, &info.vrf_key));
                info.vrf_key = key;
                Gateways::<T>::insert(&who, &info);
                NextVrfKey::<T>::remove(&who);
            }
            Self::ensure_proofs(&who, &keys)?;
            let pending = PendingKeys {
                device_key: keys.device_key,
                vrf_key: keys.vrf_key,
                network_key: keys.network_key,
            };
            let ids = Self::pending_key_ids(&pending);
            ensure!(
                ids.iter()
                    .all(|id| KeyOwners::<T>::get(id).is_none_or(|owner| owner == who)),
                Error::<T>::KeyInUse
            );
            let round = Self::open_round(&who, AttestationPhase::Registration, None, None, None)?;
            for id in ids {
                KeyOwners::<T>::insert(id, &who);
            }
            RotatingKeys::<T>::insert(&who, pending);
            Self::deposit_event(Event::KeysRotationRequested { who, round });
            Ok(())
        }
    }
}

impl<T: Config> Pallet<T> {
    /// Opens a round about `subject`, to be seeded `SeedBlocks` blocks from now.
    pub fn open_round(
        subject: &T::AccountId,
        phase: AttestationPhase,
        task: Option<TaskId>,
        reporter: Option<T::AccountId>,
        session_keys: Option<HpcSessionKeys>,
    ) -> Result<RoundId, DispatchError> {
        ensure!(
            !RoundOf::<T>::contains_key(subject),
            Error::<T>::RoundAlreadyOpen
        );
        let now = frame_system::Pallet::<T>::block_number();
        let due = now.saturating_add(T::SeedBlocks::get().into());
        let mut queue = SeedQueue::<T>::get(due);
        let id = NextRoundId::<T>::get();
        queue.try_push(id).map_err(|_| Error::<T>::TooManyRounds)?;
        let next = id.next().ok_or(Error::<T>::RoundIdsExhausted)?;
        let fee_payer = match (&reporter, phase) {
            (Some(reporter), _) => Some(reporter.clone()),
            (None, AttestationPhase::Registration) => Some(subject.clone()),
            (None, _) => None,
        };
        let fee_payer = match fee_payer {
            Some(payer) => {
                let amount = Self::fee_deposit();
                T::Currency::hold(&HoldReason::RoundFees.into(), &payer, amount)
                    .map_err(|_| Error::<T>::InsufficientFeeDeposit)?;
                Some((payer, amount))
            }
            None => None,
        };
        let round = Round::<T> {
            subject: subject.clone(),
            phase,
            task,
            reporter,
            opened_at: now,
            epoch: T::Snapshots::current_epoch(),
            status: RoundStatus::AwaitingSeed { due },
            seed: None,
            committee: BoundedVec::new(),
            votes: BoundedVec::new(),
            attempt: 0,
            session_keys,
            fee_payer,
        };
        SeedQueue::<T>::insert(due, queue);
        NextRoundId::<T>::put(next);
        Rounds::<T>::insert(id, round);
        RoundOf::<T>::insert(subject, id);
        Self::deposit_event(Event::RoundOpened {
            round: id,
            subject: subject.clone(),
            phase,
            seeded_at: due,
        });
        Ok(id)
    }

    /// What a round's opener holds: enough for a full committee on both attempts (k, then 2k).
    pub fn fee_deposit() -> BalanceOf<T> {
        T::VerifierFee::get().saturating_mul(T::CommitteeSize::get().saturating_mul(3).into())
    }

    /// Pays each member of `round` who revealed its fee from the opener's hold.
    fn pay_revealers(id: RoundId, round: &mut Round<T>) {
        let Some((payer, held)) = round.fee_payer.as_mut() else {
            return;
        };
        let fee = T::VerifierFee::get();
        for (member, vote) in round.committee.iter().zip(round.votes.iter()) {
            if vote.reveal.is_none() || *held < fee {
                continue;
            }
            let paid = T::Currency::transfer_on_hold(
                &HoldReason::RoundFees.into(),
                payer,
                member,
                fee,
                Precision::Exact,
                Restriction::Free,
                Fortitude::Polite,
            );
            if paid.is_ok() {
                held.saturating_reduce(fee);
                Self::deposit_event(Event::VerifierPaid {
                    round: id,
                    member: member.clone(),
                    fee,
                });
            }
        }
    }

    /// Returns what is left of the opener's hold.
    fn release_fees(round: &Round<T>) {
        if let Some((payer, held)) = &round.fee_payer {
            // Best effort: the hold can only be smaller if something else released it.
            let _ = T::Currency::release(
                &HoldReason::RoundFees.into(),
                payer,
                *held,
                Precision::BestEffort,
            );
        }
    }

    /// Keeps this block's VRF output among the last `SeedBlocks`. A block without one (BABE
    /// gives every block one, with primary and secondary VRF slots) contributes zeros.
    fn note_randomness() {
        let output = T::BlockRandomness::get().unwrap_or_default();
        RecentRandomness::<T>::mutate(|recent| {
            let keep = T::SeedBlocks::get().min(MAX_SEED_BLOCKS) as usize;
            if recent.len() >= keep {
                recent.remove(0);
            }
            // Room was made above; `keep` is at most the bound.
            let _ = recent.try_push(output);
        });
    }

    /// Seeds `id` from the recent VRF outputs and draws its committee from its epoch's
    /// snapshot: eligible gateways other than the subject and the reporter.
    fn seed_round(id: RoundId, now: BlockNumberFor<T>) {
        let Some(mut round) = Rounds::<T>::get(id) else {
            return;
        };
        let seed = round_seed(id, &RecentRandomness::<T>::get());
        let candidates: alloc::vec::Vec<(T::AccountId, u128)> = T::Snapshots::snapshot(round.epoch)
            .map(|snapshot| snapshot.members.into_inner())
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| {
                entry.account != round.subject
                    && round.reporter.as_ref() != Some(&entry.account)
                    && T::Snapshots::is_eligible(&entry.account)
            })
            .map(|entry| (entry.account, entry.weight))
            .collect();
        let seats = T::CommitteeSize::get()
            .saturating_mul(u32::from(round.attempt) + 1)
            .min(T::MaxCommittee::get());
        let committee = sampling::sample_without_replacement(&seed, &candidates, seats);
        round.seed = Some(seed);
        if committee.is_empty() {
            round.status = RoundStatus::AwaitingRoot;
            Self::deposit_event(Event::RoundToRoot { round: id });
        } else {
            round.committee = BoundedVec::truncate_from(committee);
            round.votes = BoundedVec::truncate_from(alloc::vec![
                MemberVote::default();
                round.committee.len()
            ]);
            let commit_until = now.saturating_add(T::CommitPeriod::get());
            let reveal_until = commit_until.saturating_add(T::RevealPeriod::get());
            round.status = RoundStatus::Voting {
                commit_until,
                reveal_until,
            };
            // Every round seeded in this block closes in the same later block, and this block
            // seeds at most MaxRoundsPerBlock: the push always fits.
            let _ = CloseQueue::<T>::try_mutate(reveal_until.saturating_add(One::one()), |queue| {
                queue.try_push(id)
            });
            Self::deposit_event(Event::CommitteeDrawn {
                round: id,
                committee: round.committee.clone(),
            });
        }
        Rounds::<T>::insert(id, round);
    }

    fn seat_of(round: &Round<T>, who: &T::AccountId) -> Result<usize, DispatchError> {
        round
            .committee
            .iter()
            .position(|member| member == who)
            .ok_or_else(|| Error::<T>::NotAMember.into())
    }

    /// The verdict a supermajority of `round`'s committee has revealed so far, if any.
    fn outcome_of(round: &Round<T>) -> Option<Verdict> {
        tally::supermajority(Self::revealed(round), round.committee.len() as u32)
    }

    /// The verdicts `round`'s members have revealed.
    fn revealed(round: &Round<T>) -> impl Iterator<Item = Verdict> + '_ {
        round
            .votes
            .iter()
            .filter_map(|vote| vote.reveal.map(|(verdict, _)| verdict))
    }

    /// Closes `id` after its reveal deadline: settles the subject, counts every member's vote,
    /// and tells `OnRoundClosed`. With no supermajority a first attempt is drawn again with a
    /// doubled committee; a second goes to root.
    fn close_round(id: RoundId, now: BlockNumberFor<T>) {
        let Some(mut round) = Rounds::<T>::get(id) else {
            return;
        };
        let committee = round.committee.len() as u32;
        let (passes, fails) = tally::count(Self::revealed(&round));
        let outcome = tally::decide(passes, fails, committee);
        Self::pay_revealers(id, &mut round);
        if outcome.is_none() && round.attempt == 0 && Self::reopen(id, &mut round, now) {
            return;
        }
        Self::release_fees(&round);
        for (member, vote) in round.committee.iter().zip(round.votes.iter()) {
            let alignment = match (vote.reveal, outcome) {
                (None, _) => VoteAlignment::Absent,
                (Some((verdict, _)), Some(decided)) if verdict == decided => {
                    VoteAlignment::WithOutcome
                }
                (Some(_), Some(_)) => VoteAlignment::AgainstOutcome,
                // Inconclusive: revealing was all a member could do.
                (Some(_), None) => VoteAlignment::WithOutcome,
            };
            T::Reputation::vote_counted(member, alignment);
        }
        let subject = round.subject.clone();
        let outcome = match outcome {
            Some(Verdict::Pass) => {
                Self::settle_pass(&subject, round.phase);
                RoundOutcome::Passed
            }
            Some(Verdict::Fail) => {
                Self::settle_fail(id, &subject, committee, round.reporter.as_ref());
                RoundOutcome::Failed
            }
            None => {
                Self::deposit_event(Event::RoundToRoot { round: id });
                RoundOutcome::ToRoot
            }
        };
        if round.phase == AttestationPhase::Registration {
            Self::settle_rotation(&subject, outcome == RoundOutcome::Passed);
        }
        Rounds::<T>::remove(id);
        RoundOf::<T>::remove(&subject);
        // Rounds about a task hold no fees: the task-market pays their revealers.
        let task_revealers: alloc::vec::Vec<T::AccountId> = if round.fee_payer.is_none() {
            round
                .committee
                .iter()
                .zip(round.votes.iter())
                .filter(|(_, vote)| vote.reveal.is_some())
                .map(|(member, _)| member.clone())
                .collect()
        } else {
            alloc::vec::Vec::new()
        };
        T::OnRoundClosed::on_round_closed(
            id,
            &subject,
            round.phase,
            round.task,
            outcome,
            &task_revealers,
        );
        let record = ClosedRecord::<T> {
            round: id,
            subject: subject.clone(),
            phase: round.phase,
            outcome,
            evidence: BoundedVec::truncate_from(
                round
                    .votes
                    .iter()
                    .filter_map(|vote| vote.reveal.map(|(_, e)| e))
                    .collect(),
            ),
            session_keys: round.session_keys,
            task: round.task,
            closed_at: now,
        };
        Records::<T>::mutate(&subject, |records| {
            if records.is_full() && !records.is_empty() {
                records.remove(0);
            }
            // Room was made above (a zero bound keeps no records).
            let _ = records.try_push(record.clone());
        });
        Self::deposit_event(Event::RoundClosed {
            record,
            committee,
            passes,
            fails,
        });
    }

    /// Queues `round` to be seeded again with a doubled committee; false if this block's seed
    /// queue is full (the round then goes to root).
    fn reopen(id: RoundId, round: &mut Round<T>, now: BlockNumberFor<T>) -> bool {
        let due = now.saturating_add(T::SeedBlocks::get().into());
        let mut queue = SeedQueue::<T>::get(due);
        if queue.try_push(id).is_err() {
            return false;
        }
        SeedQueue::<T>::insert(due, queue);
        round.attempt = 1;
        round.status = RoundStatus::AwaitingSeed { due };
        round.committee = BoundedVec::new();
        round.votes = BoundedVec::new();
        round.epoch = T::Snapshots::current_epoch();
        Rounds::<T>::insert(id, &*round);
        Self::deposit_event(Event::RoundReopened {
            round: id,
            seeded_at: due,
        });
        true
    }

    fn settle_pass(subject: &T::AccountId, phase: AttestationPhase) {
        T::Reputation::round_passed(subject);
        if phase == AttestationPhase::Registration {
            if let Some(info) = Gateways::<T>::get(subject) {
                // The level was allowed at registration; a chain that has since forbidden it
                // leaves the reputation pallet's level as it was.
                let _ = T::Reputation::set_hardware_level(subject, info.level);
            }
            // Already Active (re-registration after a lockout is a new round) is fine.
            let _ = Self::activate(subject);
        }
    }

    fn settle_fail(
        id: RoundId,
        subject: &T::AccountId,
        committee: u32,
        reporter: Option<&T::AccountId>,
    ) {
        if committee < T::MinSlashCommittee::get() {
            Self::suspend(subject, SuspensionReason::FailedBeforeSmallCommittee);
            return;
        }
        // A subject with no bond left has nothing to slash; the lockout still applies.
        let _ = T::Bonds::slash(
            subject,
            id,
            SlashAmount::Fraction(T::FailSlash::get()),
            reporter,
        );
        T::Reputation::round_failed(subject);
        if let Some(mut info) = Gateways::<T>::get(subject) {
            info.status = GatewayStatus::LockedOut;
            Gateways::<T>::insert(subject, info);
            Self::remove_from_active(subject);
            Self::deposit_event(Event::LockedOut {
                who: subject.clone(),
            });
        }
    }

    /// Checks the proof of possession of each key in `keys`, for `who` on this chain.
    fn ensure_proofs(who: &T::AccountId, keys: &GatewayKeys) -> DispatchResult {
        let genesis = Self::genesis_hash();
        let account = account_bytes(who);
        ensure!(
            keys::device_proof_is_valid(&keys.device_key, &keys.device_proof, &genesis, &account),
            Error::<T>::InvalidDeviceProof
        );
        ensure!(
            keys::vrf_proof_is_valid(&keys.vrf_key, &keys.vrf_proof, &genesis, &account),
            Error::<T>::InvalidVrfProof
        );
        ensure!(
            keys::network_proof_is_valid(
                &keys.network_key,
                &keys.network_proof,
                &genesis,
                &account
            ),
            Error::<T>::InvalidNetworkProof
        );
        Ok(())
    }

    fn pending_key_ids(keys: &PendingKeys) -> [[u8; 32]; 3] {
        [
            key_id(KeyRole::Device, keys.device_key.as_bytes()),
            key_id(KeyRole::Vrf, &keys.vrf_key),
            key_id(KeyRole::Network, &keys.network_key),
        ]
    }

    /// The VRF key `who` draws with in `epoch`.
    pub fn vrf_key_for(who: &T::AccountId, epoch: EpochIndex) -> Option<[u8; 32]> {
        let info = Gateways::<T>::get(who)?;
        match NextVrfKey::<T>::get(who) {
            Some((key, from)) if epoch >= from => Some(key),
            _ => Some(info.vrf_key),
        }
    }

    /// Settles a rotation round: applies the new keys if it passed, else frees them.
    fn settle_rotation(who: &T::AccountId, passed: bool) {
        let Some(pending) = RotatingKeys::<T>::take(who) else {
            return;
        };
        let Some(mut info) = Gateways::<T>::get(who) else {
            return;
        };
        let current = Self::key_ids(&info).map(|(role, key)| key_id(role, &key));
        let new = Self::pending_key_ids(&pending);
        if !passed {
            for id in new.iter().filter(|id| !current.contains(id)) {
                KeyOwners::<T>::remove(id);
            }
            Self::deposit_event(Event::KeysRotationDropped { who: who.clone() });
            return;
        }
        // Device and network keys change now; their old records go.
        if new[0] != current[0] {
            KeyOwners::<T>::remove(current[0]);
        }
        if new[2] != current[2] {
            KeyOwners::<T>::remove(current[2]);
        }
        info.device_key = pending.device_key;
        info.network_key = pending.network_key;
        Gateways::<T>::insert(who, info);
        let vrf_from = EpochIndex(T::Snapshots::current_epoch().0.saturating_add(2));
        if new[1] != current[1] {
            NextVrfKey::<T>::insert(who, (pending.vrf_key, vrf_from));
        }
        Self::deposit_event(Event::KeysRotated {
            who: who.clone(),
            vrf_from,
        });
    }

    /// The genesis block's hash, which key proofs sign.
    pub fn genesis_hash() -> [u8; 32] {
        let hash = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
        // A 32-byte hash on every chain of ours; any other length is hashed down to 32.
        hash.as_ref()
            .try_into()
            .unwrap_or_else(|_| blake2_256(hash.as_ref()))
    }

    fn key_ids(info: &GatewayInfo<BlockNumberFor<T>>) -> [(KeyRole, alloc::vec::Vec<u8>); 3] {
        [
            (KeyRole::Device, info.device_key.as_bytes().to_vec()),
            (KeyRole::Vrf, info.vrf_key.to_vec()),
            (KeyRole::Network, info.network_key.to_vec()),
        ]
    }

    /// Stores a new gateway and claims its keys; fails without writing if any key is taken.
    fn insert_gateway(who: &T::AccountId, info: GatewayInfo<BlockNumberFor<T>>) -> DispatchResult {
        ensure!(
            !Gateways::<T>::contains_key(who),
            Error::<T>::AlreadyRegistered
        );
        let count = GatewayCount::<T>::get();
        ensure!(count < T::MaxGateways::get(), Error::<T>::TooManyGateways);
        let ids = Self::key_ids(&info).map(|(role, key)| key_id(role, &key));
        ensure!(
            ids.iter().all(|id| !KeyOwners::<T>::contains_key(id)),
            Error::<T>::KeyInUse
        );
        for id in ids {
            KeyOwners::<T>::insert(id, who);
        }
        Gateways::<T>::insert(who, info);
        GatewayCount::<T>::put(count.saturating_add(1));
        Ok(())
    }

    /// Makes `who` Active and lists it.
    fn activate(who: &T::AccountId) -> DispatchResult {
        let mut info = Gateways::<T>::get(who).ok_or(Error::<T>::NotRegistered)?;
        ensure!(
            info.status != GatewayStatus::Active,
            Error::<T>::AlreadyActive
        );
        ActiveGateways::<T>::try_mutate(|active| {
            active
                .try_push((who.clone(), info.level))
                .map_err(|_| Error::<T>::ActiveSetFull)
        })?;
        info.status = GatewayStatus::Active;
        Gateways::<T>::insert(who, info);
        Self::deposit_event(Event::Activated { who: who.clone() });
        Ok(())
    }

    fn remove_from_active(who: &T::AccountId) {
        ActiveGateways::<T>::mutate(|active| active.retain(|(account, _)| account != who));
    }

    fn suspend(who: &T::AccountId, reason: SuspensionReason) {
        let Some(mut info) = Gateways::<T>::get(who) else {
            return;
        };
        if matches!(
            info.status,
            GatewayStatus::Suspended | GatewayStatus::LockedOut
        ) {
            return;
        }
        info.status = GatewayStatus::Suspended;
        Gateways::<T>::insert(who, info);
        Self::remove_from_active(who);
        Self::deposit_event(Event::Suspended {
            who: who.clone(),
            reason,
        });
    }

    fn insert_golden(measurement: GoldenMeasurement) -> DispatchResult {
        ensure!(measurement.is_well_formed(), Error::<T>::MalformedGolden);
        let id = measurement.id();
        ensure!(!Golden::<T>::contains_key(id), Error::<T>::GoldenExists);
        let kind = measurement.kind();
        let count = GoldenCount::<T>::get(kind);
        ensure!(
            count < T::MaxGoldenPerKind::get(),
            Error::<T>::TooManyGolden
        );
        Golden::<T>::insert(id, measurement);
        GoldenCount::<T>::insert(kind, count.saturating_add(1));
        Self::deposit_event(Event::GoldenAdded { id, kind });
        Ok(())
    }

    /// The pallet's invariants: counts match the maps, every key owner points back at its
    /// gateway, and the Active list is exactly the Active gateways.
    pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
        use sp_runtime::TryRuntimeError;
        let mut gateways = 0u32;
        for (who, info) in Gateways::<T>::iter() {
            gateways = gateways.saturating_add(1);
            for (role, key) in Self::key_ids(&info) {
                ensure!(
                    KeyOwners::<T>::get(key_id(role, &key)).as_ref() == Some(&who),
                    TryRuntimeError::Other("a gateway key has no owner record")
                );
            }
            let listed = ActiveGateways::<T>::get()
                .iter()
                .any(|(account, _)| *account == who);
            ensure!(
                listed == (info.status == GatewayStatus::Active),
                TryRuntimeError::Other("the Active list differs from the Active statuses")
            );
        }
        ensure!(
            gateways == GatewayCount::<T>::get(),
            TryRuntimeError::Other("gateway count off")
        );
        for (id, round) in Rounds::<T>::iter() {
            ensure!(
                RoundOf::<T>::get(&round.subject) == Some(id),
                TryRuntimeError::Other("an open round is not its subject's round")
            );
            if let RoundStatus::AwaitingSeed { due } = round.status {
                ensure!(
                    SeedQueue::<T>::get(due).contains(&id),
                    TryRuntimeError::Other("a round awaiting its seed is not queued")
                );
            }
            ensure!(
                round.committee.len() as u32 <= T::MaxCommittee::get(),
                TryRuntimeError::Other("a committee is over its bound")
            );
        }
        ensure!(
            RoundOf::<T>::iter().all(|(_, id)| Rounds::<T>::contains_key(id)),
            TryRuntimeError::Other("a subject points at a missing round")
        );
        let mut fees = alloc::collections::BTreeMap::<T::AccountId, BalanceOf<T>>::new();
        for (_, round) in Rounds::<T>::iter() {
            if let Some((payer, held)) = round.fee_payer {
                let sum = fees.entry(payer).or_default();
                *sum = sum.saturating_add(held);
            }
        }
        for (payer, held) in fees {
            ensure!(
                T::Currency::balance_on_hold(&HoldReason::RoundFees.into(), &payer) == held,
                TryRuntimeError::Other("held round fees differ from the open rounds' deposits")
            );
        }
        for (id, owner) in KeyOwners::<T>::iter() {
            let info = Gateways::<T>::get(&owner)
                .ok_or(TryRuntimeError::Other("a key belongs to no gateway"))?;
            let mut held: alloc::vec::Vec<[u8; 32]> = Self::key_ids(&info)
                .map(|(role, key)| key_id(role, &key))
                .to_vec();
            if let Some(pending) = RotatingKeys::<T>::get(&owner) {
                held.extend(Self::pending_key_ids(&pending));
            }
            if let Some((key, _)) = NextVrfKey::<T>::get(&owner) {
                held.push(key_id(KeyRole::Vrf, &key));
            }
            ensure!(
                held.contains(&id),
                TryRuntimeError::Other("a stray key owner record")
            );
        }
        for kind in [
            GoldenKind::GatewayOs,
            GoldenKind::HpcBootImage,
            GoldenKind::HpcPcrPolicy,
            GoldenKind::TpmEkCaRoot,
            GoldenKind::BaseContainerImage,
        ] {
            let stored = Golden::<T>::iter_values()
                .filter(|m| m.kind() == kind)
                .count() as u32;
            ensure!(
                stored == GoldenCount::<T>::get(kind),
                TryRuntimeError::Other("golden count off")
            );
        }
        Ok(())
    }
}

/// What the runtime API (`pallet-attestation-runtime-api`) answers. Not bound by block weight,
/// but bounded all the same: a subject has at most one open round, so there are at most
/// `MaxGateways` rounds, and golden measurements are capped per kind.
impl<T: Config> Pallet<T> {
    /// The open rounds with ids from `from` on, at most `limit` of them, by id.
    pub fn open_rounds(
        from: RoundId,
        limit: u32,
    ) -> alloc::vec::Vec<RoundView<T::AccountId, BlockNumberFor<T>>> {
        // Keys first (cheap: `Twox64Concat` carries the id), then only the rounds returned.
        let mut ids: alloc::vec::Vec<RoundId> =
            Rounds::<T>::iter_keys().filter(|id| *id >= from).collect();
        ids.sort();
        ids.truncate(limit as usize);
        ids.into_iter()
            .filter_map(|id| Rounds::<T>::get(id).map(|round| Self::view(id, round)))
            .collect()
    }

    /// The open rounds on whose committee `member` sits, by id.
    pub fn rounds_of_member(
        member: &T::AccountId,
    ) -> alloc::vec::Vec<RoundView<T::AccountId, BlockNumberFor<T>>> {
        let mut views: alloc::vec::Vec<_> = Rounds::<T>::iter()
            .filter(|(_, round)| round.committee.contains(member))
            .map(|(id, round)| Self::view(id, round))
            .collect();
        views.sort_by_key(|view| view.id);
        views
    }

    /// The golden measurements in force, of one kind or of all, by id.
    pub fn golden_measurements(
        kind: Option<GoldenKind>,
    ) -> alloc::vec::Vec<(GoldenId, GoldenMeasurement)> {
        let mut golden: alloc::vec::Vec<_> = Golden::<T>::iter()
            .filter(|(_, measurement)| kind.is_none_or(|kind| measurement.kind() == kind))
            .collect();
        golden.sort_by_key(|(id, _)| *id);
        golden
    }

    fn view(id: RoundId, round: Round<T>) -> RoundView<T::AccountId, BlockNumberFor<T>> {
        RoundView {
            id,
            subject: round.subject,
            phase: round.phase,
            task: round.task,
            reporter: round.reporter,
            opened_at: round.opened_at,
            epoch: round.epoch,
            status: round.status,
            seed: round.seed,
            committee: round.committee.into_inner(),
            votes: round.votes.into_inner(),
            attempt: round.attempt,
            session_keys: round.session_keys,
        }
    }
}

impl<T: Config> GatewayRegistry<T::AccountId> for Pallet<T> {
    type MaxGateways = T::MaxGateways;

    fn active_gateways() -> BoundedVec<(T::AccountId, HardwareLevel), T::MaxGateways> {
        ActiveGateways::<T>::get()
    }

    fn is_active(who: &T::AccountId) -> bool {
        Gateways::<T>::get(who).is_some_and(|info| info.status == GatewayStatus::Active)
    }

    fn active_gateways_weight() -> Weight {
        T::WeightInfo::read_active_gateways()
    }
}

impl<T: Config> TaskRounds<T::AccountId> for Pallet<T> {
    type Balance = BalanceOf<T>;

    fn open_task_round(
        executor: &T::AccountId,
        phase: AttestationPhase,
        task: TaskId,
        session_keys: HpcSessionKeys,
    ) -> Result<RoundId, DispatchError> {
        Self::open_round(executor, phase, Some(task), None, Some(session_keys))
    }

    fn open_weight() -> Weight {
        // Registration's weight covers opening a round (with its fee hold, which task rounds
        // skip) plus the key checks.
        T::WeightInfo::register()
    }

    fn verifier_fee() -> BalanceOf<T> {
        T::VerifierFee::get()
    }

    fn max_paid_members() -> u32 {
        // The first attempt's committee plus the re-opened one's (twice as large).
        T::CommitteeSize::get().saturating_mul(3)
    }
}

impl<T: Config> RecentRandomnessSource for Pallet<T> {
    fn seed_blocks() -> u32 {
        T::SeedBlocks::get()
    }

    fn recent_outputs() -> alloc::vec::Vec<[u8; 32]> {
        RecentRandomness::<T>::get().into_inner()
    }
}

impl<T: Config> VrfKeys<T::AccountId> for Pallet<T> {
    fn vrf_key(who: &T::AccountId, epoch: EpochIndex) -> Option<[u8; 32]> {
        Self::vrf_key_for(who, epoch)
    }
}

impl<T: Config> WithdrawalGuard<T::AccountId> for Pallet<T> {
    fn withdrawal_block(who: &T::AccountId) -> Option<WithdrawalBlock> {
        RoundOf::<T>::contains_key(who).then_some(WithdrawalBlock::SubjectOfOpenRound)
    }

    fn guard_weight() -> Weight {
        T::DbWeight::get().reads(1)
    }
}

impl<T: Config> OnBondBelowMinimum<T::AccountId> for Pallet<T> {
    fn on_bond_below_minimum(who: &T::AccountId) {
        Self::suspend(who, SuspensionReason::BondBelowMinimum)
    }

    fn notify_weight() -> Weight {
        T::WeightInfo::suspend()
    }
}
