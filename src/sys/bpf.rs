//! bpf(2): load a BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to a cgroup2 directory
//! (cgroup v2 has no devices.allow/deny files; device access is decided by such a program).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// One eBPF instruction, the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The prefix of `union bpf_attr` used by BPF_PROG_LOAD (the kernel accepts a shorter
/// attr than its own as long as the rest would be zero).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// Load a cgroup device program; on failure the verifier's log comes back with the errno.
pub fn load_cgroup_device_prog(insns: &[BpfInsn]) -> Result<OwnedFd, (Errno, String)> {
    // Without a log first (a verbose log of a big program overflows any small buffer and
    // fails the load with ENOSPC); with one only to explain a failure.
    match load(insns, None) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            let mut log = vec![0u8; 1 << 16];
            let _ = load(insns, Some(&mut log));
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
            // The verifier's last lines say what was wrong.
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            Err((e, tail.into_iter().rev().collect::<Vec<_>>().join("; ")))
        }
    }
}

fn load(insns: &[BpfInsn], log: Option<&mut Vec<u8>>) -> Result<OwnedFd, Errno> {
    let license = c"Apache";
    let (log_level, log_size, log_buf) = match log {
        Some(l) => (1, l.len() as u32, l.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        ..ProgLoadAttr::default()
    };
    // SAFETY: attr points at live, correctly laid-out memory (instructions, license string and
    // log buffer outlive the call); the kernel copies the program and writes at most log_size
    // bytes into the log. The returned fd is new and owned by us.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: bpf(BPF_PROG_LOAD) returned a new fd (with O_CLOEXEC set by the kernel).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attach `prog` to the cgroup2 directory `cgroup` (multi: a parent's program still applies).
pub fn attach_cgroup_device(cgroup: BorrowedFd, prog: BorrowedFd) -> Result<(), Errno> {
    let attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: attr is a valid bpf_attr prefix for BPF_PROG_ATTACH; both fds are borrowed and
    // stay open for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttachAttr,
            std::mem::size_of::<ProgAttachAttr>(),
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}
