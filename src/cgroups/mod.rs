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
//!
//! Layouts, detected once per invocation from /proc/self/mountinfo ([`layout::Hierarchies`]):
//! - pure v2: one cgroup2 mount at /sys/fs/cgroup; every controller lives there;
//! - pure v1: one mount per controller (or co-mounted group);
//! - hybrid: v1 controllers plus cgroup2 at /sys/fs/cgroup/unified. As runc 1.1 does, the
//!   container gets a directory on the cgroup2 mount too (it is born there), and a controller
//!   that is not mounted on v1 but is available on cgroup2 (hugetlb on some hosts) is used there.

mod devices;
mod fsutil;
pub mod layout;
pub mod stats;
pub mod sub;
#[cfg(test)]
mod tests;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use fsutil::write_file;
use layout::Hierarchies;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {msg}")]
    Path { path: PathBuf, msg: String },
    /// A `linux.resources` field (named in `field`) that could not be applied.
    #[error("{field}: {msg}")]
    Field { field: String, msg: String },
    #[error("{0}")]
    Other(String),
}

impl CgroupError {
    fn path(path: &Path, msg: impl Into<String>) -> CgroupError {
        CgroupError::Path {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
    fn field(field: &str, msg: impl Into<String>) -> CgroupError {
        CgroupError::Field {
            field: field.to_string(),
            msg: msg.into(),
        }
    }
}

/// The container's cgroup on every hierarchy it lives in.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Manager {
    /// Absolute directories, one per mounted hierarchy (v1 controllers and/or the cgroup2 mount).
    pub paths: Vec<PathBuf>,
    /// v1: controller name (`memory`, `cpu`, `name=systemd`, ...) → the container's directory.
    #[serde(default)]
    pub v1: BTreeMap<String, PathBuf>,
    /// The container's directory on the cgroup2 mount (pure v2 or hybrid).
    #[serde(default)]
    pub v2: Option<PathBuf>,
    /// Pure v2: every controller is on `v2`. (Hybrid: `v1` is non-empty and `v2` is set.)
    #[serde(default)]
    pub unified_only: bool,
    /// The resources last applied (config, then each `update`), for `update` and `events`.
    #[serde(default)]
    pub resources: Option<LinuxResources>,
}

/// What `cgroupsPath` means, as runc's cgroupfs driver: an absolute path is below each
/// hierarchy's root; a relative one is below husk's own cgroup in that hierarchy; an empty one
/// is the container id, relative (runc 1.1.5: `Name = id`, joined to its own cgroup).
fn inner_path(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf, CgroupError> {
    let p = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => match systemd_path(&p.to_string_lossy()) {
            Some(sp) => sp,
            None => p.to_path_buf(),
        },
        _ => PathBuf::from(id),
    };
    // Clean the path lexically like runc's utils.CleanPath: no `..` may escape the hierarchy.
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    if out.as_os_str().is_empty() {
        return Err(CgroupError::field(
            "linux.cgroupsPath",
            format!("{:?} names the root cgroup", p.display().to_string()),
        ));
    }
    if p.is_absolute() {
        Ok(Path::new("/").join(out))
    } else {
        Ok(out)
    }
}

/// systemd's `slice:prefix:name` form (containerd and Podman with `--systemd-cgroup`).
/// husk has no systemd driver (no systemd here); it puts the container where systemd would:
/// `/a.slice/a-b.slice/<prefix>-<name>.scope` (an empty slice is `system.slice`).
fn systemd_path(p: &str) -> Option<PathBuf> {
    if p.contains('/') {
        return None;
    }
    let parts: Vec<&str> = p.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return None;
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let mut out = PathBuf::from("/");
    if slice != "-.slice" {
        let base = slice.strip_suffix(".slice").unwrap_or(slice);
        let mut acc = String::new();
        for comp in base.split('-') {
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(comp);
            out.push(format!("{acc}.slice"));
        }
    }
    if name.ends_with(".slice") {
        out.push(name);
    } else if prefix.is_empty() {
        out.push(format!("{name}.scope"));
    } else {
        out.push(format!("{prefix}-{name}.scope"));
    }
    Some(out)
}

/// In the (single-threaded) init: move the calling thread into each v1 cgroup by writing "0"
/// to the `tasks` fds [`Manager::open_v1_tasks`] opened. The fds are closed after.
pub fn join_self(tasks: Vec<(PathBuf, OwnedFd)>) -> Result<(), CgroupError> {
    for (path, fd) in tasks {
        nix::unistd::write(&fd, b"0")
            .map_err(|e| CgroupError::path(&path, format!("write \"0\" (join): {e}")))?;
    }
    Ok(())
}

/// runc's `--rootless` (`true`, `false`, `auto` or unset): whether cgroup permission problems
/// are tolerated. Recorded once by the command dispatcher; parsed (like runc) only by the
/// commands that create a container.
static ROOTLESS: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Record the `--rootless` value.
pub fn set_rootless(value: Option<&str>) {
    let _ = ROOTLESS.set(value.map(str::to_string));
}

/// runc's `shouldUseRootlessCgroupManager` for the cgroupfs driver: as asked (Go's
/// ParseBool forms), else auto — an unprivileged user, or uid 0 inside a user namespace
/// (rootless Podman).
pub fn rootless() -> Result<bool, CgroupError> {
    let value = ROOTLESS.get().cloned().flatten().unwrap_or_default();
    match value.as_str() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        v if v.is_empty() || v.eq_ignore_ascii_case("auto") => {
            Ok(!nix::unistd::geteuid().is_root() || crate::state::in_user_namespace())
        }
        v => Err(CgroupError::Other(format!(
            "--rootless: strconv.ParseBool: parsing {v:?}: invalid syntax"
        ))),
    }
}

