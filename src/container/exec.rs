//! The host side of `exec`: check the container, open its namespaces and root, fork a child
//! into its pid namespace, put the child in its cgroup, and either return once the child has
//! exec'd (`--detach`) or supervise it to its exit status.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use super::{sys_err, ContainerError};
use crate::capabilities::Sets;
use crate::channel::{self, ChannelError, Msg};
use crate::init::exec::{ExecInit, NsFd};
use crate::state::{self, ContainerDir, Status};
use crate::sys::{self, Forked};
use crate::terminal::{self, Relay};

pub struct ExecOpts<'a> {
    pub process: Process,
    pub console_socket: Option<&'a Path>,
    pub detach: bool,
    pub pid_file: Option<&'a Path>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup`: controller ("" = all) → sub-cgroup of the container's (cgroups/sub.rs).
    pub sub_cgroups: std::collections::BTreeMap<String, String>,
}

fn msg(s: impl Into<String>) -> ContainerError {
    ContainerError::Msg(s.into())
}

/// The namespaces an exec joins, in setns order (user first: it grants the rights for the
/// rest; mount last). pid is joined by the host for the fork.
const NAMESPACES: [(&str, CloneFlags); 6] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Open /proc/<pid>/ns/<name> unless it is the namespace we are in already (setns into one's
/// own user namespace fails, and the others would be no-ops).
fn open_ns(pid: i32, name: &'static str) -> Result<Option<OwnedFd>, ContainerError> {
    let theirs = format!("/proc/{pid}/ns/{name}");
    let mine = format!("/proc/self/ns/{name}");
    let file = std::fs::File::open(&theirs).map_err(|e| msg(format!("open {theirs}: {e}")))?;
    let a = file
        .metadata()
        .map_err(|e| msg(format!("stat {theirs}: {e}")))?;
    match std::fs::metadata(&mine) {
        Ok(b) if a.ino() == b.ino() && a.dev() == b.dev() => Ok(None),
        _ => Ok(Some(file.into())),
    }
}

/// Run an exec. Returns the process's exit status (0 when detached).
pub fn exec(root: &Path, id: &str, o: ExecOpts) -> Result<i32, ContainerError> {
    let dir = ContainerDir::new(root, id)?;
    let saved = dir.load()?;
    // runc's texts.
    match dir.status(&saved) {
        Status::Stopped => return Err(msg("cannot exec in a stopped container")),
        Status::Paused if !o.ignore_paused => {
            return Err(msg(
                "cannot exec in a paused container (use --ignore-paused to override)",
            ))
        }
        _ => {}
    }
    let terminal = o.process.terminal().unwrap_or(false);
    if terminal && o.detach && o.console_socket.is_none() {
        return Err(msg(
            "cannot allocate tty if runc will detach without setting console socket",
        ));
    }
    if !terminal && o.console_socket.is_some() {
        return Err(msg(
            "cannot use console socket if runc will not detach or allocate tty",
        ));
    }
    let caps = Sets::from_spec(o.process.capabilities().as_ref())?;
    // The same checks as create: a label the host cannot apply is refused before anything
    // runs (runc fails too: apparmor at the write, SELinux with this text).
    let labels = crate::lsm::for_process(&o.process);
    labels.check(crate::lsm::Host::detect())?;
    let (seccomp, oci_version) = container_seccomp(root, &saved.bundle)?;
    let listener = seccomp.as_ref().and_then(|p| p.listener.clone());
    // "deny" in a user namespace made for an unprivileged caller (userns.rs).
    let may_setgroups = std::fs::read_to_string(format!("/proc/{}/setgroups", saved.pid))
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);

    let pid = saved.pid;
    let mut ns = Vec::new();
    for (name, flag) in NAMESPACES {
        if let Some(fd) = open_ns(pid, name)? {
            ns.push(NsFd { flag, fd, name });
        }
    }
    let pidns = open_ns(pid, "pid")?;
    let root_path = format!("/proc/{pid}/root");
    let root_fd = open(
        root_path.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys_err(format!("open {root_path}")))?;
    // Checked after opening: if the start time still matches, every handle is of our init
    // and not of a process that reused its pid.
    if !state::process_alive(saved.pid, saved.start_time) {
        return Err(msg("cannot exec in a stopped container"));
    }

    // The pty master goes to the console socket, or to us for a foreground relay.
    let (console, own_end): (Option<OwnedFd>, Option<OwnedFd>) = match (terminal, o.console_socket)
    {
        (false, _) => (None, None),
        (true, Some(path)) => (Some(terminal::connect(path).map_err(te)?), None),
        (true, None) => {
            let (a, b) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(sys_err("socketpair for the pty master"))?;
            (Some(a), Some(b))
        }
    };

    let (host_end, child_end) = channel::pair()?;
    // Rootless: joining the pid namespace needs CAP_SYS_ADMIN over it, which an unprivileged
    // caller has only inside the container's user namespace (its owner). So the host joins
    // that first, as runc's nsexec does; there is no way back, and no need: the rest of the
    // host's work is the same user's. The child then inherits it instead of joining it.
    if !nix::unistd::geteuid().is_root() {
        if let Some(pos) = ns.iter().position(|n| n.flag == CloneFlags::CLONE_NEWUSER) {
            let user = ns.remove(pos);
            nix::sched::setns(user.fd.as_fd(), CloneFlags::CLONE_NEWUSER)
                .map_err(sys_err("join the container's user namespace"))?;
        }
    }
    // A pid namespace applies to children only: enter it for the fork, then come back.
    let own_pidns = match &pidns {
        Some(fd) => {
            let own = std::fs::File::open("/proc/self/ns/pid")
                .map_err(|e| msg(format!("open /proc/self/ns/pid: {e}")))?;
            nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWPID)
                .map_err(sys_err("join the container's pid namespace"))?;
            Some(own)
        }
        None => None,
    };
    // Non-dumpable before the fork, so the child is never reachable through /proc by the
    // container's processes, not even before its first instruction (CVE-2019-5736 class);
    // the flag is inherited by fork and reset by execve.
    sys::set_dumpable(false).map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;
    // As the init: born in the cgroup2 directory (CLONE_INTO_CGROUP), and joins the v1 cgroups
    // itself (cgroups::Manager::open_v1_tasks): the host moving it takes a global lock that
    // waits for an RCU grace period (~15 ms, issue 7).
    // With `--cgroup` the host puts it in the sub-cgroups after the fork instead (rare).
    let own_cgroup = o.sub_cgroups.is_empty();
    let v1_tasks = match own_cgroup {
        true => saved.cgroup.open_v1_tasks()?,
        false => Vec::new(),
    };
    let born_in = match own_cgroup {
        true => saved.cgroup.v2_leaf_fd()?,
        false => None,
    };
    let forked = sys::clone3(0, false, born_in.as_ref().map(|f| f.as_fd()));
    // CLONE_INTO_CGROUP may be refused (old kernel); then fork plainly and move the child.
    let (forked, born_in_cgroup) = match forked {
        Err(
            nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS | nix::errno::Errno::EOPNOTSUPP,
        ) if born_in.is_some() => (sys::clone3(0, false, None), false),
        other => (other, born_in.is_some()),
    };
    if let Some(own) = &own_pidns {
        let _ = nix::sched::setns(own.as_fd(), CloneFlags::CLONE_NEWPID);
    }
    let child = match forked.map_err(sys_err("fork of the exec process"))? {
        Forked::Child => {
            drop(host_end);
            drop(own_end);
            if !v1_tasks.is_empty() {
                if let Err(e) = crate::cgroups::join_self(v1_tasks) {
                    let _ = child_end.send(&Msg::Error(e.to_string()));
                    sys::exit_now(1);
                }
                let _ = child_end.send(&Msg::Joined);
            }
            crate::init::exec::run(ExecInit {
                chan: child_end,
                ns,
                root: root_fd,
                process: &o.process,
                caps,
                console,
                extra_fds: o.preserve_fds,
                // runc passes LISTEN_FDS on for create/run only, not exec.
                extra_env: Vec::new(),
                seccomp,
                labels,
                may_setgroups,
            })
        }
        Forked::Parent { pid, .. } => pid,
    };
    drop(child_end);
    drop(console);
    drop(root_fd);
    let fail = |e: ContainerError| {
        let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        e
    };

    if !v1_tasks.is_empty() {
        drop(v1_tasks);
        host_end.expect(Msg::Joined).map_err(|e| fail(e.into()))?;
    }
    match own_cgroup {
        true => saved.cgroup.add_task_v2(child, born_in_cgroup),
        false => saved.cgroup.add_task_sub(child, &o.sub_cgroups),
    }
    .map_err(|e| fail(e.into()))?;
    host_end.send(&Msg::Go).map_err(|e| fail(e.into()))?;
    loop {
        match host_end.recv() {
            // The channel was close-on-exec: closed without a word means the execve happened.
            Err(ChannelError::Closed) => break,
            Ok((Msg::Error(e), _)) => {
                let _ = waitpid(child, None);
                // runc's prefix for a failure inside the new process.
                return Err(msg(format!("unable to start container process: {e}")));
            }
            // SCMP_ACT_NOTIFY: the agent gets the exec'd process's listener fd, with the
            // container's state (status running, the init's pid) and this process's pid.
            Ok((Msg::SeccompFd, fds)) => {
                let (Some(l), Some(fd)) = (&listener, fds.first()) else {
                    return Err(fail(msg("linux.seccomp: no seccomp notify fd was sent")));
                };
                let state = crate::hooks::state_json(
                    &oci_version,
                    id,
                    "running",
                    saved.pid,
                    &saved.bundle,
                    &saved.annotations,
                );
                crate::seccomp::send_to_listener(l, child.as_raw(), &state, &oci_version, fd)
                    .map_err(|e| fail(e.into()))?;
                drop(fds);
                host_end
                    .send(&Msg::SeccompDone)
                    .map_err(|e| fail(e.into()))?;
            }
            Ok((other, _)) => return Err(fail(ChannelError::Unexpected(other).into())),
            Err(e) => return Err(fail(e.into())),
        }
    }

    let relay = match &own_end {
        Some(sock) => Some(Relay::new(
            terminal::recv_master(sock.as_fd()).map_err(|e| fail(te(e)))?,
        )),
        None => None,
    };
    if let Some(pid_file) = o.pid_file {
        super::create::write_pid_file(pid_file, child.as_raw())?;
    }
    if o.detach {
        return Ok(0);
    }
    let sfd = block_signals()?;
    supervise(child, sfd, relay, false)
}

