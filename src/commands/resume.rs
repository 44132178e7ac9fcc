//! `husk resume ID`: thaw a paused container.

use super::Ctx;
use crate::cli::IdArg;
use crate::container::ops;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, Status};

pub fn run(ctx: &Ctx, a: IdArg) -> Result<()> {
    let dir = ContainerDir::new(&ctx.root, &a.id)?;
    let _lock = dir.lock()?;
    let (saved, status) = ops::status_of(&dir)?;
    if status != Status::Paused {
        // runc's wording.
        return Err(Error::msg("container not paused"));
    }
    saved.cgroup.set_frozen(false)?;
    Ok(())
}
