//! Idmapped bind mounts: `mounts[].uidMappings`/`gidMappings` and the options `idmap`
//! (the top mount only) / `ridmap` (every mount of an `rbind` tree), runtime-spec 1.2 and
//! runc 1.2 semantics. A file owned by id `containerID + k` on the source's filesystem is seen
//! through the mount as owned by `hostID + k` (and so, inside the container's user namespace,
//! by whatever that host id maps to there); writes map back the same way.
//!
//! Why on the host side, before the clone: `mount_setattr(MOUNT_ATTR_IDMAP)` needs
//! CAP_SYS_ADMIN over the user namespace that owns the source's superblock (the host's, for
//! ext4 or xfs), which the init no longer has once it lives in the container's user
//! namespace. So `create` does, for each idmapped entry, as root in the host's namespaces:
//!   1. a user namespace carrying the mount's mappings (a throw-away child cloned into a new
//!      user namespace, its maps written, its `ns/user` opened, the child reaped); without
//!      mappings of its own, the container's mappings (a new user namespace of the container's
//!      is only made by the clone, so a twin with the same maps stands in for it) or the user
//!      namespace the container joins by path;
//!   2. `open_tree(OPEN_TREE_CLONE [| AT_RECURSIVE for rbind])` of the source: a detached copy;
//!   3. `mount_setattr(MOUNT_ATTR_IDMAP [, AT_RECURSIVE for ridmap])` on it, then the
//!      propagation the container's "/" gets (rslave by default), so nothing mounted below it
//!      inside the container propagates back to the host's source mount.
//!
//! The detached tree's fd reaches the init with the rest of the [`super::RootfsPlan`] (the
//! init is a copy of the host process), and the init attaches it, in `mounts[]` order, with
//! `move_mount` onto the mountpoint it resolved inside the rootfs, exactly as any other bind
//! (`mounts.rs`). One difference from runc 1.2, which opens idmapped sources from inside the
//! container's mount namespace while mounting: husk resolves them in the host's mount
//! namespace before any container mount exists, so a source below an earlier `mounts[]`
//! destination inside the rootfs sees the rootfs as it was before that mount.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::options::{self, MountOptions, MS_REC, MS_SLAVE};
use super::{Errtext, RootfsError, RootfsPlan};
use crate::sys::mount::{self as api, MountAttr, MOUNT_ATTR_IDMAP};
use crate::sys::{self, Forked};
use crate::userns::{Maps, UsernsError};

#[derive(Debug, thiserror::Error)]
pub enum IdmapError {
    /// The entry asks for something that cannot be done.
    #[error("mounts[{index}].{field} ({fstype} on {dest}): {msg}")]
    Config {
        index: usize,
        field: &'static str,
        fstype: String,
        dest: String,
        msg: String,
    },
    /// A step of preparing the idmapped tree failed.
    #[error("mounts[{index}] (bind on {dest}): {step}: {errno}")]
    Sys {
        index: usize,
        dest: String,
        step: String,
        errno: Errtext,
    },
    /// A mapping is malformed (names `mounts[N].uidMappings[i]`).
    #[error(transparent)]
    Maps(#[from] UsernsError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
}

/// Whose mappings an idmapped mount uses.
#[derive(Debug, Clone)]
enum Source {
    /// The entry's own `uidMappings`/`gidMappings`.
    Own(Maps),
    /// The container's user namespace (`idmap`/`ridmap` without mappings).
    Container,
}

/// One idmapped `mounts[]` entry, validated.
#[derive(Debug, Clone)]
pub struct Request {
    index: usize,
    dest: String,
    source: PathBuf,
    /// open_tree(AT_RECURSIVE): the entry is an `rbind`.
    rbind: bool,
    /// mount_setattr(AT_RECURSIVE): `ridmap`.
    recursive: bool,
    maps: Source,
}

/// The idmapped entries of `spec`, checked before anything is created (runc 1.2's rules):
/// only bind mounts; `uidMappings` and `gidMappings` together; mappings as valid as a user
/// namespace's; without mappings, the container must have a user namespace; root only.
/// `root`: husk runs as root (idmapped mounts need CAP_SYS_ADMIN over the source
/// filesystem's user namespace, so rootless containers cannot have them, as in runc).
pub fn requests(spec: &Spec, root: bool) -> Result<Vec<Request>, IdmapError> {
    let linux = spec.linux().as_ref();
    let has_userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    let mut out = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        if let Some(r) = request(index, m, has_userns, root)? {
            out.push(r);
        }
    }
    Ok(out)
}

