//! # Deposit pallet
//!
//! Gateways put money at stake here, so cheating costs them: "a malicious node can always walk
//! away, but it loses its deposit".
//!
//! - [`Pallet::bond`] holds free balance under [`HoldReason::Bond`]; a first bond must reach
//!   [`Config::MinimumBond`].
//! - [`Pallet::unbond`] schedules part of the bond for release after [`Config::UnbondingDelay`],
//!   which is longer than the longest round plus the longest task deadline. Unbonding money stays
//!   held and slashable until withdrawn.
//! - [`Pallet::withdraw_unbonded`] releases what has matured, unless the
//!   [`Config::WithdrawalGuard`] says the account is the subject of an open round or an
//!   unsettled executor.
//! - Other pallets slash through [`BondSlash`]: a fraction (or an amount) of the whole bond,
//!   unbonding included, at most once per round id. Proceeds go to the treasury account
//!   ([`Config::TreasuryPalletId`]), less [`Config::ReporterShare`] for an audit's reporter;
//!   a share too small to open the reporter's account is burned and reported.
//! - When an active bond falls below the minimum, [`Config::OnBondBelowMinimum`] hears of it.
//!
//! The pallet keeps one [`Ledger`] per bonded account and a bounded, expiring record of the
//! round ids it has slashed for (pruned in `on_initialize`, at most
//! [`Config::MaxSlashesPerBlock`] per block).
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
    BondInspect, BondSlash, OnBondBelowMinimum, RoundId, SlashAmount, SlashOutcome,
    WithdrawalBlock, WithdrawalGuard,
};
use codec::{Decode, Encode, MaxEncodedLen};
use frame_support::{
    pallet_prelude::*,
    traits::{
        fungible::{self, Inspect, Mutate, MutateHold},
        tokens::{Fortitude, Precision, Preservation},
        Imbalance,
    },
    CloneNoBound, DebugNoBound, EqNoBound, PalletId, PartialEqNoBound,
};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_runtime::{
    traits::{AccountIdConversion, CheckedAdd, One, Saturating, Zero},
    Perbill,
};

/// The balance type of the currency the bonds are held in.
pub type BalanceOf<T> =
    <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// Part of a bond on its way out.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct UnbondingChunk<Balance, BlockNumber> {
    pub value: Balance,
    /// The first block at which [`Pallet::withdraw_unbonded`] may release it.
    pub unlock_at: BlockNumber,
}

/// One account's bond. The hold under [`HoldReason::Bond`] always equals
/// `active + sum(unbonding)` (checked by `try_state`).
#[derive(
    CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub struct Ledger<T: Config> {
    /// What counts as the gateway's bond.
    pub active: BalanceOf<T>,
    /// Scheduled releases, oldest first.
    pub unbonding:
        BoundedVec<UnbondingChunk<BalanceOf<T>, BlockNumberFor<T>>, T::MaxUnbondingChunks>,
}

impl<T: Config> Ledger<T> {
    /// Active plus unbonding: everything held.
    pub fn total(&self) -> BalanceOf<T> {
        self.unbonding
            .iter()
            .fold(self.active, |sum, chunk| sum.saturating_add(chunk.value))
    }

    fn is_empty(&self) -> bool {
        self.active.is_zero() && self.unbonding.iter().all(|chunk| chunk.value.is_zero())
    }

    /// Takes `amount` (at most [`Ledger::total`]) in proportion to each part, so unbonding money
    /// pays its share. Returns what was taken.
    fn take_proportionally(&mut self, amount: BalanceOf<T>) -> BalanceOf<T> {
        let total = self.total();
        let amount = amount.min(total);
        if amount.is_zero() {
            return amount;
        }
        let share = Perbill::from_rational(amount, total);
        let mut taken = BalanceOf::<T>::zero();
        for chunk in self.unbonding.iter_mut() {
            let cut = (share * chunk.value).min(amount.saturating_sub(taken));
            chunk.value.saturating_reduce(cut);
            taken.saturating_accrue(cut);
        }
        // The active part pays the rest, rounding included; if it runs dry, the chunks do.
        let from_active = amount.saturating_sub(taken).min(self.active);
        self.active.saturating_reduce(from_active);
        taken.saturating_accrue(from_active);
        for chunk in self.unbonding.iter_mut() {
            let cut = amount.saturating_sub(taken).min(chunk.value);
            chunk.value.saturating_reduce(cut);
            taken.saturating_accrue(cut);
        }
        self.unbonding.retain(|chunk| !chunk.value.is_zero());
        taken
    }
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;

