//! `linux.seccomp`: compile the profile with libseccomp into a BPF program on the host side
//! (before anything is created, so a bad profile leaves nothing behind), cache the program under
//! `--root` by a hash of the profile, and load it in the init with seccomp(2).
//!
//! Loading the raw program ourselves (instead of `seccomp_load`) lets a cached program skip
//! libseccomp entirely and lets us pass every filter flag the kernel has, including
//! SECCOMP_FILTER_FLAG_NEW_LISTENER for SCMP_ACT_NOTIFY and WAIT_KILLABLE_RECV (which
//! libseccomp 2.5 cannot set).
//!
//! For SCMP_ACT_NOTIFY the init hands the listener fd to the host side, which passes it on to
//! the agent at `listenerPath` as runc does: one message whose payload is a
//! `ContainerProcessState` JSON and whose SCM_RIGHTS carry the fd.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use sha2::{Digest, Sha256};

use crate::sys::seccomp as raw;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    #[error("linux.seccomp: libseccomp: {0}")]
    Lib(String),
    #[error("linux.seccomp: load the filter with seccomp(2): {0}")]
    Load(nix::errno::Errno),
    #[error("linux.seccomp.listenerPath: {path}: {msg}")]
    Listener { path: PathBuf, msg: String },
}

fn config(field: impl Into<String>, msg: impl Into<String>) -> SeccompError {
    SeccompError::Config {
        field: field.into(),
        msg: msg.into(),
    }
}

/// Where the seccomp agent listens (`listenerPath`) and what it is told (`listenerMetadata`).
#[derive(Clone, Debug)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: String,
}

/// A compiled profile, ready for [`Program::load`].
pub struct Program {
    /// `struct sock_filter[]` in native byte order.
    pub bpf: Vec<u8>,
    /// SECCOMP_FILTER_FLAG_* for seccomp(2).
    pub flags: u32,
    /// Set when a rule uses SCMP_ACT_NOTIFY.
    pub listener: Option<Listener>,
}

impl Program {
    /// Load the filter into the calling thread. Without no_new_privs this needs CAP_SYS_ADMIN.
    /// Returns the notify fd when the profile uses SCMP_ACT_NOTIFY.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        raw::set_filter(&self.bpf, self.flags).map_err(SeccompError::Load)
    }
}

/// The action named in the config, with its errno (runc's defaults: EPERM for ERRNO and TRACE).
fn action(
    field: &str,
    a: LinuxSeccompAction,
    errno_ret: Option<u32>,
) -> Result<ScmpAction, SeccompError> {
    let errno = |what: &str| -> Result<u16, SeccompError> {
        match errno_ret {
            None => Ok(libc::EPERM as u16),
            Some(v) => u16::try_from(v)
                .map_err(|_| config(what, format!("{v} does not fit in 16 bits (0..=65535)"))),
        }
    };
    Ok(match a {
        // SCMP_ACT_KILL is libseccomp's old name for killing the thread.
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno(field)? as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno(field)?),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

fn condition(field: &str, a: &LinuxSeccompArg) -> Result<ScmpArgCompare, SeccompError> {
    if a.index() >= 6 {
        return Err(config(
            format!("{field}.index"),
            format!("{} is not a syscall argument (0..=5)", a.index()),
        ));
    }
    let idx = a.index() as u32;
    let op = match a.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // (arg & value) == valueTwo
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return Ok(ScmpArgCompare::new(
                idx,
                ScmpCompareOp::MaskedEqual(a.value()),
                a.value_two().unwrap_or(0),
            ))
        }
    };
    Ok(ScmpArgCompare::new(idx, op, a.value()))
}

/// The profile's name in the spec's spelling (e.g. `SCMP_ARCH_X86_64`).
fn spelled<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Check the profile and work out its flags and listener (no compiling).
fn flags_and_listener(s: &LinuxSeccomp) -> Result<(u32, Option<Listener>), SeccompError> {
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(config(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let mut notify = false;
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        if call.action() == LinuxSeccompAction::ScmpActNotify {
            notify = true;
            // The init writes to its channel after loading the filter; a notifying write
            // would wait for an agent that has not got the fd yet (runc refuses it too).
            if call.names().iter().any(|n| n == "write") {
                return Err(config(
                    format!("linux.seccomp.syscalls[{i}].action"),
                    "SCMP_ACT_NOTIFY cannot be used for the write syscall",
                ));
            }
        }
    }
    let mut flags = 0;
    let mut wait_killable = false;
    for f in s.flags().iter().flatten() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => flags |= raw::FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => flags |= raw::FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => wait_killable = true,
            // The init is single-threaded: there is no other thread to synchronise.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {}
        }
    }
    let listener = if notify {
        let path = s.listener_path().clone().ok_or_else(|| {
            config(
                "linux.seccomp.listenerPath",
                "required when a rule uses SCMP_ACT_NOTIFY",
            )
        })?;
        if !path.is_absolute() {
            return Err(config(
                "linux.seccomp.listenerPath",
                format!("{} is not an absolute path", path.display()),
            ));
        }
        flags |= raw::FLAG_NEW_LISTENER;
        // The kernel accepts WAIT_KILLABLE_RECV only together with NEW_LISTENER.
        if wait_killable {
            flags |= raw::FLAG_WAIT_KILLABLE_RECV;
        }
        Some(Listener {
            path,
            metadata: s.listener_metadata().clone().unwrap_or_default(),
        })
    } else {
        if wait_killable {
            crate::logging::debug(
                "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV has no effect without SCMP_ACT_NOTIFY; ignored",
            );
        }
        None
    };
    Ok((flags, listener))
}

