//! husk: an OCI container runtime with runc's command line.

mod bundle;
mod capabilities;
mod cgroups;
mod channel;
mod cli;
mod cloned_binary;
mod commands;
mod container;
mod error;
mod hooks;
mod init;
mod logging;
mod lsm;
mod namespaces;
mod process;
mod procfs;
mod rootfs;
mod seccomp;
mod signals;
mod state;
mod sys;
mod terminal;
mod userns;

use clap::Parser;

use crate::error::Error;

fn main() {
    // CVE-2019-5736: create/run/exec run from a sealed in-memory copy of the binary.
    if let Err(e) = cloned_binary::ensure() {
        eprintln!("husk: {e}");
        std::process::exit(1);
    }
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and friends print to stdout and exit 0; usage errors exit 1 like runc's
            // (urfave/cli) rather than clap's 2, since callers only look for non-zero.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // clap's command tree (~220 KiB of short-lived allocations) and its 60 KiB stack frame
    // are gone: return their pages (peak RSS, issue 7; docs/performance.md).
    sys::malloc_trim();
    sys::release_stack_below();
    if let Err(e) = logging::init(cli.log.as_deref(), &cli.log_format, cli.debug) {
        let path = cli
            .log
            .as_deref()
            .unwrap_or(std::path::Path::new(""))
            .display();
        eprintln!("husk: cannot open log file {path}: {e}");
        std::process::exit(1);
    }
    let code = match commands::dispatch(cli) {
        Ok(()) => 0,
        Err(Error::Exit(code)) => code,
        Err(e) => {
            report(&e.to_string());
            1
        }
    };
    std::process::exit(code);
}

/// One line a user (and containerd, and Podman) understands. As runc: with `--log`, the log gets
/// the formatted line and stderr the bare message; without it, stderr gets the formatted line.
fn report(msg: &str) {
    let msg = &logging::go_errno_text(msg);
    logging::error(msg);
    if logging::has_file() {
        eprintln!("{msg}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errno_text_like_go() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            crate::logging::go_errno_text(&format!("open x: {e}")),
            "open x: no such file or directory"
        );
        let n = nix::errno::Errno::EPERM;
        assert_eq!(
            crate::logging::go_errno_text(&format!("mount: {n}")),
            "mount: operation not permitted"
        );
    }
}