    /// The most of a slash an audit's reporter may get.
    pub const MAX_REPORTER_SHARE: Perbill = Perbill::from_percent(25);

    /// How many expiry buckets one block's slashes may spill over (see `expiry_bucket_for`).
    pub const SLASH_EXPIRY_SPILL: u32 = 8;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config {
        /// Where bonds are held, slashed and released.
        type Currency: fungible::Inspect<Self::AccountId, Balance: Into<u128>>
            + fungible::Mutate<Self::AccountId>
            + fungible::Balanced<Self::AccountId>
            + fungible::MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
            + fungible::BalancedHold<Self::AccountId>;

        /// The runtime's hold reasons, of which [`HoldReason::Bond`] is ours.
        type RuntimeHoldReason: From<HoldReason>;

        /// The least active bond a gateway must keep (and the least first bond).
        #[pallet::constant]
        type MinimumBond: Get<BalanceOf<Self>>;

        /// Blocks between `unbond` and the earliest withdrawal.
        #[pallet::constant]
        type UnbondingDelay: Get<BlockNumberFor<Self>>;

        /// The longest an attestation round can stay open (for the delay's sanity check).
        #[pallet::constant]
        type LongestRound: Get<BlockNumberFor<Self>>;

        /// The longest deadline a task may have (for the delay's sanity check).
        #[pallet::constant]
        type LongestTaskDeadline: Get<BlockNumberFor<Self>>;

        /// Unbonding chunks one account may have at once.
        #[pallet::constant]
        type MaxUnbondingChunks: Get<u32>;

        /// Derives the treasury account that receives slashes.
        #[pallet::constant]
        type TreasuryPalletId: Get<PalletId>;

        /// The share of a slash an audit's reporter gets; at most [`MAX_REPORTER_SHARE`].
        #[pallet::constant]
        type ReporterShare: Get<Perbill>;

        /// How long a slashed round id is remembered; at least [`Config::LongestRound`].
        #[pallet::constant]
        type SlashRecordRetention: Get<BlockNumberFor<Self>>;

        /// Slash records one expiry bucket holds (bounds the expiry work of one block); a busy
        /// block spills into the next buckets.
        #[pallet::constant]
        type MaxSlashesPerBlock: Get<u32>;

        /// Says whether an account may withdraw (attestation and task-market).
        type WithdrawalGuard: WithdrawalGuard<Self::AccountId>;

        /// Hears when an active bond falls below [`Config::MinimumBond`].
        type OnBondBelowMinimum: OnBondBelowMinimum<Self::AccountId>;

        type WeightInfo: WeightInfo;
    }

