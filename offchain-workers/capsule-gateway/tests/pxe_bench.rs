//! Boot figures (`scripts/bench/pxe.sh`; ignored in the test run): the QEMU machine under TCG
//! boots the built image (`CAPSULE_PXE_IMAGE_DIR`, or the default build) from its gateway
//! `BOOTS` times (default 5; the gateway restarts between boots, and each start powers the
//! machine into a fresh boot). Prints power-on to attested for each boot and their p50, the
//! image's size, and the boot server's resident memory (the gateway process and its dnsmasq).
mod common;

use std::time::Duration;

use common::{
    hex, percentile, read_events, rss_kib,
    vm::{self, attested_after, Firmware},
    Link,
};

#[test]
#[ignore = "a benchmark: scripts/bench/pxe.sh"]
fn power_on_to_attested() {
    let boots: usize = std::env::var("BOOTS")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(5);
    let build = vm::built_image();
    let link = Link::new();
    vm::bridge(&link);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (private, _) = capsule_channel::generate_static_key().expect("key");
    std::fs::write(dir.join("noise.key"), hex(&private)).expect("key");
    vm::disk(dir);
    let _machine = vm::machine(&link, dir, "HPC-SN-0001", &Firmware::Bios);
    let digests = [hex(&build.golden.0)];
    let mut times = Vec::new();
    let (mut gateway_rss, mut dnsmasq_rss) = (0, 0);
    for boot in 0..boots {
        let skip = read_events(&dir.join("events.jsonl")).len();
        let mut gateway = vm::gateway(
            &link,
            dir,
            &dir.join("qmp.sock"),
            &build.image,
            &digests,
            &[],
        );
        let (elapsed, _) = attested_after(&dir.join("events.jsonl"), skip);
        eprintln!("boot {}: power-on to attested {elapsed:.1?}", boot + 1);
        times.push(elapsed.as_millis() as u64);
        gateway_rss = gateway_rss.max(rss_kib(gateway.0.id()));
        dnsmasq_rss = vm::dnsmasq_pids(&dir.join("boot"))
            .into_iter()
            .map(rss_kib)
            .sum::<u64>()
            .max(dnsmasq_rss);
        let pid = rustix::process::Pid::from_child(&gateway.0);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        gateway.0.wait().expect("the gateway exits");
        std::thread::sleep(Duration::from_millis(200));
    }
    let image = std::fs::metadata(&build.image).expect("image").len();
    println!(
        "boots {boots}: power-on to attested p50 {:.1} s (min {:.1}, max {:.1}); image {image} bytes; boot server RSS: gateway {gateway_rss} KiB, dnsmasq {dnsmasq_rss} KiB",
        percentile(&mut times, 0.5) as f64 / 1000.0,
        times[0] as f64 / 1000.0,
        times[times.len() - 1] as f64 / 1000.0,
    );
}
