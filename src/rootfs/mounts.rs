//! One `mounts[]` entry: bind mounts through `open_tree` + `move_mount` onto the resolved target
//! fd, new filesystems with mount(2) on the target fd (through the host's /proc/self/fd, checked
//! to be procfs, as runc does; the cwd is left alone so relative paths in filesystem data keep
//! resolving against it), then the per-mount flags, recursive attributes and propagation.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, readlinkat, OFlag, ResolveFlag};
use nix::mount::mount;
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use oci_spec::runtime::Mount;

use super::options::{
    bind_remount_attr, flag_names, statfs_to_ms, MountOptions, MS_ATIME_ALL, MS_BIND, MS_LOCKABLE,
    MS_RDONLY, MS_REC, MS_REMOUNT,
};
use super::path::{self, open_in_root, open_or_create, Create};
use super::{ms, Errtext, RootfsError, RootfsPlan};
use crate::sys::mount::{self as api, MountAttr};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;
const SELINUX_MAGIC: i64 = 0xf97c_ff8c;

/// Is this entry a bind mount? ("bind"/"rbind" option, or type "bind").
pub fn is_bind(m: &Mount, opts: &MountOptions) -> bool {
    opts.is_bind() || m.typ().as_deref() == Some("bind")
}

/// Names the config entry in errors: `mounts[2] (tmpfs on /tmp)`.
pub struct Ectx {
    pub index: usize,
    pub fstype: String,
    pub dest: String,
}

impl Ectx {
    pub fn err(&self, step: impl Into<String>) -> impl FnOnce(Errno) -> RootfsError + '_ {
        let step = step.into();
        move |e| RootfsError::Mount {
            index: self.index,
            fstype: self.fstype.clone(),
            dest: self.dest.clone(),
            step,
            errno: Errtext(e),
        }
    }

    pub fn invalid(&self, msg: impl Into<String>) -> RootfsError {
        RootfsError::MountConfig {
            index: self.index,
            fstype: self.fstype.clone(),
            dest: self.dest.clone(),
            msg: msg.into(),
        }
    }
}

/// State shared by all mounts of one `prepare`.
pub struct Ctx<'a> {
    pub plan: &'a RootfsPlan<'a>,
    /// The rootfs (the self bind mount), O_PATH.
    pub root: OwnedFd,
    root_id: (u64, u64),
    /// The host's procfs (we are still in the host's root), checked with fstatfs.
    pub proc: OwnedFd,
    /// `context="<linux.mountLabel>"` (lsm.rs), for the filesystems that take it.
    label: Option<String>,
    /// Lazily: is the host's /sys/fs/cgroup cgroup2?
    pub cgroup2: Option<bool>,
}

impl<'a> Ctx<'a> {
    pub fn new(plan: &'a RootfsPlan<'a>) -> Result<Ctx<'a>, RootfsError> {
        let root = open(
            &plan.rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(RootfsError::sys(format!(
            "open rootfs {}",
            plan.rootfs.display()
        )))?;
        let st = fstat(root.as_fd()).map_err(RootfsError::sys("fstat rootfs"))?;
        let proc = open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(RootfsError::sys("open /proc"))?;
        let fs = api::fstatfs(proc.as_fd()).map_err(RootfsError::sys("fstatfs /proc"))?;
        if fs.fs_type != PROC_SUPER_MAGIC {
            return Err(RootfsError::Config {
                field: "/proc".into(),
                msg: "the host's /proc is not a procfs".into(),
            });
        }
        // As runc: passed whether or not SELinux is on (see lsm.rs); the kernel decides.
        let label = crate::lsm::Labels::from_spec(plan.spec).mount_option();
        Ok(Ctx {
            plan,
            root,
            root_id: (st.st_dev, st.st_ino),
            proc,
            label,
            cgroup2: None,
        })
    }

