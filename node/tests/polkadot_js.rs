//! Runs the @polkadot/api test suite (`tests/js/*.test.mjs`) against a fresh `--dev` node:
//! metadata, sr25519 and ECDSA transfers to finality, epoch changes and BABE VRF output.
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use capsule_node_fixture::DevNode;

/// The longest one suite may take (the epoch suite waits about 30 s for an epoch change).
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

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

    // One `node --test` per file (Node 18 has no --test-concurrency), so suites never share
    // Alice's nonce, each under a deadline: a stalled node fails the test rather than hangs it.
    for test in &tests {
        let mut child = Command::new("node")
            .current_dir(&js)
            .args(["--test", "--test-reporter=spec"])
            .arg(test)
            .env("CAPSULE_WS_URL", node.ws_url())
            .spawn()
            .expect("`node` (Node.js 18 or newer) runs: install it (scripts/setup.sh does)");
        let deadline = Instant::now() + SUITE_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("the suite's status is readable") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not finish within {SUITE_TIMEOUT:?}; node log tail:\n{}",
                    test.display(),
                    node.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            status.success(),
            "{} failed ({status}); node log tail:\n{}",
            test.display(),
            node.log_tail()
        );
    }
}