impl Manager {
    /// Paths for `cgroupsPath` (absolute, relative to husk's own cgroup, or empty: runc's default).
    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Manager, CgroupError> {
        let h = Hierarchies::get()?;
        let inner = inner_path(cgroups_path, id)?;
        // A named v1 hierarchy (name=systemd) next to cgroup2 holds no controllers: the host
        // is still "pure v2" for resources.
        let v1_controllers = h.v1.keys().any(|k| !k.starts_with("name="));
        let mut m = Manager {
            unified_only: !v1_controllers && h.v2.is_some(),
            ..Manager::default()
        };
        // Rootless without an explicit linux.cgroupsPath (runc's fs manager: `Rootless &&
        // Path == ""`): hierarchies this process cannot write to are left out, and apply()
        // fails only if a limit needs one. Otherwise every hierarchy is used and a permission
        // problem is an error (mkdir ...: permission denied), as with runc; so a delegated
        // cgroupsPath works rootless.
        let explicit = cgroups_path.is_some_and(|p| !p.as_os_str().is_empty());
        let tolerate = rootless()? && !explicit;
        for (ctrl, mnt) in &h.v1 {
            let dir = mnt.dir_for(&inner);
            if !tolerate || writable(&dir) {
                m.v1.insert(ctrl.clone(), dir);
            }
        }
        if let Some(mnt) = &h.v2 {
            let dir = mnt.dir_for(&inner);
            if !tolerate || writable(&dir) {
                m.v2 = Some(dir);
            }
        }
        if m.v2.is_none() {
            m.unified_only = false;
        }
        let mut paths: Vec<PathBuf> = m.v1.values().cloned().collect();
        paths.extend(m.v2.iter().cloned());
        paths.sort();
        paths.dedup();
        m.paths = paths;
        Ok(m)
    }

    /// The distinct v1 directories (co-mounted controllers share one).
    fn v1_dirs(&self) -> Vec<&PathBuf> {
        let mut d: Vec<&PathBuf> = self.v1.values().collect();
        d.sort();
        d.dedup();
        d
    }

    /// Create the directories; on v2 return a dirfd of the leaf for CLONE_INTO_CGROUP.
    ///
    /// A directory that already exists is an error (runc would join it; a container sharing a
    /// cgroup with something else cannot be paused, killed or removed safely), as is a frozen
    /// parent (the init would hang in it).
    pub fn create(&self) -> Result<Option<OwnedFd>, CgroupError> {
        for dir in self.v1_dirs().into_iter().chain(self.v2.iter()) {
            if dir.exists() {
                return Err(CgroupError::path(
                    dir,
                    "already exists: linux.cgroupsPath must name a new cgroup",
                ));
            }
        }
        let res = self.create_dirs();
        if res.is_err() {
            let _ = self.destroy();
        }
        res
    }

