//! # Reputation pallet
//!
//! Gives every gateway a score that is slow to earn and quick to lose, and at each BABE epoch
//! change fixes who may be drawn for rounds and tasks, and with what weight.
//!
//! - The score rises with passed rounds and completed tasks, up to [`Config::MaxScore`]; absent
//!   votes and votes against a round's outcome lower it a little; a failed round resets it to
//!   zero and locks it for [`Config::LockoutPeriod`] blocks, during which it cannot rise.
//! - It decays by [`Config::DecayPerPeriod`] every [`Config::DecayPeriod`] blocks, computed
//!   lazily whenever it is read or written: no hook ever walks all accounts.
//! - The attestation pallet sets each gateway's [`HardwareLevel`]; the level multiplies the
//!   score (Software x1, GatewayHsm x2, HpcTpm x4). Software counts only on chains whose genesis
//!   allows it (dev and local); elsewhere it counts zero. A locked gateway counts zero whatever
//!   its level.
//! - At the first block of each epoch, `on_initialize` snapshots the registry's Active gateways
//!   with weight `effective score x active bond`, for the epoch after it: a bond, key or score
//!   changed during epoch `e` first counts in draws of epoch `e + 2`, so nobody can top up after
//!   seeing a draw. The last [`SNAPSHOTS_KEPT`] snapshots are kept; [`EpochSnapshots`] reads them.
//!
//! Other pallets tell this one what happened through [`ReputationEvents`].
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;
pub use weights::WeightInfo;

use capsule_pallet_traits::{
    BondInspect, EpochIndex, EpochSnapshot, EpochSnapshots, GatewayRegistry, HardwareLevel,
    ReputationEvents, SnapshotEntry, VoteAlignment,
};
use codec::{Decode, Encode, MaxEncodedLen};
use frame_support::{pallet_prelude::*, traits::Get};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_runtime::{
    traits::{SaturatedConversion, Saturating, Zero},
    Perbill,
};

/// How many epoch snapshots are kept: the previous, the current and the next epoch's, plus one
/// for rounds that straddle an epoch change.
pub const SNAPSHOTS_KEPT: u32 = 4;

/// The registry's bound on Active gateways, which bounds every snapshot.
pub type MaxGatewaysOf<T> = <<T as Config>::Registry as GatewayRegistry<
    <T as frame_system::Config>::AccountId,
>>::MaxGateways;

/// One snapshot as this pallet stores it.
pub type SnapshotOf<T> = EpochSnapshot<<T as frame_system::Config>::AccountId, MaxGatewaysOf<T>>;

/// A gateway's standing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct Reputation<BlockNumber> {
    /// The score as of `decayed_at`.
    pub score: u32,
    /// The block up to which decay has been applied to `score`.
    pub decayed_at: BlockNumber,
    /// The score cannot rise before this block (after a failed round).
    pub locked_until: BlockNumber,
    /// The level the attestation pallet last proved.
    pub level: HardwareLevel,
}

impl<BlockNumber: Zero> Default for Reputation<BlockNumber> {
    fn default() -> Self {
        Self {
            score: 0,
            decayed_at: Zero::zero(),
            locked_until: Zero::zero(),
            level: HardwareLevel::Software,
        }
    }
}

/// Why a score changed.
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
pub enum ScoreChange {
    RoundPassed,
    TaskCompleted,
    VoteAbsent,
    VoteAgainstOutcome,
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config {
        /// The Active gateways (the attestation pallet).
        type Registry: GatewayRegistry<Self::AccountId>;

        /// Active bonds (the deposit pallet).
        type Bonds: BondInspect<Self::AccountId>;

        /// The current BABE epoch index.
        type CurrentEpoch: Get<EpochIndex>;

        /// The highest score.
        #[pallet::constant]
        type MaxScore: Get<u32>;

        /// Added when a gateway passes a round.
        #[pallet::constant]
        type PassedRoundReward: Get<u32>;

        /// Added when a gateway's task settles as completed.
        #[pallet::constant]
        type CompletedTaskReward: Get<u32>;

        /// Taken when a sampled verifier does not vote.
        #[pallet::constant]
        type AbsentVotePenalty: Get<u32>;

        /// Taken when a verifier votes against the round's outcome.
        #[pallet::constant]
        type MinorityVotePenalty: Get<u32>;

        /// Blocks after a failed round during which the score cannot rise.
        #[pallet::constant]
        type LockoutPeriod: Get<BlockNumberFor<Self>>;

        /// Blocks per decay step.
        #[pallet::constant]
        type DecayPeriod: Get<BlockNumberFor<Self>>;

        /// The part of the score kept at each decay step.
        #[pallet::constant]
        type DecayPerPeriod: Get<Perbill>;

        type WeightInfo: WeightInfo;

        /// Sets up gateways and bonds for the benchmarks.
        #[cfg(feature = "runtime-benchmarks")]
        type BenchmarkHelper: capsule_pallet_traits::BenchmarkBonds<Self::AccountId>;
    }

