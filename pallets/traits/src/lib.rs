//! The coupling between the capsule pallets.
//!
//! The attestation and task-market pallets need things of the reputation and deposit pallets
//! (count a round or a vote, slash a bond, read the epoch snapshot), and those two need things back
//! (the list of Active gateways, whether an account may withdraw, a word when a bond falls below
//! the minimum). Each side names the other only through the traits here, never through the
//! other's `Config`, so every pallet builds and tests alone with a small mock of its neighbours.
//!
//! This crate depends on frame-support; the off-chain daemons never compile it (docs/adr/0004).
//! Shared value types (ids, hardware levels) come from `capsule-primitives`.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
    pallet_prelude::Weight, traits::Get, BoundedVec, CloneNoBound, DebugNoBound, EqNoBound,
    PartialEqNoBound,
};
use scale_info::TypeInfo;
use sp_runtime::{DispatchError, DispatchResult, Perbill};

pub use capsule_primitives::{
    attestation::{AttestationPhase, HardwareLevel},
    ids::{EpochIndex, RoundId, TaskId},
};

/// The 32 bytes an account contributes to key proofs, vote commitments and VRF transcripts: its
/// encoding when that is 32 bytes long (`AccountId32`), else the BLAKE2b-256 of its encoding.
pub fn account_bytes<AccountId: Encode>(account: &AccountId) -> [u8; 32] {
    let encoded = account.encode();
    encoded
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| capsule_primitives::hashing::blake2_256(&encoded))
}

// ---------------------------------------------------------------------------------------------
// What attestation and task-market need of reputation.
// ---------------------------------------------------------------------------------------------

/// How a verifier's vote in a closed round relates to the round's final outcome.
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
pub enum VoteAlignment {
    /// Revealed a vote equal to the outcome.
    WithOutcome,
    /// Revealed a vote against the outcome.
    AgainstOutcome,
    /// Sampled, but never committed or never revealed.
    Absent,
}

/// Outcomes the reputation pallet counts. Callers charge [`ReputationEvents::event_weight`] per
/// call on top of their own weight.
pub trait ReputationEvents<AccountId> {
    /// `subject` passed an attestation round.
    fn round_passed(subject: &AccountId);
    /// `subject` failed an attestation round: its score resets and it is locked out.
    fn round_failed(subject: &AccountId);
    /// `voter` was sampled in a round that has closed, and voted as `alignment` says.
    fn vote_counted(voter: &AccountId, alignment: VoteAlignment);
    /// `executor` completed a task that settled.
    fn task_completed(executor: &AccountId);
    /// Sets the hardware level a round proved for `who`. Fails when the chain does not allow
    /// the level (Software outside dev and local chains).
    fn set_hardware_level(who: &AccountId, level: HardwareLevel) -> DispatchResult;
    /// Whether this chain lets a gateway claim `level` (Software only on dev and local chains).
    fn level_allowed(level: HardwareLevel) -> bool;
    /// The worst-case weight of any one call above.
    fn event_weight() -> Weight;
}

/// One gateway as the epoch snapshot saw it.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct SnapshotEntry<AccountId> {
    pub account: AccountId,
    /// The level the weight was computed with.
    pub level: HardwareLevel,
    /// Effective reputation times bond: the gateway's odds in every draw of the epoch are
    /// `weight / total_weight`.
    pub weight: u128,
}

/// The gateways that rounds and tasks of one epoch draw from, with their weights.
#[derive(
    CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(MaxGateways))]
#[codec(mel_bound(AccountId: MaxEncodedLen))]
pub struct EpochSnapshot<
    AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
    MaxGateways: Get<u32>,
> {
    /// The epoch whose draws use this snapshot.
    pub epoch: EpochIndex,
    /// Gateways with a non-zero weight, in the registry's order.
    pub members: BoundedVec<SnapshotEntry<AccountId>, MaxGateways>,
    /// The sum of the members' weights (saturating).
    pub total_weight: u128,
}