    fn create_dirs(&self) -> Result<Option<OwnedFd>, CgroupError> {
        for (ctrl, dir) in &self.v1 {
            let Some(mnt) = Hierarchies::get()?.v1.get(ctrl).cloned() else {
                continue;
            };
            fsutil::mkdir_all(&mnt.mountpoint, dir)?;
            if ctrl == "cpuset" {
                v1::init_cpuset(&mnt.mountpoint, dir)?;
            }
            if v1::is_frozen_path(dir) {
                return Err(CgroupError::path(
                    dir,
                    "the parent cgroup is frozen: the container could not start",
                ));
            }
        }
        let Some(dir) = &self.v2 else {
            return Ok(None);
        };
        let mnt = Hierarchies::get()?
            .v2
            .clone()
            .ok_or_else(|| CgroupError::Other("cgroup2 mount vanished".into()))?;
        let first_new = fsutil::mkdir_all(&mnt.mountpoint, dir)?;
        if self.unified_only {
            // Enable every available controller on the directories we made (the leaf's
            // ancestors) and their existing parent, best effort like runc: the parent may hold
            // processes (no-internal-processes) — then apply() names the missing controller.
            if let Some(first) = first_new {
                let mut p = first.parent().map(Path::to_path_buf);
                while let Some(cur) = p {
                    if &cur == dir {
                        break;
                    }
                    v2::enable_all_controllers(&cur);
                    p = next_towards(&cur, dir);
                }
            }
        }
        if v2::is_frozen_path(dir) {
            return Err(CgroupError::path(
                dir,
                "the parent cgroup is frozen: the container could not start",
            ));
        }
        let fd = nix::fcntl::open(
            dir.as_path(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| CgroupError::path(dir, format!("open: {e}")))?;
        Ok(Some(fd))
    }

    /// A dirfd of the existing cgroup2 leaf, for `exec` to clone its process straight into
    /// the container's cgroup (CLONE_INTO_CGROUP); None without a cgroup2 directory.
    pub fn v2_leaf_fd(&self) -> Result<Option<OwnedFd>, CgroupError> {
        let Some(dir) = &self.v2 else {
            return Ok(None);
        };
        nix::fcntl::open(
            dir.as_path(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(Some)
        .map_err(|e| CgroupError::path(dir, format!("open: {e}")))
    }

    /// The `tasks` file of every v1 directory, opened for writing, for the init to move itself
    /// with [`join_self`] (issue 7): the init is cloned with these fds.
    ///
    /// Why not the host writing the init's pid to `cgroup.procs`, as runc and crun do: that
    /// takes the kernel's global `cgroup_threadgroup_rwsem` for writing, and after an idle
    /// moment that waits for an RCU grace period (measured: ~16 ms for the 10 hierarchies of
    /// this host, most of a whole `run`). A single-threaded task writing "0" (itself) to
    /// `tasks` needs no such lock (kernel/cgroup/cgroup.c, cgroup_procs_write_start: "If we
    /// migrate a single thread ... of current ... we can skip the global lock"): ~0.7 ms.
    /// The permission check uses the credentials the file was opened with (the host's).
    pub fn open_v1_tasks(&self) -> Result<Vec<(PathBuf, OwnedFd)>, CgroupError> {
        self.v1_dirs()
            .into_iter()
            .map(|dir| {
                let path = dir.join("tasks");
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&path)
                    .map(|f| (path.clone(), OwnedFd::from(f)))
                    .map_err(|e| CgroupError::path(&path, format!("open for writing: {e}")))
            })
            .collect()
    }

    /// Move `pid` into every hierarchy (those it was not born into). create and exec let the
    /// process join its v1 cgroups itself ([`Manager::open_v1_tasks`]); this is for
    /// `exec --cgroup` without a sub-cgroup path of its own (sub.rs).
    pub fn add_task(&self, pid: Pid, born_in_v2: bool) -> Result<(), CgroupError> {
        for dir in self.v1_dirs() {
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        self.add_task_v2(pid, born_in_v2)
    }

    /// Move `pid` into the cgroup2 directory unless it was born there (the init joined its v1
    /// cgroups itself: [`Manager::open_v1_tasks`]).
    pub fn add_task_v2(&self, pid: Pid, born_in_v2: bool) -> Result<(), CgroupError> {
        if let Some(dir) = &self.v2 {
            if !born_in_v2 {
                write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
            }
        }
        Ok(())
    }

    /// Apply `linux.resources`.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if self.v1.is_empty() && self.v2.is_none() {
            // No writable hierarchy (rootless, nothing delegated). As runc 1.1's rootless
            // manager: device rules are ignored (not expected to work), but a limit the config
            // asks for cannot be enforced, which is an error rather than a silent no-op.
            if let Some((field, what)) = first_limit(r) {
                return Err(CgroupError::field(
                    field,
                    format!(
                        "cannot set {what} limit: container could not join or create cgroup \
                         (rootless: no cgroup hierarchy is writable by uid {}; delegate one \
                         and name it in linux.cgroupsPath, or remove the limit)",
                        nix::unistd::geteuid()
                    ),
                ));
            }
            return Ok(());
        }
        check_unsupported(self, r)?;
        if self.unified_only {
            let dir = self
                .v2
                .as_ref()
                .ok_or_else(|| CgroupError::Other("no cgroup2 dir".into()))?;
            v2::apply(dir, r)
        } else {
            v1::apply(self, r)?;
            if let Some(dir) = &self.v2 {
                v2::apply_hybrid_extras(self, dir, r)?;
            }
            // Hybrid: the v1 devices controller enforces the rules; the same rules as an
            // eBPF filter on the cgroup2 directory are a second, best-effort layer.
            if let (Some(dir), Some(devs)) = (&self.v2, r.devices()) {
                if let Err(e) = devices::apply_bpf(dir, devs) {
                    crate::logging::debug(&format!("hybrid eBPF device filter: {e}"));
                }
            }
            Ok(())
        }
    }

    /// The directory whose `cgroup.procs` lists every process of the container.
    fn procs_dir(&self) -> Option<&PathBuf> {
        if let Some(d) = &self.v2 {
            return Some(d);
        }
        ["pids", "freezer", "memory", "cpu", "devices"]
            .iter()
            .find_map(|c| self.v1.get(*c))
            .or_else(|| self.v1.values().next())
    }

    /// Every pid in the cgroup (host pids).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut pids = Vec::new();
        // The container's own cgroup first, then its sub-cgroups (exec --cgroup).
        let mut dirs = vec![dir.clone()];
        dirs.extend(sub::descendants(dir));
        for (n, d) in dirs.iter().enumerate() {
            let f = d.join("cgroup.procs");
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if n > 0 => {
                    crate::logging::debug(&format!("{}: {e}", f.display()));
                    continue;
                }
                Err(e) => return Err(CgroupError::path(&f, format!("read: {e}"))),
            };
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        Ok(pids)
    }

