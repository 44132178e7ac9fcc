//! The container's init: what runs in the new namespaces, from the clone until execve, as one
//! ordered sequence. Each step's detail lives in its concern's module; this file is the story.
//!
//! The host side (`container::create`) drives the other half over the channel:
//!
//! ```text
//!   host                                   init (this file)
//!   clone3(namespaces, into cgroup2) ────► join v1 cgroups (writes "0" to their tasks)
//!   wait for Joined ◄───────────────────── Joined; wait for Go
//!   cgroup2 join, id maps, Go ───────────► join namespaces given by path; setsid
//!                                          rootfs::prepare (mounts, /dev)
//!   run prestart, createRuntime ◄───────── HooksReady
//!   HooksDone ───────────────────────────► createContainer hooks
//!                                          rootfs::enter (pivot_root)
//!                                          hostname, domainname, sysctl
//!                                          rootfs::finish (masked, read-only paths)
//!                                          rlimits, oom score, user, capabilities, cwd,
//!                                          resolve args[0]
//!   write state.json, apply resources ◄─── Ready
//!   create exits 0                         block reading the exec fifo
//!   start writes one byte ───────────────► startContainer hooks, close fds,
//!                                          no_new_privs, execve
//! ```

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::LinuxNamespaceType;

use crate::capabilities::{CapsError, Sets};
use crate::channel::{Channel, ChannelError, Msg};
use crate::hooks::{self, HookError};
use crate::namespaces::{self, NsError};
use crate::process::{self, ProcessError};
use crate::rootfs::{self, RootfsError, RootfsPlan};
use crate::sys;

