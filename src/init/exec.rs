//! The child of `exec`: joins the container's namespaces and root, takes the process's
//! identity, and execs. The host side (`container::exec`) put it in the container's pid
//! namespace (setns before the fork) and its cgroup (before Go).
//!
//! ```text
//!   host                                   exec child (this file)
//!   open /proc/<init>/ns/*, root; fork ──► wait for Go
//!   cgroup join, Go ─────────────────────► setns user, then the others, mount last
//!                                          fchdir(root) + chroot(".")
//!                                          setsid, pty (console socket)
//!                                          rlimits, user, capabilities, cwd, args[0]
//!   channel closes at execve ◄──────────── close-on-exec every fd >= 3+N, execve
//! ```

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::Process;

use super::{sys_err, InitError};
use crate::capabilities::Sets;
use crate::channel::{Channel, Msg};
use crate::process::{self, ProcessError};
use crate::sys;

/// A namespace of the container to join: its flag, an open /proc/<init>/ns/<name>, its name.
pub struct NsFd {
    pub flag: CloneFlags,
    pub fd: OwnedFd,
    pub name: &'static str,
}

pub struct ExecInit<'a> {
    pub chan: Channel,
    /// In setns order: user first, mount last; pid is not here (the host joined it for us).
    pub ns: Vec<NsFd>,
    /// /proc/<init>/root, opened before joining the mount namespace.
    pub root: OwnedFd,
    pub process: &'a Process,
    pub caps: Sets,
    /// The console socket (or husk's own end) to send the pty master to.
    pub console: Option<OwnedFd>,
    /// fds 3 .. 3+extra_fds reach the process.
    pub extra_fds: u32,
    pub extra_env: Vec<String>,
    /// The container's `linux.seccomp` filter: an exec'd process is confined like the init.
    /// With SCMP_ACT_NOTIFY its listener fd goes to the host over `chan` (SeccompFd), which
    /// passes it to the agent at listenerPath, as the init's does.
    pub seccomp: Option<crate::seccomp::Program>,
    /// The process's AppArmor profile / SELinux label (checked against the host already).
    pub labels: crate::lsm::Labels,
    /// Whether the container's user namespace allows setgroups, read by the host from the
    /// init's /proc entry: after the chroot, /proc is the container's and may lie.
    pub may_setgroups: bool,
}

pub fn run(e: ExecInit) -> ! {
    let err = match setup_and_exec(&e) {
        Ok(never) => match never {},
        Err(err) => err,
    };
    let _ = e.chan.send(&Msg::Error(err.to_string()));
    sys::exit_now(1)
}

fn setup_and_exec(e: &ExecInit) -> Result<Infallible, InitError> {
    let proc_ = e.process;
    // As the init: die with exec until the execve, and keep the container's processes from
    // reaching our memory or /proc/self/exe while we run husk's code (CVE-2019-5736).
    sys::set_parent_death_signal(libc::SIGKILL).map_err(sys_err("prctl(PR_SET_PDEATHSIG)"))?;
    sys::set_dumpable(false).map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;
    e.chan.expect(Msg::Go)?;

    // Labels are written through a private procfs of the container's pid namespace (we were
    // forked into it), made before we join its user namespace: the container's /proc may be
    // covered or fake (CVE-2019-16884, CVE-2025-52881). Only when there is a label to write.
    let procfs = if e.labels.apparmor.is_some() || e.labels.selinux.is_some() {
        Some(crate::procfs::Proc::open().map_err(sys_err("open a private procfs"))?)
    } else {
        None
    };

    for ns in &e.ns {
        setns(ns.fd.as_fd(), ns.flag).map_err(sys_err(format!(
            "join the container's {} namespace",
            ns.name
        )))?;
    }
    // The mount namespace's root need not be the container's (--no-pivot chroots): take the
    // init's root as it is.
    nix::unistd::fchdir(e.root.as_fd()).map_err(sys_err("fchdir to the container's root"))?;
    nix::unistd::chroot(".").map_err(sys_err("chroot to the container's root"))?;
    nix::unistd::chdir("/").map_err(sys_err("chdir /"))?;
    nix::unistd::setsid().map_err(sys_err("setsid"))?;
    if let Some(sock) = &e.console {
        let size = proc_
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        crate::terminal::setup(sock.as_fd(), size, false)?;
    }

    process::apply_rlimits(proc_)?;
    if let Some(procfs) = &procfs {
        crate::lsm::apply_labels(&e.labels, procfs)?;
    }
    // seccomp as in the init: without no_new_privs the filter needs CAP_SYS_ADMIN, so it is
    // loaded before the capabilities are dropped; with it, last before execve.
    let nnp = proc_.no_new_privileges().unwrap_or(false);
    let may_setgroups = e.may_setgroups;
    let super::Exec { path, args, env } =
        super::become_process(proc_, &e.caps, &e.extra_env, may_setgroups, || {
            if nnp {
                Ok(())
            } else {
                load_seccomp(e)
            }
        })?;

    // Only stdio and the preserved fds cross into the container (CVE-2024-21626); the channel
    // closes at the execve itself, which tells the host the exec happened.
    sys::cloexec_fds_from(3 + e.extra_fds).map_err(sys_err("close_range"))?;
    // The process outlives a detached exec: no death signal past the execve.
    sys::set_parent_death_signal(0).map_err(sys_err("prctl(PR_SET_PDEATHSIG)"))?;
    if nnp {
        sys::set_no_new_privs().map_err(sys_err("prctl(PR_SET_NO_NEW_PRIVS)"))?;
        load_seccomp(e)?;
    }
    let err = sys::execve(&path, &args, &env);
    Err(ProcessError::Exec {
        path: path.to_string_lossy().into_owned(),
        source: err,
    }
    .into())
}

/// Load the container's filter; for SCMP_ACT_NOTIFY, hand the listener fd to the host and wait
/// until it has passed it on (as the init does, and runc for exec).
fn load_seccomp(e: &ExecInit) -> Result<(), InitError> {
    use std::os::fd::AsRawFd;
    let Some(program) = &e.seccomp else {
        return Ok(());
    };
    if let Some(fd) = program.load()? {
        e.chan.send_with_fds(&Msg::SeccompFd, &[fd.as_raw_fd()])?;
        drop(fd);
        e.chan.expect(Msg::SeccompDone)?;
    }
    Ok(())
}
