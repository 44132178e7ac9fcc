//! `husk start ID`: release a created container's init.

use super::Ctx;
use crate::container::ops;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, Status};

pub fn run(ctx: &Ctx, id: &str) -> Result<()> {
    let dir = ContainerDir::new(&ctx.root, id)?;
    let _lock = dir.lock()?;
    let (saved, status) = ops::status_of(&dir)?;
    // runc's wording for each refused state.
    match status {
        Status::Created => {}
        Status::Stopped => return Err(Error::msg("cannot start a container that has stopped")),
        Status::Running => return Err(Error::msg("cannot start an already running container")),
        Status::Paused => return Err(Error::msg("cannot start a paused container")),
    }
    ops::start(&dir, &saved)?;
    Ok(())
}
