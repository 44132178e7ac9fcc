//! `mounts[]` entries of type "cgroup", as runc does them:
//! - host on cgroup v2 (unified): a cgroup2 mount (falling back to a bind of /sys/fs/cgroup when
//!   the kernel refuses, e.g. a user namespace without a cgroup namespace);
//! - host on cgroup v1 / hybrid: a tmpfs at the destination and, below it, one mount per v1
//!   hierarchy (a fresh `cgroup` mount inside a cgroup namespace, else a bind of the init's own
//!   cgroup directory), plus the unified hierarchy of a hybrid host, and the symlinks for
//!   co-mounted controllers ("cpu" -> "cpu,cpuacct").

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::symlinkat;

use super::mounts::{Ctx, Ectx};
use super::options::{MountOptions, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC};
use super::path::open_parent;
use super::{Errtext, RootfsError};
use crate::sys::mount as api;

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const DEFAULT_FLAGS: u64 = MS_NOEXEC | MS_NOSUID | MS_NODEV;

/// One line of /proc/self/mountinfo (the fields we use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub root: String,
    pub mountpoint: String,
    pub fstype: String,
    pub super_opts: String,
}

/// Undo mountinfo's octal escapes ("\040" for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_mountinfo(s: &str) -> Vec<MountInfo> {
    let mut v = Vec::new();
    for line in s.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 || fields.len() < sep + 4 {
            continue;
        }
        v.push(MountInfo {
            root: unescape(fields[3]),
            mountpoint: unescape(fields[4]),
            fstype: fields[sep + 1].to_string(),
            super_opts: fields[sep + 3].to_string(),
        });
    }
    v
}

/// /proc/self/cgroup: controller (or "name=systemd", or "" for the unified line) → path.
pub fn parse_proc_cgroup(s: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for line in s.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        for c in ctrls.split(',') {
            m.insert(c.to_string(), path.to_string());
        }
    }
    m
}

/// A cgroup hierarchy mounted on the host, with the controllers we are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mountpoint: String,
    pub root: String,
    /// Super options naming the hierarchy ("cpu", "cpuacct", "name=systemd"); empty for cgroup2.
    pub subsystems: Vec<String>,
    /// Our cgroup in it (from /proc/self/cgroup).
    pub own: String,
    pub unified: bool,
}

/// The v1 hierarchies (first mount of each controller, in mountinfo order, as runc) and the
/// unified one of a hybrid host.
pub fn hierarchies(mountinfo: &[MountInfo], own: &HashMap<String, String>) -> Vec<Hierarchy> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    let mut unified_done = false;
    for mi in mountinfo {
        if mi.fstype == "cgroup" {
            let subs: Vec<String> = mi
                .super_opts
                .split(',')
                .filter(|o| own.contains_key(*o) && !o.is_empty())
                .filter(|o| seen.insert(o))
                .map(str::to_string)
                .collect();
            let Some(first) = subs.first() else { continue };
            let Some(path) = own.get(first) else { continue };
            out.push(Hierarchy {
                mountpoint: mi.mountpoint.clone(),
                root: mi.root.clone(),
                own: path.clone(),
                subsystems: subs,
                unified: false,
            });
        } else if mi.fstype == "cgroup2" && !unified_done {
            let Some(path) = own.get("") else { continue };
            unified_done = true;
            out.push(Hierarchy {
                mountpoint: mi.mountpoint.clone(),
                root: mi.root.clone(),
                own: path.clone(),
                subsystems: Vec::new(),
                unified: true,
            });
        }
    }
    out
}

