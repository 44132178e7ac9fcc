//! `husk events`.

use super::{not_yet, Ctx};
use crate::cli::EventsArgs;
use crate::error::Result;

pub fn run(_ctx: &Ctx, _a: EventsArgs) -> Result<()> {
    Err(not_yet("events"))
}
