//! `capsule-node`: the node of the capsule network, a BABE + GRANDPA solochain.
//!
//! Run `capsule-node --dev` for a one-validator development chain that produces and finalizes
//! blocks, or `capsule-node --chain local --alice` (and `--bob`, `--charlie`, `--dave`) for the
//! four-validator local testnet. JSON-RPC (system, chain, state, author, payment) is
//! served on `--rpc-port` (9944 by default), Prometheus metrics on `--prometheus-port`.
#![warn(missing_docs)]
// `sc_cli::Error` and `sc_service::Error` are what the Substrate runner and service builders
// take and return; their size is not ours to change.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
    command::run()
}
