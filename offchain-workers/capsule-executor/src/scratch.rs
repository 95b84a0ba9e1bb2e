//! A run's scratch space: a host tmpfs of the policy's size, mounted for one run, bound into
//! the container at `/scratch`, read for outputs after the function exited, then unmounted.
//!
//! Layout seen by the function:
//! - `/scratch` itself is root's and read-only to the function, so it cannot swap the
//!   directories below for links;
//! - `/scratch/in/`: the inputs, written before the start, root's and read-only (their space
//!   is added to the tmpfs's size, so inputs never eat into the function's scratch);
//! - `/scratch/out/`: the outputs, one regular file each (at most [`MAX_OUTPUT_FILES`], their
//!   sizes together within the policy's `output_bytes`);
//! - `/scratch/work/`: working space, discarded.
//!
//! Both belong to the run's uid. The tmpfs is `noexec,nosuid,nodev` and its pages are charged
//! to the container's memory limit as it writes them. Outputs are opened without following
//! links and without blocking, and only regular files are read: a link to a host file or a
//! FIFO left by a hostile function is refused by name, never followed.
use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::{self, Read},
    os::unix::fs::{chown, DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

/// Most output files a run may leave.
pub const MAX_OUTPUT_FILES: usize = 64;
/// Where run scratch spaces are mounted unless the executor is told otherwise.
pub const DEFAULT_BASE: &str = "/run/capsule/scratch";
/// The directory, under `/scratch`, holding the inputs.
pub const IN_DIR: &str = "in";
/// Most input files a run may get.
pub const MAX_INPUT_FILES: usize = 64;
/// The directory, under `/scratch`, whose files are the outputs.
pub const OUT_DIR: &str = "out";
/// The directory, under `/scratch`, for the function's working files.
pub const WORK_DIR: &str = "work";

/// What a run left in `/scratch/out`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outputs {
    /// The accepted files, by name.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Entries not taken, by name (lossy UTF-8), with why.
    pub refused: Vec<(String, RefusedOutput)>,
}

/// Why an entry of `/scratch/out` was not taken as an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedOutput {
    /// Not a regular file (a link, directory, FIFO, socket...).
    NotARegularFile,
    /// Its name is not UTF-8.
    NameNotUtf8,
    /// Taking it would pass the policy's output size.
    OverSizeLimit,
    /// More than [`MAX_OUTPUT_FILES`] entries.
    TooManyFiles,
}

/// A mounted scratch space. Dropping it unmounts it (lazily) and removes its directory;
/// [`Scratch::remove`] does the same and reports failures.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    mounted: bool,
}