    /// Each gateway's standing; absent means score zero at level Software.
    #[pallet::storage]
    pub type Reputations<T: Config> =
        StorageMap<_, Blake2_128Concat, T::AccountId, Reputation<BlockNumberFor<T>>>;

    /// Whether the Software level counts (dev and local chains only).
    #[pallet::storage]
    pub type SoftwareLevelAllowed<T: Config> = StorageValue<_, bool, ValueQuery>;

    /// The snapshots draws use, by the epoch they serve.
    #[pallet::storage]
    pub type Snapshots<T: Config> = StorageMap<_, Twox64Concat, EpochIndex, SnapshotOf<T>>;

    /// The epochs that have a snapshot, oldest first.
    #[pallet::storage]
    pub type SnapshotEpochs<T: Config> =
        StorageValue<_, BoundedVec<EpochIndex, ConstU32<SNAPSHOTS_KEPT>>, ValueQuery>;

    /// The epoch at whose start the last snapshot was taken.
    #[pallet::storage]
    pub type LastSnapshotAt<T: Config> = StorageValue<_, EpochIndex>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// `who`'s score changed to `score` because of `change`.
        ScoreChanged {
            who: T::AccountId,
            change: ScoreChange,
            score: u32,
        },
        /// `who` failed a round: score zero, locked until `locked_until`.
        ScoreReset {
            who: T::AccountId,
            locked_until: BlockNumberFor<T>,
        },
        /// `who`'s hardware level is now `level`.
        HardwareLevelSet {
            who: T::AccountId,
            level: HardwareLevel,
        },
        /// Draws of `epoch` will use a snapshot of `gateways` gateways weighing `total_weight`.
        SnapshotTaken {
            epoch: EpochIndex,
            gateways: u32,
            total_weight: u128,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// This chain does not allow the Software level (only dev and local chains do).
        SoftwareLevelNotAllowed,
    }

    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Starting scores, so a new network has weight to draw from.
        pub scores: alloc::vec::Vec<(T::AccountId, u32)>,
        /// Starting hardware levels.
        pub levels: alloc::vec::Vec<(T::AccountId, HardwareLevel)>,
        /// Whether the Software level counts: true only for dev and local chains.
        pub allow_software_level: bool,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            SoftwareLevelAllowed::<T>::put(self.allow_software_level);
            for (who, score) in &self.scores {
                assert!(
                    *score <= T::MaxScore::get(),
                    "genesis: a score is above MaxScore"
                );
                Reputations::<T>::mutate(who, |rep| {
                    rep.get_or_insert_with(Default::default).score = *score
                });
            }
            for (who, level) in &self.levels {
                assert!(
                    *level != HardwareLevel::Software || self.allow_software_level,
                    "genesis: the Software level is not allowed on this chain"
                );
                Reputations::<T>::mutate(who, |rep| {
                    rep.get_or_insert_with(Default::default).level = *level
                });
            }
        }
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(_now: BlockNumberFor<T>) -> Weight {
            let epoch = T::CurrentEpoch::get();
            if LastSnapshotAt::<T>::get() == Some(epoch) {
                return T::WeightInfo::on_initialize_idle();
            }
            let gateways = T::Registry::active_gateways();
            let count = gateways.len() as u32;
            Self::store_snapshots(epoch, gateways.into_inner());
            T::WeightInfo::on_initialize_idle()
                .saturating_add(T::Registry::active_gateways_weight())
                .saturating_add(T::WeightInfo::snapshot(count))
        }

        fn integrity_test() {
            assert!(
                !T::DecayPeriod::get().is_zero(),
                "DecayPeriod must be positive"
            );
            assert!(T::MaxScore::get() > 0, "MaxScore must be positive");
            // Weights are multiplied by at most 4 (HpcTpm) and by a u128 bond.
            assert!(
                T::MaxScore::get() <= u32::MAX / 4,
                "MaxScore leaves no room for the level"
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }
}

