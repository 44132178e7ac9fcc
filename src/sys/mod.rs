//! The few thin `unsafe` wrappers husk needs where `nix` has no safe API: clone3, pidfds,
//! close_range, prctl bits, and the new mount API (in `mount.rs`). Nothing else in the crate
//! may use `unsafe`; every block here says why it is sound.

pub mod bpf;
pub mod mount;
pub mod seccomp;

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// What `clone3` returned in the calling process.
pub enum Forked {
    /// We are the new child.
    Child,
    /// We are the parent: the child's pid (in our pid namespace) and, when asked, its pidfd.
    Parent { pid: Pid, pidfd: Option<OwnedFd> },
}

// The kernel's `struct clone_args` (linux/sched.h), version 2 (with cgroup).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Like fork(2), but with namespace flags, an optional pidfd and an optional cgroup to be born in.
///
/// The caller must be single-threaded (husk is until the container process execs): the child
/// is a copy of this one thread, so locks held by other threads cannot exist.
/// Falls back to `clone(2)`-equivalent semantics when clone3 is not available (ENOSYS) or
/// refuses CLONE_INTO_CGROUP (older kernels, cgroup v1): the caller then moves the child itself.
pub fn clone3(
    ns_flags: u64,
    want_pidfd: bool,
    cgroup: Option<BorrowedFd<'_>>,
) -> Result<Forked, Errno> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: ns_flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if want_pidfd {
        args.flags |= CLONE_PIDFD;
        args.pidfd = &mut pidfd as *mut RawFd as u64;
    }
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork(2): the child gets a
    // copy-on-write copy of this (single-threaded) address space and returns here with 0. `args`
    // and `pidfd` outlive the call; the kernel writes the pidfd into `pidfd` before returning.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: Pid::from_raw(pid as i32),
            // SAFETY: on success with CLONE_PIDFD the kernel stored a new, owned fd here.
            pidfd: (want_pidfd && pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
        }),
    }
}

/// Plain fork(2) for the rare second fork (joining a pid namespace, exec) and hook runners.
#[cfg_attr(not(test), allow(dead_code))] // the rootfs tests; exec will use it
pub fn fork() -> Result<Forked, Errno> {
    // SAFETY: husk is single-threaded whenever it forks (see DESIGN §2), so the child's copy of
    // the address space is consistent and it may allocate.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent {
            pid: child,
            pidfd: None,
        }),
    }
}

/// pidfd_open(2): a handle on a process that cannot be confused with a later one reusing its pid.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall with integer arguments; on success it returns a new fd we own.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> Result<(), Errno> {
    // SAFETY: integer arguments and a null siginfo, which the kernel accepts.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Close every fd >= `first` (close_range(2)); falls back to walking /proc/self/fd.
pub fn close_fds_from(first: u32) -> Result<(), Errno> {
    // SAFETY: closing fds we are about to lose on execve anyway; no Rust object owning one of them
    // is used after this call (the init calls it right before execve).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    if ret == 0 {
        return Ok(());
    }
    // Old kernels: mark them close-on-exec one by one.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| Errno::EBADF)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as i32)
        .collect();
    for fd in fds {
        let _ = nix::fcntl::fcntl(
            // SAFETY: fd was listed as open a moment ago; fcntl on a closed fd just fails.
            unsafe { BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    Ok(())
}

fn prctl(op: i32, arg: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: the prctl operations used here take integer arguments only.
    let ret = unsafe { libc::prctl(op, arg, 0, 0, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// PR_SET_DUMPABLE: 0 keeps other processes in the container from ptrace-attaching to, or
/// opening /proc/<pid>/exe of, the init while it still runs husk's code (CVE-2019-5736 class).
pub fn set_dumpable(on: bool) -> Result<(), Errno> {
    prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong)
}

/// PR_SET_KEEPCAPS: keep the permitted set across the setuid to the container user.
pub fn set_keepcaps(on: bool) -> Result<(), Errno> {
    prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong)
}

/// PR_SET_NO_NEW_PRIVS.
pub fn set_no_new_privs() -> Result<(), Errno> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes (1, 0, 0, 0).
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// PR_SET_PDEATHSIG: the init dies with its creator while create has not finished.
pub fn set_parent_death_signal(sig: i32) -> Result<(), Errno> {
    prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong)
}

/// PR_SET_CHILD_SUBREAPER for foreground `run`.
pub fn set_child_subreaper() -> Result<(), Errno> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1)
}

