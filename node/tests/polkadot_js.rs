//! Runs the @polkadot/api test suite (`tests/js/*.test.mjs`) against a fresh `--dev` node:
//! metadata, sr25519 and ECDSA transfers to finality, epoch changes and BABE VRF output.
use std::{path::Path, process::Command};

use capsule_node_fixture::DevNode;

#[test]
fn polkadot_js_api_suite_passes_against_a_dev_node() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        js.join("node_modules/@polkadot/api").is_dir(),
        "@polkadot/api is not installed: run `npm ci --prefix {}` (scripts/setup.sh does)",
        js.display()
    );
    let node = DevNode::start(env!("CARGO_BIN_EXE_capsule-node")).expect("dev node starts");

    let mut tests: Vec<_> = std::fs::read_dir(&js)
        .expect("tests/js is readable")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    tests.sort();
    assert!(
        tests.len() >= 3,
        "expected the metadata, transfer and epoch suites, found {tests:?}"
    );

    let status = Command::new("node")
        .current_dir(&js)
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(&tests)
        .env("CAPSULE_WS_URL", node.ws_url())
        .status()
        .expect("`node` (Node.js 18 or newer) runs: install it (scripts/setup.sh does)");
    assert!(
        status.success(),
        "@polkadot/api suite failed ({status}); node log tail:\n{}",
        node.log_tail()
    );
}
