//! Harness for husk's integration tests.
//!
//! The tests drive a runc-compatible binary (`$HUSK`, default `<workspace>/target/debug/husk`)
//! on real busybox bundles, as root. Running them with `HUSK=/usr/sbin/runc` proves that they
//! encode runc's behaviour; where husk deliberately differs, tests branch on [`is_runc`].
//!
//! * [`Bundle`] — a temp dir `/tmp/husk-it-b-*` with a copy of a busybox rootfs (built once by
//!   `hack/mkrootfs.sh`), an `out/` dir bind-mounted at `/out` in the container, and a config
//!   close to `runc spec`'s (see `spec-fixtures/good/minimal.json`) held as a `serde_json::Value`.
//! * [`Runtime`] — the binary with its own `--root` dir; every call returns an [`Output`].
//!   On drop (also while unwinding from a panic) it runs `delete --force` for every id it handed
//!   out, checks that nothing is left (state dir, process, cgroup dir, mount) and cleans up.
//!
//! Declare the bundle(s) before the runtime so that the runtime, dropped first, deletes the
//! containers before their bundles are removed.

use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long one runtime invocation may take before the harness kills it and fails the test.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a container to reach a state (stopped, a marker file, ...).
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Set in the environment of every runtime invocation, to see which environment hooks inherit.
pub const ENV_MARKER: &str = "HUSK_IT_ENV_MARKER";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// The workspace root (the parent of this crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate has a parent dir")
        .to_path_buf()
}

/// The runtime under test: `$HUSK`, else `<workspace>/target/debug/husk`.
pub fn husk_bin() -> PathBuf {
    match std::env::var_os("HUSK") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_dir().join("target/debug/husk"),
    }
}

/// True when the binary under test is runc (by `--version`, else by file name).
pub fn is_runc() -> bool {
    static RUNC: OnceLock<bool> = OnceLock::new();
    *RUNC.get_or_init(|| {
        let bin = husk_bin();
        if let Ok(out) = Command::new(&bin).arg("--version").output() {
            let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
            if text.starts_with("runc version") {
                return true;
            }
            if text.starts_with("husk") {
                return false;
            }
        }
        bin.file_name()
            .map(|n| n.to_string_lossy().contains("runc"))
            .unwrap_or(false)
    })
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Skip (return from) the calling test unless running as root with the binary present.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("SKIP: integration tests need root");
            return;
        }
        if !$crate::husk_bin().exists() {
            panic!(
                "runtime binary {} not found: build it or set HUSK",
                $crate::husk_bin().display()
            );
        }
    };
}

/// A template rootfs built once per test process by hack/mkrootfs.sh.
pub fn template_rootfs() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = PathBuf::from(format!("/tmp/husk-it-template-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create template dir");
        let rootfs = dir.join("rootfs");
        let script = workspace_dir().join("hack/mkrootfs.sh");
        let out = Command::new("sh")
            .arg(&script)
            .arg(&rootfs)
            .output()
            .expect("run hack/mkrootfs.sh");
        assert!(
            out.status.success(),
            "hack/mkrootfs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Remove the template when the test process exits.
        extern "C" fn remove_template() {
            let dir = format!("/tmp/husk-it-template-{}", std::process::id());
            let _ = fs::remove_dir_all(dir);
        }
        unsafe { libc::atexit(remove_template) };
        rootfs
    })
}

/// A container id unique to this test process: `it-<name>-<pid>`.
pub fn unique_id(name: &str) -> String {
    format!("it-{}-{}", name.replace('_', "-"), std::process::id())
}

/// What one runtime invocation did.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; `128 + signal` if killed by a signal.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub argv: Vec<String>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Panic with everything known unless the command exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.status, 0, "command failed: {self}");
        self
    }

    /// Panic unless the command exited non-zero.
    #[track_caller]
    pub fn failed(&self) -> &Self {
        assert_ne!(self.status, 0, "command unexpectedly succeeded: {self}");
        self
    }

    /// Panic unless stderr contains `needle` (case-insensitive).
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr lacks {needle:?}: {self}"
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.argv.join(" "),
            self.status,
            self.stdout,
            self.stderr
        )
    }
}