    /// The freezer in use: the v1 freezer controller if mounted, else cgroup2's cgroup.freeze.
    fn freezer(&self) -> Option<(bool, &PathBuf)> {
        if let Some(d) = self.v1.get("freezer") {
            return Some((true, d));
        }
        self.v2.as_ref().map(|d| (false, d))
    }

    /// Whether the cgroup is frozen (state reports `paused`).
    pub fn is_frozen(&self) -> bool {
        match self.freezer() {
            Some((true, d)) => v1::is_frozen_self(d),
            Some((false, d)) => v2::is_frozen_path(d),
            None => false,
        }
    }

    /// Freeze (`true`) or thaw, and wait until the kernel reports it done.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        match self.freezer() {
            Some((true, d)) => v1::freeze(d, frozen),
            Some((false, d)) => v2::freeze(d, frozen),
            // Rootless without a writable hierarchy: runc's words.
            None if self.paths.is_empty() => Err(CgroupError::Other(
                "cannot toggle freezer: cgroups not configured for container".into(),
            )),
            None => Err(CgroupError::Other(
                "no freezer: neither the v1 freezer nor cgroup2 is mounted".into(),
            )),
        }
    }

    /// Send `sig` to every process of the container. SIGKILL uses cgroup2's `cgroup.kill`
    /// where the kernel has it (no pid can escape by forking); a frozen cgroup is thawed after
    /// a SIGKILL so that the signal is delivered.
    pub fn signal_all(&self, sig: i32) -> Result<(), CgroupError> {
        let frozen = self.is_frozen();
        let mut done = false;
        if sig == libc::SIGKILL {
            if let Some(d) = &self.v2 {
                let kill = d.join("cgroup.kill");
                if kill.exists() && write_file(&kill, "1").is_ok() {
                    done = true;
                }
            }
        }
        if !done {
            let s = nix::sys::signal::Signal::try_from(sig).ok();
            for pid in self.pids()? {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), s);
            }
        }
        if frozen && sig == libc::SIGKILL {
            self.set_frozen(false)?;
        }
        Ok(())
    }

    /// Remove the directories (after the processes are gone). Idempotent.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        // Processes left behind by an init that died without a pid namespace of its own
        // (runc kills them too): the directories cannot go while they live.
        if self.pids().is_ok_and(|p| !p.is_empty()) {
            let _ = self.signal_all(libc::SIGKILL);
        }
        let mut first_err = None;
        let mut dirs: Vec<&PathBuf> = self.v1_dirs();
        dirs.extend(self.v2.iter());
        for dir in dirs {
            // Sub-cgroups first: a cgroup with children cannot be removed.
            for sub_dir in sub::descendants(dir) {
                if let Err(e) = rmdir_retry(&sub_dir) {
                    first_err.get_or_insert(e);
                }
            }
            if let Err(e) = rmdir_retry(dir) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Statistics in runc's `events` shape.
    pub fn stats(&self) -> Result<stats::Stats, CgroupError> {
        if self.unified_only {
            let dir = self
                .v2
                .as_ref()
                .ok_or_else(|| CgroupError::Other("no cgroup2 dir".into()))?;
            Ok(v2::stats(dir))
        } else {
            let mut s = v1::stats(self);
            if !self.v1.contains_key("hugetlb") {
                if let Some(d) = &self.v2 {
                    s.hugetlb = v2::hugetlb_stats(d);
                }
            }
            Ok(s)
        }
    }

    /// How many times the OOM killer has killed in the container (for `events`).
    pub fn oom_kills(&self) -> u64 {
        if self.unified_only {
            self.v2.as_ref().map(|d| v2::oom_kills(d)).unwrap_or(0)
        } else {
            self.v1.get("memory").map(|d| v1::oom_kills(d)).unwrap_or(0)
        }
    }
}

