//! Terminals end to end: a console-socket receiver written here gets the pty master from
//! create and exec (as conmon and containerd's shim do), a foreground `run` relays its own pty,
//! and foreground run forwards signals and returns statuses.

use integration_tests::*;
use serde_json::json;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The pty master and the name runc sends with it.
fn recv_master(conn: &std::os::unix::net::UnixStream) -> (OwnedFd, String) {
    let (payload, fd) = recv_fd(conn);
    (fd, String::from_utf8_lossy(&payload).into_owned())
}

fn write_fd(fd: &OwnedFd, data: &str) {
    let n = unsafe {
        libc::write(
            fd.as_raw_fd(),
            data.as_ptr() as *const libc::c_void,
            data.len(),
        )
    };
    assert_eq!(
        n,
        data.len() as isize,
        "write: {}",
        std::io::Error::last_os_error()
    );
}

/// Read from a pty master until `needle` appeared or the other side is gone.
fn read_until(fd: &OwnedFd, needle: &str) -> String {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        if unsafe { libc::poll(&mut pfd, 1, 200) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
        if String::from_utf8_lossy(&out).contains(needle) {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tty_bundle(name: &str, args: &[&str]) -> Bundle {
    let mut b = Bundle::new(name);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 31, "width": 97});
    b.set_args(args);
    b
}

#[test]
fn create_sends_pty_master_to_console_socket() {
    require_root!();
    let rt = Runtime::new("tm-create");
    let b = tty_bundle("tm-create", &["sh"]);
    let sock = rt.scratch().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = rt.id("");
    rt.create_with(&id, &b, &["--console-socket", sock.to_str().unwrap()])
        .ok();
    let (conn, _) = listener.accept().unwrap();
    let (master, name) = recv_master(&conn);
    assert_eq!(name, "/dev/ptmx", "runc's payload");
    rt.start(&id).ok();
    write_fd(
        &master,
        "tty; stty size; ls -l /dev/console; echo DONE-$((40+2)); exit 7\n",
    );
    let out = read_until(&master, "DONE-42");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("31 97"), "consoleSize: {out}");
    // /dev/console is the pty slave (a character device 136:0).
    assert!(out.contains("136,   0") || out.contains("136, 0"), "{out}");
    assert!(out.contains("DONE-42"), "{out}");
    rt.wait_status(&id, "stopped");
    rt.delete(&id, false).ok();
    rt.assert_gone(&id);
}

#[test]
fn exec_tty_with_console_socket() {
    require_root!();
    let rt = Runtime::new("tm-exec");
    let mut b = Bundle::new("tm-exec");
    b.set_args(&["sleep", "1000"]);
    let id = rt.id("");
    rt.create_and_start(&id, &b);
    let sock = rt.scratch().join("exec.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let pid_file = rt.scratch().join("exec.pid");
    // As containerd's shim and conmon call it: a process file with terminal: true.
    let process = rt.scratch().join("process.json");
    let mut p = b.config["process"].clone();
    p["terminal"] = json!(true);
    p["args"] = json!(["sh"]);
    p["consoleSize"] = json!({"height": 27, "width": 91});
    fs::write(&process, p.to_string()).unwrap();
    rt.cmd(&[
        "exec",
        "--process",
        process.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--tty",
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ])
    .ok();
    let (conn, _) = listener.accept().unwrap();
    let (master, name) = recv_master(&conn);
    assert_eq!(name, "/dev/ptmx");
    write_fd(&master, "tty; stty size; echo EXEC-$((6*7)); exit\n");
    let out = read_until(&master, "EXEC-42");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("27 91"), "consoleSize: {out}");
    assert!(out.contains("EXEC-42"), "{out}");
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the exec'd shell to exit", || {
        (!proc_alive(pid)).then_some(())
    });
}

/// Allocate a pty in the test: (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    let ws = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

fn husk_under_pty(rt: &Runtime, args: &[&str], slave: &OwnedFd) -> std::process::Child {
    let root = rt.root_str();
    let dup = |f: &OwnedFd| Stdio::from(f.try_clone().unwrap());
    Command::new(husk_bin())
        .arg("--root")
        .arg(&root)
        .args(args)
        .stdin(dup(slave))
        .stdout(dup(slave))
        .stderr(dup(slave))
        .spawn()
        .unwrap()
}

fn lflag(fd: &OwnedFd) -> libc::tcflag_t {
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
    t.c_lflag
}