/// Run a command with stdout/stderr sent to files in `io_dir` (never pipes: a container that
/// inherits them would keep them open), stdin from /dev/null, cwd `/`, and a timeout.
/// `fd3`: a file to pass as fd 3.
pub fn run_command(
    program: &Path,
    args: &[String],
    io_dir: &Path,
    fd3: Option<&fs::File>,
) -> Output {
    try_run_command(program, args, io_dir, fd3).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run_command`] that reports a failure to spawn or a timeout as an error instead of panicking.
pub fn try_run_command(
    program: &Path,
    args: &[String],
    io_dir: &Path,
    fd3: Option<&fs::File>,
) -> Result<Output, String> {
    let n = unique();
    let out_path = io_dir.join(format!("cmd-{n}.out"));
    let err_path = io_dir.join(format!("cmd-{n}.err"));
    let out_file = fs::File::create(&out_path).map_err(|e| format!("create stdout file: {e}"))?;
    let err_file = fs::File::create(&err_path).map_err(|e| format!("create stderr file: {e}"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .current_dir("/")
        .env(ENV_MARKER, "1");
    if let Some(f) = fd3 {
        let raw = f.as_raw_fd();
        unsafe {
            cmd.pre_exec(move || {
                if raw == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                } else if libc::dup2(raw, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut argv = vec![program.display().to_string()];
    argv.extend(args.iter().cloned());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", argv.join(" ")))?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| format!("wait: {e}"))? {
            Some(s) => break s,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{}` did not finish in {COMMAND_TIMEOUT:?}",
                    argv.join(" ")
                ));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    Ok(Output {
        status: code,
        stdout,
        stderr,
        argv,
    })
}

// ---------------------------------------------------------------------------------------------
// Bundles

/// An OCI bundle in a temp dir, removed on drop.
pub struct Bundle {
    dir: PathBuf,
    /// The config written to `config.json` by [`Bundle::save`] (and before create/run).
    pub config: Value,
    /// If set, written verbatim instead of `config` (for malformed input).
    pub raw_config: Option<Vec<u8>>,
}

