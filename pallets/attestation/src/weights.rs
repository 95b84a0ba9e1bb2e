//! Weights of `pallet_attestation`. Provisional: this pallet is not in the runtime yet;
//! `scripts/bench/weights.sh pallet_attestation` replaces this file when its benchmarks land.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens, unused_imports, missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// What the calls of `pallet_attestation` cost.
pub trait WeightInfo {
	fn register() -> Weight;
	fn deregister() -> Weight;
	fn force_activate() -> Weight;
	fn add_golden() -> Weight;
	fn retire_golden() -> Weight;
	fn read_active_gateways() -> Weight;
	fn suspend() -> Weight;
	fn on_initialize_seeding(n: u32, ) -> Weight;
	fn on_initialize_closing(n: u32, ) -> Weight;
	fn commit() -> Weight;
	fn reveal() -> Weight;
	fn report() -> Weight;
	fn rotate_keys() -> Weight;
}

impl WeightInfo for () {
	fn register() -> Weight { Weight::from_parts(2_000_000_000, 20_000).saturating_add(ParityDbWeight::get().reads_writes(8, 5)) }
	fn deregister() -> Weight { Weight::from_parts(100_000_000, 20_000).saturating_add(ParityDbWeight::get().reads_writes(3, 6)) }
	fn force_activate() -> Weight { Weight::from_parts(100_000_000, 20_000).saturating_add(ParityDbWeight::get().reads_writes(2, 2)) }
	fn add_golden() -> Weight { Weight::from_parts(100_000_000, 2_000).saturating_add(ParityDbWeight::get().reads_writes(2, 2)) }
	fn retire_golden() -> Weight { Weight::from_parts(100_000_000, 2_000).saturating_add(ParityDbWeight::get().reads_writes(2, 2)) }
	fn read_active_gateways() -> Weight { Weight::from_parts(10_000_000, 20_000).saturating_add(ParityDbWeight::get().reads(1)) }
	fn suspend() -> Weight { Weight::from_parts(100_000_000, 20_000).saturating_add(ParityDbWeight::get().reads_writes(2, 2)) }
	fn on_initialize_seeding(n: u32, ) -> Weight { Weight::from_parts(20_000_000, 2_000).saturating_add(ParityDbWeight::get().reads_writes(2, 2)).saturating_add(Weight::from_parts(10_000_000_000, 800_000).saturating_mul(n.into())) }
	fn on_initialize_closing(n: u32, ) -> Weight { Weight::from_parts(5_000_000, 2_000).saturating_add(Weight::from_parts(2_000_000_000, 100_000).saturating_mul(n.into())) }
	fn commit() -> Weight { Weight::from_parts(50_000_000, 10_000).saturating_add(ParityDbWeight::get().reads_writes(1, 1)) }
	fn reveal() -> Weight { Weight::from_parts(80_000_000, 10_000).saturating_add(ParityDbWeight::get().reads_writes(1, 1)) }
	fn report() -> Weight { Weight::from_parts(60_000_000, 10_000).saturating_add(ParityDbWeight::get().reads_writes(6, 6)) }
	fn rotate_keys() -> Weight { Weight::from_parts(2_000_000_000, 20_000).saturating_add(ParityDbWeight::get().reads_writes(10, 10)) }
}
