//! The dev node produces and finalizes blocks on its own and exports Prometheus metrics.
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use capsule_node_fixture::DevNode;

/// One scrape of the node's Prometheus exporter.
fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The sample of metric `name` that carries `label`, from one scrape.
fn metric(body: &str, name: &str, label: &str) -> Option<f64> {
    body.lines()
        .find(|line| line.starts_with(&format!("{name}{{")) && line.contains(label))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn dev_node_finalizes_blocks_and_exports_metrics() {
    let node = DevNode::start(env!("CARGO_BIN_EXE_capsule-node")).expect("dev node starts");
    let prometheus = node
        .prometheus_addr()
        .expect("the node announces its Prometheus exporter");

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let body = scrape(prometheus).unwrap_or_default();
        let best = metric(&body, "substrate_block_height", r#"status="best""#);
        let final_height = metric(&body, "substrate_block_height", r#"status="finalized""#);
        if let (Some(best), Some(final_height)) = (best, final_height) {
            if final_height >= 3.0 {
                assert!(best >= final_height);
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no 3 finalized blocks within 90 s; log tail:\n{}",
            node.log_tail()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn two_dev_nodes_run_side_by_side() {
    let binary = env!("CARGO_BIN_EXE_capsule-node");
    let a = DevNode::start(binary).expect("first dev node starts");
    let b = DevNode::start(binary).expect("second dev node starts");
    assert_ne!(a.rpc_addr(), b.rpc_addr());
    assert_ne!(a.base_path(), b.base_path());
    let base = b.base_path().to_path_buf();
    drop(b);
    assert!(!base.exists(), "dropping the fixture removes its directory");
    assert!(
        TcpStream::connect(a.rpc_addr()).is_ok(),
        "the first node still serves RPC"
    );
}