/// Compile the profile with libseccomp into BPF.
pub fn compile(s: &LinuxSeccomp) -> Result<Vec<u8>, SeccompError> {
    let lib = |e: libseccomp::error::SeccompError| SeccompError::Lib(e.to_string());
    let default = action(
        "linux.seccomp.defaultErrnoRet",
        s.default_action(),
        s.default_errno_ret(),
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(lib)?;
    // We set no_new_privs ourselves, only when the config asks for it.
    ctx.set_ctl_nnp(false).map_err(lib)?;
    for (i, arch) in s.architectures().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.architectures[{i}]");
        let name = spelled(arch);
        let a = ScmpArch::from_str(&name).map_err(|_| {
            config(
                &field,
                format!("{name:?} is not an architecture libseccomp knows"),
            )
        })?;
        ctx.add_arch(a)
            .map_err(|e| config(&field, format!("{name}: {e}")))?;
    }
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(
            &format!("{field}.errnoRet"),
            call.action(),
            call.errno_ret(),
        )?;
        // libseccomp refuses a rule whose action is the default one; it would be a no-op.
        if act == default {
            continue;
        }
        let mut conds = Vec::new();
        let mut per_index = [0u32; 6];
        for (j, a) in call.args().iter().flatten().enumerate() {
            conds.push(condition(&format!("{field}.args[{j}]"), a)?);
            per_index[a.index()] += 1;
        }
        // Two conditions on the same argument cannot be ANDed in one libseccomp rule; runc
        // then adds each condition as a rule of its own (matching any of them). Same here.
        let split = per_index.iter().any(|n| *n > 1);
        for name in call.names() {
            let nr = match libseccomp::ScmpSyscall::from_name(name) {
                Ok(nr) => nr,
                Err(_) => {
                    // As runc: a profile may list syscalls newer than this libseccomp/arch.
                    crate::logging::debug(&format!(
                        "{field}.names: unknown syscall {name:?} for this architecture; skipped"
                    ));
                    continue;
                }
            };
            let res = if conds.is_empty() {
                ctx.add_rule(act, nr).map(|_| ())
            } else if split {
                conds
                    .iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, nr, &[*c]).map(|_| ()))
            } else {
                ctx.add_rule_conditional(act, nr, &conds).map(|_| ())
            };
            res.map_err(|e| config(&field, format!("add a rule for {name:?}: {e}")))?;
        }
    }
    // libseccomp 2.5 can only export into an fd: use an anonymous memory file.
    let fd = nix::sys::memfd::memfd_create("husk-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| SeccompError::Lib(format!("memfd_create: {e}")))?;
    ctx.export_bpf(&fd).map_err(lib)?;
    let mut f = std::fs::File::from(fd);
    let mut bpf = Vec::new();
    std::io::Seek::rewind(&mut f)
        .and_then(|_| std::io::Read::read_to_end(&mut f, &mut bpf))
        .map_err(|e| SeccompError::Lib(format!("read the exported filter: {e}")))?;
    Ok(bpf)
}

/// Validate and compile `linux.seccomp`, through the cache in `cache_dir` when given.
pub fn prepare(
    s: Option<&LinuxSeccomp>,
    cache_dir: Option<&Path>,
) -> Result<Option<Program>, SeccompError> {
    let Some(s) = s else { return Ok(None) };
    let (flags, listener) = flags_and_listener(s)?;
    let key = cache_key(s);
    let cached = cache_dir.map(|d| d.join(format!("{key}.bpf")));
    if let Some(path) = &cached {
        if let Ok(bpf) = std::fs::read(path) {
            if !bpf.is_empty() && bpf.len().is_multiple_of(8) {
                return Ok(Some(Program {
                    bpf,
                    flags,
                    listener,
                }));
            }
        }
    }
    let bpf = compile(s)?;
    if let Some(path) = &cached {
        // A failed cache write only costs the next container a compile.
        if let Err(e) = store(path, &bpf) {
            crate::logging::debug(&format!("seccomp cache {}: {e}", path.display()));
        }
    }
    Ok(Some(Program {
        bpf,
        flags,
        listener,
    }))
}