    /// Why this pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A gateway's bond, active or unbonding.
        #[codec(index = 0)]
        Bond,
    }

    /// Every bonded account's ledger.
    #[pallet::storage]
    pub type Ledgers<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, Ledger<T>>;

    /// Round ids that have slashed, with the block at which the record expires.
    #[pallet::storage]
    pub type SlashedRounds<T: Config> = StorageMap<_, Twox64Concat, RoundId, BlockNumberFor<T>>;

    /// The round ids whose records expire at a block.
    #[pallet::storage]
    pub type SlashExpiries<T: Config> = StorageMap<
        _,
        Twox64Concat,
        BlockNumberFor<T>,
        BoundedVec<RoundId, T::MaxSlashesPerBlock>,
        ValueQuery,
    >;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// `who` added `amount` to its bond, whose active part is now `active`.
        Bonded {
            who: T::AccountId,
            amount: BalanceOf<T>,
            active: BalanceOf<T>,
        },
        /// `who` scheduled `amount` for release at block `unlock_at`.
        Unbonded {
            who: T::AccountId,
            amount: BalanceOf<T>,
            unlock_at: BlockNumberFor<T>,
        },
        /// Matured unbonding funds returned to `who`'s free balance.
        Withdrawn {
            who: T::AccountId,
            amount: BalanceOf<T>,
        },
        /// `who`'s active bond fell below the minimum.
        BelowMinimum {
            who: T::AccountId,
            active: BalanceOf<T>,
        },
        /// `who` was slashed for `round`.
        Slashed {
            who: T::AccountId,
            round: RoundId,
            slashed: BalanceOf<T>,
            to_treasury: BalanceOf<T>,
            to_reporter: BalanceOf<T>,
            /// A reporter share below the existential deposit, burned.
            burned: BalanceOf<T>,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The amount is zero.
        ZeroAmount,
        /// A first bond must reach the minimum bond.
        BelowMinimumBond,
        /// Not enough free balance to hold (the account must also stay alive).
        InsufficientFreeBalance,
        /// The account has no bond.
        NotBonded,
        /// More than the active bond.
        InsufficientBond,
        /// Too many unbonding chunks: withdraw matured ones first.
        TooManyUnbondingChunks,
        /// No unbonding chunk has matured yet.
        NothingToWithdraw,
        /// The account is the subject of an open attestation round.
        SubjectOfOpenRound,
        /// The account won a task that has not settled.
        UnsettledExecutor,
        /// This round has already slashed.
        RoundAlreadySlashed,
        /// This block has used every expiry bucket it may spill into; retry in a later block.
        TooManySlashesInBlock,
        /// The bond would overflow the balance type.
        Overflow,
    }

    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Accounts bonded from genesis, so a new network has weight to draw from.
        pub bonds: alloc::vec::Vec<(T::AccountId, BalanceOf<T>)>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            // The treasury must exist before the first slash can be resolved into it.
            let treasury = Pallet::<T>::treasury_account();
            let minimum = T::Currency::minimum_balance();
            let balance = T::Currency::balance(&treasury);
            if balance < minimum {
                T::Currency::mint_into(&treasury, minimum.saturating_sub(balance))
                    .expect("genesis: the treasury account can be endowed");
            }
            for (who, amount) in &self.bonds {
                assert!(
                    *amount >= T::MinimumBond::get(),
                    "genesis: a bond is below the minimum bond"
                );
                assert!(
                    !Ledgers::<T>::contains_key(who),
                    "genesis: an account is bonded twice"
                );
                T::Currency::hold(&HoldReason::Bond.into(), who, *amount)
                    .expect("genesis: a bonded account has the free balance to hold");
                Ledgers::<T>::insert(
                    who,
                    Ledger::<T> {
                        active: *amount,
                        unbonding: BoundedVec::new(),
                    },
                );
            }
        }
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(now: BlockNumberFor<T>) -> Weight {
            let expiring = SlashExpiries::<T>::take(now);
            let count = expiring.len() as u32;
            for round in expiring {
                SlashedRounds::<T>::remove(round);
            }
            T::WeightInfo::expire_slash_records(count)
        }

        fn integrity_test() {
            assert!(
                T::UnbondingDelay::get()
                    > T::LongestRound::get().saturating_add(T::LongestTaskDeadline::get()),
                "UnbondingDelay must exceed LongestRound + LongestTaskDeadline"
            );
            assert!(
                T::SlashRecordRetention::get() >= T::LongestRound::get()
                    && !T::SlashRecordRetention::get().is_zero(),
                "SlashRecordRetention must be positive and cover LongestRound"
            );
            assert!(
                T::ReporterShare::get() <= MAX_REPORTER_SHARE,
                "ReporterShare over the cap"
            );
            assert!(
                T::MaxUnbondingChunks::get() > 0,
                "MaxUnbondingChunks must be positive"
            );
            assert!(
                T::MaxSlashesPerBlock::get() > 0,
                "MaxSlashesPerBlock must be positive"
            );
            assert!(
                !T::MinimumBond::get().is_zero(),
                "MinimumBond must be positive"
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    #[pallet::call(weight(<T as Config>::WeightInfo))]
    impl<T: Config> Pallet<T> {
        /// Holds `amount` of the caller's free balance as bond. A first bond must reach the
        /// minimum bond; later ones add any amount.
        #[pallet::call_index(0)]
        pub fn bond(
            origin: OriginFor<T>,
            #[pallet::compact] amount: BalanceOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(!amount.is_zero(), Error::<T>::ZeroAmount);
            let mut ledger = match Ledgers::<T>::get(&who) {
                Some(ledger) => ledger,
                None => {
                    ensure!(
                        amount >= T::MinimumBond::get(),
                        Error::<T>::BelowMinimumBond
                    );
                    Ledger::<T> {
                        active: Zero::zero(),
                        unbonding: BoundedVec::new(),
                    }
                }
            };
            ledger.active = ledger
                .active
                .checked_add(&amount)
                .ok_or(Error::<T>::Overflow)?;
            let free =
                T::Currency::reducible_balance(&who, Preservation::Preserve, Fortitude::Polite);
            ensure!(free >= amount, Error::<T>::InsufficientFreeBalance);
            T::Currency::hold(&HoldReason::Bond.into(), &who, amount)?;
            let active = ledger.active;
            Ledgers::<T>::insert(&who, ledger);
            Self::deposit_event(Event::Bonded {
                who,
                amount,
                active,
            });
            Ok(())
        }

        /// Schedules `amount` of the active bond for release after the unbonding delay. It
        /// stays slashable until withdrawn.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::unbond().saturating_add(T::OnBondBelowMinimum::notify_weight()))]
        pub fn unbond(
            origin: OriginFor<T>,
            #[pallet::compact] amount: BalanceOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(!amount.is_zero(), Error::<T>::ZeroAmount);
            let mut ledger = Ledgers::<T>::get(&who).ok_or(Error::<T>::NotBonded)?;
            ensure!(amount <= ledger.active, Error::<T>::InsufficientBond);
            let was_above = ledger.active >= T::MinimumBond::get();
            let unlock_at =
                frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingDelay::get());
            match ledger.unbonding.last_mut() {
                Some(last) if last.unlock_at == unlock_at => {
                    last.value = last.value.saturating_add(amount)
                }
                _ => ledger
                    .unbonding
                    .try_push(UnbondingChunk {
                        value: amount,
                        unlock_at,
                    })
                    .map_err(|_| Error::<T>::TooManyUnbondingChunks)?,
            }
            ledger.active.saturating_reduce(amount);
            let active = ledger.active;
            Ledgers::<T>::insert(&who, ledger);
            Self::deposit_event(Event::Unbonded {
                who: who.clone(),
                amount,
                unlock_at,
            });
            Self::notify_if_fell_below(&who, was_above, active);
            Ok(())
        }

        /// Releases every matured unbonding chunk to the caller's free balance.
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::withdraw_unbonded().saturating_add(T::WithdrawalGuard::guard_weight()))]
        pub fn withdraw_unbonded(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut ledger = Ledgers::<T>::get(&who).ok_or(Error::<T>::NotBonded)?;
            match T::WithdrawalGuard::withdrawal_block(&who) {
                Some(WithdrawalBlock::SubjectOfOpenRound) => {
                    return Err(Error::<T>::SubjectOfOpenRound.into())
                }
                Some(WithdrawalBlock::UnsettledExecutor) => {
                    return Err(Error::<T>::UnsettledExecutor.into())
                }
                None => {}
            }
            let now = frame_system::Pallet::<T>::block_number();
            let mut amount = BalanceOf::<T>::zero();
            ledger.unbonding.retain(|chunk| {
                let matured = chunk.unlock_at <= now;
                if matured {
                    amount.saturating_accrue(chunk.value);
                }
                !matured
            });
            ensure!(!amount.is_zero(), Error::<T>::NothingToWithdraw);
            T::Currency::release(&HoldReason::Bond.into(), &who, amount, Precision::Exact)?;
            if ledger.is_empty() {
                Ledgers::<T>::remove(&who);
            } else {
                Ledgers::<T>::insert(&who, ledger);
            }
            Self::deposit_event(Event::Withdrawn { who, amount });
            Ok(())
        }
    }
}

