//! Chain specifications built from the runtime's genesis presets.
use capsule_runtime::{SS58_PREFIX, TOKEN_DECIMALS, TOKEN_SYMBOL, WASM_BINARY};
use sc_service::ChainType;

/// A chain specification of the capsule network.
pub type ChainSpec = sc_service::GenericChainSpec;

fn wasm_binary() -> Result<&'static [u8], String> {
    WASM_BINARY.ok_or_else(|| {
        "The runtime wasm was not built (SKIP_WASM_BUILD is set?): rebuild the node without it."
            .to_string()
    })
}

/// Token symbol, decimals and address format, which polkadot.js apps displays.
fn properties() -> sc_chain_spec::Properties {
    let mut properties = sc_chain_spec::Properties::new();
    properties.insert("tokenSymbol".into(), TOKEN_SYMBOL.into());
    properties.insert("tokenDecimals".into(), TOKEN_DECIMALS.into());
    properties.insert("ss58Format".into(), SS58_PREFIX.into());
    properties
}

/// A chain spec whose genesis is the runtime preset `preset`.
fn from_preset(
    name: &str,
    id: &str,
    chain_type: ChainType,
    preset: &str,
) -> Result<ChainSpec, String> {
    Ok(ChainSpec::builder(wasm_binary()?, None)
        .with_name(name)
        .with_id(id)
        .with_chain_type(chain_type)
        .with_genesis_config_preset_name(preset)
        .with_properties(properties())
        .build())
}

/// One validator (Alice) on this machine.
pub fn development_chain_spec() -> Result<ChainSpec, String> {
    from_preset(
        "Capsule Development",
        "capsule_dev",
        ChainType::Development,
        sp_genesis_builder::DEV_RUNTIME_PRESET,
    )
}

/// One validator (Alice) and four genesis gateways (Alice, Bob, Charlie, Dave): enough for a
/// committee whose Fail slashes, even of one of them, on one machine.
pub fn dev_committee_chain_spec() -> Result<ChainSpec, String> {
    from_preset(
        "Capsule Development (four gateways)",
        "capsule_dev_committee",
        ChainType::Development,
        capsule_runtime::genesis_config_presets::DEV_COMMITTEE_PRESET,
    )
}

/// Four validators (Alice, Bob, Charlie, Dave), for zombienet and multi-process tests.
pub fn local_chain_spec() -> Result<ChainSpec, String> {
    from_preset(
        "Capsule Local Testnet",
        "capsule_local",
        ChainType::Local,
        sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET,
    )
}