impl Bundle {
    /// A new bundle `/tmp/husk-it-b-<name>-<pid>-<n>` with a rootfs and the default config.
    pub fn new(name: &str) -> Bundle {
        let dir = PathBuf::from(format!(
            "/tmp/husk-it-b-{}-{}-{}",
            name,
            std::process::id(),
            unique()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create bundle dir");
        let template = template_rootfs();
        let st = Command::new("cp")
            .arg("-a")
            .arg(template)
            .arg(dir.join("rootfs"))
            .status()
            .expect("cp -a rootfs");
        assert!(st.success(), "cp -a {} failed", template.display());
        let out = dir.join("out");
        fs::create_dir_all(&out).unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
        let config = default_config(&dir);
        Bundle {
            dir,
            config,
            raw_config: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn path_str(&self) -> String {
        self.dir.display().to_string()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The host side of `/out` in the container.
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// Read `out/<name>` (what the container wrote to `/out/<name>`), "" if missing.
    pub fn read_out(&self, name: &str) -> String {
        fs::read_to_string(self.out().join(name)).unwrap_or_default()
    }

    /// Wait until `out/<name>` exists and is non-empty; return its contents.
    #[track_caller]
    pub fn wait_out(&self, name: &str) -> String {
        let path = self.out().join(name);
        wait_for(&format!("{} to be written", path.display()), || {
            fs::read_to_string(&path).ok().filter(|s| !s.is_empty())
        })
    }

    /// `process.args = args`.
    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// `process.args = ["sh", "-c", script]`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.set_args(&["sh", "-c", script])
    }

    /// Append a mount to `mounts`.
    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts is an array")
            .push(mount);
        self
    }

    /// Keep only these namespace types (without paths).
    pub fn set_namespaces(&mut self, types: &[&str]) -> &mut Self {
        let v: Vec<Value> = types.iter().map(|t| json!({ "type": t })).collect();
        self.config["linux"]["namespaces"] = Value::Array(v);
        self
    }

    /// Write `config.json`.
    pub fn save(&self) {
        let bytes = match &self.raw_config {
            Some(raw) => raw.clone(),
            None => serde_json::to_vec_pretty(&self.config).unwrap(),
        };
        fs::write(self.dir.join("config.json"), bytes).expect("write config.json");
    }

    /// Write a file inside the rootfs (creating parents).
    pub fn write_rootfs_file(&self, rel: &str, contents: &str) {
        let p = self.rootfs().join(rel.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, contents).unwrap();
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let leftovers = mounts_under(&self.dir);
        for m in leftovers.iter().rev() {
            umount_detach(m);
        }
        let procs = processes_mentioning(&self.path_str());
        for p in &procs {
            unsafe { libc::kill(*p, libc::SIGKILL) };
        }
        let _ = fs::remove_dir_all(&self.dir);
        if !std::thread::panicking() {
            // Mounts this test made itself on the host (e.g. for rro) are unmounted by the test;
            // anything else under the bundle was left by the runtime.
            assert!(
                leftovers.is_empty(),
                "mounts left under {}: {leftovers:?}",
                self.dir.display()
            );
            assert!(
                procs.is_empty(),
                "processes mentioning {} left: {procs:?}",
                self.dir.display()
            );
        }
    }
}

/// The default config: `spec-fixtures/good/minimal.json` (close to `runc spec`, with
/// `terminal: false`, a writable root, a cgroup namespace) plus `<bundle>/out` bound at `/out`.
pub fn default_config(bundle: &Path) -> Value {
    let text = fs::read_to_string(workspace_dir().join("spec-fixtures/good/minimal.json"))
        .expect("read spec-fixtures/good/minimal.json");
    let mut config: Value = serde_json::from_str(&text).expect("minimal.json is JSON");
    config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/out",
        "type": "bind",
        "source": bundle.join("out").display().to_string(),
        "options": ["rbind", "rw"]
    }));
    config
}

// ---------------------------------------------------------------------------------------------
// Runtime

/// The runtime binary with a private `--root`, cleaning up after itself.
pub struct Runtime {
    bin: PathBuf,
    dir: PathBuf,
    name: String,
    ids: RefCell<BTreeSet<String>>,
    /// (id, pid, start time) of every container process seen through `state`.
    pids: RefCell<Vec<(String, i32, u64)>>,
}

impl Runtime {
    /// A runtime with root dir `/tmp/husk-it-r-<name>-<pid>-<n>/root`.
    pub fn new(name: &str) -> Runtime {
        let dir = PathBuf::from(format!(
            "/tmp/husk-it-r-{}-{}-{}",
            name,
            std::process::id(),
            unique()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("io")).expect("create runtime dir");
        Runtime {
            bin: husk_bin(),
            dir,
            name: name.to_string(),
            ids: RefCell::new(BTreeSet::new()),
            pids: RefCell::new(Vec::new()),
        }
    }

    /// The `--root` dir (not created: the runtime creates it).
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn root_str(&self) -> String {
        self.root().display().to_string()
    }

    /// A scratch dir owned by this runtime handle (removed on drop).
    pub fn scratch(&self) -> PathBuf {
        self.dir.clone()
    }

    /// A fresh container id `it-<name>[-suffix]-<pid>`, cleaned up on drop.
    pub fn id(&self, suffix: &str) -> String {
        let base = if suffix.is_empty() {
            self.name.clone()
        } else {
            format!("{}-{}", self.name, suffix)
        };
        let id = unique_id(&base);
        self.track(&id);
        id
    }

    /// Make drop clean up `id` too (for ids not made by [`Runtime::id`]).
    pub fn track(&self, id: &str) {
        self.ids.borrow_mut().insert(id.to_string());
    }

    /// Run the binary with exactly these arguments (no `--root`).
    pub fn raw(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        run_command(&self.bin, &args, &self.dir.join("io"), None)
    }

    /// Run the binary with exactly these arguments and `file` as fd 3.
    pub fn raw_with_fd3(&self, args: &[&str], file: &fs::File) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        run_command(&self.bin, &args, &self.dir.join("io"), Some(file))
    }

