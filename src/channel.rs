//! The one channel between the host side of create and the container's init: a
//! SOCK_SEQPACKET socketpair carrying [`Msg`] as JSON, one message per packet, with optional
//! fds passed by SCM_RIGHTS.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    /// init → host: the init moved itself into its v1 cgroups (cgroups::join_self).
    Joined,
    /// host → init: the init is in its cgroup and its id maps are written; go on.
    Go,
    /// init → host: namespaces and mounts are ready; run prestart and createRuntime hooks.
    HooksReady,
    /// host → init: those hooks ran; continue.
    HooksDone,
    /// init → host: everything is set up; the init now waits on the exec fifo.
    Ready,
    /// init → host: the seccomp notify fd (SCM_RIGHTS), for the agent at listenerPath.
    SeccompFd,
    /// host → init: the seccomp agent has the fd; continue.
    SeccompDone,
    /// init → host: setup failed at this step.
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel to the container's init: {0}")]
    Sys(#[from] nix::errno::Errno),
    #[error("channel to the container's init: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("the container's init exited during setup")]
    Closed,
    #[error("unexpected message from the container's init: {0:?}")]
    Unexpected(Msg),
    /// The init reported a failed setup step; the text names the step.
    #[error("{0}")]
    Init(String),
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (host end, init end). Both close-on-exec.
pub fn pair() -> Result<(Channel, Channel), ChannelError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<(), ChannelError> {
        self.send_with_fds(msg, &[])
    }

    pub fn send_with_fds(&self, msg: &Msg, fds: &[RawFd]) -> Result<(), ChannelError> {
        let data = serde_json::to_vec(msg)?;
        let iov = [IoSlice::new(&data)];
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    pub fn recv(&self) -> Result<(Msg, Vec<OwnedFd>), ChannelError> {
        // The message's size first (MSG_PEEK|MSG_TRUNC gives a datagram's real length): a
        // fixed 64 KiB buffer, zeroed for every message, was 16 pages of RSS (issue 7).
        let size = loop {
            match nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut [],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r?,
            }
        };
        let mut buf = vec![0u8; size.max(1)];
        let mut cmsg_buf = nix::cmsg_space!([RawFd; 4]);
        let (len, fds) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = loop {
                match recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg_buf),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    r => break r?,
                }
            };
            let mut fds = Vec::new();
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    fds.extend(raw.into_iter().map(crate::sys::owned_fd));
                }
            }
            (msg.bytes, fds)
        };
        if len == 0 {
            return Err(ChannelError::Closed);
        }
        Ok((serde_json::from_slice(&buf[..len])?, fds))
    }

    /// Receive and require exactly `want`; an `Error` from the init becomes that error text.
    pub fn expect(&self, want: Msg) -> Result<(), ChannelError> {
        match self.recv()?.0 {
            m if m == want => Ok(()),
            Msg::Error(e) => Err(ChannelError::Init(e)),
            m => Err(ChannelError::Unexpected(m)),
        }
    }
}
