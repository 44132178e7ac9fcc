//! `create`: validate the bundle, record the container, clone the init into its namespaces and
//! cgroup, drive it to Ready over the channel, and leave nothing behind if any step fails.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;

use super::{sys_err, ContainerError};
use crate::bundle::Bundle;
use crate::capabilities::Sets;
use crate::cgroups;
use crate::channel::{self, Msg};
use crate::cli::CreateOpts;
use crate::hooks;
use crate::init::{self, Init};
use crate::namespaces;
use crate::rootfs::RootfsPlan;
use crate::state::{self, ContainerDir, Saved};
use crate::sys::{self, Forked};

/// A container that `create` made. The caller is the init's parent (`run` waits for it).
pub struct Created {
    pub saved: Saved,
    pub dir: ContainerDir,
}

/// What to undo if create fails part-way. Disarmed once the container is recorded.
struct Undo<'a> {
    dir: &'a ContainerDir,
    cgroup: Option<&'a cgroups::Manager>,
    child: Option<(Pid, Option<OwnedFd>)>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some((pid, pidfd)) = self.child.take() {
            match &pidfd {
                Some(fd) => {
                    let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
                }
                None => {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.destroy();
        }
        let _ = self.dir.remove();
    }
}

pub fn create(root: &Path, id: &str, opts: &CreateOpts) -> Result<Created, ContainerError> {
    let dir = ContainerDir::new(root, id)?;
    let bundle = Bundle::load(opts.bundle.as_deref())?;
    let process = bundle.process();
    // runc's texts (a foreground `run` passes its own socket).
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() {
        return Err(ContainerError::Msg(
            "cannot allocate tty if runc will detach without setting console socket".into(),
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(ContainerError::Msg(
            "cannot use console socket if runc will not detach or allocate tty".into(),
        ));
    }
    let caps = Sets::from_spec(process.capabilities().as_ref())?;
    let ns = namespaces::Plan::from_spec(&bundle.spec)?;
    // User and time namespaces: validated now, applied around the clone (see userns.rs).
    crate::userns::check_rootless(&bundle.spec)?;
    let id_maps = crate::userns::Maps::from_spec(&bundle.spec)?;
    let time_offsets = crate::userns::time_offsets(&bundle.spec)?;
    let idmap_reqs = crate::rootfs::idmap::requests(&bundle.spec, nix::unistd::geteuid().is_root())
        .map_err(|e| ContainerError::Msg(e.to_string()))?;
    let linux = bundle.spec.linux().as_ref();
    let cgroup = cgroups::Manager::new(linux.and_then(|l| l.cgroups_path().as_deref()), id)?;
    // Compiled (or taken from the cache) before anything exists: a bad profile leaves nothing.
    let seccomp = crate::seccomp::prepare(
        linux.and_then(|l| l.seccomp().as_ref()),
        Some(&crate::seccomp::cache_dir(root)),
    )?;
    let seccomp_listener = seccomp.as_ref().and_then(|p| p.listener.clone());
    crate::lsm::check(&bundle.spec)?;

    // From here on, every failure undoes what was made.
    dir.create()?;
    let mut undo = Undo {
        dir: &dir,
        cgroup: None,
        child: None,
        armed: true,
    };
    let _lock = dir.lock()?;

    // The exec fifo: `start` writes one byte into it; the init, holding it open read-write so
    // that it never sees EOF, blocks reading it. Its existence also means "created".
    let fifo_path = dir.fifo();
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .map_err(sys_err(format!("mkfifo {}", fifo_path.display())))?;
    let fifo: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| ContainerError::Msg(format!("open {}: {e}", fifo_path.display())))?
        .into();

    let born_in = cgroup.create()?;
    undo.cgroup = Some(&cgroup);

    // systemd socket activation, as runc: LISTEN_FDS fds come before the --preserve-fds ones.
    let listen_fds: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let extra_env = if listen_fds > 0 {
        vec![
            format!("LISTEN_FDS={listen_fds}"),
            "LISTEN_PID=1".to_string(),
        ]
    } else {
        Vec::new()
    };

    // The console socket is connected here, on the host; the init sends the pty master to it.
    let console = match &opts.console_socket {
        Some(path) if terminal => {
            Some(crate::terminal::connect(path).map_err(|e| ContainerError::Msg(e.to_string()))?)
        }
        _ => None,
    };

    let (host_end, init_end) = channel::pair()?;
    let own_pid_ns = ns.isolates(LinuxNamespaceType::Pid);
    let mut rootfs = RootfsPlan {
        spec: &bundle.spec,
        rootfs: bundle.rootfs.clone(),
        bundle: bundle.dir.clone(),
        no_pivot: opts.no_pivot,
        in_user_ns: ns.isolates(LinuxNamespaceType::User),
        in_cgroup_ns: ns.isolates(LinuxNamespaceType::Cgroup),
        idmapped: Vec::new(),
    };
    // Idmapped bind mounts: made now, on the host, attached by the init (rootfs/idmap.rs).
    let joined_userns = ns.joins(LinuxNamespaceType::User).map(|j| j.fd.as_fd());
    rootfs.idmapped =
        crate::rootfs::idmap::prepare(&idmap_reqs, &rootfs, id_maps.as_ref(), joined_userns)
            .map_err(|e| ContainerError::Msg(e.to_string()))?;

    // A pid namespace given by path applies to children only: enter it for the clone, then
    // come back (a process may always return to its own active pid namespace).
    let restore_pidns = match ns.joins(LinuxNamespaceType::Pid) {
        Some(j) => {
            let own = std::fs::File::open("/proc/self/ns/pid")
                .map_err(|e| ContainerError::Msg(format!("open /proc/self/ns/pid: {e}")))?;
            nix::sched::setns(j.fd.as_fd(), CloneFlags::CLONE_NEWPID).map_err(sys_err(format!(
                "linux.namespaces: join pid namespace {}",
                j.path.display()
            )))?;
            Some(own)
        }
        None => None,
    };
    // Non-dumpable before the clone: the init is never reachable through /proc by other
    // container processes, not even before its first instruction (CVE-2019-5736 class).
    // Rootless with a new user namespace (runc's nsexec does the same): the init stays
    // dumpable until its maps are written, else its /proc/<pid>/uid_map belongs to the global
    // root and we, the unprivileged writer, cannot open it. It turns non-dumpable after Go;
    // nothing else runs in its namespaces before that, and we are its only other user.
    let map_unprivileged = id_maps.is_some() && !nix::unistd::geteuid().is_root();
    sys::set_dumpable(map_unprivileged).map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;
    // A new cgroup namespace is made by the init once it is in all its cgroups (v1 hierarchies
    // are joined after the clone): its root must be the container's cgroup, as with runc.
    let late_cgroupns = ns.clone_flags().contains(CloneFlags::CLONE_NEWCGROUP);
    let clone_flags = (ns.clone_flags() - CloneFlags::CLONE_NEWCGROUP).bits() as u64;
    let own_time_ns = match &time_offsets {
        Some(offsets) => Some(crate::userns::prepare_time_ns(offsets)?),
        None => None,
    };
    // The init joins its v1 cgroups itself, through these fds (see Manager::open_v1_tasks).
    let v1_tasks = cgroup.open_v1_tasks()?;
    let forked = sys::clone3(clone_flags, true, born_in.as_ref().map(|f| f.as_fd()));
    // CLONE_INTO_CGROUP may be refused (old kernel); then clone plainly and move the child.
    let (forked, born_in_cgroup) = match forked {
        Err(
            nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS | nix::errno::Errno::EOPNOTSUPP,
        ) if born_in.is_some() => (sys::clone3(clone_flags, true, None), false),
        other => (other, born_in.is_some()),
    };
    // Only the parent goes back to its own clocks: the init stays in the new time namespace.
    if let (Some(own), false) = (&own_time_ns, matches!(forked, Ok(Forked::Child))) {
        crate::userns::restore_time_ns(own)?;
    }
    if let Some(own) = &restore_pidns {
        let _ = nix::sched::setns(own.as_fd(), CloneFlags::CLONE_NEWPID);
    }
    let (pid, pidfd) = match forked.map_err(sys_err("clone3 of the container's init"))? {
        Forked::Child => {
            drop(host_end);
            init::run(Init {
                id,
                bundle: &bundle,
                chan: init_end,
                fifo,
                ns,
                rootfs,
                caps,
                extra_fds: listen_fds + opts.preserve_fds,
                extra_env,
                late_cgroupns,
                v1_tasks,
                seccomp,
                console,
            })
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(init_end);
    drop(fifo);
    drop(console);
    undo.child = Some((pid, pidfd));

    if !v1_tasks.is_empty() {
        drop(v1_tasks);
        host_end.expect(Msg::Joined)?;
    }
    cgroup.add_task_v2(pid, born_in_cgroup)?;
    if let Some(maps) = &id_maps {
        maps.write(pid.as_raw())?;
    }
    if map_unprivileged {
        sys::set_dumpable(false).map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;
    }
    // process.oomScoreAdj, from here (as runc): through the host's procfs, which the container
    // cannot cover (CVE-2025-52881), and before a user namespace makes the init's own
    // /proc/self files (owned by the unmapped host root, the init being non-dumpable)
    // unwritable to it.
    if let Some(score) = process.oom_score_adj() {
        let path = format!("/proc/{}/oom_score_adj", pid.as_raw());
        std::fs::write(&path, score.to_string())
            .map_err(|e| ContainerError::Msg(format!("process.oomScoreAdj: write {path}: {e}")))?;
    }
    host_end.send(&Msg::Go)?;

    let annotations: BTreeMap<String, String> = bundle
        .spec
        .annotations()
        .as_ref()
        .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let hooks = bundle.spec.hooks().clone();
    // The state the create-time hooks and the seccomp agent are given.
    let state = hooks::state_json(
        bundle.spec.version(),
        id,
        "creating",
        pid.as_raw(),
        &bundle.dir,
        &annotations,
    );
    loop {
        let (msg, fds) = host_end.recv()?;
        match msg {
            Msg::HooksReady => {
                let h = hooks.as_ref();
                // prestart is deprecated in favour of createRuntime; both run here, in order.
                #[allow(deprecated)]
                hooks::run_all(
                    "prestart",
                    h.and_then(|h| h.prestart().as_ref()),
                    &state,
                    Some(&bundle.dir),
                )?;
                hooks::run_all(
                    "createRuntime",
                    h.and_then(|h| h.create_runtime().as_ref()),
                    &state,
                    Some(&bundle.dir),
                )?;
                host_end.send(&Msg::HooksDone)?;
            }
            // SCMP_ACT_NOTIFY: pass the init's listener fd on to the agent (see seccomp.rs).
            Msg::SeccompFd => {
                let (Some(listener), Some(fd)) = (&seccomp_listener, fds.first()) else {
                    return Err(ContainerError::Msg(
                        "linux.seccomp: the init sent no seccomp notify fd".into(),
                    ));
                };
                crate::seccomp::send_to_listener(
                    listener,
                    pid.as_raw(),
                    &state,
                    bundle.spec.version(),
                    fd,
                )?;
                drop(fds);
                host_end.send(&Msg::SeccompDone)?;
            }
            Msg::Ready => break,
            Msg::Error(e) => return Err(ContainerError::Msg(e)),
            other => return Err(channel::ChannelError::Unexpected(other).into()),
        }
    }

    if let Some(resources) = linux.and_then(|l| l.resources().as_ref()) {
        cgroup.apply(resources)?;
    }

    let start_time = state::proc_stat(pid.as_raw())
        .map(|(_, t)| t)
        .ok_or_else(|| ContainerError::Msg("the container's init exited during create".into()))?;
    let saved = Saved {
        id: id.to_string(),
        pid: pid.as_raw(),
        start_time,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: crate::logging::rfc3339_now(true),
        owner: String::new(),
        annotations,
        cgroup: cgroups::Manager {
            resources: linux.and_then(|l| l.resources().clone()),
            ..cgroup.clone()
        },
        own_pid_ns,
        hooks,
        oci_version: bundle.spec.version().clone(),
    };
    dir.save(&saved)?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid.as_raw())?;
    }
    undo.armed = false;
    drop(undo);
    Ok(Created { saved, dir })
}

/// The pid file, written atomically like runc's (containerd reads it right after create).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    let abs: PathBuf = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    state::write_atomic(&abs, pid.to_string().as_bytes(), 0o644)?;
    Ok(())
}