fn te(e: terminal::TermError) -> ContainerError {
    ContainerError::Msg(e.to_string())
}

/// Block every catchable signal and read them from a signalfd (foreground run and exec).
pub fn block_signals() -> Result<SignalFd, ContainerError> {
    let mut mask = SigSet::all();
    mask.remove(Signal::SIGKILL);
    mask.remove(Signal::SIGSTOP);
    mask.thread_block().map_err(sys_err("sigprocmask"))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(sys_err("signalfd"))
}

/// Foreground: forward signals to `pid`, relay the terminal if we hold it, and return the
/// exit status (128+N if killed by N). With `reap_all` (run as a subreaper) every exited
/// child is reaped on the way.
pub fn supervise(
    pid: Pid,
    sfd: SignalFd,
    mut relay: Option<Relay>,
    reap_all: bool,
) -> Result<i32, ContainerError> {
    let status = loop {
        if let Some(code) = reap(pid, reap_all) {
            break code;
        }
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(r) = &relay {
            fds.push(PollFd::new(r.master.as_fd(), PollFlags::POLLIN));
            if r.stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(sys_err("poll")(e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if let Some(r) = &mut relay {
            if ready.get(1) == Some(&true) && !r.pump_master() {
                // The slave side is gone; stop polling it (the exit comes next).
                let master_done = relay.take();
                drop(master_done);
                continue;
            }
            if ready.get(2) == Some(&true) {
                r.pump_stdin();
            }
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            let sig = info.ssi_signo as i32;
            match sig {
                libc::SIGCHLD => {}
                libc::SIGWINCH if relay.is_some() => {
                    if let Some(r) = &relay {
                        r.resize();
                    }
                }
                _ => {
                    let _ = nix::sys::signal::kill(pid, Signal::try_from(sig).ok());
                }
            }
        }
    };
    if let Some(r) = &relay {
        r.pump_master();
    }
    Ok(status)
}

fn reap(target: Pid, reap_all: bool) -> Option<i32> {
    let mut result = None;
    let who = if reap_all { None } else { Some(target) };
    loop {
        match waitpid(who, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == target => result = Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == target => result = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {
                if !reap_all {
                    return result;
                }
            }
        }
    }
}

/// The container's seccomp filter, compiled (or taken from the cache) from its config, which
/// an exec'd process gets as runc gives it; and the config's ociVersion (for the agent).
fn container_seccomp(
    root: &Path,
    bundle: &Path,
) -> Result<(Option<crate::seccomp::Program>, String), ContainerError> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| msg(format!("{}: {e}", path.display())))?;
    let spec: oci_spec::runtime::Spec = crate::bundle::parse_json(&path, &data)?;
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let program = crate::seccomp::prepare(profile, Some(&crate::seccomp::cache_dir(root)))?;
    Ok((program, spec.version().clone()))
}
