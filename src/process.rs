//! The container process's identity and environment: rlimits, user and groups, umask, cwd,
//! environment, and where args[0] is found.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("process.rlimits[{index}] ({typ}): setrlimit: {source}")]
    Rlimit {
        index: usize,
        typ: String,
        source: nix::errno::Errno,
    },
    #[error("process.user: {step}: {source}")]
    User {
        step: String,
        source: nix::errno::Errno,
    },
    #[error("process.cwd: chdir to {path}: {source}")]
    Cwd {
        path: PathBuf,
        source: nix::errno::Errno,
    },
    #[error("process.cwd: {path} is outside the container's root")]
    CwdOutside { path: PathBuf },
    // runc's (Go's) wording: Podman maps "executable file not found in" to exit 127.
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec: {path:?}: {source}")]
    Exec {
        path: String,
        source: nix::errno::Errno,
    },
    #[error("process.args: argument contains a NUL byte")]
    Nul,
}

fn resource(t: PosixRlimitType) -> Resource {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => Resource::RLIMIT_CPU,
        T::RlimitFsize => Resource::RLIMIT_FSIZE,
        T::RlimitData => Resource::RLIMIT_DATA,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        T::RlimitRss => Resource::RLIMIT_RSS,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitAs => Resource::RLIMIT_AS,
        T::RlimitLocks => Resource::RLIMIT_LOCKS,
        T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        T::RlimitNice => Resource::RLIMIT_NICE,
        T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        T::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// setrlimit for each entry (as root, before capabilities are dropped).
pub fn apply_rlimits(p: &Process) -> Result<(), ProcessError> {
    for (index, rl) in p.rlimits().iter().flatten().enumerate() {
        setrlimit(resource(rl.typ()), rl.soft(), rl.hard()).map_err(|source| {
            ProcessError::Rlimit {
                index,
                typ: format!("{:?}", rl.typ()),
                source,
            }
        })?;
    }
    Ok(())
}

/// What /etc/passwd and /etc/group inside the container say about the process's user.
pub struct UserInfo {
    pub home: String,
    pub supplementary: Vec<u32>,
}

/// Look the uid up in the container's /etc/passwd (HOME) and /etc/group (groups naming the user),
/// as runc does. Call after pivot_root; missing files mean no entries.
pub fn lookup_user(uid: u32, gid: u32) -> UserInfo {
    let mut info = UserInfo {
        home: "/".into(),
        supplementary: Vec::new(),
    };
    let mut name = None;
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 6 && f[2].parse() == Ok(uid) {
                name = Some(f[0].to_string());
                info.home = f[5].to_string();
                break;
            }
        }
    }
    if let (Some(name), Ok(group)) = (name, std::fs::read_to_string("/etc/group")) {
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if g != gid && !info.supplementary.contains(&g) {
                        info.supplementary.push(g);
                    }
                }
            }
        }
    }
    info
}

/// setgroups, setresgid, setresuid. Capabilities survive through PR_SET_KEEPCAPS.
pub fn switch_user(p: &Process, groups: &[u32], may_setgroups: bool) -> Result<(), ProcessError> {
    let u = p.user();
    if !may_setgroups && u.additional_gids().as_ref().is_some_and(|g| !g.is_empty()) {
        // runc's rule: /etc/group's groups are silently left out when setgroups is denied (a
        // rootless container), but groups the config asks for explicitly are an error.
        return Err(ProcessError::User {
            step: "additionalGids: cannot set any additional groups in a rootless container \
                   (setgroups is denied in its user namespace)"
                .into(),
            source: nix::errno::Errno::EPERM,
        });
    }
    if may_setgroups {
        crate::sys::setgroups(groups).map_err(|source| ProcessError::User {
            step: format!("setgroups {groups:?}"),
            source,
        })?;
    }
    let gid = Gid::from_raw(u.gid());
    setresgid(gid, gid, gid).map_err(|source| ProcessError::User {
        step: format!("setgid {}", u.gid()),
        source,
    })?;
    let uid = Uid::from_raw(u.uid());
    setresuid(uid, uid, uid).map_err(|source| ProcessError::User {
        step: format!("setuid {}", u.uid()),
        source,
    })?;
    Ok(())
}

/// chdir to process.cwd and make sure the result is inside the container's root: a cwd reached
/// through a leaked host fd would be "(unreachable)" (CVE-2024-21626).
pub fn enter_cwd(cwd: &Path) -> Result<(), ProcessError> {
    nix::unistd::chdir(cwd).map_err(|source| ProcessError::Cwd {
        path: cwd.to_path_buf(),
        source,
    })?;
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(ProcessError::CwdOutside {
            path: cwd.to_path_buf(),
        }),
    }
}

/// The environment for execve, with HOME added from /etc/passwd when the config lacks it.
pub fn environment(p: &Process, home: &str) -> Result<Vec<CString>, ProcessError> {
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|kv| kv.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env.into_iter()
        .map(|s| CString::new(s).map_err(|_| ProcessError::Nul))
        .collect()
}

/// Resolve args[0] as Go's exec.LookPath does with the process's own PATH (as runc): a name
/// with a slash is used as is; otherwise the first executable regular file on PATH.
pub fn find_executable(arg0: &str, env: &[CString]) -> Result<CString, ProcessError> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if arg0.contains('/') {
        // As Go's LookPath: a path must name an executable file, else "permission denied"
        // (Podman maps that text to exit 126).
        return match std::fs::metadata(arg0) {
            Ok(_) if is_exec(Path::new(arg0)) => CString::new(arg0).map_err(|_| ProcessError::Nul),
            Ok(_) => Err(ProcessError::Exec {
                path: arg0.to_string(),
                source: nix::errno::Errno::EACCES,
            }),
            Err(e) => Err(ProcessError::Exec {
                path: arg0.to_string(),
                source: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)),
            }),
        };
    }
    let path = env
        .iter()
        .filter_map(|kv| kv.to_str().ok())
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if is_exec(&candidate) {
            return CString::new(candidate.into_os_string().into_encoded_bytes())
                .map_err(|_| ProcessError::Nul);
        }
    }
    Err(ProcessError::NotFound(arg0.to_string()))
}

pub fn args(p: &Process) -> Result<Vec<CString>, ProcessError> {
    p.args()
        .iter()
        .flatten()
        .map(|a| CString::new(a.as_str()).map_err(|_| ProcessError::Nul))
        .collect()
}