/// Read access to the epoch snapshots.
///
/// Weights are fixed for two epochs, but a gateway that fails a round, falls below the minimum
/// bond or leaves the Active set must not be drawn meanwhile: draws skip members for which
/// [`EpochSnapshots::is_eligible`] is false. Only a few snapshots are kept, so a round or task
/// copies what it needs (its committee, its executor) when it draws. Keys are not in the
/// snapshot: the registry keeps a rotated key pending until two epochs later.
pub trait EpochSnapshots<AccountId: Clone + PartialEq + Eq + core::fmt::Debug> {
    type MaxGateways: Get<u32>;
    /// The current BABE epoch: rounds and tasks opened now draw from its snapshot.
    fn current_epoch() -> EpochIndex;
    /// The snapshot draws of `epoch` use, if it was taken and is still kept.
    fn snapshot(epoch: EpochIndex) -> Option<EpochSnapshot<AccountId, Self::MaxGateways>>;
    /// Whether a snapshot entry may still be drawn now: Active, not locked out, bonded at least
    /// the minimum.
    fn is_eligible(who: &AccountId) -> bool;
}

// ---------------------------------------------------------------------------------------------
// What attestation, task-market and reputation need of deposit.
// ---------------------------------------------------------------------------------------------

/// Read access to bonds.
pub trait BondInspect<AccountId> {
    type Balance: Copy + Into<u128>;
    /// The active bond of `who` (what is unbonding does not count).
    fn bonded(who: &AccountId) -> Self::Balance;
    /// Whether `who`'s active bond reaches the minimum a gateway must keep.
    fn has_minimum_bond(who: &AccountId) -> bool;
}

/// How much of a bond a slash takes.
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
pub enum SlashAmount<Balance> {
    /// A fraction of the whole bond, active and unbonding together.
    Fraction(Perbill),
    /// An absolute amount, capped at the whole bond.
    Absolute(Balance),
}

/// Where a slash went.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct SlashOutcome<Balance> {
    /// Taken from the bond in total: `to_treasury + to_reporter + burned`.
    pub slashed: Balance,
    pub to_treasury: Balance,
    pub to_reporter: Balance,
    /// Shares too small to create the receiving account (below the existential deposit),
    /// burned and reported in the `Slashed` event.
    pub burned: Balance,
}

/// Slashing on behalf of the pallet that decided a round.
///
/// One round slashes one account (its subject) at most once; a task's misbehaviour is slashed
/// through the post-task or audit round it opens, never by task id. Money that is unbonding
/// pays its share, and stays slashable until withdrawn: audits must be opened within the
/// unbonding delay less the longest round. When the slash takes the active bond below the
/// minimum, `OnBondBelowMinimum` is told before this returns (the attestation pallet must not
/// hold a stale copy of the gateway across the call).
pub trait BondSlash<AccountId>: BondInspect<AccountId> {
    /// Slashes `who` for `round`. The proceeds go to the treasury, less a capped share for
    /// `reporter` (audits; a reporter slashing itself gets nothing). Fails if `round` already
    /// slashed, if `who` has no bond, or, rarely, if this block's slash records are all used
    /// (`TooManySlashesInBlock`: retry in a later block).
    fn slash(
        who: &AccountId,
        round: RoundId,
        amount: SlashAmount<Self::Balance>,
        reporter: Option<&AccountId>,
    ) -> Result<SlashOutcome<Self::Balance>, DispatchError>;
    /// The worst-case weight of [`BondSlash::slash`].
    fn slash_weight() -> Weight;
}

// ---------------------------------------------------------------------------------------------
// What reputation and deposit need of attestation and task-market.
// ---------------------------------------------------------------------------------------------

/// The gateways the attestation pallet lists as Active.
pub trait GatewayRegistry<AccountId> {
    type MaxGateways: Get<u32>;
    /// Every Active gateway with its registered hardware level, in a stable order.
    fn active_gateways() -> BoundedVec<(AccountId, HardwareLevel), Self::MaxGateways>;
    /// Whether `who` is Active now.
    fn is_active(who: &AccountId) -> bool;
    /// The weight of [`GatewayRegistry::active_gateways`] at `MaxGateways`.
    fn active_gateways_weight() -> Weight;
}

