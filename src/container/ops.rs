//! Operations on a recorded container shared by start, kill, delete and run.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{sys_err, ContainerError};
use crate::hooks;
use crate::state::{self, ContainerDir, Saved, Status};
use crate::sys;

/// Wait until the process behind `pidfd` has exited (pidfds poll readable then), at most `limit`.
pub fn wait_exit(pidfd: &OwnedFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = left.as_millis().min(60_000) as u16;
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => return true,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Every process of the container (host pids): its cgroup's, or — rootless with no cgroup of
/// its own (nothing delegated) — every process in the init's pid namespace, found by the
/// namespace's inode (runc 1.1.5 fails there: "unable to get all container pids"). Without a
/// pid namespace of its own such a container's processes cannot be told apart: the init only.
pub fn pids(saved: &Saved) -> Result<Vec<i32>, ContainerError> {
    if !saved.cgroup.paths.is_empty() {
        return Ok(saved.cgroup.pids()?);
    }
    let ns_of = |pid: i32| std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok();
    if !saved.own_pid_ns || !state::process_alive(saved.pid, saved.start_time) {
        return Ok(vec![saved.pid].into_iter().filter(|p| *p > 0).collect());
    }
    let Some(init_ns) = ns_of(saved.pid) else {
        return Ok(Vec::new());
    };
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<i32> = std::fs::read_dir("/proc")
        .map_err(|e| ContainerError::Msg(format!("read /proc: {e}")))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| ns_of(*p).is_some_and(|m| m.ino() == init_ns.ino() && m.dev() == init_ns.dev()))
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Send `sig` to the init, or with `all` to every process of the container.
pub fn signal(saved: &Saved, sig: i32, all: bool) -> Result<(), ContainerError> {
    let Some(pidfd) = state::open_init(saved) else {
        return Err(ContainerError::Msg("container not running".into()));
    };
    if all {
        // Every process of the cgroup (cgroup.kill for SIGKILL where the kernel has it); a
        // frozen cgroup is thawed after a SIGKILL so that the signal lands.
        if saved.cgroup.paths.is_empty() {
            // Rootless without a cgroup: the processes of its pid namespace (see `pids`).
            let s = nix::sys::signal::Signal::try_from(sig).ok();
            for pid in pids(saved)? {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s);
            }
            return Ok(());
        }
        saved.cgroup.signal_all(sig)?;
        return Ok(());
    }
    if sig == libc::SIGKILL && saved.cgroup.is_frozen() {
        let _ = sys::pidfd_send_signal(pidfd.as_fd(), sig);
        saved.cgroup.set_frozen(false)?;
        return Ok(());
    }
    match sys::pidfd_send_signal(pidfd.as_fd(), sig) {
        Ok(()) => Ok(()),
        // runc's wording; containerd treats it as "already finished".
        Err(nix::errno::Errno::ESRCH) => Err(ContainerError::Msg("container not running".into())),
        Err(e) => Err(sys_err(format!("kill container {}", saved.id))(e)),
    }
}

/// Kill everything in the container with SIGKILL and wait until the init is gone.
pub fn kill_all_and_wait(saved: &Saved) -> Result<(), ContainerError> {
    let pidfd = state::open_init(saved);
    // Without a pid namespace of its own, the init's death does not take the others with it.
    let _ = signal(saved, libc::SIGKILL, !saved.own_pid_ns);
    if let Some(fd) = pidfd {
        if !wait_exit(&fd, Duration::from_secs(10)) {
            return Err(ContainerError::Msg(format!(
                "container {}: init (pid {}) did not exit 10s after SIGKILL",
                saved.id, saved.pid
            )));
        }
    }
    Ok(())
}

/// Tear down a container whose processes are gone: cgroup, poststop hooks, state directory.
/// Poststop failures are warnings (runtime-spec: the lifecycle continues).
pub fn destroy(dir: &ContainerDir, saved: &Saved) -> Result<(), ContainerError> {
    saved.cgroup.destroy()?;
    if let Some(poststop) = saved.hooks.as_ref().and_then(|h| h.poststop().as_ref()) {
        let st = hooks::state_json(
            &saved.oci_version,
            &saved.id,
            "stopped",
            0,
            &saved.bundle,
            &saved.annotations,
        );
        if let Err(e) = hooks::run_all("poststop", Some(poststop), &st, None) {
            crate::logging::warn(&e.to_string());
        }
    }
    dir.remove()?;
    Ok(())
}

/// Release a created container: write the byte its init waits for, then wait until the init
/// has exec'd the user's process (its copy of the fifo closes; we then see POLLERR), and run
/// the poststart hooks (runtime-spec: after the process started, before start returns).
pub fn start(dir: &ContainerDir, saved: &Saved) -> Result<(), ContainerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fifo_path = dir.fifo();
    let mut fifo = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
    {
        Ok(f) => f,
        // ENXIO: nobody holds the fifo for reading — the init is gone.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            let _ = std::fs::remove_file(&fifo_path);
            return Err(ContainerError::Msg(
                "cannot start a container that has stopped".into(),
            ));
        }
        Err(e) => {
            return Err(ContainerError::Msg(format!(
                "open {}: {e}",
                fifo_path.display()
            )))
        }
    };
    fifo.write_all(b"0")
        .map_err(|e| ContainerError::Msg(format!("write {}: {e}", fifo_path.display())))?;
    let _ = std::fs::remove_file(&fifo_path);
    // events = 0: wake only on POLLERR (no reader left: the init exec'd or died).
    let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::empty())];
    while let Err(nix::errno::Errno::EINTR) = poll(&mut fds, PollTimeout::from(30_000u16)) {}
    if state::process_alive(saved.pid, saved.start_time) {
        if let Some(poststart) = saved.hooks.as_ref().and_then(|h| h.poststart().as_ref()) {
            let st = hooks::state_json(
                &saved.oci_version,
                &saved.id,
                "running",
                saved.pid,
                &saved.bundle,
                &saved.annotations,
            );
            // runtime-spec 1.0–1.2: a failing poststart hook is logged as a warning and the
            // lifecycle continues. (1.3 makes it fatal; husk follows 1.2 until engines expect 1.3.)
            if let Err(e) = hooks::run_all("poststart", Some(poststart), &st, Some(&saved.bundle)) {
                crate::logging::warn(&e.to_string());
            }
        }
    }
    Ok(())
}

pub fn status_of(dir: &ContainerDir) -> Result<(Saved, Status), ContainerError> {
    let saved = dir.load()?;
    let status = dir.status(&saved);
    Ok((saved, status))
}
