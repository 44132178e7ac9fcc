//! Paths inside the container, resolved by the kernel against the rootfs fd: `openat2` with
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, so a symlink (absolute or `..`-laden) in a hostile
//! rootfs can never lead outside it. Missing components are created one fd at a time.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};

/// Symlinks followed while creating a path before giving up (the kernel's MAXSYMLINKS).
const MAX_HOPS: usize = 40;

/// What to create when the path does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    Dir,
    File,
}

fn resolve(extra: ResolveFlag) -> ResolveFlag {
    ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS | extra
}

/// The path as the kernel should see it relative to the root fd: no leading "/", "." if empty.
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Open `path` inside `root` (never leaving it). `flags` gets O_CLOEXEC added.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: OFlag,
    extra: ResolveFlag,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(resolve(extra));
    loop {
        match openat2(root, relative(path).as_path(), how) {
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            r => return r,
        }
    }
}

/// Open a direct child of `dir` by name without following any symlink and without leaving `dir`.
fn open_child(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    openat2(dir, name, how)
}

/// Split into the components the kernel would walk (".." kept, "." and "/" dropped).
fn parts(path: &Path) -> Vec<&OsStr> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            Component::ParentDir => Some(OsStr::new("..")),
            _ => None,
        })
        .collect()
}

fn join(parts: &[&OsStr]) -> PathBuf {
    let mut p = PathBuf::from("/");
    for c in parts {
        p.push(c);
    }
    p
}

/// Open `path` inside `root` as O_PATH, creating it (and any missing parents, as 0755
/// directories) when it does not exist. Returns the fd and whether the path already existed.
///
/// A dangling symlink on the way is followed (inside the root) and its target created, as runc's
/// securejoin-based code does; ".." after a missing component is refused.
pub fn open_or_create(
    root: BorrowedFd<'_>,
    path: &Path,
    create: Create,
    extra: ResolveFlag,
) -> Result<(OwnedFd, bool), Errno> {
    let mut path = path.to_path_buf();
    for _ in 0..MAX_HOPS {
        match open_in_root(root, &path, OFlag::O_PATH, extra) {
            Ok(fd) => return Ok((fd, true)),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let comps = parts(&path);
        if comps.is_empty() {
            return Err(Errno::ENOENT);
        }
        // The deepest ancestor that exists.
        let mut i = comps.len() - 1;
        let parent = loop {
            match open_in_root(
                root,
                &join(&comps[..i]),
                OFlag::O_PATH | OFlag::O_DIRECTORY,
                extra,
            ) {
                Ok(fd) => break fd,
                Err(Errno::ENOENT) if i > 0 => i -= 1,
                Err(e) => return Err(e),
            }
        };
        let rest = &comps[i..];
        if rest.iter().any(|c| c.as_bytes() == b"..") {
            return Err(Errno::ENOENT);
        }
        // The first missing component may be a dangling symlink: follow it, inside the root.
        match fstatat(
            parent.as_fd(),
            rest[0],
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK => {
                if extra.contains(ResolveFlag::RESOLVE_NO_SYMLINKS) {
                    return Err(Errno::ELOOP);
                }
                let target: OsString = readlinkat(parent.as_fd(), rest[0])?;
                let mut next = if Path::new(&target).is_absolute() {
                    PathBuf::from(&target)
                } else {
                    join(&comps[..i]).join(&target)
                };
                for c in &rest[1..] {
                    next.push(c);
                }
                path = next;
                continue;
            }
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let mut cur = parent;
        for (j, name) in rest.iter().enumerate() {
            let last = j + 1 == rest.len();
            if last && create == Create::File {
                let fd = nix::fcntl::openat(
                    cur.as_fd(),
                    *name,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC
                        | OFlag::O_RDONLY,
                    Mode::from_bits_truncate(0o644),
                )?;
                return Ok((fd, false));
            }
            match mkdirat(cur.as_fd(), *name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            cur = open_child(cur.as_fd(), name, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        }
        return Ok((cur, false));
    }
    Err(Errno::ELOOP)
}

/// Open (creating if needed) the parent directory of `path` inside `root`; returns it with the
/// final component's name.
pub fn open_parent(root: BorrowedFd<'_>, path: &Path) -> Result<(OwnedFd, OsString), Errno> {
    let comps = parts(path);
    let Some((name, dir)) = comps.split_last() else {
        return Err(Errno::EINVAL);
    };
    if name.as_bytes() == b".." {
        return Err(Errno::EINVAL);
    }
    let (fd, _) = open_or_create(root, &join(dir), Create::Dir, ResolveFlag::empty())?;
    Ok((fd, name.to_os_string()))
}

/// Lexically clean an absolute container path: "//dev/./" → "/dev", "/a/../b" → "/b".
pub fn clean(path: &Path) -> PathBuf {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    join(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
        assert_eq!(relative(Path::new("/dev/pts")), PathBuf::from("dev/pts"));
        assert_eq!(relative(Path::new("dev//pts/")), PathBuf::from("dev/pts"));
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean(Path::new("/dev/")), PathBuf::from("/dev"));
        assert_eq!(clean(Path::new("//dev/./")), PathBuf::from("/dev"));
        assert_eq!(clean(Path::new("/a/../../dev")), PathBuf::from("/dev"));
        assert_eq!(clean(Path::new("dev")), PathBuf::from("/dev"));
        assert_eq!(clean(Path::new("/")), PathBuf::from("/"));
    }

    #[test]
    fn parts_keep_dotdot() {
        let p = Path::new("/a/./b/../c");
        let v: Vec<&[u8]> = parts(p).iter().map(|s| s.as_bytes()).collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"..", b"c"]);
    }
}
