//! Weights of `pallet_deposit`. Provisional: replaced by `scripts/bench/weights.sh
//! pallet_deposit` output before this pallet ships.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens, unused_imports, missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// What the calls of `pallet_deposit` cost.
pub trait WeightInfo {
	fn bond() -> Weight;
	fn unbond() -> Weight;
	fn withdraw_unbonded() -> Weight;
	fn slash() -> Weight;
	fn expire_slash_records(n: u32, ) -> Weight;
}

pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn bond() -> Weight { Weight::from_parts(100_000_000, 8_000).saturating_add(T::DbWeight::get().reads_writes(3, 3)) }
	fn unbond() -> Weight { Weight::from_parts(100_000_000, 8_000).saturating_add(T::DbWeight::get().reads_writes(2, 2)) }
	fn withdraw_unbonded() -> Weight { Weight::from_parts(100_000_000, 8_000).saturating_add(T::DbWeight::get().reads_writes(3, 3)) }
	fn slash() -> Weight { Weight::from_parts(200_000_000, 12_000).saturating_add(T::DbWeight::get().reads_writes(8, 8)) }
	fn expire_slash_records(n: u32, ) -> Weight { Weight::from_parts(10_000_000, 4_000).saturating_add(T::DbWeight::get().reads_writes(1, 1)).saturating_add(T::DbWeight::get().writes(n.into())) }
}

impl WeightInfo for () {
	fn bond() -> Weight { Weight::from_parts(100_000_000, 8_000).saturating_add(ParityDbWeight::get().reads_writes(3, 3)) }
	fn unbond() -> Weight { Weight::from_parts(100_000_000, 8_000).saturating_add(ParityDbWeight::get().reads_writes(2, 2)) }
	fn withdraw_unbonded() -> Weight { Weight::from_parts(100_000_000, 8_000).saturating_add(ParityDbWeight::get().reads_writes(3, 3)) }
	fn slash() -> Weight { Weight::from_parts(200_000_000, 12_000).saturating_add(ParityDbWeight::get().reads_writes(8, 8)) }
	fn expire_slash_records(n: u32, ) -> Weight { Weight::from_parts(10_000_000, 4_000).saturating_add(ParityDbWeight::get().reads_writes(1, 1)).saturating_add(ParityDbWeight::get().writes(n.into())) }
}
