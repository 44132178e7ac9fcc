//! Where containers live between commands: `<root>/<id>/` holding `state.json`, `exec.fifo`
//! while created, and a lock file. Status is derived from the kernel, never trusted from the
//! file (DESIGN §3).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::cgroups;

pub const STATE_FILE: &str = "state.json";
pub const FIFO_FILE: &str = "exec.fifo";
const LOCK_FILE: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    // The wording is runc's: containerd matches "does not exist".
    #[error("container does not exist")]
    NotExist,
    #[error("invalid container id {0:?}: only letters, digits, '_', '+', '-' and '.' are allowed, and not '.' or '..'")]
    InvalidId(String),
    #[error("container with id {0:?} already exists")]
    Exists(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt state: {msg}")]
    Corrupt { path: PathBuf, msg: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// runc's id rule: `^[\w+-\.]+$`, and not "." or "..".
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

/// The status a command sees, derived at the moment it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What husk records about a container (state.json). Not runc's file format: `state` prints
/// runc's JSON shape from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    /// Host pid of the container's init.
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat when the init was created: a recycled pid will not match.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub cgroup: cgroups::Manager,
    /// The container has a pid namespace of its own (killing the init kills everything).
    #[serde(default)]
    pub own_pid_ns: bool,
    /// The config's hooks, kept for `start` (poststart) and `delete` (poststop).
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The spec's ociVersion, echoed by `state`.
    #[serde(default)]
    pub oci_version: String,
}

/// An exclusive flock on a container's lock file, held for the whole command.
pub struct Lock {
    _flock: Flock<File>,
}

pub struct ContainerDir {
    pub dir: PathBuf,
    pub id: String,
}

impl ContainerDir {
    pub fn new(root: &Path, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        Ok(ContainerDir {
            dir: root.join(id),
            id: id.to_string(),
        })
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join(FIFO_FILE)
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Make `<root>/<id>` for a new container; refuses an existing id.
    pub fn create(&self) -> Result<(), StateError> {
        if let Some(root) = self.dir.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(root)
                .map_err(io(root))?;
        }
        match fs::DirBuilder::new().mode(0o711).create(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists(self.id.clone()))
            }
            Err(e) => Err(io(&self.dir)(e)),
        }
    }

    /// Take the container's lock (blocking). Fails with NotExist when the container is gone,
    /// including when a concurrent delete removed it while we waited.
    pub fn lock(&self) -> Result<Lock, StateError> {
        let path = self.dir.join(LOCK_FILE);
        let file = match OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StateError::NotExist),
            Err(e) => return Err(io(&path)(e)),
        };
        let flock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| io(&path)(std::io::Error::from(e)))?;
        if !self.dir.exists() {
            return Err(StateError::NotExist);
        }
        Ok(Lock { _flock: flock })
    }

    pub fn load(&self) -> Result<Saved, StateError> {
        let path = self.state_file();
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StateError::NotExist),
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_slice(&data).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            msg: e.to_string(),
        })
    }

    /// Write state.json atomically (temp file + rename).
    pub fn save(&self, saved: &Saved) -> Result<(), StateError> {
        let data = serde_json::to_vec(saved).map_err(|e| StateError::Corrupt {
            path: self.state_file(),
            msg: e.to_string(),
        })?;
        write_atomic(&self.state_file(), &data, 0o600)
    }

    /// Remove the whole container directory.
    pub fn remove(&self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&self.dir)(e)),
        }
    }

    /// The status right now: stopped if the init is gone (or its pid was reused), created while
    /// the exec fifo exists, paused while the cgroup is frozen, otherwise running.
    pub fn status(&self, saved: &Saved) -> Status {
        if !process_alive(saved.pid, saved.start_time) {
            return Status::Stopped;
        }
        if self.fifo().exists() {
            return Status::Created;
        }
        if saved.cgroup.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }
}

/// Write `data` to `path` through a temp file in the same directory and a rename.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), StateError> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(mode)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(data).map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(path)(e)
    })
}

/// Fields of /proc/<pid>/stat after the command name: (state, starttime).
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let data = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &data[data.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // starttime is field 22 overall; `rest` starts at field 3.
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The process exists, is not a zombie, and is the one we started (same start time).
pub fn process_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match proc_stat(pid) {
        Some((state, start)) => start == start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

/// A handle on the init that cannot be confused with a process that reused its pid:
/// a pidfd, checked against the recorded start time after it was opened.
pub fn open_init(saved: &Saved) -> Option<std::os::fd::OwnedFd> {
    let fd = crate::sys::pidfd_open(saved.pid).ok()?;
    // Checked after opening: if the start time still matches now, the pidfd is ours.
    if process_alive(saved.pid, saved.start_time) {
        let _ = fd.as_fd();
        Some(fd)
    } else {
        None
    }
}

/// The default `--root`: `/run/husk`, or `$XDG_RUNTIME_DIR/husk` when runc would honour
/// XDG_RUNTIME_DIR: a non-root user, or uid 0 inside a user namespace (rootless Podman) unless
/// `USER` says root.
pub fn default_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        let honour = !nix::unistd::geteuid().is_root()
            || (in_user_namespace() && std::env::var("USER").map(|u| u != "root").unwrap_or(true));
        if honour {
            return Path::new(&dir).join("husk");
        }
    }
    PathBuf::from("/run/husk")
}

/// The default `--root`, and when it is `$XDG_RUNTIME_DIR/husk`, made as runc makes its own:
/// mode 0700 plus the sticky bit, which tells the XDG session cleaner to leave it alone.
pub fn default_root_prepared() -> Result<PathBuf, StateError> {
    let root = default_root();
    if root != Path::new("/run/husk") {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(io(&root))?;
        // runc's mode for its XDG root: 0700 and the sticky bit.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o1700)).map_err(io(&root))?;
    }
    Ok(root)
}

/// True inside a user namespace other than the initial one (its uid_map is not the identity
/// map of all 2^32 ids).
pub fn in_user_namespace() -> bool {
    match fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => {
            let f: Vec<&str> = map.split_whitespace().collect();
            f != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rule() {
        for ok in ["a", "abc-1.2_x+y", "A9"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proc_stat_of_self() {
        let (state, start) = proc_stat(std::process::id() as i32).expect("own stat");
        assert!(state != 'Z' && state != 'X', "{state}");
        assert!(start > 0);
    }
}