/// Why an account may not withdraw its unbonded deposit yet.
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
pub enum WithdrawalBlock {
    /// The account is the subject of an attestation round that has not closed.
    SubjectOfOpenRound,
    /// The account won a task that has not settled.
    UnsettledExecutor,
}

/// Says whether an account may withdraw. Tuples ask every member; the first block wins.
pub trait WithdrawalGuard<AccountId> {
    fn withdrawal_block(who: &AccountId) -> Option<WithdrawalBlock>;
    /// The worst-case weight of [`WithdrawalGuard::withdrawal_block`].
    fn guard_weight() -> Weight;
}

#[impl_trait_for_tuples::impl_for_tuples(4)]
impl<AccountId> WithdrawalGuard<AccountId> for Tuple {
    fn withdrawal_block(who: &AccountId) -> Option<WithdrawalBlock> {
        for_tuples!( #( if let Some(block) = Tuple::withdrawal_block(who) { return Some(block) } )* );
        None
    }
    fn guard_weight() -> Weight {
        let mut weight = Weight::zero();
        for_tuples!( #( weight = weight.saturating_add(Tuple::guard_weight()); )* );
        weight
    }
}

/// Told when an account's active bond falls below the minimum (the attestation pallet suspends
/// the gateway). Tuples tell every member.
pub trait OnBondBelowMinimum<AccountId> {
    fn on_bond_below_minimum(who: &AccountId);
    /// The worst-case weight of [`OnBondBelowMinimum::on_bond_below_minimum`].
    fn notify_weight() -> Weight;
}

#[impl_trait_for_tuples::impl_for_tuples(4)]
impl<AccountId> OnBondBelowMinimum<AccountId> for Tuple {
    fn on_bond_below_minimum(who: &AccountId) {
        for_tuples!( #( Tuple::on_bond_below_minimum(who); )* );
    }
    fn notify_weight() -> Weight {
        let mut weight = Weight::zero();
        for_tuples!( #( weight = weight.saturating_add(Tuple::notify_weight()); )* );
        weight
    }
}

/// How an attestation round ended.
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
pub enum RoundOutcome {
    /// A supermajority of the committee revealed Pass.
    Passed,
    /// A supermajority revealed Fail (slashed only if the committee was large enough).
    Failed,
    /// No supermajority, twice: root decides.
    ToRoot,
}

/// Told when an attestation round closes (the task-market settles pre- and post-task rounds
/// here, and pays `revealers` their verifier fee from the task's escrow: rounds about a task
/// hold no fee of their own). Tuples tell every member.
pub trait OnRoundClosed<AccountId> {
    fn on_round_closed(
        round: RoundId,
        subject: &AccountId,
        phase: AttestationPhase,
        task: Option<TaskId>,
        outcome: RoundOutcome,
        revealers: &[AccountId],
    );
    /// The worst-case weight of [`OnRoundClosed::on_round_closed`].
    fn closed_weight() -> Weight;
}

#[impl_trait_for_tuples::impl_for_tuples(4)]
impl<AccountId> OnRoundClosed<AccountId> for Tuple {
    fn on_round_closed(
        round: RoundId,
        subject: &AccountId,
        phase: AttestationPhase,
        task: Option<TaskId>,
        outcome: RoundOutcome,
        revealers: &[AccountId],
    ) {
        for_tuples!( #( Tuple::on_round_closed(round, subject, phase, task, outcome, revealers); )* );
    }
    fn closed_weight() -> Weight {
        let mut weight = Weight::zero();
        for_tuples!( #( weight = weight.saturating_add(Tuple::closed_weight()); )* );
        weight
    }
}

// ---------------------------------------------------------------------------------------------
// What the task-market needs of attestation.
// ---------------------------------------------------------------------------------------------

/// Rounds about a task's executor, opened by the task-market. Their verifier fees come from the
/// task's escrow, paid in `OnRoundClosed`.
pub trait TaskRounds<AccountId> {
    /// The balance verifier fees are paid in.
    type Balance;
    /// Opens a pre- or post-task round about `executor` for `task`, bound to its HPC session
    /// keys. Fails if the executor is already the subject of a round, or the block's cap on new
    /// rounds is reached.
    fn open_task_round(
        executor: &AccountId,
        phase: AttestationPhase,
        task: TaskId,
        session_keys: capsule_primitives::keys::HpcSessionKeys,
    ) -> Result<RoundId, DispatchError>;
    /// The worst-case weight of [`TaskRounds::open_task_round`].
    fn open_weight() -> Weight;
    /// The flat fee each member who reveals earns.
    fn verifier_fee() -> Self::Balance;
    /// The most members one round can pay, a re-opened attempt included.
    fn max_paid_members() -> u32;
}

/// The BABE VRF outputs of the most recent blocks, which seeds are mixed from
/// (`capsule_primitives::seed`).
pub trait RecentRandomness {
    /// How many blocks after its opening a round or task waits for its seed (L).
    fn seed_blocks() -> u32;
    /// The outputs of the last [`RecentRandomness::seed_blocks`] blocks, oldest first, as of this
    /// block's `on_initialize`; fewer early in the chain's life.
    fn recent_outputs() -> alloc::vec::Vec<[u8; 32]>;
}

/// The sr25519 VRF keys gateways draw with.
pub trait VrfKeys<AccountId> {
    /// The key `who` draws with in `epoch` (a rotated key counts from two epochs after its
    /// round), if `who` is a registered gateway.
    fn vrf_key(who: &AccountId, epoch: EpochIndex) -> Option<[u8; 32]>;
}

/// Bonds accounts for other pallets' benchmarks (in a runtime, through the deposit pallet).
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkBonds<AccountId> {
    /// Gives `who` at least the minimum bond.
    fn bond(who: &AccountId);
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;

    std::thread_local! {
        static NOTIFIED: RefCell<Vec<(u8, u64)>> = const { RefCell::new(Vec::new()) };
    }

    struct Blocks<const ID: u8, const WHO: u64>;
    impl<const ID: u8, const WHO: u64> WithdrawalGuard<u64> for Blocks<ID, WHO> {
        fn withdrawal_block(who: &u64) -> Option<WithdrawalBlock> {
            (*who == WHO).then_some(if ID == 0 {
                WithdrawalBlock::SubjectOfOpenRound
            } else {
                WithdrawalBlock::UnsettledExecutor
            })
        }
        fn guard_weight() -> Weight {
            Weight::from_parts(10 + ID as u64, 1)
        }
    }
    impl<const ID: u8, const WHO: u64> OnBondBelowMinimum<u64> for Blocks<ID, WHO> {
        fn on_bond_below_minimum(who: &u64) {
            NOTIFIED.with(|n| n.borrow_mut().push((ID, *who)));
        }
        fn notify_weight() -> Weight {
            Weight::from_parts(100, 0)
        }
    }

    #[test]
    fn a_tuple_of_guards_blocks_when_any_member_does() {
        type Guards = (Blocks<0, 1>, Blocks<1, 2>);
        assert_eq!(
            Guards::withdrawal_block(&1),
            Some(WithdrawalBlock::SubjectOfOpenRound)
        );
        assert_eq!(
            Guards::withdrawal_block(&2),
            Some(WithdrawalBlock::UnsettledExecutor)
        );
        assert_eq!(Guards::withdrawal_block(&3), None);
        assert_eq!(<() as WithdrawalGuard<u64>>::withdrawal_block(&1), None);
        assert_eq!(Guards::guard_weight(), Weight::from_parts(21, 2));
    }

    #[test]
    fn a_tuple_of_listeners_tells_every_member() {
        type Listeners = (Blocks<0, 0>, Blocks<1, 0>);
        Listeners::on_bond_below_minimum(&7);
        assert_eq!(NOTIFIED.with(|n| n.borrow().clone()), vec![(0, 7), (1, 7)]);
        assert_eq!(Listeners::notify_weight(), Weight::from_parts(200, 0));
    }
}
