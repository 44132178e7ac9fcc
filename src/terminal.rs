//! Terminals: the pty a `process.terminal: true` process gets, created inside the container,
//! its master handed over a console socket the way runc does it, and the relay that foreground
//! `run`/`exec` use when they hold the master themselves.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, SetArg, Termios};

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum TermError {
    #[error("console socket {path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
    #[error("process.terminal: {step}: {source}")]
    Sys {
        step: &'static str,
        source: nix::errno::Errno,
    },
    #[error("console socket: no pty master received")]
    NoMaster,
}

fn err(step: &'static str) -> impl FnOnce(nix::errno::Errno) -> TermError {
    move |source| TermError::Sys { step, source }
}

/// Connect to `--console-socket` on the host side, before anything enters the container.
pub fn connect(path: &Path) -> Result<OwnedFd, TermError> {
    std::os::unix::net::UnixStream::connect(path)
        .map(OwnedFd::from)
        .map_err(|source| TermError::Socket {
            path: path.display().to_string(),
            source,
        })
}

/// In the container (after pivot_root or chroot, as a session leader): open a pty on the
/// container's own devpts, size it, optionally bind its slave on /dev/console, make the slave
/// our stdio and controlling terminal, and send the master over `sock`.
pub fn setup(
    sock: BorrowedFd<'_>,
    size: Option<(u16, u16)>,
    mount_console: bool,
) -> Result<(), TermError> {
    // /dev/ptmx is the container's pts/ptmx symlink: the pty belongs to its devpts instance.
    let master = open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err("open /dev/ptmx"))?;
    let slave = sys::open_pty_peer(master.as_fd()).map_err(err("open the pty slave"))?;
    if let Some((rows, cols)) = size.filter(|(r, c)| *r > 0 || *c > 0) {
        sys::set_winsize(master.as_fd(), rows, cols).map_err(err("process.consoleSize"))?;
    }
    if mount_console {
        mount_console_from_fd(slave.as_fd())?;
    }
    send_master(sock, master.as_fd())?;
    drop(master);
    nix::unistd::dup2_stdin(&slave).map_err(err("dup2 the pty slave to stdin"))?;
    nix::unistd::dup2_stdout(&slave).map_err(err("dup2 the pty slave to stdout"))?;
    nix::unistd::dup2_stderr(&slave).map_err(err("dup2 the pty slave to stderr"))?;
    sys::set_controlling_tty(slave.as_fd()).map_err(err("ioctl(TIOCSCTTY)"))?;
    Ok(())
}

/// Bind the slave on /dev/console from its fd, never by path: a path under /dev/pts could be
/// swapped by the container for a symlink to a host file (CVE-2025-52565).
fn mount_console_from_fd(slave: BorrowedFd<'_>) -> Result<(), TermError> {
    // The mount point must exist; an empty regular file as runc makes. O_NOFOLLOW: a symlink
    // planted at /dev/console by the image is refused rather than followed.
    let target = match open(
        "/dev/console",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => {
            drop(
                open(
                    "/dev/console",
                    OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o666),
                )
                .map_err(err("create /dev/console"))?,
            );
            open(
                "/dev/console",
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(err("open /dev/console"))?
        }
        Err(e) => return Err(err("open /dev/console")(e)),
    };
    let tree = sys::mount::clone_tree(slave, false).map_err(err("open_tree of the pty slave"))?;
    sys::mount::move_mount(tree.as_fd(), target.as_fd())
        .map_err(err("move_mount the pty slave onto /dev/console"))?;
    Ok(())
}

/// runc's utils.SendFd: one fd by SCM_RIGHTS, the payload its name ("/dev/ptmx"); conmon and
/// containerd's shim (go-runc) read exactly this.
fn send_master(sock: BorrowedFd<'_>, master: BorrowedFd<'_>) -> Result<(), TermError> {
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(err("send the pty master over the console socket"))?;
    Ok(())
}

/// Receive a master sent by [`setup`] (foreground run/exec hold it themselves).
pub fn recv_master(sock: BorrowedFd<'_>) -> Result<OwnedFd, TermError> {
    let mut buf = [0u8; 4096];
    let mut cmsg_buf = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.map_err(err("receive the pty master"))?,
        }
    };
    let mut master = None;
    for c in msg.cmsgs().map_err(err("receive the pty master"))? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            for fd in raw {
                let fd = sys::owned_fd(fd);
                if master.is_none() {
                    master = Some(fd);
                }
            }
        }
    }
    master.ok_or(TermError::NoMaster)
}

/// husk's side of a foreground terminal: our stdin in raw mode, bytes copied both ways, the
/// window size followed, the terminal restored when dropped.
pub struct Relay {
    pub master: OwnedFd,
    saved: Option<Termios>,
    pub stdin_open: bool,
}

impl Relay {
    pub fn new(master: OwnedFd) -> Relay {
        let _ = nix::fcntl::fcntl(
            master.as_fd(),
            nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
        );
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        let relay = Relay {
            master,
            saved,
            stdin_open: true,
        };
        relay.resize();
        relay
    }

    /// SIGWINCH: give the container's terminal our size.
    pub fn resize(&self) {
        // A 0x0 size (stdin is not a sized terminal) would undo process.consoleSize.
        if let Ok((rows, cols)) = sys::get_winsize(std::io::stdin().as_fd()) {
            if rows > 0 && cols > 0 {
                let _ = sys::set_winsize(self.master.as_fd(), rows, cols);
            }
        }
    }

    /// stdin is readable: copy what is there to the master; EOF stops reading it.
    pub fn pump_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(std::io::stdin().as_fd(), &mut buf) {
            Ok(0) | Err(_) => self.stdin_open = false,
            Ok(n) => write_all(self.master.as_fd(), &buf[..n]),
        }
    }

    /// The master is readable: copy to stdout. False once the slave side is gone (EIO).
    pub fn pump_master(&self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(self.master.as_fd(), &mut buf) {
                Ok(0) => return false,
                Ok(n) => write_all(std::io::stdout().as_fd(), &buf[..n]),
                Err(nix::errno::Errno::EAGAIN) => return true,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => {
                let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16));
            }
            Err(_) => return,
        }
    }
}