fn read_proc(ctx: &Ctx, ex: &Ectx, name: &str) -> Result<String, RootfsError> {
    let fd = nix::fcntl::openat(
        ctx.proc.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(ex.err(format!("open /proc/{name}")))?;
    let mut s = String::new();
    std::fs::File::from(fd)
        .read_to_string(&mut s)
        .map_err(|e| {
            ex.err(format!("read /proc/{name}"))(Errno::from_raw(
                e.raw_os_error().unwrap_or(libc::EIO),
            ))
        })?;
    Ok(s)
}

fn host_is_cgroup2(ctx: &mut Ctx) -> bool {
    if let Some(v2) = ctx.cgroup2 {
        return v2;
    }
    let v2 = match open(
        "/sys/fs/cgroup",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => api::fstatfs(fd.as_fd())
            .map(|f| f.fs_type == CGROUP2_SUPER_MAGIC)
            .unwrap_or(false),
        Err(_) => false,
    };
    ctx.cgroup2 = Some(v2);
    v2
}

/// Where our cgroup lives under a host mountpoint: mountpoint + (own path relative to the
/// mount's root).
fn own_dir(h: &Hierarchy) -> Option<PathBuf> {
    let own = Path::new(&h.own);
    let rel = own.strip_prefix(&h.root).ok()?;
    Some(Path::new(&h.mountpoint).join(rel))
}

pub fn mount(
    ctx: &mut Ctx,
    ex: &Ectx,
    dest: &Path,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    if host_is_cgroup2(ctx) {
        return mount_v2(ctx, ex, dest, opts);
    }
    let own = parse_proc_cgroup(&read_proc(ctx, ex, "self/cgroup")?);
    let info = parse_mountinfo(&read_proc(ctx, ex, "self/mountinfo")?);
    let hiers = hierarchies(&info, &own);

    // The tmpfs that holds the hierarchies (never read-only, as in runc).
    let tmpfs = MountOptions {
        flags: DEFAULT_FLAGS,
        data: vec!["mode=755".into()],
        propagation: opts.propagation.clone(),
        ..Default::default()
    };
    ctx.new_fs(ex, dest, "tmpfs", Some("tmpfs"), &tmpfs)?;

    let ro = opts.flags & MS_RDONLY;
    let mut merged: Vec<String> = Vec::new();
    for h in &hiers {
        let Some(base) = Path::new(&h.mountpoint).file_name() else {
            continue;
        };
        let base_s = base.to_string_lossy().into_owned();
        if base_s.contains(',') {
            merged.push(base_s.clone());
        }
        let sub = dest.join(base);
        if ctx.plan.in_cgroup_ns {
            let o = MountOptions {
                flags: DEFAULT_FLAGS | ro,
                data: if h.unified {
                    Vec::new()
                } else {
                    vec![h.subsystems.join(",")]
                },
                ..Default::default()
            };
            let (fstype, source) = if h.unified {
                ("cgroup2", "cgroup2")
            } else if h.subsystems.iter().any(|s| s == "name=systemd") {
                ("cgroup", "systemd")
            } else {
                ("cgroup", "cgroup")
            };
            ctx.new_fs(ex, &sub, fstype, Some(source), &o)?;
        } else {
            let Some(src) = own_dir(h) else {
                return Err(ex.invalid(format!(
                    "cgroup {} is not below the root {} of its mount {}",
                    h.own, h.root, h.mountpoint
                )));
            };
            let fd = open(
                &src,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(ex.err(format!("open source {}", src.display())))?;
            let o = MountOptions {
                flags: MS_BIND | MS_REC | opts.flags,
                cleared: opts.cleared,
                propagation: opts.propagation.clone(),
                ..Default::default()
            };
            ctx.bind(ex, &sub, fd.as_fd(), &o)?;
        }
    }
    // Co-mounted controllers: "cpu" -> "cpu,cpuacct" and "cpuacct" -> "cpu,cpuacct".
    for mc in merged {
        for ss in mc.split(',') {
            let link = dest.join(ss);
            let (dir, name) = open_parent(ctx.root.as_fd(), &link)
                .map_err(ex.err(format!("open {}", link.display())))?;
            match symlinkat(mc.as_str(), dir.as_fd(), name.as_os_str()) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(ex.err(format!("symlink {}", link.display()))(e)),
            }
        }
    }
    Ok(())
}

fn mount_v2(ctx: &mut Ctx, ex: &Ectx, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
    match ctx.new_fs(ex, dest, "cgroup2", Some("cgroup2"), opts) {
        Err(RootfsError::Mount {
            errno: Errtext(Errno::EPERM | Errno::EBUSY),
            ref step,
            ..
        }) if step == "mount" => {}
        r => return r,
    }
    // A user namespace without a cgroup namespace cannot mount cgroup2: bind the host's.
    let fd = open(
        "/sys/fs/cgroup",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(ex.err("open source /sys/fs/cgroup"))?;
    let o = MountOptions {
        flags: MS_BIND | opts.flags,
        cleared: opts.cleared,
        propagation: opts.propagation.clone(),
        ..Default::default()
    };
    ctx.bind(ex, dest, fd.as_fd(), &o)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 27 0:39 / /mnt/with\\040space rw - tmpfs tmpfs rw
43 27 0:40 / /mnt/net_cls rw - cgroup cgroup rw,net_cls
";
    const PROC_CGROUP: &str = "\
9:name=systemd:/user.slice
4:memory:/docker/abc
1:cpu,cpuacct:/
0::/init.scope
";

    #[test]
    fn mountinfo_lines() {
        let v = parse_mountinfo(MOUNTINFO);
        assert_eq!(v.len(), 8);
        assert_eq!(v[2].mountpoint, "/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(v[2].fstype, "cgroup");
        assert_eq!(v[2].super_opts, "rw,cpu,cpuacct");
        assert_eq!(v[6].mountpoint, "/mnt/with space");
        assert_eq!(v[3].root, "/docker");
    }

    #[test]
    fn hierarchies_we_are_in() {
        let own = parse_proc_cgroup(PROC_CGROUP);
        assert_eq!(own.get("cpuacct").map(String::as_str), Some("/"));
        assert_eq!(own.get("").map(String::as_str), Some("/init.scope"));
        let h = hierarchies(&parse_mountinfo(MOUNTINFO), &own);
        // net_cls is not in our /proc/self/cgroup: skipped.
        let names: Vec<&str> = h.iter().map(|h| h.mountpoint.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified"
            ]
        );
        assert_eq!(h[0].subsystems, vec!["cpu", "cpuacct"]);
        assert_eq!(h[2].subsystems, vec!["name=systemd"]);
        assert!(h[3].unified);
        assert_eq!(
            own_dir(&h[1]),
            Some(PathBuf::from("/sys/fs/cgroup/memory/abc"))
        );
        assert_eq!(
            own_dir(&h[3]),
            Some(PathBuf::from("/sys/fs/cgroup/unified/init.scope"))
        );
    }
}
