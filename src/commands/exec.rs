//! `husk exec`.

use super::{not_yet, Ctx};
use crate::cli::ExecArgs;
use crate::error::Result;

pub fn run(_ctx: &Ctx, _a: ExecArgs) -> Result<()> {
    Err(not_yet("exec"))
}
