//! `husk ps`.

use super::{not_yet, Ctx};
use crate::cli::PsArgs;
use crate::error::Result;

pub fn run(_ctx: &Ctx, _a: PsArgs) -> Result<()> {
    Err(not_yet("ps"))
}
