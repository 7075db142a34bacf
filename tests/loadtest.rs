//! End-to-end runs of the load tester (`examples/loadtest`) as a separate
//! process against an in-process server on port 0: small enough for debug
//! builds, strict about counts (every expected delivery received, no errors).
//! The tool's counting logic itself is unit tested inside the example.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{start_with, test_config};

/// The example binary beside this test's own: the test runs from
/// `target/<profile>/deps`, examples live in `target/<profile>/examples`.
/// Built here too, because `cargo test --test loadtest` builds no examples.
fn loadtest_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf();
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "--example", "loadtest"]);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build --example loadtest");
    assert!(status.success(), "building the loadtest example failed");
    profile_dir.join("examples").join("loadtest")
}

/// The number at `"key":` in a flat or nested JSON object (first occurrence).
#[track_caller]
fn json_num(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pat.len();
    let digits: String = json[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

/// Runs the tool with `args` plus `--json` against `addr`; returns its JSON.
#[track_caller]
fn run_loadtest(addr: std::net::SocketAddr, args: &[&str]) -> String {
    let out = Command::new(loadtest_bin())
        .args(args)
        .args([
            "--addr",
            &addr.to_string(),
            "--json",
            "--quiet",
            "--timeout",
            "30",
        ])
        .output()
        .expect("spawn the loadtest example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "loadtest {args:?} failed ({}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A fanout run in a room bigger than the notice limit (so join summaries
/// flow too) counts every one of its 9,000 deliveries and no error.
#[test]
fn fanout_counts_every_delivery() {
    let server = start_with(test_config());
    let json = run_loadtest(
        server.addr,
        &[
            "fanout",
            "--clients",
            "300",
            "--senders",
            "3",
            "--messages",
            "10",
            "--window",
            "4",
        ],
    );
    assert_eq!(json_num(&json, "clients"), 300.0, "{json}");
    assert_eq!(json_num(&json, "expected"), 9000.0, "{json}");
    assert_eq!(json_num(&json, "received"), 9000.0, "{json}");
    assert_eq!(json_num(&json, "lost"), 0.0, "{json}");
    assert_eq!(json_num(&json, "late"), 0.0, "{json}");
    assert_eq!(json_num(&json, "errors"), 0.0, "{json}");
    assert!(json_num(&json, "p99") > 0.0, "{json}");
}

/// An open-loop run (1 s at 200 messages/s to 20 clients) sends on schedule
/// and loses nothing.
#[test]
fn latency_run_is_on_schedule_and_lossless() {
    let server = start_with(test_config());
    let json = run_loadtest(
        server.addr,
        &[
            "latency",
            "--clients",
            "20",
            "--senders",
            "2",
            "--rate",
            "200",
            "--duration",
            "1",
        ],
    );
    assert_eq!(json_num(&json, "sent"), 200.0, "{json}");
    assert_eq!(json_num(&json, "expected"), 4000.0, "{json}");
    assert_eq!(json_num(&json, "received"), 4000.0, "{json}");
    assert_eq!(json_num(&json, "errors"), 0.0, "{json}");
}

/// Clients the server turns away (`! server full`, then close) are counted
/// as errors and the run ends at once instead of waiting for its timeout:
/// the error line and the close arrive together, and the tool must still
/// notice the close.
#[test]
fn refused_clients_end_the_run_with_errors() {
    let server = start_with(chatroom::Config {
        max_clients: 5,
        ..test_config()
    });
    let out = Command::new(loadtest_bin())
        .args([
            "fanout",
            "--clients",
            "20",
            "--senders",
            "1",
            "--messages",
            "1",
        ])
        .args([
            "--addr",
            &server.addr.to_string(),
            "--json",
            "--quiet",
            "--timeout",
            "20",
        ])
        .output()
        .expect("spawn the loadtest example");
    let json = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert!(json_num(&json, "errors") >= 15.0, "{json}");
    assert!(json_num(&json, "run_s") < 5.0, "{json}");
    assert!(json.contains("server full"), "{json}");
}
