//! `husk delete [--force] ID`

use super::Ctx;
use crate::cli::DeleteArgs;
use crate::container::ops;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, StateError, Status};

pub fn run(ctx: &Ctx, a: DeleteArgs) -> Result<()> {
    let dir = ContainerDir::new(&ctx.root, &a.id)?;
    let lock = match dir.lock() {
        Ok(l) => l,
        // `delete --force` of a container that does not exist succeeds (containerd's cleanup
        // relies on it); plain delete says "does not exist", as runc.
        Err(StateError::NotExist) if a.force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let saved = match dir.load() {
        Ok(s) => s,
        Err(StateError::NotExist) => {
            // A directory without state.json: a create that died before recording anything.
            dir.remove()?;
            return if a.force {
                Ok(())
            } else {
                Err(StateError::NotExist.into())
            };
        }
        Err(e) => return Err(e.into()),
    };
    match dir.status(&saved) {
        Status::Stopped => {}
        // runc deletes a created-but-never-started container without --force.
        Status::Created => ops::kill_all_and_wait(&saved)?,
        s @ (Status::Running | Status::Paused) => {
            if !a.force {
                return Err(Error::msg(format!(
                    "cannot delete container {} that is not stopped: {}",
                    a.id,
                    s.as_str()
                )));
            }
            ops::kill_all_and_wait(&saved)?;
        }
    }
    ops::destroy(&dir, &saved)?;
    drop(lock);
    Ok(())
}
