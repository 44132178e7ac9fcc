//! runc-shaped logging. `--log FILE` receives one line per message in `--log-format text`
//! (`time="..." level=error msg="..."`) or `json` (`{"level":"error","msg":"...","time":"..."}`),
//! which is what containerd and Podman parse. Without `--log`, errors go to stderr in the text
//! format, as runc does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    Debug,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

struct Logger {
    file: Option<File>,
    json: bool,
    debug: bool,
}

static LOGGER: Mutex<Logger> = Mutex::new(Logger {
    file: None,
    json: false,
    debug: false,
});

/// Configure logging from the global flags. A log file that cannot be opened is an error.
pub fn init(path: Option<&Path>, format: &str, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC)
                .open(p)?,
        ),
        None => None,
    };
    let mut l = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    l.file = file;
    l.json = format == "json";
    l.debug = debug;
    Ok(())
}

/// True when a `--log` file is set (errors then go there, and stderr gets the bare message).
pub fn has_file() -> bool {
    LOGGER.lock().map(|l| l.file.is_some()).unwrap_or(false)
}

pub fn log(level: Level, msg: &str) {
    let mut l = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    if level == Level::Debug && !l.debug {
        return;
    }
    let line = if l.json {
        json_line(level, msg)
    } else {
        text_line(level, msg)
    };
    let to_stderr = level >= Level::Warn || l.debug;
    match l.file.as_mut() {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None if to_stderr => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        None => {}
    }
}

pub fn error(msg: &str) {
    log(Level::Error, msg)
}
pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}
pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}

fn json_line(level: Level, msg: &str) -> String {
    let obj = serde_json::json!({"level": level.name(), "msg": msg, "time": rfc3339_now(false)});
    format!("{obj}\n")
}

fn text_line(level: Level, msg: &str) -> String {
    let quoted = serde_json::Value::String(msg.to_string()).to_string();
    format!(
        "time=\"{}\" level={} msg={}\n",
        rfc3339_now(false),
        level.name(),
        quoted
    )
}

/// Current UTC time as RFC 3339, with nanoseconds when asked (state's `created`).
pub fn rfc3339_now(nanos: bool) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(
        now.as_secs() as i64,
        if nanos {
            Some(now.subsec_nanos())
        } else {
            None
        },
    )
}

pub fn rfc3339(secs: i64, nanos: Option<u32>) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let frac = nanos.map(|n| format!(".{n:09}")).unwrap_or_default();
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm (public domain).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Errno texts as Go (runc) prints them — lowercase, without Rust's "(os error N)" or nix's
/// "ENOENT: " — because engines match them: Podman maps "no such file or directory" and
/// "permission denied" to exit codes 127 and 126.
pub fn go_errno_text(msg: &str) -> String {
    let mut out = msg.to_string();
    if !out.contains("(os error ") && !out.contains(": ") {
        return out;
    }
    for n in 1..134 {
        let errno = nix::errno::Errno::from_raw(n);
        let desc = errno.desc();
        if desc.is_empty() || desc.starts_with("Unknown") {
            continue;
        }
        out = out.replace(&format!("{errno:?}: {desc}"), &lowercase_first(desc));
        // std's wording can differ from nix's (ERANGE): take it from std itself.
        let std_text = std::io::Error::from_raw_os_error(n).to_string();
        if let Some(plain) = std_text.strip_suffix(&format!(" (os error {n})")) {
            out = out.replace(&std_text, &lowercase_first(plain));
        }
    }
    out
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_795_000_000, Some(5)),
            "2026-11-18T11:06:40.000000005Z"
        );
        assert_eq!(rfc3339(951_782_400, None), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn json_line_parses() {
        let l = json_line(Level::Error, "a \"b\"\n");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "a \"b\"\n");
    }
}
