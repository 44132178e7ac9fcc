//! The container's filesystem view: mounts, /dev, pivot_root, propagation, masked and read-only
//! paths. Runs inside the init, in the container's new mount namespace.
//!
//! Called from `init::run` in three steps that bracket the createContainer hooks and the
//! hostname/sysctl step:
//!   1. [`prepare`]  — propagation, rootfs bind, every `mounts[]` entry in order, /dev
//!   2. [`enter`]    — pivot_root (or MS_MOVE + chroot with --no-pivot), cwd = /
//!   3. [`finish`]   — readonlyPaths, maskedPaths, delayed read-only remounts, root.readonly,
//!      rootfsPropagation
//!
//! Every path inside the container is resolved by the kernel against an fd of the rootfs
//! (`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, see `path.rs`) and every mount is put onto
//! the fd that resolution returned (`move_mount` for bind mounts, mount(2) on "/proc/self/fd/N"
//! of the host's verified procfs for new filesystems), so a symlink in a hostile image can never
//! redirect a mount to the host (DESIGN §4).

mod cgroup;
mod dev;
mod finish;
pub mod idmap;
mod mounts;
mod options;
mod path;
#[cfg(test)]
mod tests;

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use options::{MS_PRIVATE, MS_REC, MS_SLAVE};

/// An errno printed the way runc (Go) prints it: "no such device", "invalid argument".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errtext(pub Errno);

impl fmt::Display for Errtext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let desc = self.0.desc();
        let mut chars = desc.chars();
        match chars.next() {
            Some(c) => write!(f, "{}{}", c.to_lowercase(), chars.as_str()),
            None => write!(f, "{:?}", self.0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The kernel does not know `mounts[i].type`.
    #[error("mount \"{fstype}\" on {dest}: mounts[{index}].type: no such device")]
    UnknownFsType {
        index: usize,
        fstype: String,
        dest: String,
    },
    /// A syscall failed while setting up `mounts[i]`.
    #[error("mounts[{index}] ({fstype} on {dest}): {step}: {errno}")]
    Mount {
        index: usize,
        fstype: String,
        dest: String,
        step: String,
        errno: Errtext,
    },
    /// `mounts[i]` asks for something husk refuses.
    #[error("mounts[{index}] ({fstype} on {dest}): {msg}")]
    MountConfig {
        index: usize,
        fstype: String,
        dest: String,
        msg: String,
    },
    /// A syscall failed on a path named by another config field (`linux.maskedPaths[2]`, ...).
    #[error("{field} ({path}): {step}: {errno}")]
    Path {
        field: String,
        path: String,
        step: String,
        errno: Errtext,
    },
    /// A config field holds something husk refuses.
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    /// A step not tied to one config entry (pivot_root, the rootfs bind, ...).
    #[error("{step}: {errno}")]
    Sys { step: String, errno: Errtext },
}

impl RootfsError {
    pub(crate) fn sys(step: impl Into<String>) -> impl FnOnce(Errno) -> RootfsError {
        let step = step.into();
        move |e| RootfsError::Sys {
            step,
            errno: Errtext(e),
        }
    }

    pub(crate) fn path(
        field: impl Into<String>,
        path: &Path,
        step: impl Into<String>,
    ) -> impl FnOnce(Errno) -> RootfsError {
        let (field, step) = (field.into(), step.into());
        let path = path.display().to_string();
        move |e| RootfsError::Path {
            field,
            path,
            step,
            errno: Errtext(e),
        }
    }
}

/// Everything the rootfs steps need, computed by the host side before the clone.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    /// Absolute, canonical host path of `root.path`.
    pub rootfs: PathBuf,
    /// The bundle directory (relative bind sources are resolved against it, as runc does).
    pub bundle: PathBuf,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// The container has its own user namespace (devices must be bind-mounted, not mknod'ed).
    pub in_user_ns: bool,
    /// The container has its own cgroup namespace.
    pub in_cgroup_ns: bool,
    /// Detached idmapped trees made by the host side (`idmap::prepare`), by `mounts[]` index.
    pub idmapped: Vec<(usize, OwnedFd)>,
}

