//! CVE-2019-5736: a process in the container could open husk's own binary through
//! /proc/<pid>/exe of a husk process (create's init, exec's child) and overwrite it once husk
//! exits, so that the next runtime call on the host runs the attacker's code as root.
//!
//! As runc does, `create`, `run` and `exec` run from a sealed in-memory copy of the binary:
//! at startup, unless /proc/self/exe is already a memfd sealed against writes, husk copies
//! itself into a memfd, seals it, and fexecve()s it with the same argv and environment.
//! /proc/<pid>/exe then names the sealed copy, which cannot be written, and the file on disk
//! is never reachable from the container.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};

const SEALS: SealFlag = SealFlag::from_bits_truncate(
    SealFlag::F_SEAL_SEAL.bits()
        | SealFlag::F_SEAL_SHRINK.bits()
        | SealFlag::F_SEAL_GROW.bits()
        | SealFlag::F_SEAL_WRITE.bits(),
);

/// The commands whose processes a container can see.
fn needs_clone(args: &[std::ffi::OsString]) -> bool {
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

/// Re-exec from a sealed copy if needed. Returns only when no re-exec happened (not needed, or
/// it failed: then husk refuses to go on for these commands, as runc does).
pub fn ensure() -> Result<(), String> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if !needs_clone(&args) {
        return Ok(());
    }
    let mut exe = File::open("/proc/self/exe").map_err(|e| format!("open /proc/self/exe: {e}"))?;
    if is_sealed_copy(&exe) {
        return Ok(());
    }
    let memfd = crate::sys::memfd_create(
        c"husk-cloned-binary",
        libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
    )
    .map_err(|e| format!("memfd_create: {e}"))?;
    let mut copy = File::from(memfd);
    // std's copy uses copy_file_range/sendfile between files.
    std::io::copy(&mut exe, &mut copy).map_err(|e| format!("copy /proc/self/exe: {e}"))?;
    fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(SEALS)).map_err(|e| format!("seal memfd: {e}"))?;
    let argv: Vec<CString> = args
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let err = crate::sys::fexecve(copy.as_fd(), &argv, &env);
    Err(format!("fexecve of the sealed copy of husk: {err}"))
}
