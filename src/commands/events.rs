//! `husk events [--stats] [--interval D] ID`: runc's event stream, one JSON object per line:
//! `{"type":"stats","id":..,"data":{...}}` every interval (or once with --stats), and
//! `{"type":"oom","id":..}` when the OOM killer has struck in the container.

use std::time::Duration;

use super::Ctx;
use crate::cli::EventsArgs;
use crate::container::ops;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, Status};

#[derive(serde::Serialize)]
struct Event<'a, T: serde::Serialize> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

pub fn run(ctx: &Ctx, a: EventsArgs) -> Result<()> {
    let interval = parse_duration(&a.interval)
        .ok_or_else(|| Error::msg(format!("--interval: invalid duration {:?}", a.interval)))?;
    if interval.is_zero() {
        return Err(Error::msg("duration interval must be greater than 0"));
    }
    let dir = ContainerDir::new(&ctx.root, &a.id)?;
    let (saved, status) = ops::status_of(&dir)?;
    if status == Status::Stopped {
        return Err(Error::msg(format!(
            "container with id {} is not running",
            a.id
        )));
    }
    let emit = |typ: &str, data: Option<crate::cgroups::stats::Stats>| {
        let ev = Event {
            typ,
            id: &a.id,
            data,
        };
        println!("{}", serde_json::to_string(&ev).unwrap_or_default());
    };
    if a.stats {
        emit("stats", Some(saved.cgroup.stats()?));
        return Ok(());
    }
    let mut ooms = saved.cgroup.oom_kills();
    loop {
        let n = saved.cgroup.oom_kills();
        if n > ooms {
            emit("oom", None);
            ooms = n;
        }
        if dir.status(&saved) == Status::Stopped {
            return Ok(());
        }
        emit("stats", Some(saved.cgroup.stats()?));
        std::thread::sleep(interval);
    }
}

/// Go's time.ParseDuration for the units people use: "5s", "500ms", "1m", "1.5s", "1m30s".
fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mul = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += v * mul;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("x"), None);
    }
}