/// umask(2) (nix's wrapper takes a Mode that cannot hold arbitrary bits).
pub fn set_umask(mask: u32) {
    // SAFETY: umask cannot fail and takes an integer.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// setgroups(2) without nix's length checks.
pub fn setgroups(gids: &[u32]) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe a live slice of gid_t (u32).
    let ret = unsafe { libc::setgroups(gids.len(), gids.as_ptr()) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// execve(2): only returns on failure.
pub fn execve(path: &CString, args: &[CString], env: &[CString]) -> Errno {
    match nix::unistd::execve(path, args, env) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// Take ownership of an fd the kernel just handed us (SCM_RIGHTS).
pub fn owned_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: only called on fds received by recvmsg, which nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// _exit(2): leave without running any destructor or atexit handler (the init after a failed
/// setup, and forked children, must not flush state that belongs to the parent).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// setdomainname(2) (not in nix).
pub fn setdomainname(name: &str) -> Result<(), Errno> {
    // SAFETY: pointer and length describe a live byte slice.
    let ret = unsafe { libc::setdomainname(name.as_ptr() as *const libc::c_char, name.len()) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): every fd >= `first` closes at execve, so a
/// channel stays open until the exec itself (its closing tells the host the exec happened) and
/// no host fd reaches the container process (CVE-2024-21626).
pub fn cloexec_fds_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: integer arguments; only sets the close-on-exec flag of fds.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret == 0 {
        return Ok(());
    }
    close_fds_from(first)
}

/// A terminal's window size (rows, columns).
pub fn get_winsize(fd: BorrowedFd<'_>) -> Result<(u16, u16), Errno> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize through the pointer, which is live.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok((ws.ws_row, ws.ws_col))
}

/// TIOCSWINSZ.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), Errno> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize through the pointer, which is live.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Unlock a pty master (TIOCSPTLCK 0) and open its slave through the master (TIOCGPTPEER), so
/// the slave is never looked up by a path the container could have replaced.
pub fn open_pty_peer(master: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which is live.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(Errno::last());
    }
    // SAFETY: TIOCGPTPEER takes open flags as an integer and returns a new fd we then own.
    let ret = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// TIOCSCTTY: make the terminal on `fd` our controlling terminal (we are a session leader).
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// memfd_create(2).
pub fn memfd_create(name: &std::ffi::CStr, flags: libc::c_uint) -> Result<OwnedFd, Errno> {
    // SAFETY: name is a live NUL-terminated string; on success a new fd is returned.
    let ret = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// fexecve(2): only returns on failure.
pub fn fexecve(fd: BorrowedFd<'_>, args: &[CString], env: &[CString]) -> Errno {
    match nix::unistd::fexecve(fd, args, env) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// malloc_trim(0): give the heap's free pages back to the kernel (glibc madvises every free
/// page away, not only the top). Memory only, no behaviour: husk calls it where a burst of
/// short-lived allocations is over (after argument parsing; in the init before it blocks
/// waiting for `start`), so that they stop counting in the process's RSS (issue 7).
pub fn malloc_trim() {
    // SAFETY: malloc_trim only reorganises malloc's own free lists; no pointer we hold is
    // affected. husk is single-threaded wherever it is called.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Give back the main stack's pages below the caller's frame: deep call chains that are over
/// (clap's derived parser alone has a 60 KiB frame) leave them resident. Memory only: nothing
/// live is below the stack pointer. Must not be inlined, so that its own frame (and the
/// madvise call's) sits above the released range, with a margin of two pages.
#[inline(never)]
pub fn release_stack_below() {
    const PAGE: usize = 4096;
    const SPAN: usize = 512 * 1024;
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let top = (here & !(PAGE - 1)).saturating_sub(2 * PAGE);
    let bottom = top.saturating_sub(SPAN);
    // SAFETY: [bottom, top) lies below every live frame of this (single-threaded) process's
    // current stack: it is either unused stack, whose contents are dead, or the stack guard gap
    // below the stack mapping, where the kernel lets no other mapping live (stack_guard_gap,
    // 1 MiB ≥ SPAN); MADV_DONTNEED on an unmapped part only yields ENOMEM, ignored. A page
    // touched again later is a fresh zero page, as untouched stack is.
    unsafe {
        libc::madvise(
            bottom as *mut libc::c_void,
            top - bottom,
            libc::MADV_DONTNEED,
        );
    }
}