impl RootfsPlan<'_> {
    /// `linux.rootfsPropagation` as mount(2) flags (0 when unset).
    fn root_propagation(&self) -> Result<u64, RootfsError> {
        let s = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.rootfs_propagation().clone())
            .unwrap_or_default();
        options::root_propagation(&s).ok_or_else(|| RootfsError::Config {
            field: "linux.rootfsPropagation".into(),
            msg: format!("{s:?} is not supported"),
        })
    }

    fn mounts(&self) -> &[oci_spec::runtime::Mount] {
        self.spec.mounts().as_deref().unwrap_or(&[])
    }

    /// runc sets up /dev (devices, ptmx, symlinks) unless /dev is a bind mount.
    fn sets_up_dev(&self) -> bool {
        !self.mounts().iter().any(|m| {
            let opts = options::MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
            mounts::is_bind(m, &opts) && path::clean(m.destination()) == Path::new("/dev")
        })
    }
}

fn ms(flags: u64) -> MsFlags {
    MsFlags::from_bits_retain(flags as libc::c_ulong)
}

fn no_str() -> Option<&'static str> {
    None
}

/// Step 1: propagation, the rootfs bind, `mounts[]` in order, /dev.
pub fn prepare(plan: &RootfsPlan) -> Result<(), RootfsError> {
    let root_prop = plan.root_propagation()?;
    if plan.no_pivot && root_prop & MS_PRIVATE != 0 {
        return Err(RootfsError::Config {
            field: "linux.rootfsPropagation".into(),
            msg: "[r]private is not safe without pivot_root".into(),
        });
    }

    // Nothing we mount may propagate back to the host: "/" becomes rslave (or what the config
    // asks for), and the mount holding the rootfs private/slave (pivot_root refuses a shared
    // parent, and the rootfs bind below must not leak out).
    let flag = if root_prop != 0 {
        root_prop
    } else {
        MS_SLAVE | MS_REC
    };
    let step = if root_prop != 0 {
        "apply linux.rootfsPropagation to /"
    } else {
        "make / rslave"
    };
    mount(no_str(), "/", no_str(), ms(flag), no_str()).map_err(RootfsError::sys(step))?;
    make_parent_mount_private(&plan.rootfs, root_prop)?;
    mount(
        Some(&plan.rootfs),
        &plan.rootfs,
        no_str(),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        no_str(),
    )
    .map_err(RootfsError::sys(format!(
        "bind mount rootfs {} onto itself",
        plan.rootfs.display()
    )))?;

    let mut ctx = mounts::Ctx::new(plan)?;
    for (index, m) in plan.mounts().iter().enumerate() {
        ctx.mount_entry(index, m)?;
    }
    if plan.sets_up_dev() {
        dev::setup(&ctx)?;
    }
    // process.cwd is created (0755, resolved inside the root) when missing, as runc does,
    // before any read-only remount can stop it.
    if let Some(cwd) = plan.spec.process().as_ref().map(|p| p.cwd()) {
        path::open_or_create(
            ctx.root.as_fd(),
            cwd,
            path::Create::Dir,
            nix::fcntl::ResolveFlag::empty(),
        )
        .map_err(RootfsError::sys(format!(
            "process.cwd: create {}",
            cwd.display()
        )))?;
    }
    // createContainer hooks run next with the rootfs as their cwd, as in runc.
    nix::unistd::fchdir(ctx.root.as_fd())
        .map_err(RootfsError::sys(format!("chdir {}", plan.rootfs.display())))?;
    Ok(())
}

/// The mount holding `rootfs` (it may be `rootfs` itself) must not be shared: walk up until
/// mount(MS_PRIVATE or MS_SLAVE) stops saying EINVAL (= not a mount point), as runc does.
fn make_parent_mount_private(rootfs: &Path, root_prop: u64) -> Result<(), RootfsError> {
    let flag = if root_prop & MS_SLAVE != 0 {
        MS_SLAVE
    } else {
        MS_PRIVATE
    };
    let mut p = rootfs;
    loop {
        match mount(no_str(), p, no_str(), ms(flag), no_str()) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) => match p.parent() {
                Some(parent) => p = parent,
                None => {
                    return Err(RootfsError::sys(format!(
                        "make the mount holding {} private",
                        rootfs.display()
                    ))(Errno::EINVAL))
                }
            },
            Err(e) => {
                return Err(RootfsError::sys(format!(
                    "make the mount holding {} private",
                    rootfs.display()
                ))(e))
            }
        }
    }
}

