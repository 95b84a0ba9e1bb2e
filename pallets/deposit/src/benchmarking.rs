//! Benchmarks of every call, at their worst cases:
//! - `bond`: a first bond (creates the ledger and the hold);
//! - `unbond`: a full chunk list but one, crossing below the minimum (notifies);
//! - `withdraw_unbonded`: every chunk matured at once, emptying the ledger;
//! - `slash`: a full chunk list, every expiry bucket but the last full, a reporter whose account
//!   the share creates, and a fall below the minimum;
//! - `expire_slash_records(n)`: `on_initialize` pruning `n` records, up to the per-block cap.
use super::*;
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Hooks};
use frame_system::RawOrigin;

/// An account holding a hundred minimum bonds.
fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
    let who: T::AccountId = account(name, index, 0);
    let amount = T::MinimumBond::get()
        .saturating_mul(100u32.into())
        .saturating_add(T::Currency::minimum_balance());
    T::Currency::set_balance(&who, amount);
    who
}

/// Bonds ten minimum bonds for `who` and unbonds `chunks` slices at distinct blocks, leaving the
/// active part at the minimum. Returns the block at which every chunk has matured.
fn bond_with_chunks<T: Config>(who: &T::AccountId, chunks: u32) -> BlockNumberFor<T> {
    let minimum = T::MinimumBond::get();
    let slice = minimum;
    let total = minimum.saturating_add(slice.saturating_mul(chunks.into()));
    Pallet::<T>::bond(RawOrigin::Signed(who.clone()).into(), total).expect("funded above");
    for block in 1..=chunks {
        frame_system::Pallet::<T>::set_block_number(block.into());
        Pallet::<T>::unbond(RawOrigin::Signed(who.clone()).into(), slice)
            .expect("under the chunk cap");
    }
    BlockNumberFor::<T>::from(chunks).saturating_add(T::UnbondingDelay::get())
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn bond() {
        let who = funded::<T>("bonder", 0);
        let amount = T::MinimumBond::get();
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), amount);
        assert_eq!(Pallet::<T>::bonded(&who), amount);
    }

    #[benchmark]
    fn unbond() {
        let who = funded::<T>("bonder", 0);
        let chunks = T::MaxUnbondingChunks::get().saturating_sub(1);
        bond_with_chunks::<T>(&who, chunks);
        frame_system::Pallet::<T>::set_block_number((chunks + 1).into());
        let amount: BalanceOf<T> = 1u32.into();
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), amount);
        let ledger = Ledgers::<T>::get(&who).expect("still bonded");
        assert_eq!(ledger.unbonding.len() as u32, chunks + 1);
        assert!(!Pallet::<T>::has_minimum_bond(&who));
    }

    #[benchmark]
    fn withdraw_unbonded() {
        let who = funded::<T>("bonder", 0);
        let chunks = T::MaxUnbondingChunks::get();
        let matured = bond_with_chunks::<T>(&who, chunks.saturating_sub(1));
        // The last chunk takes the whole active part, so the withdrawal empties the ledger.
        frame_system::Pallet::<T>::set_block_number(chunks.into());
        Pallet::<T>::unbond(RawOrigin::Signed(who.clone()).into(), T::MinimumBond::get())
            .expect("bonded above");
        frame_system::Pallet::<T>::set_block_number(
            matured
                .saturating_add(1u32.into())
                .saturating_add(T::UnbondingDelay::get()),
        );
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));
        assert!(Ledgers::<T>::get(&who).is_none());
    }

    #[benchmark]
    fn slash() -> Result<(), BenchmarkError> {
        let who = funded::<T>("bonder", 0);
        bond_with_chunks::<T>(&who, T::MaxUnbondingChunks::get());
        let reporter: T::AccountId = account("reporter", 0, 0);
        let fraction = SlashAmount::Fraction(Perbill::from_percent(50));
        // Every spill bucket but the last is full, so the slash reads them all.
        let first = frame_system::Pallet::<T>::block_number()
            .saturating_add(T::SlashRecordRetention::get());
        let mut id = 1_000u64;
        for offset in 0..SLASH_EXPIRY_SPILL.saturating_sub(1) {
            let at = first.saturating_add(offset.into());
            let mut bucket = BoundedVec::<RoundId, T::MaxSlashesPerBlock>::new();
            while bucket.try_push(RoundId(id)).is_ok() {
                SlashedRounds::<T>::insert(RoundId(id), at);
                id += 1;
            }
            SlashExpiries::<T>::insert(at, bucket);
        }
        #[block]
        {
            Pallet::<T>::do_slash(&who, RoundId(1), fraction, Some(&reporter))?;
        }
        assert!(SlashedRounds::<T>::contains_key(RoundId(1)));
        Ok(())
    }

    #[benchmark]
    fn expire_slash_records(n: Linear<0, { T::MaxSlashesPerBlock::get() }>) {
        let expires_at: BlockNumberFor<T> = 10u32.into();
        let mut expiring = BoundedVec::<RoundId, T::MaxSlashesPerBlock>::new();
        for round in 0..n {
            SlashedRounds::<T>::insert(RoundId(round.into()), expires_at);
            expiring
                .try_push(RoundId(round.into()))
                .expect("n is at most the cap");
        }
        SlashExpiries::<T>::insert(expires_at, expiring);
        #[block]
        {
            Pallet::<T>::on_initialize(expires_at);
        }
        assert_eq!(SlashedRounds::<T>::iter().count(), 0);
    }

    impl_benchmark_test_suite!(
        Pallet,
        crate::mock::ExtBuilder::default().build(),
        crate::mock::Test
    );
}