fn request(
    index: usize,
    m: &Mount,
    has_userns: bool,
    root: bool,
) -> Result<Option<Request>, IdmapError> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
    let (uid, gid) = (m.uid_mappings().as_ref(), m.gid_mappings().as_ref());
    if uid.is_none() && gid.is_none() && opts.idmap.is_none() {
        return Ok(None);
    }
    let bind = super::mounts::is_bind(m, &opts);
    let dest = m.destination().display().to_string();
    let fstype = if bind {
        "bind".to_string()
    } else {
        m.typ().clone().unwrap_or_default()
    };
    let field = if uid.is_some() {
        "uidMappings"
    } else if gid.is_some() {
        "gidMappings"
    } else {
        "options"
    };
    let invalid = |field: &'static str, msg: String| IdmapError::Config {
        index,
        field,
        fstype: fstype.clone(),
        dest: dest.clone(),
        msg,
    };
    if !bind {
        return Err(invalid(
            field,
            "idmapped mounts are only supported for bind mounts".into(),
        ));
    }
    if opts.flags & options::MS_REMOUNT != 0 {
        return Err(invalid(
            field,
            "an idmapped mount cannot be a remount: the mapping is set on a new bind".into(),
        ));
    }
    if !root {
        return Err(invalid(
            field,
            "idmapped mounts are not supported for rootless containers".into(),
        ));
    }
    let maps = match (uid, gid) {
        (None, None) => {
            if !has_userns {
                return Err(invalid(
                    "options",
                    format!(
                        "{:?} without uidMappings and gidMappings needs a user namespace in \
                         linux.namespaces (its mappings are used)",
                        if opts.idmap == Some(true) {
                            "ridmap"
                        } else {
                            "idmap"
                        }
                    ),
                ));
            }
            Source::Container
        }
        (Some(_), None) => {
            return Err(invalid(
                "gidMappings",
                "missing: uidMappings and gidMappings must be given together".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "uidMappings",
                "missing: uidMappings and gidMappings must be given together".into(),
            ))
        }
        (Some(u), Some(g)) => {
            crate::userns::check(&format!("mounts[{index}].uidMappings"), u)?;
            crate::userns::check(&format!("mounts[{index}].gidMappings"), g)?;
            Source::Own(Maps {
                uid: u.clone(),
                gid: g.clone(),
            })
        }
    };
    let source = m.source().clone().ok_or_else(|| {
        invalid(
            "options",
            "an idmapped bind mount needs a source (mounts[].source)".into(),
        )
    })?;
    Ok(Some(Request {
        index,
        dest,
        source,
        rbind: opts.flags & MS_REC != 0,
        recursive: opts.idmap == Some(true),
        maps,
    }))
}

