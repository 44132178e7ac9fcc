//! Control groups: one manager per host layout (pure v1, pure v2, hybrid) behind one interface.
//!
//! The create path uses it in this order (see `container::create`):
//!   1. [`Manager::new`] computes the paths for `linux.cgroupsPath` (or the default) — no writes;
//!   2. [`Manager::create`] makes the directories and returns, on v2, a dirfd of the leaf so the
//!      init can be born in it with `clone3(CLONE_INTO_CGROUP)`;
//!   3. [`Manager::add_task`] puts the init into every hierarchy it was not born in;
//!   4. [`Manager::apply`] writes `linux.resources` once the init has finished its setup;
//!   5. [`Manager::destroy`] on delete or on any failure: idempotent, leaves no directory.
//!
//! The manager is stored in state.json so later commands act on exactly the same paths.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

#[allow(dead_code)] // until the cgroup managers land
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {msg}")]
    Path { path: PathBuf, msg: String },
    #[error("{0}")]
    Other(String),
}

/// The container's cgroup on every hierarchy it lives in.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Manager {
    /// Absolute directories, one per mounted hierarchy (v1 controllers and/or the cgroup2 mount).
    pub paths: Vec<PathBuf>,
}

impl Manager {
    /// Paths for `cgroupsPath` (absolute, relative to husk's own cgroup, or empty: runc's default).
    pub fn new(_cgroups_path: Option<&Path>, _id: &str) -> Result<Manager, CgroupError> {
        Ok(Manager::default())
    }

    /// Create the directories; on v2 return a dirfd of the leaf for CLONE_INTO_CGROUP.
    pub fn create(&self) -> Result<Option<OwnedFd>, CgroupError> {
        Ok(None)
    }

    /// Move `pid` into every hierarchy (those it was not born into).
    pub fn add_task(&self, _pid: Pid, _born_in_v2: bool) -> Result<(), CgroupError> {
        Ok(())
    }

    /// Apply `linux.resources`.
    pub fn apply(&self, _resources: &LinuxResources) -> Result<(), CgroupError> {
        Ok(())
    }

    /// Every pid in the cgroup (host pids).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        Ok(Vec::new())
    }

    /// Whether the cgroup is frozen (state reports `paused`).
    pub fn is_frozen(&self) -> bool {
        false
    }

    /// Remove the directories (after the processes are gone). Idempotent.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        Ok(())
    }
}
