//! `husk update`.

use super::{not_yet, Ctx};
use crate::cli::UpdateArgs;
use crate::error::Result;

pub fn run(_ctx: &Ctx, _a: UpdateArgs) -> Result<()> {
    Err(not_yet("update"))
}