/// Whether this process may create `dir`: its nearest existing ancestor is writable.
fn writable(dir: &Path) -> bool {
    let mut p = Some(dir);
    while let Some(cur) = p {
        if cur.exists() {
            return nix::unistd::access(cur, nix::unistd::AccessFlags::W_OK).is_ok();
        }
        p = cur.parent();
    }
    false
}

/// The next directory below `cur` on the way to `leaf`.
fn next_towards(cur: &Path, leaf: &Path) -> Option<PathBuf> {
    let rest = leaf.strip_prefix(cur).ok()?;
    let first = rest.components().next()?;
    Some(cur.join(first))
}

/// rmdir, retrying briefly while the last processes leave (EBUSY). Missing is fine.
fn rmdir_retry(dir: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(CgroupError::path(dir, format!("remove: {e}"))),
        }
    }
}

/// Fields no hierarchy here can honour: a clear error naming them rather than silence.
/// The first limit in `r` that needs a cgroup (devices excluded): its field and runc's name.
fn first_limit(r: &LinuxResources) -> Option<(&'static str, &'static str)> {
    if r.memory().is_some() {
        return Some(("linux.resources.memory", "memory"));
    }
    if r.cpu().is_some() {
        return Some(("linux.resources.cpu", "cpu"));
    }
    if r.pids().is_some_and(|p| p.limit() != 0) {
        return Some(("linux.resources.pids", "pids"));
    }
    if r.block_io().is_some() {
        return Some(("linux.resources.blockIO", "blkio"));
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        return Some(("linux.resources.hugepageLimits", "hugetlb"));
    }
    if r.network().is_some() {
        return Some(("linux.resources.network", "net_cls"));
    }
    if r.rdma().as_ref().is_some_and(|x| !x.is_empty()) {
        return Some(("linux.resources.rdma", "rdma"));
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Some(("linux.resources.unified", "unified"));
    }
    None
}

fn check_unsupported(m: &Manager, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(u) = r.unified() {
        if !u.is_empty() && !m.unified_only {
            // runc: "invalid configuration: cannot use unified on cgroup v1".
            return Err(CgroupError::field(
                "linux.resources.unified",
                "cannot use unified on cgroup v1 (this host's controllers are on cgroup v1)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn cgroups_path_forms() {
        assert_eq!(inner_path(None, "c1").unwrap(), PathBuf::from("c1"));
        assert_eq!(
            inner_path(Some(Path::new("/a/../b/c")), "x").unwrap(),
            PathBuf::from("/b/c")
        );
        assert_eq!(
            inner_path(Some(Path::new("rel/x")), "x").unwrap(),
            PathBuf::from("rel/x")
        );
        assert!(inner_path(Some(Path::new("/..")), "x").is_err());
        assert_eq!(
            inner_path(Some(Path::new("system.slice:cri-containerd:abc")), "x").unwrap(),
            PathBuf::from("/system.slice/cri-containerd-abc.scope")
        );
        assert_eq!(
            inner_path(Some(Path::new("machine-libpod.slice:libpod:abc")), "x").unwrap(),
            PathBuf::from("/machine.slice/machine-libpod.slice/libpod-abc.scope")
        );
    }
}
