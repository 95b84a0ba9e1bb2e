//! The agent and the attestation server as real processes on the two ends of a
//! network-namespace pair this test creates (gateway 10.79.0.1, HPC 10.79.0.2; the addresses
//! exist only inside them). The HPC's measured sources are a prepared tree
//! (`capsule_measure::fixture`). A clean machine enrols and attests; a changed module set, a
//! new PCI device, a changed boot image, a changed fingerprint source, a replayed report, a
//! report signed by the wrong key, a garbled and a dropped channel, and a second agent with
//! another static key are each detected with their reason, and the HPC is power-cycled (the
//! recording power double's log). Prints the challenge-to-verified latency, the
//! violation-to-power-cycle latency, and the agent's RSS and size.
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::*;

mod common;

#[test]
fn the_server_attests_a_clean_hpc_and_detects_each_violation() {
    let setup = setup();
    let _gateway = setup.gateway(50);

    // A clean machine enrols, then attests again and again.
    let agent = setup.agent(PORT, None);
    setup.wait_for(0, "enrolled", Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    while setup
        .events()
        .iter()
        .filter(|e| e["event"] == "accepted")
        .count()
        < 100
    {
        assert!(
            Instant::now() < deadline,
            "too few accepted reports: {:?}",
            setup.events().last()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss = rss_kib(agent.0.id());
    let mut latencies: Vec<u64> = setup
        .events()
        .iter()
        .filter_map(|e| e["latency_us"].as_u64())
        .collect();
    let (p50, p99) = (
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99),
    );
    let size = std::fs::metadata(agent_binary(false))
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "challenge-to-verified over {} reports: p50 {:.2} ms, p99 {:.2} ms; agent RSS {rss} KiB; agent binary (static musl, release) {size} bytes",
        latencies.len(),
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0
    );
    assert_eq!(
        setup.power_cycles(),
        0,
        "a clean machine is never power-cycled"
    );

    // A peer without this boot's secret is refused, and that is not the HPC's violation.
    std::fs::write(setup.path("wrong.secret"), hex(&[0x43; 32])).expect("secret");
    let skip = setup.events().len();
    let stranger = setup.agent_with_secret(PORT, &setup.path("wrong.secret"));
    setup.wait_for(skip, "refused", Duration::from_secs(20));
    drop(stranger);
    assert_eq!(setup.power_cycles(), 0, "refused, not power-cycled");

    let mut power_latencies = Vec::new();
    let mut run_violation = |change: &dyn Fn(),
                             undo: &dyn Fn(),
                             fault: Option<&str>,
                             port: u16,
                             reason: &str,
                             agent: Option<Process>| {
        let skip = setup.events().len();
        let cycles = setup.power_cycles();
        let agent = agent.unwrap_or_else(|| setup.agent(port, fault));
        change();
        let violation = expect_violation(&setup, skip, cycles, reason);
        if let Some(us) = violation["power_latency_us"].as_u64() {
            power_latencies.push(us);
        }
        drop(agent);
        undo();
        violation
    };

    // The clean agent's own session: a module loaded.
    let modules = || {
        setup
            .machine
            .set_modules(&["virtio_net", "virtio_blk", "overlay", "usb_storage"])
    };
    let clean_modules = || {
        setup
            .machine
            .set_modules(&["virtio_net", "virtio_blk", "overlay"])
    };
    run_violation(
        &modules,
        &clean_modules,
        None,
        PORT,
        "ModuleSet",
        Some(agent),
    );

    // Each following case: a fresh boot (a new agent), then the change.
    let pci = || {
        setup
            .machine
            .add_pci("0000:00:05.0", 0x10de, 0x2204, 0x030000)
    };
    let unplug = || {
        std::fs::remove_dir_all(setup.machine.path("sys/bus/pci/devices/0000:00:05.0"))
            .expect("unplug")
    };
    run_violation(&pci, &unplug, None, PORT, "DeviceSet", None);

    let boot = setup.machine.path("boot/hpc.efi");
    let original = std::fs::read(&boot).expect("boot image");
    let change_boot = || setup.machine.change_boot_image();
    let restore_boot = || std::fs::write(&boot, &original).expect("restore");
    run_violation(&change_boot, &restore_boot, None, PORT, "BootImage", None);

    let serial = || setup.machine.set_dmi("product_serial", "HPC-SN-0002");
    let restore_serial = || setup.machine.set_dmi("product_serial", "HPC-SN-0001");
    let violation = run_violation(&serial, &restore_serial, None, PORT, "Fingerprint", None);
    assert_eq!(
        violation["changed_sources"],
        serde_json::json!(["dmi/product_serial"])
    );

    let nothing = || {};
    run_violation(
        &nothing,
        &nothing,
        Some("replay-first-report"),
        PORT,
        "WrongNonce",
        None,
    );
    run_violation(
        &nothing,
        &nothing,
        Some("wrong-signing-key"),
        PORT,
        "BadReportSignature",
        None,
    );

    // The channel: garbled on the way, then cut, through a proxy in the gateway's namespace.
    let (garble, cut) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    proxy(&setup.link, garble.clone(), cut.clone());
    let skip = setup.events().len();
    let through = setup.agent(PROXY_PORT, None);
    setup.wait_for(skip, "accepted", Duration::from_secs(20));
    let garbling = || garble.store(true, Ordering::SeqCst);
    run_violation(
        &garbling,
        &nothing,
        None,
        PROXY_PORT,
        "does not decrypt",
        Some(through),
    );

    let skip = setup.events().len();
    let through = setup.agent(PROXY_PORT, None);
    setup.wait_for(skip, "accepted", Duration::from_secs(20));
    let cutting = || cut.store(true, Ordering::SeqCst);
    run_violation(
        &cutting,
        &nothing,
        None,
        PROXY_PORT,
        "closed",
        Some(through),
    );
    cut.store(false, Ordering::SeqCst);

    // A second agent with this boot's secret but another static key.
    let skip = setup.events().len();
    let first = setup.agent(PORT, None);
    setup.wait_for(skip, "accepted", Duration::from_secs(20));
    let second = || {
        let intruder = setup.agent(PORT, None);
        std::thread::sleep(Duration::from_millis(500));
        drop(intruder);
    };
    run_violation(
        &second,
        &nothing,
        None,
        PORT,
        "static key changed",
        Some(first),
    );

    let p99 = percentile(&mut power_latencies, 0.99);
    eprintln!(
        "violation-to-power-cycle over {} violations: p99 {:.3} ms",
        power_latencies.len(),
        p99 as f64 / 1000.0
    );
}
