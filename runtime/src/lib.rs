//! The capsule network runtime.
//!
//! # Overview
//! A solochain FRAME runtime: BABE authors blocks (its per-block VRF output seeds our
//! sortition), GRANDPA finalizes them, and `pallet-session` rotates the validator keys of both
//! once per epoch. Accounts are `MultiSignature` accounts, so a gateway whose hardware module
//! only signs ECDSA holds an ordinary account.
//!
//! # Design
//! - One block time for every chain: [`MILLISECS_PER_BLOCK`].
//! - The epoch length is chosen by the chain spec at genesis ([`chain_params`]) and never
//!   changes afterwards; BABE and the session period both read it.
//! - Primary and secondary VRF slots, so every block carries BABE VRF randomness.
//!
//! # Terms
//! - *Epoch*: a BABE epoch, equal to one session.
//! - *Preset*: a named genesis configuration (`development`, `local_testnet`).
#![cfg_attr(not(feature = "std"), no_std)]
// `construct_runtime`'s expansion is not ours to lint.
#![allow(clippy::large_enum_variant)]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

// Used by the `impl_opaque_keys!` and `#[frame_support::runtime]` expansions.
use alloc::vec::Vec;

// Declared before `apis`: it defines the `list_benchmarks!`/`add_benchmarks!` macros used there.
#[cfg(feature = "runtime-benchmarks")]
#[macro_use]
mod benchmarks;
pub mod apis;
pub use apis::RuntimeApi;
pub mod chain_params;
pub mod configs;
pub mod genesis_config_presets;
pub mod weights;

#[cfg(test)]
mod tests;

use sp_runtime::{
    generic, impl_opaque_keys,
    traits::{BlakeTwo256, IdentifyAccount, Verify},
    MultiAddress, MultiSignature,
};
use sp_version::{runtime_version, RuntimeVersion};

pub use frame_system::Call as SystemCall;
pub use pallet_balances::Call as BalancesCall;
pub use pallet_timestamp::Call as TimestampCall;
#[cfg(any(feature = "std", test))]
pub use sp_runtime::BuildStorage;

/// Opaque types the node uses without knowing the runtime's extrinsic format.
pub mod opaque {
    use super::*;
    pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;

    /// Opaque block header type.
    pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
    /// Opaque block type.
    pub type Block = generic::Block<Header, UncheckedExtrinsic>;
    /// Opaque block hash type.
    pub type Hash = <BlakeTwo256 as sp_runtime::traits::Hash>::Output;
}

impl_opaque_keys! {
    /// The keys a validator registers with `session.set_keys`: BABE authors, GRANDPA votes.
    pub struct SessionKeys {
        pub babe: Babe,
        pub grandpa: Grandpa,
    }
}

#[runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
    spec_name: alloc::borrow::Cow::Borrowed("capsule"),
    impl_name: alloc::borrow::Cow::Borrowed("capsule"),
    authoring_version: 1,
    spec_version: 100,
    impl_version: 1,
    apis: apis::RUNTIME_API_VERSIONS,
    transaction_version: 1,
    system_version: 1,
};

/// Target block time, the same on every chain. BABE's slot is this long.
pub const MILLISECS_PER_BLOCK: u64 = 3000;
/// BABE slot length. Changing it after genesis stops block production.
pub const SLOT_DURATION: u64 = MILLISECS_PER_BLOCK;
/// Blocks per minute at the target block time.
pub const MINUTES: BlockNumber = 60_000 / (MILLISECS_PER_BLOCK as BlockNumber);
/// Blocks per hour at the target block time.
pub const HOURS: BlockNumber = MINUTES * 60;
/// Blocks per day at the target block time.
pub const DAYS: BlockNumber = HOURS * 24;

/// Epoch length (in slots) of the `development` and `local_testnet` presets: 30 s at 3 s blocks.
pub const DEV_EPOCH_DURATION: u64 = 10;
/// Epoch length a chain spec gets when it says nothing: one hour.
pub const DEFAULT_EPOCH_DURATION: u64 = HOURS as u64;

/// The BABE epoch configuration at genesis: a primary slot for one in four slots on average,
/// and secondary VRF slots so that every block carries VRF output.
pub const BABE_GENESIS_EPOCH_CONFIG: sp_consensus_babe::BabeEpochConfiguration =
    sp_consensus_babe::BabeEpochConfiguration {
        c: (1, 4),
        allowed_slots: sp_consensus_babe::AllowedSlots::PrimaryAndSecondaryVRFSlots,
    };

