//! Mount options as runc understands them: `mounts[].options` split into mount(2) flags, the
//! flags the user explicitly cleared, propagation changes, recursive (`mount_setattr`) attributes,
//! runc's extensions (`tmpcopyup`) and the rest, which is filesystem data.

use crate::sys::mount::{
    MountAttr, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
    MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME,
    MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME,
};

// mount(2) flags (linux/mount.h); kept as u64 so they combine freely.
pub const MS_RDONLY: u64 = 1;
pub const MS_NOSUID: u64 = 2;
pub const MS_NODEV: u64 = 4;
pub const MS_NOEXEC: u64 = 8;
pub const MS_SYNCHRONOUS: u64 = 16;
pub const MS_REMOUNT: u64 = 32;
pub const MS_MANDLOCK: u64 = 64;
pub const MS_DIRSYNC: u64 = 128;
pub const MS_NOSYMFOLLOW: u64 = 256;
pub const MS_NOATIME: u64 = 1024;
pub const MS_NODIRATIME: u64 = 2048;
pub const MS_BIND: u64 = 4096;
pub const MS_REC: u64 = 16384;
pub const MS_SILENT: u64 = 32768;
pub const MS_POSIXACL: u64 = 1 << 16;
pub const MS_UNBINDABLE: u64 = 1 << 17;
pub const MS_PRIVATE: u64 = 1 << 18;
pub const MS_SLAVE: u64 = 1 << 19;
pub const MS_SHARED: u64 = 1 << 20;
pub const MS_RELATIME: u64 = 1 << 21;
pub const MS_I_VERSION: u64 = 1 << 23;
pub const MS_STRICTATIME: u64 = 1 << 24;
pub const MS_LAZYTIME: u64 = 1 << 25;

/// The atime "enum" flags (mutually exclusive in the kernel).
pub const MS_ATIME_ENUM: u64 = MS_NOATIME | MS_RELATIME | MS_STRICTATIME;
/// Every atime-related flag.
pub const MS_ATIME_ALL: u64 = MS_ATIME_ENUM | MS_NODIRATIME;
/// Flags the kernel locks (MNT_LOCK_*) on mounts inherited into a less privileged user namespace.
pub const MS_LOCKABLE: u64 = MS_RDONLY | MS_NODEV | MS_NOEXEC | MS_NOSUID | MS_ATIME_ALL;

/// One mount option: set or clear a mount(2) flag (runc's `mountFlags` table).
fn flag_option(o: &str) -> Option<(bool, u64)> {
    // (clear, flag)
    Some(match o {
        "acl" => (false, MS_POSIXACL),
        "async" => (true, MS_SYNCHRONOUS),
        "atime" => (true, MS_NOATIME),
        "bind" => (false, MS_BIND),
        "dev" => (true, MS_NODEV),
        "diratime" => (true, MS_NODIRATIME),
        "dirsync" => (false, MS_DIRSYNC),
        "exec" => (true, MS_NOEXEC),
        "iversion" => (false, MS_I_VERSION),
        "lazytime" => (false, MS_LAZYTIME),
        "loud" => (true, MS_SILENT),
        "mand" => (false, MS_MANDLOCK),
        "noacl" => (true, MS_POSIXACL),
        "noatime" => (false, MS_NOATIME),
        "nodev" => (false, MS_NODEV),
        "nodiratime" => (false, MS_NODIRATIME),
        "noexec" => (false, MS_NOEXEC),
        "noiversion" => (true, MS_I_VERSION),
        "nolazytime" => (true, MS_LAZYTIME),
        "nomand" => (true, MS_MANDLOCK),
        "norelatime" => (true, MS_RELATIME),
        "nostrictatime" => (true, MS_STRICTATIME),
        "nosuid" => (false, MS_NOSUID),
        "nosymfollow" => (false, MS_NOSYMFOLLOW),
        "rbind" => (false, MS_BIND | MS_REC),
        "relatime" => (false, MS_RELATIME),
        "remount" => (false, MS_REMOUNT),
        "ro" => (false, MS_RDONLY),
        "rw" => (true, MS_RDONLY),
        "silent" => (false, MS_SILENT),
        "strictatime" => (false, MS_STRICTATIME),
        "suid" => (true, MS_NOSUID),
        "sync" => (false, MS_SYNCHRONOUS),
        "symfollow" => (true, MS_NOSYMFOLLOW),
        _ => return None,
    })
}

