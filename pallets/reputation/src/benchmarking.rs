//! Benchmarks of the epoch hook and of every outcome other pallets report, at their worst cases:
//! - `snapshot(n)`: `n` gateways (up to MaxGateways), all with a score, a level and a bond, at
//!   the first block of a chain (two snapshots written) with the kept list full (one removed);
//! - `on_initialize_idle`: a block inside an epoch (one comparison);
//! - `change_score`, `reset`, `set_hardware_level`: an existing record with decay due.
use super::*;
use capsule_pallet_traits::BenchmarkBonds;
use frame_benchmarking::v2::*;
use frame_support::traits::Hooks;

fn gateway<T: Config>(index: u32) -> T::AccountId {
    let who: T::AccountId = account("gateway", index, 0);
    Reputations::<T>::insert(
        &who,
        Reputation {
            score: T::MaxScore::get(),
            decayed_at: Zero::zero(),
            locked_until: Zero::zero(),
            level: HardwareLevel::HpcTpm,
        },
    );
    who
}

/// Moves far enough that decay has work to do, not so far that scores reach zero (a zero
/// weight is skipped, which is cheaper). Decay is by squaring: an exponent of 3 is as dear as
/// any (the multiplications are negligible next to the storage access).
fn age_records<T: Config>() {
    let later = T::DecayPeriod::get().saturating_mul(3u32.into());
    frame_system::Pallet::<T>::set_block_number(later);
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn on_initialize_idle() {
        LastSnapshotAt::<T>::put(T::CurrentEpoch::get());
        let now = frame_system::Pallet::<T>::block_number();
        #[block]
        {
            Pallet::<T>::on_initialize(now);
        }
    }

    #[benchmark]
    fn snapshot(n: Linear<0, { MaxGatewaysOf::<T>::get() }>) {
        let gateways: alloc::vec::Vec<_> = (0..n)
            .map(|index| {
                let who = gateway::<T>(index);
                T::BenchmarkHelper::bond(&who);
                (who, HardwareLevel::HpcTpm)
            })
            .collect();
        // A full list of kept snapshots, none for the epochs about to be written.
        let epochs: alloc::vec::Vec<EpochIndex> =
            (100..100 + SNAPSHOTS_KEPT as u64).map(EpochIndex).collect();
        for epoch in &epochs {
            Snapshots::<T>::insert(
                epoch,
                EpochSnapshot {
                    epoch: *epoch,
                    members: BoundedVec::new(),
                    total_weight: 0,
                },
            );
        }
        SnapshotEpochs::<T>::put(BoundedVec::truncate_from(epochs));
        age_records::<T>();
        #[block]
        {
            Pallet::<T>::store_snapshots(EpochIndex(0), gateways);
        }
        let stored = Snapshots::<T>::get(EpochIndex(1)).expect("stored");
        assert_eq!(stored.members.len() as u32, n);
    }

    #[benchmark]
    fn change_score() {
        let who = gateway::<T>(0);
        age_records::<T>();
        #[block]
        {
            Pallet::<T>::round_passed(&who);
        }
    }

    #[benchmark]
    fn reset() {
        let who = gateway::<T>(0);
        age_records::<T>();
        #[block]
        {
            Pallet::<T>::round_failed(&who);
        }
        assert_eq!(Pallet::<T>::effective_score(&who), 0);
    }

    #[benchmark]
    fn set_hardware_level() -> Result<(), BenchmarkError> {
        let who = gateway::<T>(0);
        #[block]
        {
            <Pallet<T> as ReputationEvents<_>>::set_hardware_level(
                &who,
                HardwareLevel::GatewayHsm,
            )?;
        }
        Ok(())
    }

    impl_benchmark_test_suite!(
        Pallet,
        crate::mock::ExtBuilder::default().build(),
        crate::mock::Test
    );
}
