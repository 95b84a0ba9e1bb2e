//! Weights of `pallet_reputation`. Provisional: replaced by `scripts/bench/weights.sh
//! pallet_reputation` output before this pallet ships.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens, unused_imports, missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// What the hooks and trait calls of `pallet_reputation` cost.
pub trait WeightInfo {
	fn on_initialize_idle() -> Weight;
	fn snapshot(n: u32, ) -> Weight;
	fn change_score() -> Weight;
	fn reset() -> Weight;
	fn set_hardware_level() -> Weight;
}

pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn on_initialize_idle() -> Weight { Weight::from_parts(5_000_000, 1_500).saturating_add(T::DbWeight::get().reads(2)) }
	fn snapshot(n: u32, ) -> Weight { Weight::from_parts(50_000_000, 10_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into())).saturating_add(T::DbWeight::get().reads_writes(6, 6)).saturating_add(T::DbWeight::get().reads((2_u64).saturating_mul(n.into()))) }
	fn change_score() -> Weight { Weight::from_parts(20_000_000, 3_600).saturating_add(T::DbWeight::get().reads_writes(2, 2)) }
	fn reset() -> Weight { Weight::from_parts(20_000_000, 3_600).saturating_add(T::DbWeight::get().reads_writes(2, 2)) }
	fn set_hardware_level() -> Weight { Weight::from_parts(20_000_000, 3_600).saturating_add(T::DbWeight::get().reads_writes(2, 2)) }
}

impl WeightInfo for () {
	fn on_initialize_idle() -> Weight { Weight::from_parts(5_000_000, 1_500).saturating_add(ParityDbWeight::get().reads(2)) }
	fn snapshot(n: u32, ) -> Weight { Weight::from_parts(50_000_000, 10_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into())).saturating_add(ParityDbWeight::get().reads_writes(6, 6)).saturating_add(ParityDbWeight::get().reads((2_u64).saturating_mul(n.into()))) }
	fn change_score() -> Weight { Weight::from_parts(20_000_000, 3_600).saturating_add(ParityDbWeight::get().reads_writes(2, 2)) }
	fn reset() -> Weight { Weight::from_parts(20_000_000, 3_600).saturating_add(ParityDbWeight::get().reads_writes(2, 2)) }
	fn set_hardware_level() -> Weight { Weight::from_parts(20_000_000, 3_600).saturating_add(ParityDbWeight::get().reads_writes(2, 2)) }
}
