//! `husk pause ID`: freeze every process of the container (v1 freezer or cgroup.freeze) and
//! wait until the kernel reports the cgroup frozen.

use super::Ctx;
use crate::cli::IdArg;
use crate::container::ops;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, Status};

pub fn run(ctx: &Ctx, a: IdArg) -> Result<()> {
    let dir = ContainerDir::new(&ctx.root, &a.id)?;
    let _lock = dir.lock()?;
    let (saved, status) = ops::status_of(&dir)?;
    match status {
        // runc freezes created containers too; pausing a paused one is an error, as in runc.
        Status::Running | Status::Created => {}
        Status::Paused | Status::Stopped => return Err(Error::msg("container not running")),
    }
    saved.cgroup.set_frozen(true)?;
    Ok(())
}