impl<T: Config> Pallet<T> {
    /// `who`'s standing now, decay applied (without writing it).
    pub fn reputation(who: &T::AccountId) -> Reputation<BlockNumberFor<T>> {
        let mut rep = Reputations::<T>::get(who).unwrap_or_default();
        Self::decay(&mut rep, frame_system::Pallet::<T>::block_number());
        rep
    }

    /// The score with the level `who` proved: zero while locked, else the decayed score times the
    /// level's multiplier. (A snapshot uses the lower of this level and the registry's.)
    pub fn effective_score(who: &T::AccountId) -> u32 {
        let rep = Reputations::<T>::get(who).unwrap_or_default();
        let now = frame_system::Pallet::<T>::block_number();
        Self::score_at_level(rep, rep.level, now, SoftwareLevelAllowed::<T>::get())
    }

    /// `rep`'s score at `now` with `level`'s multiplier; zero while locked.
    fn score_at_level(
        mut rep: Reputation<BlockNumberFor<T>>,
        level: HardwareLevel,
        now: BlockNumberFor<T>,
        software_allowed: bool,
    ) -> u32 {
        if now < rep.locked_until {
            return 0;
        }
        Self::decay(&mut rep, now);
        rep.score
            .saturating_mul(multiplier(level, software_allowed))
    }

    /// How much a level multiplies the score on this chain.
    pub fn level_multiplier(level: HardwareLevel) -> u32 {
        multiplier(level, SoftwareLevelAllowed::<T>::get())
    }

    /// Brings `rep` to `now`: one multiplication by `DecayPerPeriod` per whole period passed
    /// (by squaring, so a gap of any length costs at most 64 steps).
    fn decay(rep: &mut Reputation<BlockNumberFor<T>>, now: BlockNumberFor<T>) {
        let period = T::DecayPeriod::get();
        if period.is_zero() || now <= rep.decayed_at {
            return;
        }
        let periods = now.saturating_sub(rep.decayed_at) / period;
        if periods.is_zero() {
            return;
        }
        let steps: u64 = periods.saturated_into();
        let kept = pow_saturating(T::DecayPerPeriod::get(), steps);
        // Rounded down, so even a small score keeps decaying.
        rep.score = kept.mul_floor(rep.score);
        rep.decayed_at = rep
            .decayed_at
            .saturating_add(periods.saturating_mul(period));
    }

    fn change_score(who: &T::AccountId, change: ScoreChange) {
        let now = frame_system::Pallet::<T>::block_number();
        let mut rep = Reputations::<T>::get(who).unwrap_or_default();
        Self::decay(&mut rep, now);
        let locked = now < rep.locked_until;
        let score = match change {
            ScoreChange::RoundPassed if !locked => {
                rep.score.saturating_add(T::PassedRoundReward::get())
            }
            ScoreChange::TaskCompleted if !locked => {
                rep.score.saturating_add(T::CompletedTaskReward::get())
            }
            ScoreChange::RoundPassed | ScoreChange::TaskCompleted => rep.score,
            ScoreChange::VoteAbsent => rep.score.saturating_sub(T::AbsentVotePenalty::get()),
            ScoreChange::VoteAgainstOutcome => {
                rep.score.saturating_sub(T::MinorityVotePenalty::get())
            }
        }
        .min(T::MaxScore::get());
        if rep.score == 0 {
            // Nothing was decaying: a new score decays from now, not from a stale anchor.
            rep.decayed_at = now;
        }
        rep.score = score;
        if score == 0 && !locked && rep.level == HardwareLevel::Software {
            // Nothing left to remember: an absent record reads the same.
            Reputations::<T>::remove(who);
        } else {
            Reputations::<T>::insert(who, rep);
        }
        Self::deposit_event(Event::ScoreChanged {
            who: who.clone(),
            change,
            score,
        });
    }