impl Scratch {
    /// Mounts a tmpfs of `size_bytes` (plus the inputs' room) at a new directory under `base`,
    /// with the inputs in `in/`, and `out/` and `work/` owned by `uid`. Input names must be
    /// checked first ([`check_input_names`]).
    pub fn mount(
        base: &Path,
        uid: u32,
        size_bytes: u64,
        inputs: &[(&str, &[u8])],
    ) -> io::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(base)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = base.join(format!("run-{uid}-{nanos}"));
        fs::DirBuilder::new().mode(0o755).create(&dir)?;
        let mut scratch = Self {
            dir,
            mounted: false,
        };
        let options = std::ffi::CString::new(format!(
            "size={},mode=0755,uid=0,gid=0",
            size_bytes.max(4096).saturating_add(input_room(inputs))
        ))
        .map_err(io::Error::other)?;
        mount(
            "capsule-scratch",
            &scratch.dir,
            "tmpfs",
            MountFlags::NOEXEC | MountFlags::NOSUID | MountFlags::NODEV,
            options.as_c_str(),
        )?;
        scratch.mounted = true;
        for sub in [OUT_DIR, WORK_DIR] {
            let path = scratch.dir.join(sub);
            fs::DirBuilder::new().mode(0o700).create(&path)?;
            chown(&path, Some(uid), Some(uid))?;
        }
        let input_dir = scratch.dir.join(IN_DIR);
        fs::DirBuilder::new().mode(0o755).create(&input_dir)?;
        for (name, bytes) in inputs {
            let path = input_dir.join(name);
            fs::write(&path, bytes)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o444))?;
        }
        // The base itself stays root-only; the engine (root) binds the run's directory.
        fs::set_permissions(&scratch.dir, fs::Permissions::from_mode(0o755))?;
        Ok(scratch)
    }

    /// The host directory bound at `/scratch`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the outputs: regular files directly in `out/`, by name order, until `limit`
    /// bytes in all.
    pub fn outputs(&self, limit: u64) -> io::Result<Outputs> {
        let out = self.dir.join(OUT_DIR);
        let mut names = Vec::new();
        for entry in fs::read_dir(&out)? {
            names.push(entry?.file_name());
        }
        names.sort();
        let mut outputs = Outputs::default();
        let mut total = 0u64;
        for (index, name) in names.into_iter().enumerate() {
            let shown = name.to_string_lossy().into_owned();
            if index >= MAX_OUTPUT_FILES {
                outputs.refused.push((shown, RefusedOutput::TooManyFiles));
                continue;
            }
            let Some(utf8) = name.to_str().map(str::to_owned) else {
                outputs.refused.push((shown, RefusedOutput::NameNotUtf8));
                continue;
            };
            let Some(file) = open_regular(&out.join(&name))? else {
                outputs
                    .refused
                    .push((shown, RefusedOutput::NotARegularFile));
                continue;
            };
            let size = file.metadata()?.len();
            if total.saturating_add(size) > limit {
                outputs.refused.push((shown, RefusedOutput::OverSizeLimit));
                continue;
            }
            let mut bytes = Vec::with_capacity(size as usize);
            // The function has exited: the file cannot grow, but read no more than counted.
            file.take(size).read_to_end(&mut bytes)?;
            total += bytes.len() as u64;
            outputs.files.insert(utf8, bytes);
        }
        Ok(outputs)
    }

    /// Unmounts the tmpfs and removes its directory.
    pub fn remove(mut self) -> io::Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> io::Result<()> {
        if self.mounted {
            // Detach: a process still holding a file (there should be none after the
            // container's removal) cannot keep the mount point busy.
            unmount(&self.dir, UnmountFlags::DETACH)?;
            self.mounted = false;
        }
        match fs::remove_dir(&self.dir) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            tracing::warn!(%error, dir = %self.dir.display(), "cannot remove a scratch space");
        }
    }
}

/// Tmpfs room the inputs take: whole pages, plus one per file for its inode.
fn input_room(inputs: &[(&str, &[u8])]) -> u64 {
    inputs
        .iter()
        .map(|(_, bytes)| (bytes.len() as u64).div_ceil(4096) * 4096 + 4096)
        .sum()
}

