//! Named genesis configurations: `development` (one validator, Alice), `dev_committee` (one
//! validator, four genesis gateways: committees that may slash) and `local_testnet` (Alice,
//! Bob, Charlie and Dave). All use short epochs so tests see epoch changes quickly.
use alloc::{vec, vec::Vec};
use frame_support::build_struct_json_patch;
use serde_json::Value;
use sp_consensus_babe::AuthorityId as BabeId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_genesis_builder::{self, PresetId};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring};

use capsule_primitives::{
    attestation::HardwareLevel, hashing::tagged_blake2_256, keys::DevicePublicKey,
};
use codec::Encode;
use pallet_attestation::GenesisGateway;

use crate::{
    AccountId, AttestationConfig, BalancesConfig, ChainParamsConfig, DepositConfig,
    ReputationConfig, RuntimeGenesisConfig, SessionConfig, SessionKeys, SudoConfig,
    BABE_GENESIS_EPOCH_CONFIG, DEV_EPOCH_DURATION, UNIT,
};

/// What every well-known development account starts with.
pub const ENDOWMENT: u128 = 1_000_000 * UNIT;
/// The bond each preset validator starts with, so a new network has weight to draw from.
pub const GENESIS_BOND: u128 = 10_000 * UNIT;
/// The score each preset validator starts with (a tenth of the ceiling).
pub const GENESIS_SCORE: u32 = 100_000;

/// The name of the preset with one validator and four genesis gateways (`MinSlashCommittee` + 1).
pub const DEV_COMMITTEE_PRESET: &str = "dev_committee";

/// A genesis gateway of a preset, bonded and scored, with its software device, VRF and network
/// keys (dev and local chains only), and its session keys if it also validates.
struct Validator {
    account: AccountId,
    keys: Option<SessionKeys>,
    gateway: GenesisGateway<AccountId>,
}

fn validator(sr: Sr25519Keyring, ed: Ed25519Keyring, network: Ed25519Keyring) -> Validator {
    let account = sr.to_account_id();
    Validator {
        account: account.clone(),
        keys: Some(SessionKeys {
            babe: BabeId::from(sr.public()),
            grandpa: GrandpaId::from(ed.public()),
        }),
        gateway: GenesisGateway {
            account: account.clone(),
            device_key: DevicePublicKey::Ed25519(ed.public().0).encode(),
            vrf_key: sr.public().0,
            network_key: network.public().0,
            level: HardwareLevel::Software,
            fingerprint: tagged_blake2_256(b"capsule/dev-fingerprint", account.as_ref()),
        },
    }
}

fn genesis(validators: Vec<Validator>, root: AccountId, endowed: Vec<AccountId>) -> Value {
    let gateways: Vec<AccountId> = validators.iter().map(|v| v.account.clone()).collect();
    let genesis_gateways: Vec<GenesisGateway<AccountId>> =
        validators.iter().map(|v| v.gateway.clone()).collect();
    build_struct_json_patch!(RuntimeGenesisConfig {
        chain_params: ChainParamsConfig {
            epoch_duration: DEV_EPOCH_DURATION
        },
        balances: BalancesConfig {
            balances: endowed
                .into_iter()
                .map(|account| (account, ENDOWMENT))
                .collect::<Vec<_>>(),
        },
        babe: pallet_babe::GenesisConfig {
            epoch_config: BABE_GENESIS_EPOCH_CONFIG
        },
        session: SessionConfig {
            keys: validators
                .into_iter()
                .filter_map(|v| Some((v.account.clone(), v.account, v.keys?)))
                .collect::<Vec<_>>(),
        },
        sudo: SudoConfig { key: Some(root) },
        deposit: DepositConfig {
            bonds: gateways
                .iter()
                .map(|account| (account.clone(), GENESIS_BOND))
                .collect::<Vec<_>>(),
        },
        // Dev and local chains run gateways with software keys.
        reputation: ReputationConfig {
            scores: gateways
                .iter()
                .map(|account| (account.clone(), GENESIS_SCORE))
                .collect::<Vec<_>>(),
            levels: gateways
                .iter()
                .map(|account| (account.clone(), HardwareLevel::Software))
                .collect::<Vec<_>>(),
            allow_software_level: true,
        },
        attestation: AttestationConfig {
            gateways: genesis_gateways
        },
    })
}