impl<T: Config> Pallet<T> {
    /// The account that receives slashes.
    pub fn treasury_account() -> T::AccountId {
        T::TreasuryPalletId::get().into_account_truncating()
    }

    /// The ledger of `who`, if bonded.
    pub fn ledger(who: &T::AccountId) -> Option<Ledger<T>> {
        Ledgers::<T>::get(who)
    }

    fn notify_if_fell_below(who: &T::AccountId, was_above: bool, active: BalanceOf<T>) {
        if was_above && active < T::MinimumBond::get() {
            T::OnBondBelowMinimum::on_bond_below_minimum(who);
            Self::deposit_event(Event::BelowMinimum {
                who: who.clone(),
                active,
            });
        }
    }

    /// The first expiry bucket, from `now + SlashRecordRetention` on, with room for `round`.
    /// A block with more slashes than one bucket holds spills into the next
    /// [`SLASH_EXPIRY_SPILL`] buckets, so a busy block delays expiry a little instead of
    /// refusing a slash.
    fn expiry_bucket_for(
        round: RoundId,
    ) -> Result<
        (
            BlockNumberFor<T>,
            BoundedVec<RoundId, T::MaxSlashesPerBlock>,
        ),
        DispatchError,
    > {
        let mut expires_at = frame_system::Pallet::<T>::block_number()
            .saturating_add(T::SlashRecordRetention::get());
        for _ in 0..SLASH_EXPIRY_SPILL {
            let mut expiring = SlashExpiries::<T>::get(expires_at);
            if expiring.try_push(round).is_ok() {
                return Ok((expires_at, expiring));
            }
            expires_at = expires_at.saturating_add(One::one());
        }
        Err(Error::<T>::TooManySlashesInBlock.into())
    }