/// Checks input names: at most [`MAX_INPUT_FILES`], each a plain unique file name.
pub fn check_input_names(inputs: &[(&str, &[u8])]) -> Result<(), String> {
    if inputs.len() > MAX_INPUT_FILES {
        return Err(format!(
            "{} inputs; at most {MAX_INPUT_FILES} are allowed",
            inputs.len()
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in inputs {
        let plain = !name.is_empty()
            && name.len() <= 255
            && *name != "."
            && *name != ".."
            && !name.contains(['/', '\0']);
        if !plain {
            return Err(format!("input name {name:?} is not a plain file name"));
        }
        if !seen.insert(*name) {
            return Err(format!("input name {name:?} is given twice"));
        }
    }
    Ok(())
}

/// Opens `path` if it is a regular file, without following a final link and without
/// blocking on a FIFO; `None` for anything else.
fn open_regular(path: &Path) -> io::Result<Option<File>> {
    let flags = (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits();
    match OpenOptions::new()
        .read(true)
        .custom_flags(flags as i32)
        .open(path)
    {
        Ok(file) if file.metadata()?.file_type().is_file() => Ok(Some(file)),
        Ok(_) => Ok(None),
        // ELOOP: a link; ENXIO: a socket.
        Err(error) if matches!(error.raw_os_error(), Some(40 | 6)) => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounted(size: u64) -> (tempfile::TempDir, Scratch) {
        let base = tempfile::tempdir().expect("tempdir");
        let scratch = Scratch::mount(base.path(), 4_000_123, size, &[("list", b"x\n")])
            .expect("mount (needs root)");
        (base, scratch)
    }

    #[test]
    fn outputs_are_regular_files_within_the_limit_and_links_are_refused() {
        let (base, scratch) = mounted(1 << 20);
        let out = scratch.dir().join(OUT_DIR);
        fs::write(out.join("a"), b"first").unwrap();
        fs::write(out.join("b"), b"second").unwrap();
        fs::write(out.join("c"), vec![7u8; 100]).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", out.join("link")).unwrap();
        fs::create_dir(out.join("dir")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            out.join("fifo").as_path(),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let outputs = scratch.outputs(20).unwrap();
        assert_eq!(outputs.files.len(), 2);
        assert_eq!(outputs.files["a"], b"first");
        assert_eq!(outputs.files["b"], b"second");
        let refused: BTreeMap<_, _> = outputs.refused.into_iter().collect();
        assert_eq!(refused["c"], RefusedOutput::OverSizeLimit);
        assert_eq!(refused["link"], RefusedOutput::NotARegularFile);
        assert_eq!(refused["dir"], RefusedOutput::NotARegularFile);
        assert_eq!(refused["fifo"], RefusedOutput::NotARegularFile);
        let dir = scratch.dir().to_owned();
        scratch.remove().unwrap();
        assert!(!dir.exists());
        assert_eq!(fs::read_dir(base.path()).unwrap().count(), 0);
    }

    #[test]
    fn input_names_must_be_plain_and_unique() {
        assert!(check_input_names(&[("a", b""), ("b.txt", b"")]).is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a\0b"] {
            assert!(check_input_names(&[(bad, b"")]).is_err(), "{bad:?}");
        }
        assert!(check_input_names(&[("a", b""), ("a", b"")]).is_err());
        let many: Vec<(&str, &[u8])> = (0..65).map(|_| ("x", &b""[..])).collect();
        assert!(check_input_names(&many).unwrap_err().contains("at most"));
    }

    #[test]
    fn the_tmpfs_is_size_capped_and_owned_as_documented() {
        let (_base, scratch) = mounted(64 << 10);
        let input = scratch.dir().join(IN_DIR).join("list");
        assert_eq!(fs::read(&input).unwrap(), b"x\n");
        assert_eq!(fs::metadata(&input).unwrap().uid_gid(), (0, 0));
        assert_eq!(
            fs::metadata(&input).unwrap().permissions().mode() & 0o777,
            0o444
        );
        let work = scratch.dir().join(WORK_DIR);
        assert_eq!(
            fs::metadata(&work).unwrap().uid_gid(),
            (4_000_123, 4_000_123)
        );
        let error = fs::write(work.join("big"), vec![0u8; 128 << 10]).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(28), "ENOSPC");
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = mountinfo
            .lines()
            .find(|l| l.contains(scratch.dir().to_str().unwrap()))
            .expect("mounted");
        for option in ["noexec", "nosuid", "nodev"] {
            assert!(line.contains(option), "{option} in {line}");
        }
    }

    trait UidGid {
        fn uid_gid(&self) -> (u32, u32);
    }
    impl UidGid for fs::Metadata {
        fn uid_gid(&self) -> (u32, u32) {
            use std::os::unix::fs::MetadataExt;
            (self.uid(), self.gid())
        }
    }
}
