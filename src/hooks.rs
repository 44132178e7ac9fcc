//! OCI hooks: each runs with the container's state JSON on stdin, its own `args` (args[0] is
//! argv[0], as execve) and `env` (without `env`, husk's own environment, as runc), and an
//! optional `timeout` in seconds after which it is killed.
//!
//! Where each kind runs is the caller's business (runtime-spec config.md#posix-platform-hooks):
//! prestart and createRuntime by the host side of create, createContainer and startContainer by
//! the init in the container's namespaces, poststart by `start` once the user process has
//! exec'd, poststop by `delete`.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook #{index} ({path}): {msg}")]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        msg: String,
    },
}

/// The runtime-spec state object handed to hooks on stdin.
pub fn state_json(
    oci_version: &str,
    id: &str,
    status: &str,
    pid: i32,
    bundle: &std::path::Path,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<u8> {
    let mut v = serde_json::json!({
        "ociVersion": oci_version,
        "id": id,
        "status": status,
        "bundle": bundle,
    });
    if pid > 0 {
        v["pid"] = pid.into();
    }
    if !annotations.is_empty() {
        v["annotations"] = serde_json::to_value(annotations).unwrap_or_default();
    }
    v.to_string().into_bytes()
}

/// Run `hooks` in order; stop at the first failure.
///
/// `cwd`: where the hook starts (runc: the bundle for the host-side hooks; the caller's own
/// directory otherwise).
pub fn run_all(
    kind: &'static str,
    hooks: Option<&Vec<Hook>>,
    state: &[u8],
    cwd: Option<&std::path::Path>,
) -> Result<(), HookError> {
    for (index, hook) in hooks.into_iter().flatten().enumerate() {
        run_one(kind, index, hook, state, cwd)?;
    }
    Ok(())
}

fn run_one(
    kind: &'static str,
    index: usize,
    hook: &Hook,
    state: &[u8],
    cwd: Option<&std::path::Path>,
) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let fail = |msg: String| HookError::Failed {
        kind,
        index,
        path: path.clone(),
        msg,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    // With `env`, exactly that environment; without it, the runtime's own (as runc).
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state);
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let status = match timeout {
        None => child.wait().map_err(|e| fail(format!("wait: {e}")))?,
        Some(limit) => {
            let deadline = Instant::now() + limit;
            let pidfd = crate::sys::pidfd_open(child.id() as i32)
                .map_err(|e| fail(format!("pidfd_open: {e}")))?;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("timeout: killed after {}s", limit.as_secs())));
                }
                let ms = left.as_millis().min(i32::MAX as u128) as i32;
                let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
                match poll(
                    &mut fds,
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
                ) {
                    Ok(n) if n > 0 => {
                        break child.wait().map_err(|e| fail(format!("wait: {e}")))?
                    }
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(fail(format!("poll: {e}"))),
                }
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    Err(fail(format!(
        "{how}, stdout: {}, stderr: {}",
        out.trim(),
        err.trim()
    )))
}
