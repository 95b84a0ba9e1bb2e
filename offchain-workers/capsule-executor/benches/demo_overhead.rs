//! The executor's overhead on the demo function: 100 runs through [`Executor::run`] (scratch
//! tmpfs, hardened config, seccomp audit watch, cleanup evidence before and after) against 100
//! bare `docker run`s of the same image with the same inputs bound at `/scratch`, alternating.
//! Prints both medians and their ratio; the goal is at most 1.2.
//!
//! `cargo bench -p capsule-executor --bench demo_overhead` (needs the engine:
//! scripts/dockerd-up.sh). `RUNS=20` for a shorter run.
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use capsule_executor::{Executor, Outcome, RunSpec, Runtime};
use capsule_image::build_function_image;
use capsule_primitives::{policy::ResourceLimits, TaskId};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let binary = capsule_functions::binary("intersect").expect("function binaries build");
    let image = build_function_image(&std::fs::read(binary).expect("intersect binary"));
    let executor = Executor::connect(Runtime::Runc)
        .await
        .expect("the engine answers");
    executor
        .ensure_image(&image.id, Some(&image.tar))
        .await
        .expect("loads");
    let alice = (0..1000).map(|i| format!("name{i}\n")).collect::<String>();
    let bob = (500..1500)
        .map(|i| format!("name{i}\n"))
        .collect::<String>();
    let limits = ResourceLimits {
        memory_bytes: 64 << 20,
        cpu_millis: 1000,
        pids: 16,
        tmpfs_bytes: 1 << 20,
        output_bytes: 1 << 20,
    };

    // The bare run's scratch: the same inputs, an out/ it may write.
    let bare = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(bare.path().join("in")).expect("mkdir");
    std::fs::create_dir_all(bare.path().join("out")).expect("mkdir");
    std::fs::write(bare.path().join("in/alice"), &alice).expect("write");
    std::fs::write(bare.path().join("in/bob"), &bob).expect("write");
    use std::os::unix::fs::PermissionsExt;
    for (dir, mode) in [("", 0o755), ("out", 0o777)] {
        std::fs::set_permissions(bare.path().join(dir), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
    }
    let mount = format!("{}:/scratch", bare.path().display());

    let (mut through_executor, mut through_docker) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let started = Instant::now();
        let report = executor
            .run(&RunSpec {
                task: TaskId(run as u64),
                image: image.id,
                limits,
                timeout: Duration::from_secs(60),
                stdin: b"",
                inputs: &[("alice", alice.as_bytes()), ("bob", bob.as_bytes())],
                egress: &[],
            })
            .await
            .expect("runs");
        through_executor.push(started.elapsed());
        assert_eq!(report.outcome, Outcome::Completed { exit_code: 0 });
        assert_eq!(report.stdout, b"500 names in common\n");
        assert!(report.evidence.is_clean(), "{:?}", report.residue);

        let started = Instant::now();
        let status = Command::new("docker")
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--user",
                "0:0",
                "-v",
                &mount,
            ])
            .arg(image.docker_id())
            .stdout(Stdio::null())
            .status()
            .expect("docker run");
        through_docker.push(started.elapsed());
        assert!(status.success());
    }
    let (executor_median, docker_median) = (median(through_executor), median(through_docker));
    println!(
        "demo function, {runs} runs each: executor median {:.1} ms, bare docker run median {:.1} ms, ratio {:.2}",
        executor_median.as_secs_f64() * 1e3,
        docker_median.as_secs_f64() * 1e3,
        executor_median.as_secs_f64() / docker_median.as_secs_f64()
    );
}
