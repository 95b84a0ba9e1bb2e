//! The host state a task could change, listed and digested for cleanup evidence.
//!
//! Categories ([`HostStateCategory`]): the engine's containers, volumes, networks and images
//! (from its API), the mount table (`/proc/self/mountinfo`), the run scratch directories, the
//! firewall ruleset (`nft --stateless list ruleset`: without counters, which move with any
//! traffic), and the processes running under a run uid ([`seccomp::RUN_UIDS`]). Networks also
//! hold the network interfaces by name, so a task link left behind shows. When tasks are wired
//! to a router namespace of their own ([`crate::egress`]), its interfaces and ruleset are listed
//! too, prefixed `router `.
//!
//! One exclusion, with its reason: libnetwork removes a container's network-namespace file
//! (an `nsfs` mount under `/run/docker/netns/`) lazily, about a minute after the container is
//! gone, on a timer of its own. The namespace behind it holds no process (the processes
//! category shows that) and nothing the task wrote, so those mounts are left out rather than
//! waited for on every run.
use std::{collections::BTreeMap, path::Path};

use bollard::{
    query_parameters::{ListContainersOptionsBuilder, ListImagesOptionsBuilder},
    Docker,
};
use capsule_primitives::evidence::{HostStateCategory, HostStateDigest};

use crate::{egress, engine, firewall, seccomp, ExecutorError};

/// Mount points under these are libnetwork's lazily removed namespace files (see the module
/// docs).
const LAZY_NETNS_DIRS: [&str; 2] = ["/run/docker/netns/", "/var/run/docker/netns/"];

/// The listed host state, entry by entry, per category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostState(pub BTreeMap<HostStateCategory, Vec<String>>);

impl HostState {
    /// Lists every category now; `router` is the `ip netns` name of the egress router
    /// namespace, when it is not this process's.
    pub async fn capture(
        docker: &Docker,
        scratch_base: &Path,
        router: Option<&str>,
    ) -> Result<Self, ExecutorError> {
        let mut state = BTreeMap::new();
        let containers = docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(true).build()))
            .await
            .map_err(engine("listing containers"))?;
        state.insert(
            HostStateCategory::Containers,
            containers
                .into_iter()
                .map(|c| {
                    let mut labels: Vec<_> = c.labels.unwrap_or_default().into_iter().collect();
                    labels.sort();
                    format!(
                        "{} {:?} {:?} {labels:?}",
                        c.id.unwrap_or_default(),
                        c.names.unwrap_or_default(),
                        c.state
                    )
                })
                .collect(),
        );
        let volumes = docker
            .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
            .await
            .map_err(engine("listing volumes"))?;
        state.insert(
            HostStateCategory::Volumes,
            volumes
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|v| format!("{} {}", v.name, v.driver))
                .collect(),
        );
        let networks = docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
            .map_err(engine("listing networks"))?;
        let mut networks: Vec<String> = networks
            .into_iter()
            .map(|n| {
                format!(
                    "{} {} {}",
                    n.id.unwrap_or_default(),
                    n.name.unwrap_or_default(),
                    n.driver.unwrap_or_default()
                )
            })
            .collect();
        networks.extend(interfaces(None, "interface"));
        let mut rules = firewall_rules(None, "");
        if let Some(router) = router {
            networks.extend(interfaces(Some(router), "router interface"));
            rules.extend(firewall_rules(Some(router), "router "));
        }
        state.insert(HostStateCategory::Networks, networks);
        let images = docker
            .list_images(Some(ListImagesOptionsBuilder::new().all(true).build()))
            .await
            .map_err(engine("listing images"))?;
        state.insert(
            HostStateCategory::Images,
            images.into_iter().map(|i| i.id).collect(),
        );
        state.insert(HostStateCategory::Mounts, mounts());
        state.insert(HostStateCategory::ScratchDirs, scratch_dirs(scratch_base));
        state.insert(HostStateCategory::FirewallRules, rules);
        state.insert(HostStateCategory::Processes, run_processes());
        Ok(Self(state))
    }

    /// The digest of every category.
    pub fn digest(&self) -> HostStateDigest {
        HostStateDigest(HostStateCategory::ALL.map(|category| {
            category.digest(
                self.0
                    .get(&category)
                    .into_iter()
                    .flatten()
                    .map(|entry| entry.as_bytes().to_vec())
                    .collect(),
            )
        }))
    }

    /// Entries in `after` and not in `self` (`+`) and the other way round (`-`), per
    /// category: what a residue consists of, for logs and error messages.
    pub fn diff(&self, after: &Self) -> Vec<(HostStateCategory, String)> {
        let mut diff = Vec::new();
        for category in HostStateCategory::ALL {
            let empty = Vec::new();
            let before = self.0.get(&category).unwrap_or(&empty);
            let now = after.0.get(&category).unwrap_or(&empty);
            for entry in now.iter().filter(|e| !before.contains(e)) {
                diff.push((category, format!("+ {entry}")));
            }
            for entry in before.iter().filter(|e| !now.contains(e)) {
                diff.push((category, format!("- {entry}")));
            }
        }
        diff
    }
}

/// Mount point, type and source of every mount, but for libnetwork's lazy namespace files.
fn mounts() -> Vec<String> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return vec!["mountinfo unreadable".into()];
    };
    table
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let (fs_type, source) = (right.next()?, right.next()?);
            let lazy_netns =
                fs_type == "nsfs" && LAZY_NETNS_DIRS.iter().any(|d| point.starts_with(d));
            (!lazy_netns).then(|| format!("{point} {fs_type} {source}"))
        })
        .collect()
}

fn scratch_dirs(base: &Path) -> Vec<String> {
    std::fs::read_dir(base)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The ruleset of `netns` line by line, each line after `prefix`.
fn firewall_rules(netns: Option<&str>, prefix: &str) -> Vec<String> {
    match firewall::list_ruleset(netns) {
        Ok(ruleset) => ruleset
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("{prefix}{l}"))
            .collect(),
        Err(error) => vec![format!("{prefix}ruleset unavailable: {error}")],
    }
}

/// `<kind> <name>` of every network interface of `netns`.
fn interfaces(netns: Option<&str>, kind: &str) -> Vec<String> {
    match egress::interfaces(netns) {
        Ok(names) => names.into_iter().map(|n| format!("{kind} {n}")).collect(),
        Err(error) => vec![format!("{kind}s unavailable: {error}")],
    }
}

/// `pid uid name` of every process whose real uid is a run uid.
fn run_processes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec!["/proc unreadable".into()];
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .map(str::to_owned)
            };
            let uid: u32 = field("Uid:")?.split_whitespace().next()?.parse().ok()?;
            seccomp::RUN_UIDS.contains(&uid).then(|| {
                format!(
                    "{} {uid} {}",
                    e.file_name().to_string_lossy(),
                    field("Name:").unwrap_or_default()
                )
            })
        })
        .collect()
}