    pub fn mount_entry(&mut self, index: usize, m: &Mount) -> Result<(), RootfsError> {
        let mut opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
        let bind = is_bind(m, &opts);
        if bind {
            opts.flags |= MS_BIND;
        }
        let fstype = if bind {
            "bind".to_string()
        } else {
            m.typ().clone().unwrap_or_default()
        };
        let dest = m.destination();
        let ex = Ectx {
            index,
            fstype: fstype.clone(),
            dest: dest.display().to_string(),
        };
        // Idmapped: the host side made the detached, idmapped tree (idmap.rs); attach it.
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() || opts.idmap.is_some() {
            let Some((_, tree)) = self.plan.idmapped.iter().find(|(i, _)| *i == index) else {
                return Err(ex.invalid("internal error: the idmapped tree was not prepared"));
            };
            return self.bind_tree(&ex, dest, tree.as_fd(), Some(tree.as_fd()), &opts);
        }
        let source = m.source().as_deref();
        if opts.flags & MS_REMOUNT != 0 {
            return self.remount(&ex, dest, source, &fstype, &opts);
        }
        if bind {
            let Some(src) = source else {
                return Err(ex.invalid("bind mount without a source"));
            };
            let src = if src.is_absolute() {
                src.to_path_buf()
            } else {
                self.plan.bundle.join(src)
            };
            let fd = open(&src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(ex.err(format!("open source {}", src.display())))?;
            return self.bind(&ex, dest, fd.as_fd(), &opts);
        }
        if fstype == "cgroup" {
            return super::cgroup::mount(self, &ex, dest, &opts);
        }
        let source = source.map(|s| s.to_string_lossy().into_owned());
        self.new_fs(&ex, dest, &fstype, source.as_deref(), &opts)
    }

    /// Bind-mount the tree at `src` onto `dest` (created as a file or directory like `src` if
    /// missing), with `opts`' flags, recursive attributes and propagation.
    pub fn bind(
        &self,
        ex: &Ectx,
        dest: &Path,
        src: BorrowedFd<'_>,
        opts: &MountOptions,
    ) -> Result<(), RootfsError> {
        self.bind_tree(ex, dest, src, None, opts)
    }

    /// [`Ctx::bind`], attaching `prepared` (an already detached copy of `src`, e.g. an
    /// idmapped one) instead of cloning `src` when it is given.
    fn bind_tree(
        &self,
        ex: &Ectx,
        dest: &Path,
        src: BorrowedFd<'_>,
        prepared: Option<BorrowedFd<'_>>,
        opts: &MountOptions,
    ) -> Result<(), RootfsError> {
        let st = fstat(src).map_err(ex.err("fstat source"))?;
        let create = if is_dir(&st) {
            Create::Dir
        } else {
            Create::File
        };
        let (target, _) = open_or_create(self.root.as_fd(), dest, create, ResolveFlag::empty())
            .map_err(ex.err(format!("open mountpoint {}", dest.display())))?;
        self.check_target(ex, dest, target.as_fd(), "bind", Some(src))?;

        let cloned;
        let tree = match prepared {
            Some(t) => t,
            None => {
                cloned =
                    api::clone_tree(src, opts.flags & MS_REC != 0).map_err(ex.err("open_tree"))?;
                cloned.as_fd()
            }
        };
        if opts.bind_needs_remount() {
            set_bind_flags(ex, tree, opts.flags, opts.cleared)?;
        }
        if let Some(attr) = &opts.rec_attr {
            api::mount_setattr(tree, true, attr)
                .map_err(ex.err("mount_setattr (recursive options)"))?;
        }
        api::move_mount(tree, target.as_fd()).map_err(ex.err("move_mount"))?;
        set_propagation(ex, tree, &opts.propagation)
    }

    /// Mount a new filesystem of `fstype` on `dest` (a directory, created if missing).
    pub fn new_fs(
        &self,
        ex: &Ectx,
        dest: &Path,
        fstype: &str,
        source: Option<&str>,
        opts: &MountOptions,
    ) -> Result<(), RootfsError> {
        // proc and sysfs must land on an ordinary directory: no symlink anywhere on the way
        // (CVE-2019-16884, CVE-2019-19921: a /proc that points elsewhere).
        let special = fstype == "proc" || fstype == "sysfs";
        let extra = if special {
            ResolveFlag::RESOLVE_NO_SYMLINKS
        } else {
            ResolveFlag::empty()
        };
        let ordinary = || {
            ex.invalid(format!(
                "filesystem {fstype:?} must be mounted on ordinary directory"
            ))
        };
        let (target, existed) = match open_or_create(self.root.as_fd(), dest, Create::Dir, extra) {
            Ok(t) => t,
            Err(Errno::ELOOP) if special => return Err(ordinary()),
            Err(e) => return Err(ex.err(format!("open mountpoint {}", dest.display()))(e)),
        };
        let st = self.check_target(ex, dest, target.as_fd(), fstype, None)?;
        if special && !is_dir(&st) {
            return Err(ordinary());
        }

        let mut data = opts.data_string();
        if fstype == "tmpfs" && existed {
            // Keep the image's mode for the directory unless the options say otherwise (a later
            // mode= wins), as current runc does.
            let mode = format!("mode={:04o}", st.st_mode & 0o7777);
            data = if data.is_empty() {
                mode
            } else {
                format!("{mode},{data}")
            };
        }
        let labelled = takes_label(fstype) && self.label.is_some();
        if let (true, Some(label)) = (labelled, &self.label) {
            data = if data.is_empty() {
                label.clone()
            } else {
                format!("{data},{label}")
            };
        }
        let mut flags = opts.flags & !(MS_REC | MS_BIND | MS_REMOUNT);
        // /dev and tmpfs mounts stay writable until `finish`: files and mountpoints are still to
        // be created in them.
        if fstype == "tmpfs" || path::clean(dest) == Path::new("/dev") {
            flags &= !MS_RDONLY;
        }
        // tmpcopyup: a handle on the directory the tmpfs will cover, to copy from afterwards.
        let lower = if opts.tmpcopyup {
            Some(
                open_in_root(
                    self.root.as_fd(),
                    dest,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                    extra,
                )
                .map_err(ex.err("open mountpoint for tmpcopyup"))?,
            )
        } else {
            None
        };

        let on = fd_path(target.as_fd());
        let data_opt = if data.is_empty() {
            None
        } else {
            Some(data.as_str())
        };
        if let Err(e) = mount(source, on.as_str(), Some(fstype), ms(flags), data_opt) {
            if e == Errno::ENODEV {
                return Err(RootfsError::UnknownFsType {
                    index: ex.index,
                    fstype: fstype.to_string(),
                    dest: ex.dest.clone(),
                });
            }
            if e == Errno::EINVAL && labelled && !selinux_enabled() {
                return Err(ex.err(
                    "mount (its data has context= from linux.mountLabel, but SELinux is not \
                     enabled on this host)",
                )(e));
            }
            return Err(ex.err("mount")(e));
        }

        let needs_handle =
            special || lower.is_some() || opts.rec_attr.is_some() || !opts.propagation.is_empty();
        if !needs_handle {
            return Ok(());
        }
        // A handle on the new mount: resolve the same path again (it now crosses into the mount).
        let new = open_in_root(
            self.root.as_fd(),
            dest,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            extra,
        )
        .map_err(ex.err("reopen mountpoint"))?;
        if special {
            let want = if fstype == "proc" {
                PROC_SUPER_MAGIC
            } else {
                SYSFS_MAGIC
            };
            let fs = api::fstatfs(new.as_fd()).map_err(ex.err("fstatfs mountpoint"))?;
            if fs.fs_type != want {
                return Err(ex.invalid(format!(
                    "{} is not a {fstype} mount after mounting it",
                    dest.display()
                )));
            }
        }
        if let Some(lower) = lower {
            let upper = nix::fcntl::openat(
                new.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(ex.err("open tmpfs for tmpcopyup"))?;
            copy_tree(lower, upper.as_fd()).map_err(ex.err("tmpcopyup"))?;
        }
        if let Some(attr) = &opts.rec_attr {
            api::mount_setattr(new.as_fd(), true, attr)
                .map_err(ex.err("mount_setattr (recursive options)"))?;
        }
        set_propagation(ex, new.as_fd(), &opts.propagation)
    }

    /// `remount` in the options: change an existing mount at `dest`.
    fn remount(
        &self,
        ex: &Ectx,
        dest: &Path,
        source: Option<&Path>,
        fstype: &str,
        opts: &MountOptions,
    ) -> Result<(), RootfsError> {
        let target = open_in_root(self.root.as_fd(), dest, OFlag::O_PATH, ResolveFlag::empty())
            .map_err(ex.err(format!("open mountpoint {}", dest.display())))?;
        self.check_target(ex, dest, target.as_fd(), fstype, None)?;
        if opts.is_bind() {
            set_bind_flags(ex, target.as_fd(), opts.flags, opts.cleared)?;
        } else {
            let on = fd_path(target.as_fd());
            let data = opts.data_string();
            let data_opt = if data.is_empty() {
                None
            } else {
                Some(data.as_str())
            };
            let fstype = if fstype.is_empty() {
                None
            } else {
                Some(fstype)
            };
            mount(
                source,
                on.as_str(),
                fstype,
                ms(opts.flags & !MS_REC),
                data_opt,
            )
            .map_err(ex.err("remount"))?;
        }
        if let Some(attr) = &opts.rec_attr {
            api::mount_setattr(target.as_fd(), true, attr)
                .map_err(ex.err("mount_setattr (recursive options)"))?;
        }
        set_propagation(ex, target.as_fd(), &opts.propagation)
    }

    /// The resolved mountpoint must be inside the rootfs, not the rootfs itself, and not in
    /// /proc unless runc would allow it there. Returns the mountpoint's stat.
    fn check_target(
        &self,
        ex: &Ectx,
        dest: &Path,
        target: BorrowedFd<'_>,
        fstype: &str,
        bind_src: Option<BorrowedFd<'_>>,
    ) -> Result<FileStat, RootfsError> {
        let st = fstat(target).map_err(ex.err("fstat mountpoint"))?;
        if (st.st_dev, st.st_ino) == self.root_id {
            return Err(ex.invalid("mountpoint is the root of the rootfs"));
        }
        let real = readlinkat(
            self.proc.as_fd(),
            format!("self/fd/{}", target.as_raw_fd()).as_str(),
        )
        .map_err(ex.err("readlink mountpoint"))?;
        let real = PathBuf::from(real);
        let Ok(rel) = real.strip_prefix(&self.plan.rootfs) else {
            return Err(ex.invalid(format!(
                "mountpoint {} is outside of the rootfs",
                real.display()
            )));
        };
        check_proc_mount(ex, dest, rel, fstype, bind_src)?;
        Ok(st)
    }
}

/// runc's checkProcMount: nothing may be mounted inside the container's /proc except a few files
/// lxcfs emulates, and /proc itself only takes a procfs (a new one or a bind of one).
fn check_proc_mount(
    ex: &Ectx,
    dest: &Path,
    rel: &Path,
    fstype: &str,
    bind_src: Option<BorrowedFd<'_>>,
) -> Result<(), RootfsError> {
    const VALID: &[&str] = &[
        "proc/cpuinfo",
        "proc/diskstats",
        "proc/meminfo",
        "proc/stat",
        "proc/swaps",
        "proc/uptime",
        "proc/loadavg",
        "proc/slabinfo",
        "proc/net/dev",
        "proc/sys/kernel/ns_last_pid",
        "proc/sys/crypto/fips_enabled",
    ];
    if !rel.starts_with("proc") {
        return Ok(());
    }
    if rel == Path::new("proc") {
        let ok = match bind_src {
            Some(src) => {
                api::fstatfs(src).map_err(ex.err("fstatfs source"))?.fs_type == PROC_SUPER_MAGIC
            }
            None => fstype == "proc",
        };
        if ok {
            return Ok(());
        }
        return Err(ex.invalid(format!(
            "{:?} cannot be mounted because it is not of type proc",
            dest.display().to_string()
        )));
    }
    if VALID.iter().any(|v| rel == Path::new(v)) {
        return Ok(());
    }
    Err(ex.invalid(format!(
        "{:?} cannot be mounted because it is inside /proc",
        dest.display().to_string()
    )))
}

/// "/proc/self/fd/N": mount(2) follows this magic link to exactly what the fd refers to. Only
/// used before pivot_root, while /proc is the host's (verified in [`Ctx::new`]); nothing a
/// config can do mounts over it, since every mount lands inside the rootfs.
fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Does `linux.mountLabel` go into this new filesystem's data? Everything runc labels with
/// `label.FormatMountLabel`: not proc and sysfs (no labels there), nor mqueue and the cgroup
/// filesystems (runc mounts them without it).
pub fn takes_label(fstype: &str) -> bool {
    !matches!(fstype, "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2")
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

pub fn selinux_enabled() -> bool {
    match open(
        "/sys/fs/selinux",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => api::fstatfs(fd.as_fd())
            .map(|f| f.fs_type == SELINUX_MAGIC)
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Give the mount at `fd` exactly the per-mount `flags` (what MS_BIND | MS_REMOUNT | flags does),
/// keeping flags the kernel has locked (user namespaces) unless the user explicitly cleared one
/// of them, which is an error (runc's behaviour).
pub fn set_bind_flags(
    ex: &Ectx,
    fd: BorrowedFd<'_>,
    flags: u64,
    cleared: u64,
) -> Result<(), RootfsError> {
    let first = match api::mount_setattr(fd, false, &bind_remount_attr(flags)) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if first != Errno::EPERM {
        return Err(ex.err("mount_setattr (bind flags)")(first));
    }
    let fs = api::fstatfs(fd).map_err(ex.err("fstatfs source"))?;
    let src = statfs_to_ms(fs.flags);
    let cannot = src & cleared & MS_LOCKABLE;
    if cannot != 0 {
        return Err(ex.invalid(format!(
            "cannot clear locked flags {}: {}",
            flag_names(cannot),
            Errtext(first)
        )));
    }
    if flags & MS_ATIME_ALL != 0 && flags & MS_ATIME_ALL != src & MS_ATIME_ALL {
        return Err(ex.invalid(format!(
            "cannot change locked atime flags {}: {}",
            flag_names(src & MS_ATIME_ALL),
            Errtext(first)
        )));
    }
    let flags = flags | (src & MS_LOCKABLE);
    api::mount_setattr(fd, false, &bind_remount_attr(flags)).map_err(ex.err(format!(
        "mount_setattr (bind flags, locked flags {} kept)",
        flag_names(src & MS_LOCKABLE)
    )))
}

/// Apply propagation changes ("rshared", "private", ...) in order.
pub fn set_propagation(ex: &Ectx, fd: BorrowedFd<'_>, props: &[u64]) -> Result<(), RootfsError> {
    for &p in props {
        let attr = MountAttr {
            propagation: p & !MS_REC,
            ..Default::default()
        };
        api::mount_setattr(fd, p & MS_REC != 0, &attr)
            .map_err(ex.err("mount_setattr (propagation)"))?;
    }
    Ok(())
}

/// Copy the directory tree `src` into `dst` (tmpcopyup): directories, files, symlinks and
/// device nodes, with modes and owners.
fn copy_tree(src: OwnedFd, dst: BorrowedFd<'_>) -> Result<(), Errno> {
    use nix::sys::stat::{fchmod, fstatat, mkdirat, mknodat};
    use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};
    let flags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;

    let mut dir = nix::dir::Dir::from_fd(src.try_clone().map_err(|_| Errno::EMFILE)?)?;
    let names: Vec<std::ffi::CString> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let name = name.as_c_str();
        let st = fstatat(src.as_fd(), name, flags)?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
        let (uid, gid) = (
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        );
        let ro = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        if kind == SFlag::S_IFDIR {
            match mkdirat(dst, name, perm) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            let s = nix::fcntl::openat(src.as_fd(), name, ro | OFlag::O_DIRECTORY, Mode::empty())?;
            let d = nix::fcntl::openat(dst, name, ro | OFlag::O_DIRECTORY, Mode::empty())?;
            copy_tree(s, d.as_fd())?;
            fchmod(d.as_fd(), perm)?;
            fchown(d.as_fd(), uid, gid)?;
        } else if kind == SFlag::S_IFREG {
            let s = nix::fcntl::openat(src.as_fd(), name, ro, Mode::empty())?;
            let d = nix::fcntl::openat(
                dst,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                perm,
            )?;
            let (mut s, mut d) = (std::fs::File::from(s), std::fs::File::from(d));
            std::io::copy(&mut s, &mut d)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            fchmod(d.as_fd(), perm)?;
            fchown(d.as_fd(), uid, gid)?;
        } else if kind == SFlag::S_IFLNK {
            let target = readlinkat(src.as_fd(), name)?;
            symlinkat(OsStr::new(&target), dst, name)?;
            fchownat(dst, name, uid, gid, flags)?;
        } else {
            mknodat(dst, name, kind, perm, st.st_rdev)?;
            fchownat(dst, name, uid, gid, flags)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn which_filesystems_take_the_mount_label() {
        for fs in ["tmpfs", "devpts", "overlay", "ext4"] {
            assert!(super::takes_label(fs), "{fs}");
        }
        for fs in ["proc", "sysfs", "mqueue", "cgroup", "cgroup2"] {
            assert!(!super::takes_label(fs), "{fs}");
        }
    }
}
