//! `husk run [-d] [--keep] [create's flags] ID`: create, start and (unless detached) wait,
//! forward signals, reap, delete, and exit with the container's status (128+N if killed by N).
//! A foreground `run` of a terminal process without `--console-socket` holds the pty master
//! itself and relays it to its own stdio.

use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::Ctx;
use crate::bundle::Bundle;
use crate::cli::RunArgs;
use crate::container::exec::{block_signals, supervise};
use crate::container::{create, ops};
use crate::error::{Error, Result};
use crate::terminal::{self, Relay};

/// Removes husk's own console socket file when dropped.
struct OwnSocket {
    listener: UnixListener,
    path: std::path::PathBuf,
}

impl Drop for OwnSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn run(ctx: &Ctx, mut a: RunArgs) -> Result<()> {
    if !a.detach && !a.no_subreaper {
        // Orphans of the container (without a pid namespace of its own) come to us to be reaped.
        crate::sys::set_child_subreaper()
            .map_err(|e| Error::msg(format!("prctl(PR_SET_CHILD_SUBREAPER): {e}")))?;
    }
    let own_socket = if !a.detach && a.opts.console_socket.is_none() && wants_terminal(&a) {
        crate::state::validate_id(&a.id)?;
        std::fs::create_dir_all(&ctx.root)
            .map_err(|e| Error::msg(format!("{}: {e}", ctx.root.display())))?;
        let path = ctx
            .root
            .join(format!(".console-{}-{}.sock", a.id, std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| Error::msg(format!("console socket {}: {e}", path.display())))?;
        a.opts.console_socket = Some(path.clone());
        Some(OwnSocket { listener, path })
    } else {
        None
    };
    let created = create::create(&ctx.root, &a.id, &a.opts)?;
    let pid = Pid::from_raw(created.saved.pid);
    let relay = match &own_socket {
        Some(s) => {
            // The init connected and sent the master before Ready; both wait in the backlog.
            let got = s
                .listener
                .accept()
                .map_err(|e| Error::msg(format!("console socket: accept: {e}")))
                .and_then(|(conn, _)| {
                    terminal::recv_master(conn.as_fd()).map_err(|e| Error::msg(e.to_string()))
                });
            match got {
                Ok(master) => Some(master),
                Err(e) => {
                    let _ = ops::kill_all_and_wait(&created.saved);
                    let _ = waitpid(pid, None);
                    let _ = ops::destroy(&created.dir, &created.saved);
                    return Err(e);
                }
            }
        }
        None => None,
    };
    drop(own_socket);
    // Every signal but the ones that cannot be caught goes to the container's init; blocked
    // here (after the clone, so the init does not inherit the mask) and read from a signalfd.
    let sfd = if a.detach {
        None
    } else {
        Some(block_signals()?)
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

    let status = supervise(pid, sfd, relay.map(Relay::new), true)?;
    if !a.keep {
        let _lock = created.dir.lock()?;
        let (saved, _) = ops::status_of(&created.dir)?;
        // Whatever the init left behind (without a pid namespace) dies with the container.
        let _ = ops::kill_all_and_wait(&saved);
        ops::destroy(&created.dir, &saved)?;
    }
    Err(Error::Exit(status))
}

/// Whether the bundle's process asks for a terminal (the bundle is loaded again by create).
fn wants_terminal(a: &RunArgs) -> bool {
    Bundle::load(a.opts.bundle.as_deref())
        .map(|b| b.process().terminal().unwrap_or(false))
        .unwrap_or(false)
}
