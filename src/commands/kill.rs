//! `husk kill [--all] ID [SIGNAL]`

use super::Ctx;
use crate::cli::KillArgs;
use crate::container::ops;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, Status};

pub fn run(ctx: &Ctx, a: KillArgs) -> Result<()> {
    let sig =
        crate::signals::parse(a.signal.as_deref().unwrap_or("SIGTERM")).map_err(Error::Msg)?;
    let dir = ContainerDir::new(&ctx.root, &a.id)?;
    let _lock = dir.lock()?;
    let (saved, status) = ops::status_of(&dir)?;
    if status == Status::Stopped {
        // containerd reads this text as "already finished".
        return Err(Error::msg("container not running"));
    }
    ops::signal(&saved, sig, a.all)?;
    Ok(())
}