    /// `husk --root <root> <args...>`
    pub fn cmd(&self, args: &[&str]) -> Output {
        let root = self.root_str();
        let mut all = vec!["--root", root.as_str()];
        all.extend_from_slice(args);
        self.raw(&all)
    }

    /// `create --bundle <bundle> <id>` (writes config.json first).
    pub fn create(&self, id: &str, bundle: &Bundle) -> Output {
        self.create_with(id, bundle, &[])
    }

    /// `create --bundle <bundle> <extra...> <id>` (writes config.json first).
    pub fn create_with(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Output {
        self.track(id);
        bundle.save();
        let b = bundle.path_str();
        let mut args = vec!["create", "--bundle", b.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        self.cmd(&args)
    }

    pub fn start(&self, id: &str) -> Output {
        self.cmd(&["start", id])
    }

    pub fn state(&self, id: &str) -> Output {
        let out = self.cmd(&["state", id]);
        if out.success() {
            if let Ok(v) = serde_json::from_str::<Value>(&out.stdout) {
                if let Some(pid) = v["pid"].as_i64().filter(|p| *p > 0) {
                    if let Some(st) = proc_start_time(pid as i32) {
                        self.pids
                            .borrow_mut()
                            .push((id.to_string(), pid as i32, st));
                    }
                }
            }
        }
        out
    }

    /// `state <id>` parsed; panics if it fails.
    #[track_caller]
    pub fn state_json(&self, id: &str) -> Value {
        let out = self.state(id);
        out.ok();
        out.json()
    }

    /// The `status` field of `state <id>`.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state_json(id)["status"]
            .as_str()
            .expect("status is a string")
            .to_string()
    }

    /// The `pid` field of `state <id>`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        self.state_json(id)["pid"]
            .as_i64()
            .expect("pid is a number") as i32
    }

    /// `kill <id> [signal]`
    pub fn kill(&self, id: &str, signal: Option<&str>) -> Output {
        match signal {
            Some(s) => self.cmd(&["kill", id, s]),
            None => self.cmd(&["kill", id]),
        }
    }

    /// `delete [--force] <id>`
    pub fn delete(&self, id: &str, force: bool) -> Output {
        if force {
            self.cmd(&["delete", "--force", id])
        } else {
            self.cmd(&["delete", id])
        }
    }

