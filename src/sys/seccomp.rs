//! Loading a compiled seccomp BPF program with seccomp(2) directly, so that husk can pass any
//! filter flag the kernel has (libseccomp 2.5 lacks WAIT_KILLABLE_RECV) and load a program
//! taken from the on-disk cache without recompiling it.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

pub const SECCOMP_SET_MODE_FILTER: u32 = 1;
pub const FLAG_LOG: u32 = 1 << 1;
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// The kernel's `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const u8,
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). `bpf` is an array of `struct sock_filter`
/// (8 bytes each) in native byte order, as libseccomp's `seccomp_export_bpf` writes it.
/// With FLAG_NEW_LISTENER the kernel returns the notify fd, which is returned here.
pub fn set_filter(bpf: &[u8], flags: u32) -> Result<Option<OwnedFd>, Errno> {
    if bpf.is_empty() || !bpf.len().is_multiple_of(8) || bpf.len() / 8 > u16::MAX as usize {
        return Err(Errno::EINVAL);
    }
    // sock_filter has 4-byte alignment (its `k` is a u32); copy into a u32-aligned buffer.
    let mut words = vec![0u32; bpf.len() / 4];
    for (w, chunk) in words.iter_mut().zip(bpf.chunks_exact(4)) {
        *w = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    let prog = SockFprog {
        len: (bpf.len() / 8) as u16,
        filter: words.as_ptr() as *const u8,
    };
    // SAFETY: `prog` points at `words`, a live, aligned array of `len` sock_filter records;
    // both outlive the call, and the kernel copies the program before returning.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const SockFprog,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    if flags & FLAG_NEW_LISTENER != 0 {
        // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returned a new fd we own.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }));
    }
    Ok(None)
}
