//! The chain specs the node ships: `dev` (one validator), `dev-committee` (one validator, four
//! genesis gateways) and `local` (four), all with 10-slot epochs fixed at genesis and the token
//! properties apps display.
use std::process::Command;

fn export(chain: &str) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_capsule-node"))
        .args(["export-chain-spec", "--chain", chain])
        .output()
        .expect("capsule-node runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the chain spec is JSON")
}

fn patch(spec: &serde_json::Value) -> &serde_json::Value {
    &spec["genesis"]["runtimeGenesis"]["patch"]
}

#[test]
fn local_has_four_validators_and_short_epochs() {
    let spec = export("local");
    assert_eq!(spec["id"], "capsule_local");
    let keys = patch(&spec)["session"]["keys"]
        .as_array()
        .expect("session keys");
    assert_eq!(keys.len(), 4, "alice, bob, charlie, dave: {keys:?}");
    assert_eq!(patch(&spec)["chainParams"]["epochDuration"], 10);
    assert_eq!(
        patch(&spec)["babe"]["epochConfig"]["allowed_slots"],
        "PrimaryAndSecondaryVRFSlots"
    );
}

#[test]
fn dev_has_one_validator_and_token_properties() {
    let spec = export("dev");
    assert_eq!(spec["id"], "capsule_dev");
    assert_eq!(
        patch(&spec)["session"]["keys"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(spec["properties"]["tokenSymbol"], "CAP");
    assert_eq!(spec["properties"]["tokenDecimals"], 12);
    assert_eq!(spec["properties"]["ss58Format"], 42);
}

#[test]
fn dev_committee_has_one_validator_and_four_genesis_gateways() {
    let spec = export("dev-committee");
    assert_eq!(spec["id"], "capsule_dev_committee");
    assert_eq!(
        patch(&spec)["session"]["keys"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        patch(&spec)["attestation"]["gateways"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
}

#[test]
fn an_unknown_chain_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_capsule-node"))
        .args(["export-chain-spec", "--chain", "/nonexistent/spec.json"])
        .output()
        .expect("capsule-node runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("neither `dev`, `dev-committee`, `local` nor a chain spec file"),
        "{stderr}"
    );
}