/// The container's own user namespace, for entries without mappings.
enum ContainerUserns<'a> {
    /// A new one with these mappings (made by the clone, later).
    New(&'a Maps),
    /// One joined by path (`linux.namespaces[].path`), already open.
    Joined(BorrowedFd<'a>),
    None,
}

/// Host side, before the clone: one detached, idmapped tree per request, keyed by the
/// `mounts[]` index. `new_maps`: the mappings of the container's new user namespace;
/// `joined`: the user namespace it joins by path.
pub fn prepare(
    reqs: &[Request],
    plan: &RootfsPlan<'_>,
    new_maps: Option<&Maps>,
    joined: Option<BorrowedFd<'_>>,
) -> Result<Vec<(usize, OwnedFd)>, IdmapError> {
    if reqs.is_empty() {
        return Ok(Vec::new());
    }
    let container = match (new_maps, joined) {
        (Some(m), _) => ContainerUserns::New(m),
        (None, Some(fd)) => ContainerUserns::Joined(fd),
        (None, None) => ContainerUserns::None,
    };
    // 0: rootfsPropagation unset (then rslave, as the container's "/").
    let root_propagation = plan.root_propagation()?;
    let bundle = plan.bundle.as_path();
    // One user namespace per distinct mapping.
    let mut made: Vec<(Maps, OwnedFd)> = Vec::new();
    let mut out = Vec::new();
    for r in reqs {
        let err = |step: String| {
            let (index, dest) = (r.index, r.dest.clone());
            move |e: Errno| IdmapError::Sys {
                index,
                dest,
                step,
                errno: Errtext(e),
            }
        };
        let maps: Option<&Maps> = match (&r.maps, &container) {
            (Source::Own(m), _) => Some(m),
            (Source::Container, ContainerUserns::New(m)) => Some(*m),
            _ => None,
        };
        let userns: BorrowedFd<'_> = match (maps, &container) {
            (Some(m), _) => {
                let pos = match made
                    .iter()
                    .position(|(k, _)| k.uid == m.uid && k.gid == m.gid)
                {
                    Some(p) => p,
                    None => {
                        let fd = userns_with(m).map_err(|e| match e {
                            Made::Errno(step, e) => err(step.into())(e),
                            Made::Maps(e) => IdmapError::Maps(e),
                        })?;
                        made.push((m.clone(), fd));
                        made.len() - 1
                    }
                };
                made[pos].1.as_fd()
            }
            (None, ContainerUserns::Joined(fd)) => *fd,
            (None, _) => {
                return Err(IdmapError::Config {
                    index: r.index,
                    field: "options",
                    fstype: "bind".into(),
                    dest: r.dest.clone(),
                    msg: "idmap without mappings needs the container's user namespace".into(),
                })
            }
        };
        let src = if r.source.is_absolute() {
            r.source.clone()
        } else {
            bundle.join(&r.source)
        };
        let src_fd = open(&src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(err(format!("open source {}", src.display())))?;
        let tree = api::clone_tree(src_fd.as_fd(), r.rbind).map_err(err(format!(
            "open_tree(OPEN_TREE_CLONE) of {}",
            src.display()
        )))?;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            userns_fd: userns_raw(userns),
            ..Default::default()
        };
        if let Err(e) = api::mount_setattr(tree.as_fd(), r.recursive, &attr) {
            let fs = api::fstatfs(tree.as_fd())
                .map(|f| fs_name(f.fs_type))
                .unwrap_or_else(|_| "unknown".into());
            let why = match e {
                Errno::EINVAL => format!(
                    "the source's filesystem ({fs}) does not support idmapped mounts on this \
                     kernel"
                ),
                Errno::EPERM => {
                    format!("not permitted (the source, on {fs}, may already be an idmapped mount)")
                }
                _ => format!("source on {fs}"),
            };
            return Err(err(format!(
                "mount_setattr(MOUNT_ATTR_IDMAP) of {}: {why}",
                src.display()
            ))(e));
        }
        // Like every mount in the container's copy of the host's tree: a slave of the host's
        // mount (or what linux.rootfsPropagation says), never a peer that would carry mounts
        // made inside the container back to the host.
        let prop = if root_propagation != 0 {
            root_propagation
        } else {
            MS_SLAVE | MS_REC
        };
        let attr = MountAttr {
            propagation: prop & !MS_REC,
            ..Default::default()
        };
        api::mount_setattr(tree.as_fd(), prop & MS_REC != 0, &attr)
            .map_err(err("mount_setattr (propagation)".into()))?;
        out.push((r.index, tree));
    }
    Ok(out)
}

fn userns_raw(fd: BorrowedFd<'_>) -> u64 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd() as u64
}

