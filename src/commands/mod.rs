//! One file per subcommand. `dispatch` resolves the global options and calls it.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod resume;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};

/// The global options every command sees.
pub struct Ctx {
    pub root: PathBuf,
}

/// The spec version husk implements (reported by `state`, `features` and `--version`).
pub const SPEC_VERSION: &str = "1.2.1";

pub fn dispatch(cli: Cli) -> Result<()> {
    if cli.version {
        print_version();
        return Ok(());
    }
    crate::cgroups::set_rootless(cli.rootless.as_deref());
    let root = match &cli.root {
        Some(r) => r.clone(),
        None => crate::state::default_root_prepared()?,
    };
    let ctx = Ctx { root };
    if cli.systemd_cgroup {
        crate::logging::debug("--systemd-cgroup: husk manages cgroups through cgroupfs");
    }
    let Some(command) = cli.command else {
        return Err(Error::msg("no command given; see 'husk --help'"));
    };
    match command {
        Command::Create(a) => create::run(&ctx, a),
        Command::Start(a) => start::run(&ctx, &a.id),
        Command::State(a) => state::run(&ctx, &a.id),
        Command::Kill(a) => kill::run(&ctx, a),
        Command::Delete(a) => delete::run(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::List(a) => list::run(&ctx, a),
        Command::Spec(a) => spec::run(a, cli.rootless.as_deref().is_some_and(|v| v != "false")),
        Command::Exec(a) => exec::run(&ctx, a),
        Command::Ps(a) => ps::run(&ctx, a),
        Command::Pause(a) => pause::run(&ctx, a),
        Command::Resume(a) => resume::run(&ctx, a),
        Command::Update(a) => update::run(&ctx, a),
        Command::Events(a) => events::run(&ctx, a),
        Command::Features => features::run(),
        Command::Checkpoint(_) | Command::Restore(_) => Err(Error::msg(
            "checkpoint/restore is not supported by husk (CRIU does not work on this kernel)",
        )),
    }
}

/// Write a command's output to stdout. A closed pipe (`husk list | head`) is not an error worth
/// a panic: the output is simply dropped, as Go programs do.
pub(crate) fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

fn print_version() {
    emit(&format!(
        "husk version {}
commit: {}
spec: {SPEC_VERSION}
rust: {}
",
        env!("CARGO_PKG_VERSION"),
        env!("HUSK_COMMIT"),
        env!("HUSK_RUSTC")
    ));
}