/// One validator (Alice), Alice is root, the well-known accounts are endowed.
pub fn development_config_genesis() -> Value {
    genesis(
        vec![validator(
            Sr25519Keyring::Alice,
            Ed25519Keyring::Alice,
            Ed25519Keyring::AliceStash,
        )],
        Sr25519Keyring::Alice.to_account_id(),
        Sr25519Keyring::well_known()
            .map(|k| k.to_account_id())
            .collect(),
    )
}

/// A genesis gateway that does not validate.
fn gateway_only(sr: Sr25519Keyring, ed: Ed25519Keyring, network: Ed25519Keyring) -> Validator {
    Validator {
        keys: None,
        ..validator(sr, ed, network)
    }
}

/// One validator (Alice) and four genesis gateways (Alice, Bob, Charlie, Dave): one more than
/// `MinSlashCommittee`, so the committee of any one of them (an executor's pre- and post-task
/// rounds), drawn from the other three, can slash, as can a registration round's. Alice is root.
pub fn dev_committee_config_genesis() -> Value {
    genesis(
        vec![
            validator(
                Sr25519Keyring::Alice,
                Ed25519Keyring::Alice,
                Ed25519Keyring::AliceStash,
            ),
            gateway_only(
                Sr25519Keyring::Bob,
                Ed25519Keyring::Bob,
                Ed25519Keyring::BobStash,
            ),
            gateway_only(
                Sr25519Keyring::Charlie,
                Ed25519Keyring::Charlie,
                Ed25519Keyring::CharlieStash,
            ),
            gateway_only(
                Sr25519Keyring::Dave,
                Ed25519Keyring::Dave,
                Ed25519Keyring::DaveStash,
            ),
        ],
        Sr25519Keyring::Alice.to_account_id(),
        Sr25519Keyring::well_known()
            .map(|k| k.to_account_id())
            .collect(),
    )
}

/// Four validators (Alice, Bob, Charlie, Dave), Alice is root.
pub fn local_config_genesis() -> Value {
    genesis(
        vec![
            validator(
                Sr25519Keyring::Alice,
                Ed25519Keyring::Alice,
                Ed25519Keyring::AliceStash,
            ),
            validator(
                Sr25519Keyring::Bob,
                Ed25519Keyring::Bob,
                Ed25519Keyring::BobStash,
            ),
            validator(
                Sr25519Keyring::Charlie,
                Ed25519Keyring::Charlie,
                Ed25519Keyring::CharlieStash,
            ),
            validator(
                Sr25519Keyring::Dave,
                Ed25519Keyring::Dave,
                Ed25519Keyring::DaveStash,
            ),
        ],
        Sr25519Keyring::Alice.to_account_id(),
        Sr25519Keyring::well_known()
            .map(|k| k.to_account_id())
            .collect(),
    )
}

/// The JSON patch of the preset `id`, if there is one.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
    let patch = match id.as_ref() {
        sp_genesis_builder::DEV_RUNTIME_PRESET => development_config_genesis(),
        sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET => local_config_genesis(),
        DEV_COMMITTEE_PRESET => dev_committee_config_genesis(),
        _ => return None,
    };
    serde_json::to_vec(&patch).ok()
}

/// Names of the presets this runtime offers.
pub fn preset_names() -> Vec<PresetId> {
    vec![
        PresetId::from(sp_genesis_builder::DEV_RUNTIME_PRESET),
        PresetId::from(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET),
        PresetId::from(DEV_COMMITTEE_PRESET),
    ]
}