enum Made {
    Errno(&'static str, Errno),
    Maps(UsernsError),
}

/// A user namespace with `maps`: a child cloned into a new user namespace waits on a pipe
/// while we (root in the parent namespace, so no `setgroups` deny is needed) write its maps
/// and open its `ns/user`; closing the pipe lets it exit, and it is reaped before we return.
fn userns_with(maps: &Maps) -> Result<OwnedFd, Made> {
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Made::Errno("pipe2", e))?;
    let forked = sys::clone3(libc::CLONE_NEWUSER as u64, false, None)
        .map_err(|e| Made::Errno("clone3(CLONE_NEWUSER) for the mount's mappings", e))?;
    let pid = match forked {
        Forked::Child => {
            drop(wr);
            let mut b = [0u8; 1];
            // EOF (the parent closed its end, or died): done.
            let _ = nix::unistd::read(rd.as_fd(), &mut b);
            sys::exit_now(0)
        }
        Forked::Parent { pid, .. } => pid,
    };
    drop(rd);
    let result = maps.write(pid.as_raw()).map_err(Made::Maps).and_then(|()| {
        open(
            format!("/proc/{}/ns/user", pid.as_raw()).as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Made::Errno("open the mappings' user namespace", e))
    });
    drop(wr);
    let _ = nix::sys::wait::waitpid(pid, None);
    result
}

/// A name for a filesystem magic number, for errors.
fn fs_name(magic: i64) -> String {
    let name = match magic {
        0xEF53 => "ext2/ext3/ext4",
        0x0102_1994 => "tmpfs or devtmpfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x794C_7630 => "overlay",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0x9fa0 => "proc",
        0x6265_6572 => "sysfs",
        0x4d44 => "vfat",
        0x7371_7368 => "squashfs",
        0x6367_7270 => "cgroup2",
        0x0027_e0eb => "cgroup",
        0x2fc1_2fc1 => "zfs",
        0xF2F5_2010 => "f2fs",
        0x8584_58f6 => "ramfs",
        0xFF53_4D42 | 0xFE53_4D42 => "cifs/smb",
        _ => return format!("filesystem type 0x{magic:x}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mounts: serde_json::Value, userns: bool) -> Spec {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../spec-fixtures/good/minimal.json")).unwrap();
        v["mounts"] = mounts;
        if userns {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
        }
        serde_json::from_value(v).unwrap()
    }

    fn err(mounts: serde_json::Value, userns: bool) -> String {
        requests(&spec(mounts, userns), true)
            .expect_err("an error")
            .to_string()
    }

    #[test]
    fn rules() {
        let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        let ok = requests(&spec(
            serde_json::json!([
                {"destination": "/a", "type": "bind", "source": "/tmp", "options": ["rbind", "ridmap"],
                 "uidMappings": map, "gidMappings": map},
                {"destination": "/b", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"]},
                {"destination": "/c", "type": "bind", "source": "/tmp", "options": ["bind"]}
            ]),
            true,
        ), true)
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok[0].rbind && ok[0].recursive);
        assert!(matches!(ok[0].maps, Source::Own(_)));
        assert!(!ok[1].rbind && !ok[1].recursive);
        assert!(matches!(ok[1].maps, Source::Container));
        assert_eq!(ok[1].index, 1);

        let e = err(
            serde_json::json!([{"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                "uidMappings": map, "gidMappings": map}]),
            true,
        );
        assert!(
            e.starts_with("mounts[0].uidMappings (tmpfs on /t): idmapped mounts are only"),
            "{e}"
        );
        let e = err(
            serde_json::json!([{"destination": "/t", "type": "bind", "source": "/tmp",
                "options": ["bind", "idmap"]}]),
            false,
        );
        assert!(
            e.starts_with("mounts[0].options (bind on /t): \"idmap\" without uidMappings"),
            "{e}"
        );
        let e = err(
            serde_json::json!([{"destination": "/t", "type": "bind", "source": "/tmp",
                "options": ["bind", "idmap"], "uidMappings": map}]),
            true,
        );
        assert!(
            e.starts_with("mounts[0].gidMappings (bind on /t): missing"),
            "{e}"
        );
        let e = err(
            serde_json::json!([{"destination": "/t", "type": "bind", "source": "/tmp",
                "options": ["bind", "idmap"], "uidMappings": map,
                "gidMappings": [{"containerID": 0, "hostID": 1, "size": 10},
                                {"containerID": 5, "hostID": 100, "size": 10}]}]),
            true,
        );
        assert!(
            e.contains("mounts[0].gidMappings[1]: containerID range overlaps"),
            "{e}"
        );
    }

    #[test]
    fn fs_names() {
        assert_eq!(fs_name(0xEF53), "ext2/ext3/ext4");
        assert_eq!(fs_name(0x1234), "filesystem type 0x1234");
    }
}
