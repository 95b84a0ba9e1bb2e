//! # Attestation runtime API
//!
//! What a gateway's verifier service asks the chain at a block, without decoding storage: the
//! open attestation rounds (phase, deadlines, seed, committee and the votes so far), the rounds
//! a given gateway must vote in, and the golden measurements in force. Any client that reads
//! runtime metadata (polkadot.js `api.call.attestationApi`, subxt `runtime_apis()`) can call it.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use capsule_primitives::{
    golden::{GoldenId, GoldenKind, GoldenMeasurement},
    ids::RoundId,
};
use codec::Codec;
pub use pallet_attestation::{MemberVote, RoundStatus, RoundView};

sp_api::decl_runtime_apis! {
    /// The attestation pallet's rounds and golden measurements.
    pub trait AttestationApi<AccountId, BlockNumber>
    where
        AccountId: Codec,
        BlockNumber: Codec,
    {
        /// The open rounds with ids from `from` on, at most `limit`, by id. Page by calling
        /// again with the last id plus one.
        fn open_rounds(from: RoundId, limit: u32) -> Vec<RoundView<AccountId, BlockNumber>>;

        /// The open rounds on whose committee `member` sits, by id.
        fn rounds_of_member(member: AccountId) -> Vec<RoundView<AccountId, BlockNumber>>;

        /// The golden measurements in force, of `kind` or of every kind, by id.
        fn golden_measurements(kind: Option<GoldenKind>) -> Vec<(GoldenId, GoldenMeasurement)>;
    }
}
