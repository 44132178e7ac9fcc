//! The five capability sets of `process.capabilities`. The bounding set is dropped while the
//! init still has CAP_SETPCAP (before the switch to the container user); the other sets are
//! applied after it (with keep-caps on across setuid). The inheritable set stays empty unless
//! the config lists it (DESIGN §4; CVE-2022-29162 gave containers a non-empty inheritable set).

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("process.capabilities.{set}: {name:?} is not a capability this runtime knows")]
    Unknown { set: &'static str, name: String },
    #[error("process.capabilities.{set}: {msg}")]
    Apply { set: &'static str, msg: String },
}

/// The resolved sets (each as the `caps` crate's hash sets).
pub struct Sets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

fn convert<'a>(
    set: &'static str,
    list: Option<impl IntoIterator<Item = &'a oci_spec::runtime::Capability>>,
    last_cap: u8,
) -> Result<CapsHashSet, CapsError> {
    let mut out = CapsHashSet::new();
    for c in list.into_iter().flatten() {
        // oci-spec serialises a capability as its kernel name, e.g. "CAP_CHOWN".
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let cap = Capability::from_str(&name).map_err(|_| CapsError::Unknown {
            set,
            name: name.clone(),
        })?;
        // Capabilities newer than the running kernel are skipped, as runc does.
        if cap.index() <= last_cap {
            out.insert(cap);
        } else {
            crate::logging::warn(&format!(
                "process.capabilities.{set}: {name} is not supported by this kernel; ignored"
            ));
        }
    }
    Ok(out)
}

/// The kernel's highest capability number.
fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

impl Sets {
    /// Resolve the config's sets. No `capabilities` object means an empty set everywhere.
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Result<Sets, CapsError> {
        let last = last_cap();
        Ok(Sets {
            bounding: convert("bounding", c.and_then(|c| c.bounding().as_ref()), last)?,
            effective: convert("effective", c.and_then(|c| c.effective().as_ref()), last)?,
            permitted: convert("permitted", c.and_then(|c| c.permitted().as_ref()), last)?,
            inheritable: convert(
                "inheritable",
                c.and_then(|c| c.inheritable().as_ref()),
                last,
            )?,
            ambient: convert("ambient", c.and_then(|c| c.ambient().as_ref()), last)?,
        })
    }

    /// Drop everything outside the bounding set. Needs CAP_SETPCAP: call before the uid switch.
    pub fn apply_bounding(&self) -> Result<(), CapsError> {
        let current = caps::read(None, CapSet::Bounding).map_err(|e| CapsError::Apply {
            set: "bounding",
            msg: e.to_string(),
        })?;
        for cap in current.difference(&self.bounding) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|e| CapsError::Apply {
                set: "bounding",
                msg: format!("drop {cap}: {e}"),
            })?;
        }
        Ok(())
    }

    /// Set effective, permitted, inheritable and ambient. Call after the uid switch.
    pub fn apply_rest(&self) -> Result<(), CapsError> {
        // Order matters: permitted bounds effective and inheritable; ambient needs both
        // permitted and inheritable.
        let set = |name: &'static str, which: CapSet, v: &CapsHashSet| {
            caps::set(None, which, v).map_err(|e| CapsError::Apply {
                set: name,
                msg: e.to_string(),
            })
        };
        // Effective must shrink before permitted can (effective ⊆ permitted).
        set(
            "effective",
            CapSet::Effective,
            &self
                .effective
                .intersection(&self.permitted)
                .cloned()
                .collect(),
        )?;
        set("permitted", CapSet::Permitted, &self.permitted)?;
        set("inheritable", CapSet::Inheritable, &self.inheritable)?;
        set("effective", CapSet::Effective, &self.effective)?;
        caps::clear(None, CapSet::Ambient).map_err(|e| CapsError::Apply {
            set: "ambient",
            msg: e.to_string(),
        })?;
        for cap in &self.ambient {
            // runc ignores an ambient capability the kernel refuses (not in permitted and
            // inheritable); so do we, with a warning.
            if let Err(e) = caps::raise(None, CapSet::Ambient, *cap) {
                crate::logging::debug(&format!(
                    "process.capabilities.ambient: {cap}: {e}; ignored"
                ));
            }
        }
        Ok(())
    }
}