    fn reset(who: &T::AccountId) {
        let now = frame_system::Pallet::<T>::block_number();
        let mut rep = Reputations::<T>::get(who).unwrap_or_default();
        rep.score = 0;
        rep.decayed_at = now;
        rep.locked_until = now.saturating_add(T::LockoutPeriod::get());
        let locked_until = rep.locked_until;
        Reputations::<T>::insert(who, rep);
        Self::deposit_event(Event::ScoreReset {
            who: who.clone(),
            locked_until,
        });
    }

    /// The snapshot of `gateways` for draws of `epoch`.
    pub fn compute_snapshot(
        epoch: EpochIndex,
        gateways: alloc::vec::Vec<(T::AccountId, HardwareLevel)>,
    ) -> SnapshotOf<T> {
        let mut members = BoundedVec::new();
        let mut total_weight: u128 = 0;
        // Read once for the whole list.
        let now = frame_system::Pallet::<T>::block_number();
        let software_allowed = SoftwareLevelAllowed::<T>::get();
        for (account, registered_level) in gateways {
            let rep = Reputations::<T>::get(&account).unwrap_or_default();
            // Never more than either the registry's level or the level a round proved.
            let level = registered_level.min(rep.level);
            let score = Self::score_at_level(rep, level, now, software_allowed);
            let bond: u128 = T::Bonds::bonded(&account).into();
            let weight = u128::from(score).saturating_mul(bond);
            if weight == 0 {
                continue;
            }
            if members
                .try_push(SnapshotEntry {
                    account,
                    level,
                    weight,
                })
                .is_err()
            {
                // The registry's list is bounded by the same MaxGateways.
                break;
            }
            total_weight = total_weight.saturating_add(weight);
        }
        EpochSnapshot {
            epoch,
            members,
            total_weight,
        }
    }

    /// Stores the snapshot of `gateways` for `epoch + 1` (and for `epoch` too when it has none,
    /// as at the first block), and forgets the oldest beyond [`SNAPSHOTS_KEPT`].
    pub fn store_snapshots(
        epoch: EpochIndex,
        gateways: alloc::vec::Vec<(T::AccountId, HardwareLevel)>,
    ) {
        let next = EpochIndex(epoch.0.saturating_add(1));
        let snapshot = Self::compute_snapshot(next, gateways);
        let mut epochs = SnapshotEpochs::<T>::get();
        if !Snapshots::<T>::contains_key(epoch) {
            let mut current = snapshot.clone();
            current.epoch = epoch;
            Self::keep(&mut epochs, current);
        }
        Self::deposit_event(Event::SnapshotTaken {
            epoch: next,
            gateways: snapshot.members.len() as u32,
            total_weight: snapshot.total_weight,
        });
        Self::keep(&mut epochs, snapshot);
        SnapshotEpochs::<T>::put(epochs);
        LastSnapshotAt::<T>::put(epoch);
    }

    fn keep(
        epochs: &mut BoundedVec<EpochIndex, ConstU32<SNAPSHOTS_KEPT>>,
        snapshot: SnapshotOf<T>,
    ) {
        let epoch = snapshot.epoch;
        if !epochs.contains(&epoch) {
            if epochs.is_full() {
                let oldest = epochs.remove(0);
                Snapshots::<T>::remove(oldest);
            }
            // Room was made above.
            let _ = epochs.try_push(epoch);
        }
        Snapshots::<T>::insert(epoch, snapshot);
    }