#[test]
fn foreground_run_relays_its_terminal() {
    require_root!();
    let rt = Runtime::new("tm-fg");
    let b = tty_bundle("tm-fg", &["sh"]);
    b.save();
    let id = rt.id("");
    let (master, slave) = openpty();
    assert!(lflag(&slave) & libc::ICANON != 0);
    let mut child = husk_under_pty(&rt, &["run", "--bundle", &b.path_str(), &id], &slave);
    write_fd(&master, "tty; stty size; echo FG-$((5*5))\n");
    let out = read_until(&master, "FG-25");
    assert!(out.contains("/dev/pts/0"), "{out}");
    // husk gave the container's terminal its own (the test pty's) size.
    assert!(out.contains("40 120"), "{out}");
    // While husk relays, its terminal is in raw mode.
    assert!(
        lflag(&slave) & libc::ICANON == 0,
        "husk's terminal is not raw"
    );

    // SIGWINCH: husk passes its new size on.
    let ws = libc::winsize {
        ws_row: 50,
        ws_col: 150,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    assert_eq!(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
        0
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGWINCH) };
    let mut seen = String::new();
    for _ in 0..50 {
        write_fd(&master, "stty size; echo W-$((1+1))\n");
        seen = read_until(&master, "W-2");
        if seen.contains("50 150") {
            break;
        }
    }
    assert!(seen.contains("50 150"), "{seen}");

    write_fd(&master, "exit 3\n");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    // The terminal is restored on exit.
    assert!(lflag(&slave) & libc::ICANON != 0, "termios not restored");
    rt.assert_gone(&id);
}

#[test]
fn foreground_exec_relays_its_terminal() {
    require_root!();
    let rt = Runtime::new("tm-fgx");
    let mut b = Bundle::new("tm-fgx");
    b.set_args(&["sleep", "1000"]);
    let id = rt.id("");
    rt.create_and_start(&id, &b);
    let (master, slave) = openpty();
    let mut child = husk_under_pty(&rt, &["exec", "-t", &id, "sh"], &slave);
    drop(slave);
    write_fd(&master, "tty; echo FGX-$((5*5)); exit 5\n");
    let out = read_until(&master, "FGX-25");
    assert_eq!(child.wait().unwrap().code(), Some(5), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
}

#[test]
fn foreground_run_forwards_signals_and_statuses() {
    require_root!();
    let rt = Runtime::new("tm-sig");
    let mut b = Bundle::new("tm-sig");
    b.sh(
        "trap 'echo got-term > /out/term; exit 42' TERM; echo up > /out/ready; \
          while true; do sleep 0.1; done",
    );
    b.save();
    let id = rt.id("");
    let mut child = Command::new(husk_bin())
        .args([
            "--root",
            &rt.root_str(),
            "run",
            "--bundle",
            &b.path_str(),
            &id,
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    b.wait_out("ready");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42));
    assert_eq!(b.read_out("term").trim(), "got-term");
    rt.assert_gone(&id);

    // (137 is checked through exec: pid 1 of a pid namespace cannot SIGKILL itself.)
    for (script, want) in [("exit 0", 0), ("exit 3", 3)] {
        let mut b = Bundle::new("tm-status");
        b.sh(script);
        assert_eq!(rt.run_once(&b).status, want, "{script}");
    }
    // A missing binary: create fails (runc exits 1; Podman maps the text to 127).
    let mut b = Bundle::new("tm-missing");
    b.set_args(&["no-such-binary"]);
    rt.run_once(&b)
        .failed()
        .stderr_has("executable file not found in $PATH");
}

#[test]
fn terminal_bad_input() {
    require_root!();
    let rt = Runtime::new("tm-bad");
    let b = tty_bundle("tm-bad", &["true"]);
    let id = rt.id("");
    rt.create(&id, &b)
        .failed()
        .stderr_has("cannot allocate tty if runc will detach without setting console socket");
    rt.assert_gone(&id);
    rt.run(&id, &b, &["-d"])
        .failed()
        .stderr_has("cannot allocate tty");
    rt.assert_gone(&id);
    rt.create_with(
        &id,
        &b,
        &["--console-socket", "/nonexistent/husk-console.sock"],
    )
    .failed()
    .stderr_has("/nonexistent/husk-console.sock");
    rt.assert_gone(&id);
}
