//! The init's one trusted procfs handle for its own writes under /proc (sysctls, LSM
//! labels; oom_score_adj is written by the host side): a private, detached procfs instance made with fsopen/fsmount,
//! which no mount in the container's tree can cover, walked with openat2 so that no
//! symlink, magic link or mount crossing can redirect the write (CVE-2025-52881, where
//! writes to the container's /proc were redirected by overmounts to other procfs files;
//! CVE-2019-16884 for labels). The walk uses `<pid>/task/<tid>` rather than the `self`
//! symlink.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::sys::mount as api;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

pub struct Proc {
    root: OwnedFd,
}

impl Proc {
    /// A new procfs instance of the caller's pid namespace. Call it before masked paths cover
    /// the container's /proc (inside a user namespace the kernel only allows a new procfs
    /// while a fully visible one exists in the mount namespace).
    pub fn open() -> Result<Proc, Errno> {
        let ctx = api::fsopen("proc")?;
        api::fsconfig_create(ctx.as_fd())?;
        let root = api::fsmount(
            ctx.as_fd(),
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        )?;
        if api::fstatfs(root.as_fd())?.fs_type != PROC_SUPER_MAGIC {
            return Err(Errno::EXDEV);
        }
        Ok(Proc { root })
    }

    /// Open `rel` (relative to the procfs root, no `self`) for writing, every component
    /// resolved inside this procfs mount without following any link.
    fn open_write(&self, rel: &str) -> Result<std::fs::File, Errno> {
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .mode(Mode::empty())
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_XDEV
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_SYMLINKS,
            );
        let fd = openat2(self.root.as_fd(), rel, how)?;
        if api::fstatfs(fd.as_fd())?.fs_type != PROC_SUPER_MAGIC {
            return Err(Errno::EXDEV);
        }
        Ok(fd.into())
    }

    /// Write `data` in one write(2) to `/proc/<rel>`.
    pub fn write(&self, rel: &str, data: &[u8]) -> std::io::Result<()> {
        let mut f = self.open_write(rel)?;
        f.write_all(data)
    }

    /// `/proc/thread-self/<rel>`, spelled without links.
    pub fn write_thread_self(&self, rel: &str, data: &[u8]) -> std::io::Result<()> {
        self.write(
            &format!(
                "{}/task/{}/{rel}",
                std::process::id(),
                nix::unistd::gettid()
            ),
            data,
        )
    }
}
