//! `husk create [options] ID`

use super::Ctx;
use crate::cli::CreateArgs;
use crate::container::create;
use crate::error::Result;

pub fn run(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    create::create(&ctx.root, &a.id, &a.opts)?;
    Ok(())
}
