//! `husk run [-d] [--keep] [create's flags] ID`: create, start and (unless detached) wait,
//! forward signals, reap, delete, and exit with the container's status (128+N if killed by N).

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::Ctx;
use crate::cli::RunArgs;
use crate::container::{create, ops};
use crate::error::{Error, Result};

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<()> {
    if !a.detach && !a.no_subreaper {
        // Orphans of the container (without a pid namespace of its own) come to us to be reaped.
        crate::sys::set_child_subreaper()
            .map_err(|e| Error::msg(format!("prctl(PR_SET_CHILD_SUBREAPER): {e}")))?;
    }
    let created = create::create(&ctx.root, &a.id, &a.opts)?;
    let pid = Pid::from_raw(created.saved.pid);
    // Every signal but the ones that cannot be caught goes to the container's init; blocked
    // here (after the clone, so the init does not inherit the mask) and read from a signalfd.
    let mut mask = SigSet::all();
    mask.remove(Signal::SIGKILL);
    mask.remove(Signal::SIGSTOP);
    let sfd = if a.detach {
        None
    } else {
        mask.thread_block()
            .map_err(|e| Error::msg(format!("sigprocmask: {e}")))?;
        Some(
            SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
                .map_err(|e| Error::msg(format!("signalfd: {e}")))?,
        )
    };
    let started = {
        let _lock = created.dir.lock()?;
        ops::start(&created.dir, &created.saved)
    };
    if let Err(e) = started {
        let _ = ops::kill_all_and_wait(&created.saved);
        let _ = waitpid(pid, None);
        let _ = ops::destroy(&created.dir, &created.saved);
        return Err(e.into());
    }
    let Some(sfd) = sfd else { return Ok(()) };

    let status = loop {
        if let Some(code) = reap(pid) {
            break code;
        }
        let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::msg(format!("poll: {e}"))),
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            let sig = info.ssi_signo as i32;
            if sig != libc::SIGCHLD {
                let _ = nix::sys::signal::kill(pid, Signal::try_from(sig).ok());
            }
        }
    };
    if !a.keep {
        let _lock = created.dir.lock()?;
        let (saved, _) = ops::status_of(&created.dir)?;
        // Whatever the init left behind (without a pid namespace) dies with the container.
        let _ = ops::kill_all_and_wait(&saved);
        ops::destroy(&created.dir, &saved)?;
    }
    Err(Error::Exit(status))
}

/// Reap every exited child; the init's exit becomes the status to return.
fn reap(init: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == init => result = Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == init => result = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => continue,
        }
    }
}