pub mod exec;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Term(#[from] crate::terminal::TermError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Namespace(#[from] NsError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error("{step}: {source}")]
    Sys {
        step: String,
        source: nix::errno::Errno,
    },
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Userns(#[from] crate::userns::UsernsError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
}

fn sys_err(step: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> InitError {
    let step = step.into();
    move |source| InitError::Sys { step, source }
}

/// Everything the init needs, prepared by the host side before the clone (the init is a copy of
/// the host process, so nothing is serialised).
pub struct Init<'a> {
    pub id: &'a str,
    pub bundle: &'a crate::bundle::Bundle,
    pub chan: Channel,
    /// `<root>/<id>/exec.fifo`, opened read-write: the init blocks reading it until `start`.
    pub fifo: OwnedFd,
    pub ns: namespaces::Plan,
    pub rootfs: RootfsPlan<'a>,
    pub caps: Sets,
    /// fds 3 .. 3+extra_fds reach the container process (--preserve-fds and LISTEN_FDS).
    pub extra_fds: u32,
    /// Extra environment for the process (LISTEN_FDS, LISTEN_PID).
    pub extra_env: Vec<String>,
    /// Unshare the cgroup namespace after Go (the clone did not): its root must be the
    /// container's cgroup on every hierarchy, and v1 hierarchies are joined after the clone.
    pub late_cgroupns: bool,
    /// The v1 cgroups' `tasks` files, opened by the host: the init joins them itself, first.
    pub v1_tasks: Vec<(PathBuf, OwnedFd)>,
    /// The compiled `linux.seccomp` filter, if any.
    pub seccomp: Option<crate::seccomp::Program>,
    /// process.terminal: the console socket to send the pty master to.
    pub console: Option<OwnedFd>,
}

/// Run the init. Never returns: it execs the container process or exits after reporting.
pub fn run(mut init: Init) -> ! {
    let v1_tasks = std::mem::take(&mut init.v1_tasks);
    let err = match setup_and_exec(&init, v1_tasks) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Before Ready the host is listening and reports the error; after it (create has exited),
    // the container's stderr is the only place left, as with runc.
    // A closed channel means the host gave up (e.g. its id-map write failed) and reports
    // the cause itself: nothing to add.
    let host_gone = matches!(err, InitError::Channel(ChannelError::Closed));
    if init.chan.send(&Msg::Error(err.to_string())).is_err() && !host_gone {
        let _ = writeln!(
            std::io::stderr(),
            "husk: {}",
            crate::logging::go_errno_text(&err.to_string())
        );
    }
    sys::exit_now(1)
}

fn setup_and_exec(
    init: &Init,
    v1_tasks: Vec<(PathBuf, OwnedFd)>,
) -> Result<std::convert::Infallible, InitError> {
    let spec = &init.bundle.spec;
    let proc_ = init.bundle.process();

    // Die with `create` until setup is done; keep other container processes from reaching our
    // memory or /proc/self/exe while we still run husk's code (CVE-2019-5736).
    sys::set_parent_death_signal(libc::SIGKILL).map_err(sys_err("prctl(PR_SET_PDEATHSIG)"))?;

    // 1. We join our v1 cgroups (cheaper from here: cgroups::Manager::open_v1_tasks), the host
    //    puts us in the cgroup2 one if the clone did not and writes our id maps, then says Go.
    if !v1_tasks.is_empty() {
        crate::cgroups::join_self(v1_tasks).map_err(|e| InitError::Config {
            field: "linux.cgroupsPath".into(),
            msg: e.to_string(),
        })?;
        init.chan.send(&Msg::Joined)?;
    }
    init.chan.expect(Msg::Go)?;
    // Born non-dumpable from a non-dumpable parent, except when an unprivileged host had to
    // write our id maps through /proc/<pid> (rootless, see create.rs): from here on always.
    sys::set_dumpable(false).map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;

    // 2. Namespaces given by path (the new ones came with the clone).
    namespaces::join_all(&init.ns.join)?;
    // New namespaces that must be owned by a user namespace joined by path: made now.
    namespaces::unshare_after_join(&init.ns)?;
    if init.ns.isolates(LinuxNamespaceType::User) {
        crate::userns::become_root()?;
    }
    if init.late_cgroupns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(sys_err("unshare(CLONE_NEWCGROUP)"))?;
    }
    nix::unistd::setsid().map_err(sys_err("setsid"))?;

    // 3. The filesystem: propagation, rootfs, mounts in order, /dev.
    rootfs::prepare(&init.rootfs)?;
    // Our own writes under /proc go through a private procfs instance (procfs.rs), opened
    // while the container's /proc is still fully visible (before masked paths).
    let procfs = crate::procfs::Proc::open().map_err(sys_err("open a private procfs"))?;

    // 4. prestart and createRuntime hooks run on the host, in the runtime's namespaces.
    init.chan.send(&Msg::HooksReady)?;
    init.chan.expect(Msg::HooksDone)?;

    // 5. createContainer hooks: in the container's namespaces, before pivot_root.
    let state = |status: &str| {
        hooks::state_json(
            spec.version(),
            init.id,
            status,
            std::process::id() as i32,
            &init.bundle.dir,
            &annotations(init.bundle),
        )
    };
    let hook_set = spec.hooks().as_ref();
    // runc's statuses: "creating" here, "created" for startContainer; the cwd is the rootfs.
    hooks::run_all(
        "createContainer",
        hook_set.and_then(|h| h.create_container().as_ref()),
        &state("creating"),
        None,
    )?;

    // 6. Into the root.
    rootfs::enter(&init.rootfs)?;

    // 6b. process.terminal: a pty of the container's own devpts, its slave our stdio,
    // controlling terminal and /dev/console, its master sent to the console socket.
    if let Some(sock) = &init.console {
        let size = proc_
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        crate::terminal::setup(sock.as_fd(), size, true)?;
    }

    // 7. Names and kernel parameters of the container's own namespaces.
    set_names(init)?;
    write_sysctls(init, &procfs)?;

    // 8. Masked and read-only paths, a read-only root.
    rootfs::finish(&init.rootfs)?;

    // 9. The process's identity: rlimits as root (the oom score was set by the host before
    // Go, see create.rs), then user and capabilities.
    process::apply_rlimits(proc_)?;
    // AppArmor profile / SELinux label for the execve (lsm.rs), through a checked procfs.
    crate::lsm::apply(spec, &procfs)?;
    // seccomp, step A. Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
    // while the capabilities are still held (as runc does). See `load_seccomp`.
    let nnp = proc_.no_new_privileges().unwrap_or(false);
    let notify = init.seccomp.as_ref().is_some_and(|p| p.listener.is_some());
    // 10. What to exec, resolved now so that a missing binary fails `create`, as in runc.
    let Exec { path, args, env } = become_process(
        proc_,
        &init.caps,
        &init.extra_env,
        crate::userns::setgroups_allowed(),
        || {
            if nnp {
                Ok(())
            } else {
                load_seccomp(init)
            }
        },
    )?;

    // 11. Ready: the host records the container; we wait for `start`. The death signal is
    // cleared first because `create` exits as soon as it has recorded us.
    sys::set_parent_death_signal(0).map_err(sys_err("prctl(PR_SET_PDEATHSIG)"))?;
    // seccomp, step B. A notify filter's fd must reach the host while `create` still runs,
    // so with no_new_privs it is loaded here rather than right before execve.
    if nnp && notify {
        sys::set_no_new_privs().map_err(sys_err("prctl(PR_SET_NO_NEW_PRIVS)"))?;
        load_seccomp(init)?;
    }
    init.chan.send(&Msg::Ready)?;
    // The init may wait for `start` a long time: hand back the heap's free pages and the dead
    // part of the stack first.
    sys::malloc_trim();
    sys::release_stack_below();
    wait_for_start(&init.fifo)?;

    // 12. startContainer hooks: in the container, after start, before the user's process.
    hooks::run_all(
        "startContainer",
        hook_set.and_then(|h| h.start_container().as_ref()),
        &state("created"),
        Some(std::path::Path::new("/")),
    )?;

    // 13. Only stdio and the preserved fds cross into the container; everything of ours is
    // closed (CVE-2024-21626 leaked a host cgroup fd).
    sys::close_fds_from(3 + init.extra_fds).map_err(sys_err("close_range"))?;
    if nnp && !notify {
        sys::set_no_new_privs().map_err(sys_err("prctl(PR_SET_NO_NEW_PRIVS)"))?;
        // seccomp, step C: last, so the profile need not allow husk's own syscalls.
        load_seccomp(init)?;
    }
    let err = sys::execve(&path, &args, &env);
    Err(ProcessError::Exec {
        path: path.to_string_lossy().into_owned(),
        source: err,
    }
    .into())
}

