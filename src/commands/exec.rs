//! `husk exec [flags] ID [COMMAND ARGS...]` or `husk exec --process FILE ID`: run a new process
//! in a running container. As runc, a failure to start the process exits 255 with
//! "exec failed: ..."; otherwise the process's status is husk's (0 when detached).

use std::path::Path;

use oci_spec::runtime::{Capability, Process};

use super::Ctx;
use crate::bundle::{self, Bundle};
use crate::cli::ExecArgs;
use crate::container::exec::{self, ExecOpts};
use crate::error::{Error, Result};
use crate::state::ContainerDir;

pub fn run(ctx: &Ctx, a: ExecArgs) -> Result<()> {
    match exec_and_wait(ctx, a) {
        Ok(status) => Err(Error::Exit(status)),
        Err(Error::Exit(code)) => Err(Error::Exit(code)),
        Err(e) => {
            // runc: fatalWithCode(fmt.Errorf("exec failed: %w", err), 255), for every error.
            let text = crate::logging::go_errno_text(&format!("exec failed: {e}"));
            crate::logging::error(&text);
            if crate::logging::has_file() {
                eprintln!("{text}");
            }
            Err(Error::Exit(255))
        }
    }
}

fn exec_and_wait(ctx: &Ctx, a: ExecArgs) -> Result<i32> {
    let sub_cgroups =
        crate::cgroups::sub::parse(&a.cgroup).map_err(|e| Error::msg(e.to_string()))?;
    let process = build_process(ctx, &a)?;
    let opts = ExecOpts {
        process,
        console_socket: a.console_socket.as_deref(),
        detach: a.detach,
        pid_file: a.pid_file.as_deref(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroups,
    };
    Ok(exec::exec(&ctx.root, &a.id, opts)?)
}

/// The process to run: the `--process` file as it is, or the container's own process with
/// the command line's changes (runc's newProcess).
fn build_process(ctx: &Ctx, a: &ExecArgs) -> Result<Process> {
    if let Some(path) = &a.process {
        let data = std::fs::read(path)
            .map_err(|e| Error::msg(format!("--process {}: {e}", path.display())))?;
        let p: Process = bundle::parse_json(path, &data)?;
        bundle::validate_process(path, &p)?;
        return Ok(p);
    }
    let dir = ContainerDir::new(&ctx.root, &a.id)?;
    let saved = dir.load()?;
    if a.command.is_empty() {
        return Err(Error::msg("args must not be empty"));
    }
    let b = Bundle::load(Some(&saved.bundle))?;
    let mut p = b.process().clone();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    if !a.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &a.env {
            // A later value of the same name replaces the earlier one.
            let key = kv.split('=').next().unwrap_or("");
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.into());
    }
    if let Some(u) = &a.user {
        let mut user = p.user().clone();
        let mut parts = u.splitn(2, ':');
        let uid = parts.next().unwrap_or("");
        // runc: "parsing %s as int for uid failed"; names are not looked up.
        user.set_uid(
            uid.parse()
                .map_err(|e| Error::msg(format!("parsing {uid} as int for uid failed: {e}")))?,
        );
        if let Some(gid) = parts.next() {
            user.set_gid(
                gid.parse()
                    .map_err(|e| Error::msg(format!("parsing {gid} as int for gid failed: {e}")))?,
            );
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            let c: Capability =
                serde_json::from_value(serde_json::Value::String(name.to_ascii_uppercase()))
                    .map_err(|_| Error::msg(format!("--cap: unknown capability {name:?}")))?;
            // runc adds it to the bounding, effective, permitted and ambient sets.
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(c);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            caps.set_ambient(add(caps.ambient()));
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    bundle::validate_process(Path::new("exec"), &p)?;
    Ok(p)
}
