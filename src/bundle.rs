//! Load and validate a bundle's config.json. Every error names the JSON field (as a path like
//! `process.rlimits[0].hard`) or the file that is wrong.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {msg}")]
    Json { path: PathBuf, msg: String },
    #[error("{path}: {field}: {msg}")]
    Field {
        path: PathBuf,
        field: String,
        msg: String,
    },
    #[error("root.path: rootfs {path}: {source}")]
    Rootfs {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A loaded bundle: its absolute directory, the parsed config and the canonical rootfs path.
pub struct Bundle {
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Load `<dir>/config.json` (dir defaults to the current directory, as runc).
    pub fn load(dir: Option<&Path>) -> Result<Bundle, BundleError> {
        let given = dir.unwrap_or(Path::new("."));
        let dir = fs::canonicalize(given).map_err(|source| BundleError::Dir {
            path: given.to_path_buf(),
            source,
        })?;
        let config_path = dir.join("config.json");
        let data = fs::read(&config_path).map_err(|source| BundleError::Read {
            path: config_path.clone(),
            source,
        })?;
        let spec = parse_spec(&config_path, &data)?;
        let root = spec.root().as_ref().ok_or_else(|| {
            field(
                &config_path,
                "root",
                "missing: the config must name the container's root filesystem",
            )
        })?;
        if root.path().as_os_str().is_empty() {
            return Err(field(&config_path, "root.path", "empty"));
        }
        let rootfs_given = dir.join(root.path());
        let rootfs = fs::canonicalize(&rootfs_given).map_err(|source| BundleError::Rootfs {
            path: rootfs_given.clone(),
            source,
        })?;
        if !rootfs.is_dir() {
            return Err(BundleError::Rootfs {
                path: rootfs,
                source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
        let bundle = Bundle {
            dir,
            config_path,
            spec,
            rootfs,
        };
        bundle.validate()?;
        Ok(bundle)
    }

    /// The container's process (required by create and run).
    pub fn process(&self) -> &Process {
        // validate() guarantees it is present.
        self.spec
            .process()
            .as_ref()
            .expect("validated: process present")
    }

    fn validate(&self) -> Result<(), BundleError> {
        let p = &self.config_path;
        let process = self.spec.process().as_ref().ok_or_else(|| {
            field(
                p,
                "process",
                "missing: the config must describe the container's process",
            )
        })?;
        validate_process(p, process)?;
        if let Some(linux) = self.spec.linux() {
            let mut seen = HashSet::new();
            for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
                if !seen.insert(ns.typ()) {
                    return Err(field(
                        p,
                        &format!("linux.namespaces[{i}]"),
                        &format!("duplicate namespace type {:?}", ns_name(ns.typ())),
                    ));
                }
                if let Some(path) = ns.path() {
                    if !path.is_absolute() {
                        return Err(field(
                            p,
                            &format!("linux.namespaces[{i}].path"),
                            &format!("{} is not an absolute path", path.display()),
                        ));
                    }
                }
            }
        }
        for (i, m) in self.spec.mounts().iter().flatten().enumerate() {
            if !m.destination().is_absolute() {
                return Err(field(
                    p,
                    &format!("mounts[{i}].destination"),
                    &format!("{} is not an absolute path", m.destination().display()),
                ));
            }
        }
        Ok(())
    }
}

/// Checks on a `process` object, shared by create and exec's `--process` file.
pub fn validate_process(path: &Path, process: &Process) -> Result<(), BundleError> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => {
            return Err(field(
                path,
                "process.args",
                "missing or empty: nothing to run",
            ))
        }
    }
    if !process.cwd().is_absolute() {
        return Err(field(
            path,
            "process.cwd",
            &format!(
                "{:?} is relative: it must be an absolute path",
                process.cwd()
            ),
        ));
    }
    for (i, rl) in process.rlimits().iter().flatten().enumerate() {
        if rl.soft() > rl.hard() {
            return Err(field(
                path,
                &format!("process.rlimits[{i}]"),
                &format!(
                    "soft limit {} is above the hard limit {}",
                    rl.soft(),
                    rl.hard()
                ),
            ));
        }
    }
    for (i, kv) in process.env().iter().flatten().enumerate() {
        if !kv.contains('=') {
            return Err(field(
                path,
                &format!("process.env[{i}]"),
                &format!("{kv:?} is not KEY=VALUE"),
            ));
        }
    }
    Ok(())
}

/// Parse a config, naming the field on a type error.
pub fn parse_spec(path: &Path, data: &[u8]) -> Result<Spec, BundleError> {
    parse_json(path, data)
}

/// Parse any JSON document into `T`, naming the field at fault.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    data: &[u8],
) -> Result<T, BundleError> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field_path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || field_path == "." {
            BundleError::Json {
                path: path.to_path_buf(),
                msg: inner.to_string(),
            }
        } else {
            BundleError::Field {
                path: path.to_path_buf(),
                field: field_path,
                msg: inner.to_string(),
            }
        }
    })
}

fn field(path: &Path, field: &str, msg: &str) -> BundleError {
    BundleError::Field {
        path: path.to_path_buf(),
        field: field.to_string(),
        msg: msg.to_string(),
    }
}

/// The spec's name of a namespace type.
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field() {
        let bad = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},"rlimits":[{"type":"RLIMIT_NOFILE","hard":-1,"soft":1}]},"root":{"path":"r"}}"#;
        let e = parse_spec(Path::new("c.json"), bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("process.rlimits[0].hard"), "{e}");
        let e = parse_spec(Path::new("c.json"), b"{")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid JSON"), "{e}");
    }
}