/// What the process execs.
pub(crate) struct Exec {
    pub path: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
}

/// Become the process the config describes and resolve what it execs — shared by the init and
/// by exec. Supplementary groups are /etc/group's for the user plus `additionalGids` (as runc);
/// the bounding set is dropped while CAP_SETPCAP is held, the uid/gid switch keeps the
/// permitted set (PR_SET_KEEPCAPS), then the other sets, umask and cwd. `before_caps_drop` runs
/// while every capability is still held (seccomp without no_new_privs needs CAP_SYS_ADMIN).
pub(crate) fn become_process(
    proc_: &oci_spec::runtime::Process,
    caps: &Sets,
    extra_env: &[String],
    may_setgroups: bool,
    before_caps_drop: impl FnOnce() -> Result<(), InitError>,
) -> Result<Exec, InitError> {
    let user = proc_.user();
    let info = process::lookup_user(user.uid(), user.gid());
    let mut groups: Vec<u32> = info.supplementary.clone();
    for g in user.additional_gids().iter().flatten() {
        if !groups.contains(g) {
            groups.push(*g);
        }
    }
    before_caps_drop()?;
    caps.apply_bounding()?;
    sys::set_keepcaps(true).map_err(sys_err("prctl(PR_SET_KEEPCAPS)"))?;
    process::switch_user(proc_, &groups, may_setgroups)?;
    sys::set_keepcaps(false).map_err(sys_err("prctl(PR_SET_KEEPCAPS)"))?;
    caps.apply_rest()?;
    if let Some(mask) = user.umask() {
        sys::set_umask(mask);
    }
    process::enter_cwd(proc_.cwd())?;
    let mut env = process::environment(proc_, &info.home)?;
    for kv in extra_env {
        env.push(CString::new(kv.as_str()).map_err(|_| ProcessError::Nul)?);
    }
    let args = process::args(proc_)?;
    let arg0 = proc_
        .args()
        .as_ref()
        .and_then(|a| a.first().cloned())
        .unwrap_or_default();
    let path = process::find_executable(&arg0, &env)?;
    Ok(Exec { path, args, env })
}