/// The smallest unit of the token is a planck; one token is `UNIT` plancks.
pub const UNIT: Balance = 1_000_000_000_000;
/// One thousandth of a token.
pub const MILLI_UNIT: Balance = UNIT / 1_000;
/// Below this an account is reaped.
pub const EXISTENTIAL_DEPOSIT: Balance = MILLI_UNIT;
/// Token symbol announced in chain-spec properties.
pub const TOKEN_SYMBOL: &str = "CAP";
/// Token decimals announced in chain-spec properties.
pub const TOKEN_DECIMALS: u8 = 12;
/// SS58 address prefix (the generic Substrate one).
pub const SS58_PREFIX: u16 = 42;

/// Block number.
pub type BlockNumber = u32;
/// A signature of an extrinsic: sr25519, ed25519 or ECDSA (secp256k1).
pub type Signature = MultiSignature;
/// An account id: the public key (sr25519, ed25519) or its blake2 hash (ECDSA).
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// Balance of an account.
pub type Balance = u128;
/// Transaction counter of an account.
pub type Nonce = u32;
/// Block and state hash.
pub type Hash = sp_core::H256;
/// The address format of extrinsics.
pub type Address = MultiAddress<AccountId, ()>;
/// Block header.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
/// Block.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;

/// The transaction extensions, in order. Each has empty implicit data beyond the standard ones,
/// so polkadot.js, subxt and other metadata-driven clients sign without configuration.
pub type TxExtension = (
    frame_system::CheckNonZeroSender<Runtime>,
    frame_system::CheckSpecVersion<Runtime>,
    frame_system::CheckTxVersion<Runtime>,
    frame_system::CheckGenesis<Runtime>,
    frame_system::CheckEra<Runtime>,
    frame_system::CheckNonce<Runtime>,
    frame_system::CheckWeight<Runtime>,
    pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
    frame_metadata_hash_extension::CheckMetadataHash<Runtime>,
    frame_system::WeightReclaim<Runtime>,
);

/// Extrinsic as the runtime decodes it.
pub type UncheckedExtrinsic =
    generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
/// The payload an account signs.
pub type SignedPayload = generic::SignedPayload<RuntimeCall, TxExtension>;

/// Migrations beyond the pallets' own.
type Migrations = ();

/// Dispatches blocks and extrinsics to the pallets.
pub type Executive = frame_executive::Executive<
    Runtime,
    Block,
    frame_system::ChainContext<Runtime>,
    Runtime,
    AllPalletsWithSystem,
    Migrations,
>;

#[frame_support::runtime]
mod runtime {
    #[runtime::runtime]
    #[runtime::derive(
        RuntimeCall,
        RuntimeEvent,
        RuntimeError,
        RuntimeOrigin,
        RuntimeFreezeReason,
        RuntimeHoldReason,
        RuntimeSlashReason,
        RuntimeLockId,
        RuntimeTask,
        RuntimeViewFunction
    )]
    pub struct Runtime;

    #[runtime::pallet_index(0)]
    pub type System = frame_system;

    #[runtime::pallet_index(1)]
    pub type ChainParams = crate::chain_params;

    #[runtime::pallet_index(2)]
    pub type Timestamp = pallet_timestamp;

    // Balances before Session: session's genesis takes a reference on each validator
    // account, which must already exist.
    #[runtime::pallet_index(3)]
    pub type Balances = pallet_balances;

    #[runtime::pallet_index(4)]
    pub type TransactionPayment = pallet_transaction_payment;

    // Session before the consensus pallets, so it fills in their genesis authorities.
    #[runtime::pallet_index(5)]
    pub type Session = pallet_session;

    #[runtime::pallet_index(6)]
    pub type Babe = pallet_babe;

    #[runtime::pallet_index(7)]
    pub type Grandpa = pallet_grandpa;

    #[runtime::pallet_index(8)]
    pub type Sudo = pallet_sudo;

    #[runtime::pallet_index(9)]
    pub type Deposit = pallet_deposit;

    // After Babe, so the epoch index it reads in `on_initialize` is the new one.
    #[runtime::pallet_index(10)]
    pub type Reputation = pallet_reputation;

    // After Babe (this block's VRF output) and Reputation (this epoch's snapshot).
    #[runtime::pallet_index(11)]
    pub type Attestation = pallet_attestation;

    // After Attestation, so the VRF outputs it keeps include this block's when tasks are seeded.
    #[runtime::pallet_index(12)]
    pub type TaskMarket = pallet_task_market;
}