    /// `run --bundle <bundle> <extra...> <id>` (writes config.json first).
    pub fn run(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Output {
        self.track(id);
        bundle.save();
        let b = bundle.path_str();
        let mut args = vec!["run", "--bundle", b.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        self.cmd(&args)
    }

    /// Foreground `run` of the bundle under a fresh id; returns its output after checking that
    /// the container left nothing behind.
    pub fn run_once(&self, bundle: &Bundle) -> Output {
        let id = self.id(&format!("run{}", unique()));
        let out = self.run(&id, bundle, &[]);
        self.assert_gone(&id);
        out
    }

    /// Wait until `state <id>` reports `status`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str) {
        wait_for(&format!("{id} to be {status}"), || {
            let out = self.state(id);
            if !out.success() {
                return None;
            }
            (out.json()["status"] == status).then_some(())
        })
    }

    /// create + start, then wait for `running`; returns the container pid.
    #[track_caller]
    pub fn create_and_start(&self, id: &str, bundle: &Bundle) -> i32 {
        self.create(id, bundle).ok();
        self.start(id).ok();
        self.pid(id)
    }

    /// Assert that nothing of `id` remains: no `<root>/<id>`, no process in a cgroup named after
    /// it, no cgroup dir named after it, no recorded container process alive.
    #[track_caller]
    pub fn assert_gone(&self, id: &str) {
        let problems = self.leftovers(id);
        assert!(problems.is_empty(), "{id} left behind: {problems:#?}");
    }

    /// What remains of `id` (empty if nothing).
    pub fn leftovers(&self, id: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !id.is_empty() && !id.contains('/') && id != "." && id != ".." {
            let dir = self.root().join(id);
            if dir.exists() {
                problems.push(format!("state dir {} exists", dir.display()));
            }
            // Only ids made by this harness are unique enough to search the host for.
            if id.starts_with("it-") {
                for p in processes_in_cgroup_named(id) {
                    problems.push(format!("process {p} is in a cgroup named {id}"));
                }
                for d in cgroup_dirs_named(id) {
                    problems.push(format!("cgroup dir {} exists", d.display()));
                }
            }
        }
        for (_, pid, st) in self.pids.borrow().iter().filter(|(i, _, _)| i == id) {
            if proc_alive_with_start(*pid, *st) {
                problems.push(format!("container process {pid} is still alive"));
            }
        }
        problems
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let ids: Vec<String> = self.ids.borrow().iter().cloned().collect();
        let mut problems = Vec::new();
        for id in &ids {
            if id.is_empty() || id.contains('/') {
                continue;
            }
            // Never panic here: a panic while unwinding would abort the whole test binary.
            let args: Vec<String> = ["--root", &self.root_str(), "delete", "--force", id]
                .iter()
                .map(|s| s.to_string())
                .collect();
            match try_run_command(&self.bin, &args, &self.dir.join("io"), None) {
                Ok(out) if out.success() => {}
                Ok(out) => problems.push(format!("cleanup `delete --force {id}` failed: {out}")),
                Err(e) => problems.push(format!("cleanup `delete --force {id}`: {e}")),
            }
        }
        for id in &ids {
            problems.extend(self.leftovers(id));
        }
        // Kill whatever is left that is certainly ours.
        for (_, pid, st) in self.pids.borrow().iter() {
            if proc_alive_with_start(*pid, *st) {
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
        }
        for id in ids.iter().filter(|i| i.starts_with("it-")) {
            for p in processes_in_cgroup_named(id) {
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        let root = self.root_str();
        for p in processes_mentioning(&root) {
            problems.push(format!("runtime process {p} still running"));
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        let mounts = mounts_under(&self.dir);
        for m in mounts.iter().rev() {
            problems.push(format!("mount {m} left"));
            umount_detach(m);
        }
        let _ = fs::remove_dir_all(&self.dir);
        if !std::thread::panicking() {
            assert!(problems.is_empty(), "cleanup found: {problems:#?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Host inspection

/// Poll `f` until it returns Some, for up to [`WAIT_TIMEOUT`].
#[track_caller]
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Field 22 of /proc/<pid>/stat, None if the process is gone.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state); field 22 is fields[19].
    fields.get(19)?.parse().ok()
}

/// The state letter of /proc/<pid>/stat.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// A process with this pid and start time exists and is not a zombie.
pub fn proc_alive_with_start(pid: i32, start: u64) -> bool {
    proc_start_time(pid) == Some(start) && !matches!(proc_state(pid), Some('Z') | Some('X'))
}

/// A process with this pid exists and is not a zombie.
pub fn proc_alive(pid: i32) -> bool {
    !matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

fn all_pids() -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
                v.push(pid);
            }
        }
    }
    v
}

/// Live processes whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|&p| p != me && proc_alive(p))
        .filter(|p| {
            fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// Live processes whose /proc/<pid>/cgroup has a path component equal to `id`.
pub fn processes_in_cgroup_named(id: &str) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&p| proc_alive(p))
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/cgroup"))
                .map(|c| {
                    c.lines().any(|l| {
                        l.splitn(3, ':')
                            .nth(2)
                            .map(|path| path.split('/').any(|comp| comp == id))
                            .unwrap_or(false)
                    })
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Cgroup directories (to depth 5 under /sys/fs/cgroup) whose name contains `id`.
/// Only reads directories; never changes anything.
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, id: &str, found: &mut Vec<PathBuf>) {
        if depth == 0 {
            return;
        }
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let p = e.path();
            if e.file_name().to_string_lossy().contains(id) {
                found.push(p.clone());
            }
            walk(&p, depth - 1, id, found);
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), 5, id, &mut found);
    found
}

/// Decode the octal escapes of /proc/self/mountinfo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points in this (the host's) mount namespace at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mountinfo))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect()
}

/// Mount points in this mount namespace whose path contains `needle`.
pub fn mounts_containing(needle: &str) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mountinfo))
        .filter(|m| m.contains(needle))
        .collect()
}

