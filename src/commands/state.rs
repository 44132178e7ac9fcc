//! `husk state ID`: runc's state JSON.

use super::{Ctx, SPEC_VERSION};
use crate::container::ops;
use crate::error::Result;
use crate::state::{ContainerDir, Saved, Status};

pub fn run(ctx: &Ctx, id: &str) -> Result<()> {
    let dir = ContainerDir::new(&ctx.root, id)?;
    let (saved, status) = ops::status_of(&dir)?;
    let out = serde_json::to_string_pretty(&runc_state(&saved, status)).unwrap_or_default();
    // runc prints no trailing newline.
    super::emit(&out);
    Ok(())
}

/// runc's `state` object (also the elements of `list --format json`, with more fields there).
pub fn runc_state(saved: &Saved, status: Status) -> RuncState<'_> {
    RuncState {
        oci_version: SPEC_VERSION,
        id: &saved.id,
        // runc reports 0 once the container has stopped.
        pid: if status == Status::Stopped {
            0
        } else {
            saved.pid
        },
        status: status.as_str(),
        bundle: &saved.bundle,
        rootfs: &saved.rootfs,
        created: &saved.created,
        annotations: &saved.annotations,
        owner: &saved.owner,
    }
}

/// Field for field, in runc's order.
#[derive(serde::Serialize)]
pub struct RuncState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    id: &'a str,
    pid: i32,
    status: &'a str,
    bundle: &'a std::path::Path,
    rootfs: &'a std::path::Path,
    created: &'a str,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    annotations: &'a std::collections::BTreeMap<String, String>,
    owner: &'a str,
}