/// Load the seccomp filter; for SCMP_ACT_NOTIFY, hand the listener fd to the host (which
/// passes it to the agent at listenerPath) and wait until it has done so, as runc.
fn load_seccomp(init: &Init) -> Result<(), InitError> {
    use std::os::fd::AsRawFd;
    let Some(program) = &init.seccomp else {
        return Ok(());
    };
    if let Some(fd) = program.load()? {
        init.chan
            .send_with_fds(&Msg::SeccompFd, &[fd.as_raw_fd()])?;
        drop(fd);
        init.chan.expect(Msg::SeccompDone)?;
    }
    Ok(())
}

/// Block until `start` writes its byte into the exec fifo.
fn wait_for_start(fifo: &OwnedFd) -> Result<(), InitError> {
    let mut buf = [0u8; 1];
    loop {
        match nix::unistd::read(fifo.as_fd(), &mut buf) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                return Err(InitError::Sys {
                    step: "read exec fifo".into(),
                    source: nix::errno::Errno::EPIPE,
                })
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(sys_err("read exec fifo")(e)),
        }
    }
}

fn set_names(init: &Init) -> Result<(), InitError> {
    let spec = &init.bundle.spec;
    let uts = init.ns.isolates(LinuxNamespaceType::Uts);
    if let Some(h) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        if !uts {
            return Err(InitError::Config {
                field: "hostname".into(),
                msg: "cannot set a hostname without a private UTS namespace".into(),
            });
        }
        nix::unistd::sethostname(h).map_err(sys_err(format!("hostname: sethostname {h:?}")))?;
    }
    if let Some(d) = spec.domainname().as_ref().filter(|d| !d.is_empty()) {
        if !uts {
            return Err(InitError::Config {
                field: "domainname".into(),
                msg: "cannot set a domainname without a private UTS namespace".into(),
            });
        }
        sys::setdomainname(d).map_err(sys_err(format!("domainname: setdomainname {d:?}")))?;
    }
    Ok(())
}

/// `linux.sysctl`, written through the container's freshly mounted /proc/sys. Only sysctls
/// that belong to a namespace the container has of its own are allowed (runc's rule), so a
/// container cannot change the host's kernel.
fn write_sysctls(init: &Init, procfs: &crate::procfs::Proc) -> Result<(), InitError> {
    let spec = &init.bundle.spec;
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctl {
        check_sysctl(init, key)?;
        let path: PathBuf = ["/proc/sys", &key.replace('.', "/")].iter().collect();
        let rel = format!("sys/{}", key.replace('.', "/"));
        procfs
            .write(&rel, value.as_bytes())
            .map_err(|e| InitError::Config {
                field: format!("linux.sysctl[{key:?}]"),
                msg: format!("write {}: {e}", path.display()),
            })?;
    }
    Ok(())
}

fn check_sysctl(init: &Init, key: &str) -> Result<(), InitError> {
    let has = |t| init.ns.isolates(t);
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let ok = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        has(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        has(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        has(LinuxNamespaceType::Uts)
    } else {
        return Err(InitError::Config {
            field: format!("linux.sysctl[{key:?}]"),
            msg: "not a namespaced sysctl: it would change the host".into(),
        });
    };
    if ok {
        Ok(())
    } else {
        Err(InitError::Config {
            field: format!("linux.sysctl[{key:?}]"),
            msg: "the container does not have the namespace this sysctl belongs to".into(),
        })
    }
}

fn annotations(b: &crate::bundle::Bundle) -> std::collections::BTreeMap<String, String> {
    b.spec
        .annotations()
        .as_ref()
        .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}