/// Step 2: make the rootfs the process's root.
pub fn enter(plan: &RootfsPlan) -> Result<(), RootfsError> {
    let root = open(
        &plan.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(RootfsError::sys(format!(
        "open rootfs {}",
        plan.rootfs.display()
    )))?;
    if plan.no_pivot {
        move_root(plan, &root)?;
    } else {
        pivot_root(&root)?;
    }
    if plan.sets_up_dev() {
        dev::reopen_dev_null()?;
    }
    Ok(())
}

fn pivot_root(root: &OwnedFd) -> Result<(), RootfsError> {
    let old = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(RootfsError::sys("open /"))?;
    nix::unistd::fchdir(root.as_fd()).map_err(RootfsError::sys("chdir rootfs"))?;
    // pivot_root(".", "."): the new root is the rootfs, the old root stays stacked under it and
    // is reachable only through `old` (the trick from LXC that runc uses).
    nix::unistd::pivot_root(".", ".").map_err(RootfsError::sys("pivot_root"))?;
    nix::unistd::fchdir(old.as_fd()).map_err(RootfsError::sys("chdir old root"))?;
    // rslave first, so that the detach below does not propagate to the host's mounts.
    mount(
        no_str(),
        ".",
        no_str(),
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        no_str(),
    )
    .map_err(RootfsError::sys("make old root rslave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(RootfsError::sys("unmount old root"))?;
    nix::unistd::chdir("/").map_err(RootfsError::sys("chdir /"))?;
    Ok(())
}

/// --no-pivot: hide the host's full proc and sysfs mounts (so a container cannot mount a fresh
/// procfs through them), MS_MOVE the rootfs onto "/" and chroot into it, as runc does.
fn move_root(plan: &RootfsPlan, root: &OwnedFd) -> Result<(), RootfsError> {
    nix::unistd::fchdir(root.as_fd()).map_err(RootfsError::sys("chdir rootfs"))?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| {
        RootfsError::sys("read /proc/self/mountinfo")(Errno::from_raw(
            e.raw_os_error().unwrap_or(libc::EIO),
        ))
    })?;
    for mi in cgroup::parse_mountinfo(&info) {
        if mi.root != "/"
            || (mi.fstype != "proc" && mi.fstype != "sysfs")
            || Path::new(&mi.mountpoint).starts_with(&plan.rootfs)
        {
            continue;
        }
        let p = mi.mountpoint.as_str();
        match mount(
            no_str(),
            p,
            no_str(),
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            no_str(),
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(RootfsError::sys(format!("make {p} rslave"))(e)),
        }
        match umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL) | Err(Errno::EPERM) => {
                mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::empty(), no_str())
                    .map_err(RootfsError::sys(format!("cover {p} with a tmpfs")))?;
            }
            Err(e) => return Err(RootfsError::sys(format!("unmount {p}"))(e)),
        }
    }
    mount(
        Some(&plan.rootfs),
        "/",
        no_str(),
        MsFlags::MS_MOVE,
        no_str(),
    )
    .map_err(RootfsError::sys("move rootfs onto /"))?;
    nix::unistd::chroot(".").map_err(RootfsError::sys("chroot"))?;
    nix::unistd::chdir("/").map_err(RootfsError::sys("chdir /"))?;
    Ok(())
}

/// Step 3: read-only and masked paths, delayed read-only remounts, a read-only root, and the
/// root's final propagation.
pub fn finish(plan: &RootfsPlan) -> Result<(), RootfsError> {
    finish::run(plan)
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn errors_read_like_runc() {
        let e = RootfsError::UnknownFsType {
            index: 3,
            fstype: "nosuchfs".into(),
            dest: "/x".into(),
        };
        assert_eq!(
            e.to_string(),
            "mount \"nosuchfs\" on /x: mounts[3].type: no such device"
        );
        let e = RootfsError::Mount {
            index: 1,
            fstype: "tmpfs".into(),
            dest: "/tmp".into(),
            step: "mount".into(),
            errno: Errtext(Errno::EINVAL),
        };
        assert_eq!(
            e.to_string(),
            "mounts[1] (tmpfs on /tmp): mount: invalid argument"
        );
    }
}
