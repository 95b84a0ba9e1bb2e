//! # Capsule functions
//!
//! Task functions the project builds itself, as static binaries for
//! `x86_64-unknown-linux-musl`, to be packed into function images by `capsule-image`:
//! - `intersect`: the seed's demo, the names two lists share;
//! - `hostile`: misbehaves as told on stdin, for the executor's containment tests;
//! - `pause`: not a task function but the executor's network holder, which keeps a networked
//!   task's namespace while its link is wired (it only sleeps).
//!
//! [`binary`] builds them on demand (release, musl) into their own target directory, so a test
//! running under `cargo test` does not wait on the lock of the target directory it runs from.
use std::{path::PathBuf, process::Command, sync::OnceLock};

/// The target the functions are built for.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// Why a function binary is not available.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build the function binaries: {0}; try `cargo build --release --target {TARGET} -p capsule-functions` by hand (scripts/setup.sh installs the target)")]
pub struct BuildError(String);

fn target_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    base.join("functions")
}

fn build_all() -> Result<PathBuf, BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let dir = target_dir();
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--target",
            TARGET,
            "--bins",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&dir)
        // Paths inside the binaries name no machine.
        .env(
            "RUSTFLAGS",
            format!(
                "-C target-feature=+crt-static --remap-path-prefix={}=capsule",
                env!("CARGO_MANIFEST_DIR")
            ),
        )
        .status()
        .map_err(|e| BuildError(format!("cannot start cargo: {e}")))?;
    if !status.success() {
        return Err(BuildError(format!("cargo exited with {status}")));
    }
    Ok(dir.join(TARGET).join("release"))
}

/// The path of the function binary `name` (`intersect`, `hostile`, `pause`), built on first use.
pub fn binary(name: &str) -> Result<PathBuf, BuildError> {
    static BUILT: OnceLock<Result<PathBuf, BuildError>> = OnceLock::new();
    let dir = BUILT.get_or_init(build_all).clone()?;
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(BuildError(format!("{} was not built", path.display())))
    }
}
