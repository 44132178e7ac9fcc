//! `husk features`.

use super::not_yet;
use crate::error::Result;

pub fn run() -> Result<()> {
    Err(not_yet("features"))
}
