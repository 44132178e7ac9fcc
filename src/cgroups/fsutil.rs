//! Small file helpers for cgroupfs: every error names the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::CgroupError;

/// Write `value` to a cgroup file in one write (O_TRUNC as runc; cgroupfs ignores it).
pub fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| CgroupError::path(path, format!("open for writing: {e}")))?;
    f.write_all(value.as_bytes())
        .map_err(|e| CgroupError::path(path, format!("write {value:?}: {e}")))
}

pub fn read_trim(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| CgroupError::path(path, format!("read: {e}")))
}

/// Create `dir` and its missing parents below `mountpoint`. Returns the outermost directory
/// that was newly made (None if all existed).
pub fn mkdir_all(mountpoint: &Path, dir: &Path) -> Result<Option<PathBuf>, CgroupError> {
    let rel = dir
        .strip_prefix(mountpoint)
        .map_err(|_| CgroupError::path(dir, format!("not below {}", mountpoint.display())))?;
    let mut cur = mountpoint.to_path_buf();
    let mut first = None;
    for c in rel.components() {
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => {
                first.get_or_insert_with(|| cur.clone());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CgroupError::path(&cur, format!("mkdir: {e}"))),
        }
    }
    Ok(first)
}

/// Parse a flat-keyed file (`key value` per line), as memory.stat or cpu.stat.
pub fn flat_keyed(path: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    if let Ok(t) = std::fs::read_to_string(path) {
        for l in t.lines() {
            let mut it = l.split_whitespace();
            if let (Some(k), Some(v)) = (it.next(), it.next()) {
                if let Ok(v) = v.parse() {
                    m.insert(k.to_string(), v);
                }
            }
        }
    }
    m
}

/// A single number from a file, 0 if absent or `max`.
pub fn read_u64(path: &Path) -> u64 {
    read_trim(path)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