    /// The pallet's invariants: scores within the ceiling; no Software level where it is not
    /// allowed; snapshots bounded, listed, summing to their totals.
    // Compiled always (tests of the runtime call it too); only try-runtime and tests run it.
    pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
        use sp_runtime::TryRuntimeError;
        for (_, rep) in Reputations::<T>::iter() {
            ensure!(
                rep.score <= T::MaxScore::get(),
                TryRuntimeError::Other("score over MaxScore")
            );
        }
        let epochs = SnapshotEpochs::<T>::get();
        ensure!(
            Snapshots::<T>::iter_keys().count() == epochs.len(),
            TryRuntimeError::Other("stored snapshots differ from the listed epochs")
        );
        for epoch in epochs {
            let snapshot = Snapshots::<T>::get(epoch)
                .ok_or(TryRuntimeError::Other("a listed snapshot is missing"))?;
            ensure!(
                snapshot.epoch == epoch,
                TryRuntimeError::Other("a snapshot is misfiled")
            );
            let sum = snapshot
                .members
                .iter()
                .fold(0u128, |sum, entry| sum.saturating_add(entry.weight));
            ensure!(
                sum == snapshot.total_weight,
                TryRuntimeError::Other("a snapshot total is off")
            );
            ensure!(
                snapshot.members.iter().all(|entry| entry.weight > 0),
                TryRuntimeError::Other("a snapshot lists a zero weight")
            );
        }
        Ok(())
    }
}

/// How much `level` multiplies a score (Software counts only where the chain allows it).
fn multiplier(level: HardwareLevel, software_allowed: bool) -> u32 {
    match level {
        HardwareLevel::Software => u32::from(software_allowed),
        HardwareLevel::GatewayHsm => 2,
        HardwareLevel::HpcTpm => 4,
    }
}

/// `base^exp` for a Perbill, by squaring; saturates to zero as a fraction must.
fn pow_saturating(base: Perbill, mut exp: u64) -> Perbill {
    let mut result = Perbill::one();
    let mut base = base;
    while exp > 0 {
        if exp & 1 == 1 {
            result = result * base;
        }
        exp >>= 1;
        if exp > 0 {
            base = base * base;
        }
        if result.is_zero() {
            break;
        }
    }
    result
}

impl<T: Config> ReputationEvents<T::AccountId> for Pallet<T> {
    fn round_passed(subject: &T::AccountId) {
        Self::change_score(subject, ScoreChange::RoundPassed)
    }

    fn round_failed(subject: &T::AccountId) {
        Self::reset(subject)
    }

    fn vote_counted(voter: &T::AccountId, alignment: VoteAlignment) {
        match alignment {
            VoteAlignment::WithOutcome => {}
            VoteAlignment::AgainstOutcome => {
                Self::change_score(voter, ScoreChange::VoteAgainstOutcome)
            }
            VoteAlignment::Absent => Self::change_score(voter, ScoreChange::VoteAbsent),
        }
    }

    fn task_completed(executor: &T::AccountId) {
        Self::change_score(executor, ScoreChange::TaskCompleted)
    }

    fn set_hardware_level(who: &T::AccountId, level: HardwareLevel) -> DispatchResult {
        ensure!(
            Self::level_allowed(level),
            Error::<T>::SoftwareLevelNotAllowed
        );
        Reputations::<T>::mutate(who, |rep| {
            rep.get_or_insert_with(Default::default).level = level
        });
        Self::deposit_event(Event::HardwareLevelSet {
            who: who.clone(),
            level,
        });
        Ok(())
    }

    fn level_allowed(level: HardwareLevel) -> bool {
        level != HardwareLevel::Software || SoftwareLevelAllowed::<T>::get()
    }

    fn event_weight() -> Weight {
        T::WeightInfo::change_score()
            .max(T::WeightInfo::reset())
            .max(T::WeightInfo::set_hardware_level())
    }
}

impl<T: Config> EpochSnapshots<T::AccountId> for Pallet<T> {
    type MaxGateways = MaxGatewaysOf<T>;

    fn current_epoch() -> EpochIndex {
        T::CurrentEpoch::get()
    }

    fn snapshot(epoch: EpochIndex) -> Option<SnapshotOf<T>> {
        Snapshots::<T>::get(epoch)
    }

    fn is_eligible(who: &T::AccountId) -> bool {
        let now = frame_system::Pallet::<T>::block_number();
        let locked = Reputations::<T>::get(who).is_some_and(|rep| now < rep.locked_until);
        !locked && T::Bonds::has_minimum_bond(who) && T::Registry::is_active(who)
    }
}
