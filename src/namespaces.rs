//! Which namespaces a container gets: new ones become clone flags, ones given by `path` are
//! opened on the host side (before anything moves) and joined by the init with setns(2).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::bundle::ns_name;

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("linux.namespaces: {kind} namespace path {path}: {source}")]
    Open {
        kind: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("linux.namespaces: join {kind} namespace {path}: {source}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        source: nix::errno::Errno,
    },
    #[error("linux.namespaces: {0}")]
    Unsupported(String),
}

/// A namespace to join: its type and an open handle on it.
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// The namespace plan of a container.
pub struct Plan {
    /// CLONE_NEW* flags for the namespaces the container gets fresh.
    pub new: CloneFlags,
    /// Namespaces to join, in the order the init must join them (user first, mount last).
    pub join: Vec<Join>,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Result<Plan, NsError> {
        let mut new = CloneFlags::empty();
        let mut join = Vec::new();
        let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
        for ns in namespaces.into_iter().flatten() {
            let flag = CloneFlags::from_bits_retain(ns.typ() as i32);
            match ns.path() {
                None => new |= flag,
                Some(path) => {
                    let fd = File::open(path).map_err(|source| NsError::Open {
                        kind: ns_name(ns.typ()),
                        path: path.clone(),
                        source,
                    })?;
                    join.push(Join {
                        typ: ns.typ(),
                        path: path.clone(),
                        fd: fd.into(),
                    });
                }
            }
        }
        // setns order: user first (it grants the rights for the rest), mount last (paths).
        join.sort_by_key(|j| match j.typ {
            LinuxNamespaceType::User => 0,
            LinuxNamespaceType::Mount => 2,
            _ => 1,
        });
        if join.iter().any(|j| j.typ == LinuxNamespaceType::User)
            && new.intersects(CloneFlags::CLONE_NEWPID)
        {
            // New namespaces must be owned by the joined user namespace, so the init makes
            // them with unshare(2) after setns(user) (`unshare_after_join`). A new pid
            // namespace would hold only the init's children, not the init itself.
            return Err(NsError::Unsupported(
                "a new pid namespace together with a user namespace given by path is not supported; give the pid namespace by path as well".into(),
            ));
        }
        Ok(Plan { new, join })
    }

    /// The flags for clone3. Without the new time namespace (the host prepares it, see
    /// userns.rs) and, with a user namespace joined by path, without any: the init then
    /// unshares them after joining so that the joined user namespace owns them.
    pub fn clone_flags(&self) -> CloneFlags {
        if self.joins(LinuxNamespaceType::User).is_some() {
            return CloneFlags::empty();
        }
        self.new - CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)
    }

    pub fn has_new(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(CloneFlags::from_bits_retain(t as i32))
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> Option<&Join> {
        self.join.iter().find(|j| j.typ == t)
    }

    /// The container has this namespace of its own (new or joined).
    pub fn isolates(&self, t: LinuxNamespaceType) -> bool {
        self.has_new(t) || self.joins(t).is_some()
    }
}

/// Join every namespace in `join` except pid (joined by the host before the clone, since a
/// pid namespace only applies to children). Runs in the init.
pub fn join_all(join: &[Join]) -> Result<(), NsError> {
    for j in join.iter().filter(|j| j.typ != LinuxNamespaceType::Pid) {
        let flag = CloneFlags::from_bits_retain(j.typ as i32);
        setns(j.fd.as_fd(), flag).map_err(|source| NsError::Join {
            kind: ns_name(j.typ),
            path: j.path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The init, after `join_all`: with a user namespace joined by path, make the new namespaces
/// now (pid is refused by `Plan::from_spec`; time is prepared by the host).
pub fn unshare_after_join(plan: &Plan) -> Result<(), NsError> {
    if plan.joins(LinuxNamespaceType::User).is_none() {
        return Ok(());
    }
    let flags = plan.new - CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    if flags.is_empty() {
        return Ok(());
    }
    nix::sched::unshare(flags).map_err(|e| {
        NsError::Unsupported(format!(
            "unshare({flags:?}) after joining the user namespace: {e}"
        ))
    })
}