fn umount_detach(path: &str) {
    if let Ok(c) = CString::new(path) {
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Mount a tmpfs at `target` on the host (a test's own mount under its bundle).
pub fn mount_tmpfs(target: &Path) {
    fs::create_dir_all(target).unwrap();
    let src = CString::new("tmpfs").unwrap();
    let tgt = CString::new(target.display().to_string()).unwrap();
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    assert_eq!(
        r,
        0,
        "mount tmpfs on {}: {}",
        target.display(),
        std::io::Error::last_os_error()
    );
}

/// Unmount a mount made by [`mount_tmpfs`].
pub fn umount(target: &Path) {
    umount_detach(&target.display().to_string());
}

/// `readlink /proc/<pid>/ns/<ns>` (pid "self" for this process).
pub fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .display()
        .to_string()
}

/// Does `s` look like an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`)?
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        r.clone()
            .all(|i| b.get(i).is_some_and(|c| c.is_ascii_digit()))
    };
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !(b[10] == b'T' || b[10] == b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z') | Some(b'z') => i + 1 == b.len(),
        Some(b'+') | Some(b'-') => {
            i + 6 == b.len() && digits(i + 1..i + 3) && b[i + 3] == b':' && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

/// Write `contents` to a new file in `dir` and open it for reading (to pass as fd 3).
pub fn file_with(dir: &Path, name: &str, contents: &str) -> fs::File {
    let p = dir.join(name);
    let mut f = fs::File::create(&p).unwrap();
    f.write_all(contents.as_bytes()).unwrap();
    drop(f);
    fs::File::open(&p).unwrap()
}

/// Receive one message carrying one fd by SCM_RIGHTS (what a console-socket receiver such as
/// conmon, or a seccomp agent, does): returns the payload and the fd.
pub fn recv_fd(sock: &std::os::unix::net::UnixStream) -> (Vec<u8>, std::os::fd::OwnedFd) {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = vec![0u8; 65536];
    let mut cbuf = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY (test code): a zeroed msghdr is valid; every pointer set below outlives recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = cbuf.len() as _;
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    assert!(!cmsg.is_null(), "no fd received");
    unsafe {
        assert_eq!((*cmsg).cmsg_level, libc::SOL_SOCKET);
        assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
    }
    let fd = unsafe { *(libc::CMSG_DATA(cmsg) as *const i32) };
    buf.truncate(n as usize);
    (buf, unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339("2026-11-23T09:30:06.877058155Z"));
        assert!(is_rfc3339("2026-11-23T09:30:06Z"));
        assert!(is_rfc3339("2026-11-23T09:30:06+01:00"));
        assert!(!is_rfc3339("2026-11-23 09:30:06Z"));
        assert!(!is_rfc3339("2026-11-23T09:30:06"));
        assert!(!is_rfc3339(""));
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