    fn do_slash(
        who: &T::AccountId,
        round: RoundId,
        amount: SlashAmount<BalanceOf<T>>,
        reporter: Option<&T::AccountId>,
    ) -> Result<SlashOutcome<BalanceOf<T>>, DispatchError> {
        ensure!(
            !SlashedRounds::<T>::contains_key(round),
            Error::<T>::RoundAlreadySlashed
        );
        let mut ledger = Ledgers::<T>::get(who).ok_or(Error::<T>::NotBonded)?;
        let (expires_at, expiring) = Self::expiry_bucket_for(round)?;

        let was_above = ledger.active >= T::MinimumBond::get();
        let wanted = match amount {
            SlashAmount::Fraction(fraction) => fraction * ledger.total(),
            SlashAmount::Absolute(value) => value,
        };
        let taken = ledger.take_proportionally(wanted);
        let (credit, missing) =
            <T::Currency as fungible::BalancedHold<_>>::slash(&HoldReason::Bond.into(), who, taken);
        if !missing.is_zero() {
            // The hold was smaller than the ledger, which try_state rules out and reports.
            frame_support::defensive!("deposit: the bond hold was smaller than the ledger");
        }
        let slashed = credit.peek();

        let mut outcome = SlashOutcome {
            slashed,
            ..Default::default()
        };
        // A gateway reporting itself gets nothing back.
        let reporter = reporter.filter(|reporter| *reporter != who);
        let (to_reporter, to_treasury) = match reporter {
            Some(_) => credit.split(T::ReporterShare::get() * slashed),
            None => credit.split(Zero::zero()),
        };
        if let Some(reporter) = reporter {
            let share = to_reporter.peek();
            match <T::Currency as fungible::Balanced<_>>::resolve(reporter, to_reporter) {
                Ok(()) => outcome.to_reporter = share,
                // Below the existential deposit for a new account: burned (dropping a credit
                // reduces the total issuance), and reported.
                Err(dust) => outcome.burned = dust.peek(),
            }
        }
        let treasury_share = to_treasury.peek();
        match <T::Currency as fungible::Balanced<_>>::resolve(
            &Self::treasury_account(),
            to_treasury,
        ) {
            Ok(()) => outcome.to_treasury = treasury_share,
            Err(dust) => outcome.burned.saturating_accrue(dust.peek()),
        }

        let active = ledger.active;
        if ledger.is_empty() {
            Ledgers::<T>::remove(who);
        } else {
            Ledgers::<T>::insert(who, ledger);
        }
        SlashedRounds::<T>::insert(round, expires_at);
        SlashExpiries::<T>::insert(expires_at, expiring);
        Self::deposit_event(Event::Slashed {
            who: who.clone(),
            round,
            slashed: outcome.slashed,
            to_treasury: outcome.to_treasury,
            to_reporter: outcome.to_reporter,
            burned: outcome.burned,
        });
        Self::notify_if_fell_below(who, was_above, active);
        Ok(outcome)
    }