/// sha256 of everything that determines the program: husk's and libseccomp's versions, the
/// native architecture, and the profile without the listener fields (they do not change BPF).
fn cache_key(s: &LinuxSeccomp) -> String {
    let mut profile = s.clone();
    profile.set_listener_path(None);
    profile.set_listener_metadata(None);
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        h.update(format!("{}.{}.{}", v.major, v.minor, v.micro));
    }
    h.update(format!("{:?}", ScmpArch::native()));
    h.update(serde_json::to_vec(&profile).unwrap_or_default());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Write the program atomically (temp file, rename), readable by root only.
fn store(path: &Path, bpf: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bpf)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The cache directory under `--root`. Its name contains `@`, which no container id may, so
/// it can never collide with a container's directory (and `list` skips it: no state.json).
pub fn cache_dir(root: &Path) -> PathBuf {
    root.join("@seccomp-cache")
}

/// Hand the notify fd to the agent at `listenerPath`, as runc: one message on a unix stream
/// socket, payload a `ContainerProcessState` JSON
/// (`{"ociVersion","fds":["seccompFd"],"pid","metadata","state"}`), the fd by SCM_RIGHTS.
pub fn send_to_listener(
    listener: &Listener,
    pid: i32,
    state: &[u8],
    oci_version: &str,
    fd: &OwnedFd,
) -> Result<(), SeccompError> {
    let err = |msg: String| SeccompError::Listener {
        path: listener.path.clone(),
        msg,
    };
    let state: serde_json::Value =
        serde_json::from_slice(state).map_err(|e| err(format!("state: {e}")))?;
    let mut msg = serde_json::json!({
        "ociVersion": oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if !listener.metadata.is_empty() {
        msg["metadata"] = listener.metadata.clone().into();
    }
    let payload = msg.to_string();
    let sock = UnixStream::connect(&listener.path).map_err(|e| err(format!("connect: {e}")))?;
    let iov = [std::io::IoSlice::new(payload.as_bytes())];
    let fds = [fd.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| err(format!("send the seccomp fd: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compiles_every_operator_and_action() {
        let s = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_NE"},
                    {"index": 0, "value": 2, "op": "SCMP_CMP_LT"},
                    {"index": 1, "value": 3, "op": "SCMP_CMP_LE"},
                    {"index": 2, "value": 4, "op": "SCMP_CMP_EQ"},
                    {"index": 3, "value": 5, "op": "SCMP_CMP_GE"},
                    {"index": 4, "value": 6, "op": "SCMP_CMP_GT"},
                    {"index": 5, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["getcpu"], "action": "SCMP_ACT_KILL"},
                {"names": ["syslog"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["vhangup"], "action": "SCMP_ACT_KILL_THREAD"},
                {"names": ["acct"], "action": "SCMP_ACT_TRAP"},
                {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 3},
                {"names": ["uname"], "action": "SCMP_ACT_LOG"},
                {"names": ["no_such_syscall_husk"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
            ]
        }));
        let bpf = compile(&s).unwrap();
        assert!(!bpf.is_empty() && bpf.len().is_multiple_of(8));
    }

    #[test]
    fn notify_needs_listener_and_not_write() {
        let s = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        let e = prepare(Some(&s), None).err().unwrap().to_string();
        assert!(e.contains("linux.seccomp.listenerPath"), "{e}");
        let s = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/x.sock",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        let p = prepare(Some(&s), None).unwrap().unwrap();
        assert_eq!(
            p.flags,
            raw::FLAG_NEW_LISTENER | raw::FLAG_WAIT_KILLABLE_RECV | raw::FLAG_LOG
        );
        let s = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/x.sock",
            "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        let e = prepare(Some(&s), None).err().unwrap().to_string();
        assert!(e.contains("linux.seccomp.syscalls[0].action"), "{e}");
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        let e = prepare(Some(&s), None).err().unwrap().to_string();
        assert!(e.contains("linux.seccomp.defaultAction"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let s = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]
        }));
        let e = compile(&s).err().unwrap().to_string();
        assert!(e.contains("linux.seccomp.syscalls[0].errnoRet"), "{e}");
        let s = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
        }));
        let e = compile(&s).err().unwrap().to_string();
        assert!(e.contains("linux.seccomp.syscalls[0].args[0].index"), "{e}");
    }

    #[test]
    fn cache_round_trip_and_key_ignores_listener() {
        let dir = std::env::temp_dir().join(format!("husk-seccomp-ut-{}", std::process::id()));
        let s = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        }));
        let a = prepare(Some(&s), Some(&dir)).unwrap().unwrap();
        let key = cache_key(&s);
        assert_eq!(
            std::fs::read(dir.join(format!("{key}.bpf"))).unwrap(),
            a.bpf
        );
        let b = prepare(Some(&s), Some(&dir)).unwrap().unwrap();
        assert_eq!(a.bpf, b.bpf);
        let mut t = s.clone();
        t.set_listener_path(Some("/x".into()));
        assert_eq!(cache_key(&t), key);
        t.set_default_errno_ret(Some(5));
        assert_ne!(cache_key(&t), key);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
