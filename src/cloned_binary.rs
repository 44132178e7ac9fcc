//! CVE-2019-5736: a process in the container could open husk's own binary through
//! /proc/<pid>/exe of a husk process (create's init, exec's child) and overwrite it once husk
//! exits, so that the next runtime call on the host runs the attacker's code as root.
//!
//! So `create`, `run` and `exec` never run from a writable binary: at startup, unless that is
//! already the case, husk re-executes itself from a copy /proc/<pid>/exe cannot be written
//! through, with the same argv and environment. Two ways, the cheap one first:
//!
//! 1. A read-only, detached bind mount of the binary (as crun does; runc 1.1 did the same with
//!    an attached mount): `open_tree(OPEN_TREE_CLONE)` of /proc/self/exe, `mount_setattr`
//!    `MOUNT_ATTR_RDONLY`, `execveat` of that fd. /proc/<pid>/exe then names the file through a
//!    read-only mount, so opening it (or reopening an fd on it through /proc/self/fd) for writing
//!    fails with EROFS. The mount is never attached anywhere: it appears in no mount table (no
//!    mount event for systemd or anyone else), no process can remount it (mount_setattr needs
//!    the mount in, or cloned from, the caller's mount namespace), and it goes away with the
//!    last process that runs from it. It costs three syscalls instead of a copy of the binary,
//!    and the page cache is the binary's own (issue 7, docs/performance.md). Needs
//!    CAP_SYS_ADMIN in the current mount namespace's user namespace and Linux 5.12.
//! 2. Otherwise (rootless, older kernels), a memfd copy of the binary sealed against writes
//!    (`F_SEAL_SEAL|SHRINK|GROW|WRITE`), fexecve()d, as runc does.
//!
//! "Already the case" is: /proc/self/exe is a sealed memfd (nothing can write it, whoever made
//! it), or the environment carries [`CLONED_ENV`], which only step 1 sets, and /proc/self/exe
//! really is on a read-only mount. The variable is removed at once, so nothing husk starts
//! inherits it.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};

use crate::sys::mount::{self as sysmount, MountAttr, MOUNT_ATTR_RDONLY};

const SEALS: SealFlag = SealFlag::from_bits_truncate(
    SealFlag::F_SEAL_SEAL.bits()
        | SealFlag::F_SEAL_SHRINK.bits()
        | SealFlag::F_SEAL_GROW.bits()
        | SealFlag::F_SEAL_WRITE.bits(),
);

/// Set for the re-executed husk when it runs from a read-only mount of itself (step 1).
const CLONED_ENV: &str = "_HUSK_CLONED_BINARY";

/// The commands whose processes a container can see.
fn needs_clone(args: &[OsString]) -> bool {
    // The first non-option word is the command (global options take a value only with '=' or
    // as the next word; a value equal to a command name merely costs one re-exec).
    args.iter()
        .skip(1)
        .any(|a| matches!(a.as_bytes(), b"create" | b"run" | b"exec"))
}

fn is_sealed_copy(exe: &File) -> bool {
    match fcntl(exe.as_fd(), FcntlArg::F_GET_SEALS) {
        Ok(bits) => SealFlag::from_bits_truncate(bits).contains(SEALS),
        Err(_) => false,
    }
}

fn is_read_only_mount(fd: BorrowedFd<'_>) -> bool {
    sysmount::fstatfs(fd).is_ok_and(|st| st.flags & libc::ST_RDONLY != 0)
}

/// Re-exec from a copy that cannot be written, if needed. Returns only when no re-exec happened
/// (not needed, or every way failed: then husk refuses to go on for these commands, as runc
/// does).
pub fn ensure() -> Result<(), String> {
    let marked = std::env::var_os(CLONED_ENV).is_some();
    if marked {
        // Single-threaded here (the first thing main does): nothing reads the environment
        // concurrently.
        std::env::remove_var(CLONED_ENV);
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    if !needs_clone(&args) {
        return Ok(());
    }
    let mut exe = File::open("/proc/self/exe").map_err(|e| format!("open /proc/self/exe: {e}"))?;
    if is_sealed_copy(&exe) || (marked && is_read_only_mount(exe.as_fd())) {
        return Ok(());
    }
    let argv: Vec<CString> = args
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();

    // 1. A read-only detached bind mount of the binary. Any failure: fall back to the copy.
    if let Ok(mnt) = sysmount::clone_tree(exe.as_fd(), false) {
        let ro = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            ..MountAttr::default()
        };
        // Exec from it only once the kernel confirms the mount is read-only.
        if sysmount::mount_setattr(mnt.as_fd(), false, &ro).is_ok()
            && is_read_only_mount(mnt.as_fd())
        {
            env.push(CString::new(format!("{CLONED_ENV}=1")).map_err(|e| e.to_string())?);
            // Only returns on failure.
            let _ = crate::sys::fexecve(mnt.as_fd(), &argv, &env);
            env.pop();
        }
    }

    // 2. A sealed memfd copy.
    let memfd = crate::sys::memfd_create(
        c"husk-cloned-binary",
        libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
    )
    .map_err(|e| format!("memfd_create: {e}"))?;
    let mut copy = File::from(memfd);
    // std's copy uses copy_file_range/sendfile between files.
    std::io::copy(&mut exe, &mut copy).map_err(|e| format!("copy /proc/self/exe: {e}"))?;
    fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(SEALS)).map_err(|e| format!("seal memfd: {e}"))?;
    let err = crate::sys::fexecve(copy.as_fd(), &argv, &env);
    Err(format!("fexecve of the sealed copy of husk: {err}"))
}
