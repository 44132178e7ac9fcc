//! Wrappers for the new mount API (open_tree, move_mount, mount_setattr, fsopen/fsconfig/fsmount)
//! and the few raw calls `rootfs` needs that nix does not wrap the way we need them (fstatfs with
//! the mount flags). Owned by the rootfs work.
//!
//! Every function takes and returns owned or borrowed fds, never paths inside the container: the
//! caller resolves paths with `openat2(RESOLVE_IN_ROOT)` and hands us the fd.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

const OPEN_TREE_CLONE: u32 = 0x1;
const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const FSOPEN_CLOEXEC: u32 = 0x1;
const FSMOUNT_CLOEXEC: u32 = 0x1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;
/// Idmap the mount with the user namespace in `MountAttr::userns_fd` (Linux 5.12).
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// The kernel's `struct mount_attr` (linux/mount.h), MOUNT_ATTR_SIZE_VER0.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    /// One of MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_UNBINDABLE, or 0 for "leave it".
    pub propagation: u64,
    pub userns_fd: u64,
}

fn fd_result(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the syscall succeeded and returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

fn unit_result(ret: libc::c_long) -> Result<(), Errno> {
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

fn cstring(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

/// open_tree(fd, "", OPEN_TREE_CLONE | AT_EMPTY_PATH [| AT_RECURSIVE]): a detached copy of the
/// mount (tree) at `fd`, like a bind mount that is not attached anywhere yet.
pub fn clone_tree(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: the path is a static NUL-terminated empty string; the fd is borrowed for the call;
    // on success the kernel returns a new fd.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    fd_result(ret)
}

/// move_mount(from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH): attach the
/// (detached or attached) mount `from` on top of whatever `to` refers to.
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: both paths are static empty C strings, both fds are borrowed for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    unit_result(ret)
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr).
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> Result<(), Errno> {
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: `attr` is a live #[repr(C)] struct of exactly the size we pass (VER0, 32 bytes);
    // the kernel only reads it. The path is a static empty C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    unit_result(ret)
}

/// fsopen(fstype, FSOPEN_CLOEXEC): a filesystem context to configure with [`fsconfig_string`] etc.
pub fn fsopen(fstype: &str) -> Result<OwnedFd, Errno> {
    let name = cstring(fstype)?;
    // SAFETY: `name` is a live NUL-terminated string for the duration of the call.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
    fd_result(ret)
}

/// fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0).
pub fn fsconfig_string(fd: BorrowedFd<'_>, key: &str, value: &str) -> Result<(), Errno> {
    let key = cstring(key)?;
    let value = cstring(value)?;
    // SAFETY: key and value are live NUL-terminated strings; the fd is borrowed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    unit_result(ret)
}

/// fsconfig(fd, FSCONFIG_SET_FLAG, key, NULL, 0), e.g. "ro".
pub fn fsconfig_flag(fd: BorrowedFd<'_>, key: &str) -> Result<(), Errno> {
    let key = cstring(key)?;
    // SAFETY: key is a live NUL-terminated string; a null value is what SET_FLAG requires.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    unit_result(ret)
}

/// fsconfig(fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0): create the superblock.
pub fn fsconfig_create(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: CMD_CREATE takes no pointers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    unit_result(ret)
}

/// fsmount(fd, FSMOUNT_CLOEXEC, attr_flags): a detached mount of the created superblock.
pub fn fsmount(fd: BorrowedFd<'_>, attr_flags: u64) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments only; on success a new fd is returned.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fd.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attr_flags,
        )
    };
    fd_result(ret)
}

/// What `fstatfs` says about the filesystem and the mount an fd lives on.
#[derive(Debug, Clone, Copy)]
pub struct FsInfo {
    /// `f_type`, e.g. PROC_SUPER_MAGIC.
    pub fs_type: i64,
    /// `f_flags`: ST_RDONLY, ST_NOSUID, ... (the mount's flags, see calculate_f_flags()).
    pub flags: u64,
}

/// fstatfs(2), returning the type and the mount flags (nix hides `f_flags` on some targets).
pub fn fstatfs(fd: BorrowedFd<'_>) -> Result<FsInfo, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::statfs64>::zeroed();
    // SAFETY: `st` is a properly sized, writable buffer for the kernel to fill.
    let ret = unsafe { libc::fstatfs64(fd.as_raw_fd(), st.as_mut_ptr()) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fstatfs64 succeeded, so the buffer is initialised (it was zeroed anyway).
    let st = unsafe { st.assume_init() };
    // The field types differ between architectures (`__fsword_t`), hence the casts.
    #[allow(clippy::unnecessary_cast)]
    Ok(FsInfo {
        fs_type: st.f_type as i64,
        flags: st.f_flags as u64,
    })
}