    /// The pallet's invariants: every ledger is non-empty, its chunks ordered and non-zero, and
    /// its hold equals `active + unbonding`; every slash record has its expiry entry; the
    /// treasury exists.
    // Compiled always (tests of the runtime call it too); only try-runtime and tests run it.
    pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
        use sp_runtime::TryRuntimeError;
        for (who, ledger) in Ledgers::<T>::iter() {
            ensure!(
                !ledger.is_empty(),
                TryRuntimeError::Other("an empty ledger is stored")
            );
            ensure!(
                ledger.unbonding.iter().all(|chunk| !chunk.value.is_zero()),
                TryRuntimeError::Other("a zero unbonding chunk is stored")
            );
            ensure!(
                ledger
                    .unbonding
                    .windows(2)
                    .all(|pair| pair[0].unlock_at < pair[1].unlock_at),
                TryRuntimeError::Other("unbonding chunks are out of order")
            );
            let held = <T::Currency as fungible::InspectHold<_>>::balance_on_hold(
                &HoldReason::Bond.into(),
                &who,
            );
            ensure!(
                held == ledger.total(),
                TryRuntimeError::Other("the bond hold differs from active + unbonding")
            );
        }
        let now = frame_system::Pallet::<T>::block_number();
        for (round, expires_at) in SlashedRounds::<T>::iter() {
            ensure!(
                expires_at > now,
                TryRuntimeError::Other("a slash record outlived its expiry")
            );
            ensure!(
                SlashExpiries::<T>::get(expires_at).contains(&round),
                TryRuntimeError::Other("a slash record has no expiry entry")
            );
        }
        for (expires_at, rounds) in SlashExpiries::<T>::iter() {
            ensure!(
                rounds
                    .iter()
                    .all(|round| SlashedRounds::<T>::get(round) == Some(expires_at)),
                TryRuntimeError::Other("an expiry entry has no slash record")
            );
        }
        ensure!(
            T::Currency::balance(&Self::treasury_account()) >= T::Currency::minimum_balance(),
            TryRuntimeError::Other("the treasury account does not exist")
        );
        Ok(())
    }
}

impl<T: Config> BondInspect<T::AccountId> for Pallet<T> {
    type Balance = BalanceOf<T>;

    fn bonded(who: &T::AccountId) -> BalanceOf<T> {
        Ledgers::<T>::get(who)
            .map(|ledger| ledger.active)
            .unwrap_or_default()
    }

    fn has_minimum_bond(who: &T::AccountId) -> bool {
        Self::bonded(who) >= T::MinimumBond::get()
    }
}

impl<T: Config> BondSlash<T::AccountId> for Pallet<T> {
    fn slash(
        who: &T::AccountId,
        round: RoundId,
        amount: SlashAmount<BalanceOf<T>>,
        reporter: Option<&T::AccountId>,
    ) -> Result<SlashOutcome<BalanceOf<T>>, DispatchError> {
        Self::do_slash(who, round, amount, reporter)
    }

    fn slash_weight() -> Weight {
        T::WeightInfo::slash().saturating_add(T::OnBondBelowMinimum::notify_weight())
    }
}