/// Propagation option → mount(2) propagation flags (runc's `mountPropagationMapping`).
pub fn propagation(o: &str) -> Option<u64> {
    Some(match o {
        "rprivate" => MS_PRIVATE | MS_REC,
        "private" => MS_PRIVATE,
        "rslave" => MS_SLAVE | MS_REC,
        "slave" => MS_SLAVE,
        "rshared" => MS_SHARED | MS_REC,
        "shared" => MS_SHARED,
        "runbindable" => MS_UNBINDABLE | MS_REC,
        "unbindable" => MS_UNBINDABLE,
        _ => return None,
    })
}

/// `linux.rootfsPropagation`: `None` for an unknown value, `Some(0)` for "" (unset).
pub fn root_propagation(s: &str) -> Option<u64> {
    if s.is_empty() {
        return Some(0);
    }
    propagation(s)
}

/// Recursive attribute option (runc's `recAttrFlags`): (clear, MOUNT_ATTR_*).
fn rec_attr_option(o: &str) -> Option<(bool, u64)> {
    Some(match o {
        "rro" => (false, MOUNT_ATTR_RDONLY),
        "rrw" => (true, MOUNT_ATTR_RDONLY),
        "rnosuid" => (false, MOUNT_ATTR_NOSUID),
        "rsuid" => (true, MOUNT_ATTR_NOSUID),
        "rnodev" => (false, MOUNT_ATTR_NODEV),
        "rdev" => (true, MOUNT_ATTR_NODEV),
        "rnoexec" => (false, MOUNT_ATTR_NOEXEC),
        "rexec" => (true, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (false, MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (true, MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (false, MOUNT_ATTR_RELATIME),
        "rnorelatime" => (true, MOUNT_ATTR_RELATIME),
        "rnoatime" => (false, MOUNT_ATTR_NOATIME),
        "ratime" => (true, MOUNT_ATTR_NOATIME),
        "rstrictatime" => (false, MOUNT_ATTR_STRICTATIME),
        "rnostrictatime" => (true, MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => (false, MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (true, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// `mounts[].options`, parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// mount(2) flags to set (MS_*), including MS_BIND / MS_REC / MS_REMOUNT.
    pub flags: u64,
    /// Flags the user explicitly asked to be clear ("rw", "suid", "dev", ...).
    pub cleared: u64,
    /// Propagation changes, applied in order after the mount (MS_SHARED | MS_REC, ...).
    pub propagation: Vec<u64>,
    /// Recursive attributes from the `r*` options, applied with mount_setattr(AT_RECURSIVE).
    pub rec_attr: Option<MountAttr>,
    /// runc's `tmpcopyup` extension.
    pub tmpcopyup: bool,
    /// "idmap" (`Some(false)`) or "ridmap" (`Some(true)`, recursive): the last one given.
    pub idmap: Option<bool>,
    /// Everything else: filesystem data, comma-joined as given.
    pub data: Vec<String>,
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
        let mut m = MountOptions::default();
        let (mut rec_set, mut rec_clr) = (0u64, 0u64);
        for o in options {
            let o = o.as_ref();
            if let Some((clear, flag)) = flag_option(o) {
                if clear {
                    m.flags &= !flag;
                    m.cleared |= flag;
                } else {
                    m.flags |= flag;
                    m.cleared &= !flag;
                }
            } else if let Some(p) = propagation(o) {
                m.propagation.push(p);
            } else if let Some((clear, flag)) = rec_attr_option(o) {
                if clear {
                    rec_clr |= flag;
                    rec_set &= !flag;
                } else {
                    rec_set |= flag;
                    rec_clr &= !flag;
                }
                // An atime value is an enum: mount_setattr wants the whole field cleared with it.
                if flag & MOUNT_ATTR__ATIME == flag {
                    rec_clr |= MOUNT_ATTR__ATIME;
                }
            } else if o == "tmpcopyup" {
                m.tmpcopyup = true;
            } else if o == "idmap" || o == "ridmap" {
                // Never filesystem data: the mapping is applied with mount_setattr (idmap.rs).
                m.idmap = Some(o == "ridmap");
            } else if o == "defaults" || o.is_empty() {
                // mount(8) noise: nothing to set, and no filesystem wants it as data.
            } else {
                m.data.push(o.to_string());
            }
        }
        if rec_set != 0 || rec_clr != 0 {
            m.rec_attr = Some(MountAttr {
                attr_set: rec_set,
                attr_clr: rec_clr,
                ..Default::default()
            });
        }
        m
    }

    pub fn is_bind(&self) -> bool {
        self.flags & MS_BIND != 0
    }

    pub fn data_string(&self) -> String {
        self.data.join(",")
    }

    /// Whether a bind mount needs its per-mount flags applied after the bind: runc 1.1 does it
    /// only when a flag beyond bind/rec/remount is set, so "rbind,rw" keeps the source's
    /// nosuid/nodev/noexec (current runc would clear them).
    pub fn bind_needs_remount(&self) -> bool {
        self.flags & !(MS_BIND | MS_REC | MS_REMOUNT) != 0
    }
}

/// The mount_setattr() equivalent of mount(2) with MS_BIND | MS_REMOUNT | `flags`: the per-mount
/// flags become exactly `flags`; the atime setting is kept unless an atime flag is given (the
/// kernel's "default atime for remount is preservation").
pub fn bind_remount_attr(flags: u64) -> MountAttr {
    let mut set = 0;
    let mut clr = MOUNT_ATTR_RDONLY
        | MOUNT_ATTR_NOSUID
        | MOUNT_ATTR_NODEV
        | MOUNT_ATTR_NOEXEC
        | MOUNT_ATTR_NOSYMFOLLOW;
    for (ms, attr) in [
        (MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MS_NODEV, MOUNT_ATTR_NODEV),
        (MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
    ] {
        if flags & ms != 0 {
            set |= attr;
        }
    }
    if flags & MS_ATIME_ALL != 0 {
        clr |= MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME;
        // Same precedence as the kernel: strictatime beats noatime beats the relatime default.
        set |= if flags & MS_STRICTATIME != 0 {
            MOUNT_ATTR_STRICTATIME
        } else if flags & MS_NOATIME != 0 {
            MOUNT_ATTR_NOATIME
        } else {
            MOUNT_ATTR_RELATIME
        };
        if flags & MS_NODIRATIME != 0 {
            set |= MOUNT_ATTR_NODIRATIME;
        }
    }
    MountAttr {
        attr_set: set,
        attr_clr: clr,
        ..Default::default()
    }
}

/// `statfs.f_flags` (ST_*) → the MS_* flags they stand for (runc's statfsToMountFlags).
pub fn statfs_to_ms(st_flags: u64) -> u64 {
    const ST_RDONLY: u64 = 1;
    const ST_NOSUID: u64 = 2;
    const ST_NODEV: u64 = 4;
    const ST_NOEXEC: u64 = 8;
    const ST_SYNCHRONOUS: u64 = 16;
    const ST_MANDLOCK: u64 = 64;
    const ST_NOATIME: u64 = 1024;
    const ST_NODIRATIME: u64 = 2048;
    const ST_RELATIME: u64 = 4096;
    const ST_NOSYMFOLLOW: u64 = 0x2000;
    let mut ms = 0;
    for (st, flag) in [
        (ST_RDONLY, MS_RDONLY),
        (ST_NOSUID, MS_NOSUID),
        (ST_NODEV, MS_NODEV),
        (ST_NOEXEC, MS_NOEXEC),
        (ST_MANDLOCK, MS_MANDLOCK),
        (ST_SYNCHRONOUS, MS_SYNCHRONOUS),
        (ST_NOATIME, MS_NOATIME),
        (ST_NODIRATIME, MS_NODIRATIME),
        (ST_RELATIME, MS_RELATIME),
        (ST_NOSYMFOLLOW, MS_NOSYMFOLLOW),
    ] {
        if st_flags & st != 0 {
            ms |= flag;
        }
    }
    // MS_STRICTATIME is not stored: a mount with neither noatime nor relatime is strictatime.
    if ms & MS_ATIME_ENUM == 0 {
        ms |= MS_STRICTATIME;
    }
    ms
}

/// Names of set flags, for error messages.
pub fn flag_names(flags: u64) -> String {
    let names = [
        (MS_RDONLY, "ro"),
        (MS_NOSUID, "nosuid"),
        (MS_NODEV, "nodev"),
        (MS_NOEXEC, "noexec"),
        (MS_NOATIME, "noatime"),
        (MS_NODIRATIME, "nodiratime"),
        (MS_RELATIME, "relatime"),
        (MS_STRICTATIME, "strictatime"),
        (MS_NOSYMFOLLOW, "nosymfollow"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    v.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_data_and_clears() {
        let m = MountOptions::parse(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rw",
            "ro",
            "exec",
        ]);
        assert_eq!(m.flags, MS_NOSUID | MS_STRICTATIME | MS_RDONLY);
        assert_eq!(m.cleared, MS_NOEXEC);
        assert_eq!(m.data_string(), "mode=755,size=65536k");
        assert!(!m.is_bind());
        assert!(m.rec_attr.is_none());
    }

    #[test]
    fn later_option_wins() {
        let m = MountOptions::parse(&["ro", "rw"]);
        assert_eq!(m.flags & MS_RDONLY, 0);
        assert_eq!(m.cleared, MS_RDONLY);
        let m = MountOptions::parse(&["rw", "ro"]);
        assert_eq!(m.flags, MS_RDONLY);
        assert_eq!(m.cleared, 0);
    }

    #[test]
    fn bind_and_propagation() {
        let m = MountOptions::parse(&["rbind", "rprivate", "shared", "nodev"]);
        assert!(m.is_bind());
        assert_eq!(m.flags, MS_BIND | MS_REC | MS_NODEV);
        assert_eq!(m.propagation, vec![MS_PRIVATE | MS_REC, MS_SHARED]);
        assert!(m.bind_needs_remount());
        let m = MountOptions::parse(&["bind"]);
        assert!(!m.bind_needs_remount());
        let m = MountOptions::parse(&["bind", "rw"]);
        assert!(!m.bind_needs_remount());
        let m = MountOptions::parse(&["bind", "rw", "nodev"]);
        assert!(m.bind_needs_remount());
    }

    #[test]
    fn recursive_attrs() {
        let m = MountOptions::parse(&["rbind", "rro", "rnosuid", "rnoatime"]);
        let a = m.rec_attr.unwrap();
        assert_eq!(
            a.attr_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
        );
        assert_eq!(a.attr_clr, MOUNT_ATTR__ATIME);
        let m = MountOptions::parse(&["rro", "rrw", "rrelatime"]);
        let a = m.rec_attr.unwrap();
        assert_eq!(a.attr_set, 0);
        assert_eq!(a.attr_clr, MOUNT_ATTR_RDONLY | MOUNT_ATTR__ATIME);
    }

    #[test]
    fn extensions_and_noise() {
        let m = MountOptions::parse(&["tmpcopyup", "defaults", "", "idmap", "context=\"a,b\""]);
        assert!(m.tmpcopyup);
        assert_eq!(m.idmap, Some(false));
        assert_eq!(m.data, vec!["context=\"a,b\"".to_string()]);
        assert_eq!(m.flags, 0);
    }

    #[test]
    fn idmap_options_last_wins() {
        assert_eq!(MountOptions::parse(&["rbind", "ridmap"]).idmap, Some(true));
        assert_eq!(MountOptions::parse(&["ridmap", "idmap"]).idmap, Some(false));
        assert_eq!(MountOptions::parse(&["rbind"]).idmap, None);
        assert!(MountOptions::parse(&["idmap"]).data.is_empty());
    }

    #[test]
    fn propagation_values() {
        assert_eq!(root_propagation(""), Some(0));
        assert_eq!(root_propagation("rslave"), Some(MS_SLAVE | MS_REC));
        assert_eq!(root_propagation("shared"), Some(MS_SHARED));
        assert_eq!(
            root_propagation("runbindable"),
            Some(MS_UNBINDABLE | MS_REC)
        );
        assert_eq!(root_propagation("bogus"), None);
    }

    #[test]
    fn remount_attr_like_kernel() {
        let a = bind_remount_attr(MS_BIND | MS_RDONLY | MS_NOSUID);
        assert_eq!(a.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        // No atime flag: atime preserved (not in clr).
        assert_eq!(a.attr_clr & MOUNT_ATTR__ATIME, 0);
        assert_ne!(a.attr_clr & MOUNT_ATTR_NODEV, 0);
        let a = bind_remount_attr(MS_NOATIME | MS_RELATIME);
        assert_eq!(a.attr_set, MOUNT_ATTR_NOATIME);
        assert_eq!(a.attr_clr & MOUNT_ATTR__ATIME, MOUNT_ATTR__ATIME);
        let a = bind_remount_attr(MS_STRICTATIME | MS_NODIRATIME);
        assert_eq!(a.attr_set, MOUNT_ATTR_STRICTATIME | MOUNT_ATTR_NODIRATIME);
        let a = bind_remount_attr(MS_RELATIME);
        assert_eq!(a.attr_set, MOUNT_ATTR_RELATIME);
        assert_ne!(a.attr_clr & MOUNT_ATTR_NODIRATIME, 0);
    }

    #[test]
    fn statfs_flags() {
        // ST_RDONLY | ST_NOSUID | ST_RELATIME
        assert_eq!(
            statfs_to_ms(1 | 2 | 4096),
            MS_RDONLY | MS_NOSUID | MS_RELATIME
        );
        // nothing: strictatime
        assert_eq!(statfs_to_ms(0), MS_STRICTATIME);
        assert_eq!(flag_names(MS_RDONLY | MS_NODEV), "ro,nodev");
    }
}
