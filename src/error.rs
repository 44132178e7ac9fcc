//! The top-level error: every module's typed error, and what husk exits with.

use crate::{
    bundle::BundleError, cgroups::CgroupError, container::ContainerError, state::StateError,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A message for the user, already worded.
    #[error("{0}")]
    Msg(String),
    /// Not an error: exit with this status silently (foreground `run`/`exec` report the
    /// container's status this way).
    #[error("exit status {0}")]
    Exit(i32),
}

impl Error {
    pub fn msg(s: impl Into<String>) -> Error {
        Error::Msg(s.into())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
