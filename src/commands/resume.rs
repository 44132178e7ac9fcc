//! `husk resume`.

use super::{not_yet, Ctx};
use crate::cli::IdArg;
use crate::error::Result;

pub fn run(_ctx: &Ctx, _a: IdArg) -> Result<()> {
    Err(not_yet("resume"))
}
