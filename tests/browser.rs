//! The web client in a real browser: runs `tests/browser/chat_test.py` with
//! the Selenium virtualenv from `scripts/test-deps.sh`, against the real
//! binary. The script starts and stops the server itself; this test only
//! checks that its parts are installed, bounds its time and reports its output.

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Headless Chromium and its driver, as Debian installs them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The script's own limit for the whole run (it cleans up when it hits it).
const SCRIPT_TIMEOUT_SECS: u64 = 240;
/// Ours, past the script's: then it is stopped (SIGTERM, and SIGKILL after
/// [`GRACE`]) with everything it started.
const TEST_TIMEOUT: Duration = Duration::from_secs(SCRIPT_TIMEOUT_SECS + 30);
const GRACE: Duration = Duration::from_secs(15);

/// What the browser test needs that `scripts/test-deps.sh` installs, or a
/// list of what is missing.
fn installed(root: &Path) -> Result<PathBuf, Vec<String>> {
    let python = root.join("target/test-venv/bin/python");
    let mut missing = Vec::new();
    if !python.is_file() {
        missing.push(format!("the virtualenv ({})", python.display()));
    } else {
        let selenium = Command::new(&python)
            .args(["-c", "import selenium"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(selenium, Ok(s) if s.success()) {
            missing.push(format!("selenium in {}", python.display()));
        }
    }
    for (what, path) in [("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)] {
        if !Path::new(path).is_file() {
            missing.push(format!("{what} ({path})"));
        }
    }
    if missing.is_empty() {
        Ok(python)
    } else {
        Err(missing)
    }
}

/// Sends `signal` to the process group `pgid` (the script, its browsers,
/// their drivers and the server it started).
fn signal_group(pgid: u32, signal: libc::c_int) {
    let pgid = libc::pid_t::try_from(pgid).expect("a pid fits in pid_t");
    // SAFETY: kill(2) with a negative pid signals that process group; the
    // group is the one we created for our own child below.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Two browser users and a TCP user chat with exact lines, switch rooms, see
/// an HTML-looking line as text with no alert, and the pages reconnect by
/// themselves after the server restarts on the same ports.
#[test]
fn web_client_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = match installed(root) {
        Ok(python) => python,
        Err(missing) => panic!(
            "the browser test cannot run: missing {}; run `bash scripts/test-deps.sh`",
            missing.join(", ")
        ),
    };
    let mut child = Command::new(python)
        .arg(root.join("tests/browser/chat_test.py"))
        .arg("--server")
        .arg(env!("CARGO_BIN_EXE_chatroom"))
        .arg("--timeout")
        .arg(SCRIPT_TIMEOUT_SECS.to_string())
        .current_dir(root)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start the browser test script");
    let pgid = child.id();

    // Collect both pipes on threads so the script can never block on them.
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = done_tx.send(());
        status
    });

    let timed_out = done_rx.recv_timeout(TEST_TIMEOUT).is_err();
    if timed_out {
        signal_group(pgid, libc::SIGTERM);
        if done_rx.recv_timeout(GRACE).is_err() {
            signal_group(pgid, libc::SIGKILL);
        }
    }
    let status = waiter
        .join()
        .expect("waiter thread")
        .expect("wait for the script");
    let output = format!(
        "--- stdout ---\n{}--- stderr ---\n{}",
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader")
    );
    assert!(
        !timed_out,
        "the browser test took over {TEST_TIMEOUT:?} and was stopped\n{output}"
    );
    assert!(
        status.success(),
        "the browser test failed ({status})\n{output}"
    );
}
