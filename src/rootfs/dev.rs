//! /dev: runc's default devices plus `linux.devices`, the ptmx symlink, the fd/stdio/core
//! symlinks, and re-opening stdio that points at the host's /dev/null.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, makedev, mknodat, umask, FileStat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::LinuxDeviceType;

use super::mounts::Ctx;
use super::path::{self, open_or_create, Create};
use super::RootfsError;
use crate::sys::mount as api;

/// A device node to create.
struct Node {
    field: String,
    path: PathBuf,
    kind: LinuxDeviceType,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// runc's default devices (specconv.AllowedDevices with a path), in runc's order.
const DEFAULTS: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/random", 1, 8),
    ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0),
    ("/dev/zero", 1, 5),
    ("/dev/urandom", 1, 9),
];

fn nodes(ctx: &Ctx) -> Vec<Node> {
    let spec_devices = ctx
        .plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref());
    let mut v = Vec::new();
    for &(p, major, minor) in DEFAULTS {
        // A device in the config with the same path replaces the default one.
        if spec_devices.is_some_and(|ds| ds.iter().any(|d| d.path() == Path::new(p))) {
            continue;
        }
        v.push(Node {
            field: format!("default device {p}"),
            path: PathBuf::from(p),
            kind: LinuxDeviceType::C,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        });
    }
    for (i, d) in spec_devices.into_iter().flatten().enumerate() {
        v.push(Node {
            field: format!("linux.devices[{i}]"),
            path: d.path().clone(),
            kind: d.typ(),
            major: d.major(),
            minor: d.minor(),
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    v
}

/// Create the devices, /dev/ptmx and the /dev symlinks (runc's createDevices, setupPtmx,
/// setupDevSymlinks).
pub fn setup(ctx: &Ctx) -> Result<(), RootfsError> {
    let root = ctx.root.as_fd();
    // Modes are exact, as in runc (which runs this under umask 0).
    let old_mask = umask(Mode::empty());
    // Most devices live in /dev: its fd is opened once and reused.
    let mut cache: DirCache = None;
    let r = nodes(ctx)
        .iter()
        .try_for_each(|n| create_node(ctx, n, &mut cache));
    umask(old_mask);
    r?;

    let dev_path = Path::new("/dev");
    let err = |step: &str| RootfsError::path("/dev setup", dev_path, step.to_string());
    let dev = dir_for(root, &mut cache, dev_path).map_err(err("open /dev"))?;
    match unlinkat(dev.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(err("remove /dev/ptmx")(e)),
    }
    symlinkat("pts/ptmx", dev.as_fd(), "ptmx").map_err(err("symlink /dev/ptmx"))?;

    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    // Only if the kernel has /proc/kcore (CONFIG_PROC_KCORE), as runc checks.
    if fstatat(ctx.proc.as_fd(), "kcore", AtFlags::AT_SYMLINK_NOFOLLOW).is_ok() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(err(&format!("symlink /dev/{name}"))(e)),
        }
    }
    Ok(())
}

/// The last parent directory opened, by its config path.
type DirCache = Option<(PathBuf, OwnedFd)>;

fn dir_for<'c>(
    root: BorrowedFd<'_>,
    cache: &'c mut DirCache,
    dir: &Path,
) -> Result<BorrowedFd<'c>, Errno> {
    if !matches!(cache, Some((p, _)) if p == dir) {
        let (fd, _) = open_or_create(root, dir, Create::Dir, ResolveFlag::empty())?;
        *cache = Some((dir.to_path_buf(), fd));
    }
    let cache: &'c DirCache = cache;
    match cache {
        Some((_, fd)) => Ok(fd.as_fd()),
        None => Err(Errno::ENOENT),
    }
}

fn create_node(ctx: &Ctx, n: &Node, cache: &mut DirCache) -> Result<(), RootfsError> {
    if path::clean(&n.path) == Path::new("/dev/ptmx") {
        return Ok(()); // the ptmx symlink replaces it
    }
    if n.path.as_os_str().is_empty() {
        return Ok(()); // only there for the cgroup rules
    }
    let err = |step: &str| RootfsError::path(n.field.clone(), &n.path, step.to_string());
    let kind = match n.kind {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(RootfsError::Config {
                field: n.field.clone(),
                msg: format!(
                    "a is not a valid device type for device {}",
                    n.path.display()
                ),
            })
        }
    };
    let (Some(name), Some(parent)) = (n.path.file_name(), n.path.parent()) else {
        return Err(err("create parent directory")(Errno::EINVAL));
    };
    let dir = dir_for(ctx.root.as_fd(), cache, parent).map_err(err("create parent directory"))?;
    if ctx.plan.in_user_ns {
        return bind_node(dir, name, n).map_err(err("bind mount from the host"));
    }
    let dev = makedev(n.major as u64, n.minor as u64);
    match mknodat(dir, name, kind, Mode::from_bits_truncate(n.mode), dev) {
        Ok(()) => fchownat(
            dir,
            name,
            Some(Uid::from_raw(n.uid)),
            Some(Gid::from_raw(n.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(err("chown")),
        Err(Errno::EEXIST) => Ok(()),
        Err(Errno::EPERM) => bind_node(dir, name, n).map_err(err("bind mount from the host")),
        Err(e) => Err(err("mknod")(e)),
    }
}

/// Where mknod is not allowed (user namespaces): bind the host's node onto an empty file.
fn bind_node(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, n: &Node) -> Result<(), Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let target = match nix::fcntl::openat2(dir, name, how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => nix::fcntl::openat(
            dir,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?,
        Err(e) => return Err(e),
    };
    let src = open(&n.path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
    let tree = api::clone_tree(src.as_fd(), false)?;
    api::move_mount(tree.as_fd(), target.as_fd())
}

/// Is this the null device (char 1:3)?
pub fn is_dev_null(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
        && st.st_rdev == makedev(1, 3)
}

/// After pivot_root: stdio still pointing at the host's /dev/null is re-pointed at the
/// container's (runc's reOpenDevNull), after checking that one really is 1:3.
pub fn reopen_dev_null() -> Result<(), RootfsError> {
    let p = Path::new("/dev/null");
    let null = open(
        p,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(RootfsError::path("/dev setup", p, "open"))?;
    let st = fstat(null.as_fd()).map_err(RootfsError::path("/dev setup", p, "fstat"))?;
    if !is_dev_null(&st) {
        return Err(RootfsError::Config {
            field: "/dev setup".into(),
            msg: "the container's /dev/null is not the null device".into(),
        });
    }
    let checks = [
        fstat(std::io::stdin().as_fd()),
        fstat(std::io::stdout().as_fd()),
        fstat(std::io::stderr().as_fd()),
    ];
    for (fd, st) in checks.iter().enumerate() {
        let Ok(st) = st else { continue };
        if !is_dev_null(st) {
            continue;
        }
        let r = match fd {
            0 => nix::unistd::dup2_stdin(null.as_fd()),
            1 => nix::unistd::dup2_stdout(null.as_fd()),
            _ => nix::unistd::dup2_stderr(null.as_fd()),
        };
        r.map_err(RootfsError::path(
            "/dev setup",
            p,
            format!("dup2 onto fd {fd}"),
        ))?;
    }
    Ok(())
}
