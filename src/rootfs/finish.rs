//! Step 3, inside the new root: `linux.readonlyPaths`, `linux.maskedPaths`, the read-only
//! remounts delayed from `prepare` (tmpfs and /dev), `root.readonly`, and the root's final
//! propagation. The order is runc's (readonly, masked, then finalizeRootfs).

use std::collections::HashSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag, ResolveFlag};
use nix::mount::mount;
use nix::sys::stat::{fstat, Mode, SFlag};

use super::mounts::{is_bind, Ectx};
use super::options::{MountOptions, MS_PRIVATE, MS_RDONLY, MS_SLAVE};
use super::path::{self, open_in_root};
use super::{dev, ms, no_str, RootfsError, RootfsPlan};
use crate::sys::mount::{self as api, MountAttr, MOUNT_ATTR_RDONLY};

const RDONLY: MountAttr = MountAttr {
    attr_set: MOUNT_ATTR_RDONLY,
    attr_clr: 0,
    propagation: 0,
    userns_fd: 0,
};

pub fn run(plan: &RootfsPlan) -> Result<(), RootfsError> {
    let root = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(RootfsError::sys("open /"))?;
    let root = root.as_fd();
    let linux = plan.spec.linux().as_ref();

    for (i, p) in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        readonly_path(root, i, Path::new(p))?;
    }
    if let Some(paths) = linux.and_then(|l| l.masked_paths().as_ref()) {
        mask_paths(plan, root, paths)?;
    }

    // tmpfs and /dev mounts were mounted writable; make the read-only ones read-only now.
    for (index, m) in plan.mounts().iter().enumerate() {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
        if is_bind(m, &opts) || opts.flags & MS_RDONLY == 0 {
            continue;
        }
        let fstype = m.typ().clone().unwrap_or_default();
        if fstype != "tmpfs" && path::clean(m.destination()) != Path::new("/dev") {
            continue;
        }
        let ex = Ectx {
            index,
            fstype,
            dest: m.destination().display().to_string(),
        };
        let fd = open_in_root(root, m.destination(), OFlag::O_PATH, ResolveFlag::empty())
            .map_err(ex.err("open mountpoint"))?;
        api::mount_setattr(fd.as_fd(), false, &RDONLY).map_err(ex.err("remount read-only"))?;
    }

    // root.readonly: only MNT_READONLY is added, every other (possibly locked) flag is kept.
    if plan
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        api::mount_setattr(root, false, &RDONLY).map_err(|e| RootfsError::Path {
            field: "root.readonly".into(),
            path: "/".into(),
            step: "remount read-only".into(),
            errno: super::Errtext(e),
        })?;
    }

    // rootfsPropagation shared/unbindable applies to the new "/" (private and slave were
    // already applied to the old one in `prepare`).
    let prop = plan.root_propagation()?;
    if prop != 0 && prop & (MS_PRIVATE | MS_SLAVE) == 0 {
        mount(no_str(), "/", no_str(), ms(prop), no_str()).map_err(|e| RootfsError::Path {
            field: "linux.rootfsPropagation".into(),
            path: "/".into(),
            step: "mount".into(),
            errno: super::Errtext(e),
        })?;
    }
    Ok(())
}

/// A recursive read-only bind of the path onto itself (sub-mounts included; nosuid, nodev,
/// noexec and atime flags of every mount are kept since only MNT_READONLY is set).
fn readonly_path(root: BorrowedFd<'_>, i: usize, p: &Path) -> Result<(), RootfsError> {
    let field = format!("linux.readonlyPaths[{i}]");
    let fd = match open_in_root(root, p, OFlag::O_PATH, ResolveFlag::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(RootfsError::path(field, p, "open")(e)),
    };
    let tree = api::clone_tree(fd.as_fd(), true).map_err(RootfsError::path(
        field.clone(),
        p,
        "open_tree",
    ))?;
    api::mount_setattr(tree.as_fd(), true, &RDONLY).map_err(RootfsError::path(
        field.clone(),
        p,
        "mount_setattr",
    ))?;
    api::move_mount(tree.as_fd(), fd.as_fd()).map_err(RootfsError::path(field, p, "move_mount"))
}

/// Directories get an empty read-only tmpfs, everything else the container's /dev/null, which
/// is checked to really be the null device first (CVE-2025-31133). Missing paths are skipped.
fn mask_paths(
    plan: &RootfsPlan,
    root: BorrowedFd<'_>,
    paths: &[String],
) -> Result<(), RootfsError> {
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut null: Option<OwnedFd> = None;
    let mut mask: Option<OwnedFd> = None;
    for (i, p) in paths.iter().enumerate() {
        let p = Path::new(p);
        if !seen.insert(path::clean(p)) {
            continue;
        }
        let field = format!("linux.maskedPaths[{i}]");
        let err = |step: &str| RootfsError::path(field.clone(), p, step.to_string());
        let fd = match open_in_root(root, p, OFlag::O_PATH, ResolveFlag::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(err("open")(e)),
        };
        let st = fstat(fd.as_fd()).map_err(err("fstat"))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            match &mask {
                // Later directories get a clone of the first (attached) mask mount.
                Some(m) => {
                    let tree = api::clone_tree(m.as_fd(), false).map_err(err("open_tree"))?;
                    api::move_mount(tree.as_fd(), fd.as_fd()).map_err(err("move_mount"))?;
                }
                None => {
                    let m = mask_tmpfs(plan).map_err(err("create read-only tmpfs"))?;
                    api::move_mount(m.as_fd(), fd.as_fd()).map_err(err("move_mount"))?;
                    mask = Some(m);
                }
            }
        } else {
            if null.is_none() {
                null = Some(dev_null(root)?);
            }
            let Some(n) = &null else { continue };
            let tree = api::clone_tree(n.as_fd(), false).map_err(err("open_tree /dev/null"))?;
            api::move_mount(tree.as_fd(), fd.as_fd()).map_err(err("move_mount"))?;
        }
    }
    Ok(())
}

/// The container's /dev/null, verified to be char 1:3 before anything is bound from it.
fn dev_null(root: BorrowedFd<'_>) -> Result<OwnedFd, RootfsError> {
    let p = Path::new("/dev/null");
    let fd = open_in_root(root, p, OFlag::O_PATH, ResolveFlag::empty())
        .map_err(RootfsError::path("linux.maskedPaths", p, "open"))?;
    let st = fstat(fd.as_fd()).map_err(RootfsError::path("linux.maskedPaths", p, "fstat"))?;
    if !dev::is_dev_null(&st) {
        return Err(RootfsError::Config {
            field: "linux.maskedPaths".into(),
            msg: "the container's /dev/null is not the null device (char 1:3); refusing to mask with it".into(),
        });
    }
    Ok(fd)
}

/// A detached, empty, read-only tmpfs (superblock and mount).
fn mask_tmpfs(plan: &RootfsPlan) -> Result<OwnedFd, Errno> {
    let fs = api::fsopen("tmpfs")?;
    api::fsconfig_string(fs.as_fd(), "source", "tmpfs")?;
    if let Some(label) = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref())
    {
        // Passed whether or not SELinux is on, as runc's maskPath does (see lsm.rs).
        if !label.is_empty() {
            api::fsconfig_string(fs.as_fd(), "context", label)?;
        }
    }
    api::fsconfig_flag(fs.as_fd(), "ro")?;
    api::fsconfig_create(fs.as_fd())?;
    api::fsmount(fs.as_fd(), MOUNT_ATTR_RDONLY)
}
