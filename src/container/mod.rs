//! The host side of a container's life: spawning the init and driving it through create
//! (`create.rs`), and the operations on a recorded container that several commands share
//! (`ops.rs`: signal, wait for exit, tear down).

pub mod create;
pub mod exec;
pub mod ops;

use crate::{
    bundle::BundleError, capabilities::CapsError, cgroups::CgroupError, channel::ChannelError,
    hooks::HookError, lsm::LsmError, namespaces::NsError, seccomp::SeccompError, state::StateError,
    userns::UsernsError,
};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error(transparent)]
    Namespace(#[from] NsError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Userns(#[from] UsernsError),
    #[error(transparent)]
    Lsm(#[from] LsmError),
    #[error("{step}: {source}")]
    Sys {
        step: String,
        source: nix::errno::Errno,
    },
    #[error("{0}")]
    Msg(String),
}

pub(crate) fn sys_err(step: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> ContainerError {
    let step = step.into();
    move |source| ContainerError::Sys { step, source }
}
