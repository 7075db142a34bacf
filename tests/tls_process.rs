//! TLS in the `chatroom` binary: certificate and key errors at start (exit
//! 2, one stderr line naming the file), `openssl s_client` chatting with
//! it, a TLS 1.2 renegotiation refused, and SIGHUP reloading the
//! certificate. Certificates are generated per test in a temp dir.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::process::BIN;
use common::tls::{openssl, tls_error, write_file, Pki, TlsClient, TlsProcess};
use common::{Client, Lines as _, LINE_TIMEOUT, PROMPT};

/// `openssl s_client` as a chat client: lines go to its stdin, and its
/// stdout comes back line by line, with a deadline.
struct SClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for SClient {
    fn drop(&mut self) {
        // Only our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SClient {
    /// Starts `openssl s_client -quiet` against `port` trusting `ca`, with
    /// verification failures fatal, plus `extra` flags.
    #[track_caller]
    fn start(port: u16, ca: &Path, extra: &[&str]) -> SClient {
        let mut child = Command::new(openssl())
            .args(["s_client", "-quiet", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-CAfile")
            .arg(ca)
            .args(["-servername", "localhost", "-verify_return_error"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl s_client");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        thread::spawn({
            let stderr = Arc::clone(&stderr);
            move || {
                let mut buf = [0; 1024];
                while let Ok(n @ 1..) = err.read(&mut buf) {
                    stderr
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        SClient {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    #[track_caller]
    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write to s_client");
        stdin.flush().unwrap();
    }

    /// Reads one line of its stdout and asserts it is exactly `want`.
    #[track_caller]
    fn expect(&mut self, want: &str) {
        match self.lines.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => assert_eq!(line, want, "s_client stderr: {}", self.stderr()),
            Err(e) => panic!(
                "s_client: no line ({e}) while waiting for {want:?}; stderr: {}",
                self.stderr()
            ),
        }
    }

    /// Waits (bounded) for s_client to exit; asserts it printed nothing
    /// more.
    #[track_caller]
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LINE_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "s_client did not exit; stderr: {}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        };
        if let Ok(line) = self.lines.recv_timeout(LINE_TIMEOUT) {
            panic!("s_client printed {line:?} at the end");
        }
        status
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// Runs the binary with `args`; returns its exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run chatroom");
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

/// A certificate or key that cannot be used stops the binary before it
/// listens: exit 2 and one stderr line, `chatroom: ` then what is wrong,
/// naming the file.
#[test]
fn unusable_certificate_or_key_exits_2_naming_the_file() {
    let pki = Pki::new("chatroom test CA");
    let other = Pki::new("other CA");
    let dir = &pki.dir;
    let path = |name: &str| dir.join(name).display().to_string();
    write_file(&dir.join("junk.pem"), b"hello\n");
    write_file(
        &dir.join("bad64.pem"),
        b"-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n",
    );
    let (cert, key) = (path("cert.pem"), path("key.pem"));
    let other_key = other.key.display().to_string();
    // (cert, key, what stderr's line must be, or start with when it ends
    // with rustls' own words)
    let cases: Vec<(String, String, String, bool)> = vec![
        (
            path("missing.pem"),
            key.clone(),
            format!(
                "cannot read {}: No such file or directory (os error 2)",
                path("missing.pem")
            ),
            true,
        ),
        (
            cert.clone(),
            path("missing.pem"),
            format!(
                "cannot read {}: No such file or directory (os error 2)",
                path("missing.pem")
            ),
            true,
        ),
        (
            dir.display().to_string(),
            key.clone(),
            format!(
                "cannot read {}: Is a directory (os error 21)",
                dir.display()
            ),
            true,
        ),
        (
            path("junk.pem"),
            key.clone(),
            format!(
                "{}: no certificate in it (expected PEM \"BEGIN CERTIFICATE\")",
                path("junk.pem")
            ),
            true,
        ),
        (
            key.clone(),
            key.clone(),
            format!("{key}: no certificate in it (expected PEM \"BEGIN CERTIFICATE\")"),
            true,
        ),
        (
            path("bad64.pem"),
            key.clone(),
            format!("{}: not a PEM certificate chain: ", path("bad64.pem")),
            false,
        ),
        (
            cert.clone(),
            path("junk.pem"),
            format!(
                "{}: no usable private key in it (expected PEM PKCS#8, RSA or EC): ",
                path("junk.pem")
            ),
            false,
        ),
        (
            cert.clone(),
            cert.clone(),
            format!("{cert}: no usable private key in it (expected PEM PKCS#8, RSA or EC): "),
            false,
        ),
        (
            cert.clone(),
            other_key.clone(),
            format!("{cert} and {other_key} do not go together: "),
            false,
        ),
    ];
    for (cert, key, want, exact) in cases {
        let (code, err) = run(&[
            "--port",
            "0",
            "--tls-port",
            "0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ]);
        assert_eq!(code, Some(2), "{cert} {key}: {err}");
        let want = format!("chatroom: {want}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let line = err.lines().next().unwrap();
        if exact {
            assert_eq!(line, want);
        } else {
            assert!(line.starts_with(&want), "{line:?} should start {want:?}");
        }
    }
}

/// The TLS flags need each other: `--tls-port` without a certificate, or a
/// certificate without its key, is a usage error (exit 2).
#[test]
fn tls_flags_without_certificate_exit_2() {
    let pki = Pki::new("chatroom test CA");
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    for (args, want) in [
        (
            &["--tls-port", "0"][..],
            "chatroom: --tls-port needs --tls-cert and --tls-key",
        ),
        (
            &["--tls-cert", cert][..],
            "chatroom: --tls-cert needs --tls-key",
        ),
        (
            &["--tls-key", key][..],
            "chatroom: --tls-key needs --tls-cert",
        ),
    ] {
        let (code, err) = run(&[&["--port", "0"][..], args].concat());
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(
            err.lines().collect::<Vec<_>>(),
            [want, "Try `chatroom --help`."],
            "{args:?}"
        );
    }
}

/// The binary serving `pki`'s certificate on a TLS listener and plain TCP
/// on another, both on free ports, flood control off.
#[track_caller]
fn plain_and_tls(pki: &Pki) -> TlsProcess {
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    TlsProcess::spawn(&[
        "--port",
        "0",
        "--tls-port",
        "0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--flood-rate",
        "0",
    ])
}

/// `openssl s_client` (verifying the certificate against the test CA)
/// chats with the real binary: its lines reach a plain-TCP client and back,
/// and `/quit` ends the session cleanly (s_client exits 0).
#[test]
fn openssl_s_client_chats_with_the_binary() {
    let pki = Pki::new("chatroom test CA");
    let server = plain_and_tls(&pki);
    let mut bob = Client::login(server.plain.expect("a plain listener"), "bob");
    let mut carol = SClient::start(server.tls.port(), &pki.ca, &[]);
    carol.expect(PROMPT);
    carol.send("carol");
    carol.expect("* carol joined lobby");
    carol.expect("* welcome to chatroom, carol! /help lists the commands");
    carol.expect("* lobby has 2 members: bob, carol");
    bob.expect("* carol joined lobby");
    carol.send("hello from openssl");
    carol.expect("carol: hello from openssl");
    bob.expect("carol: hello from openssl");
    bob.send("hello from TCP");
    bob.expect("bob: hello from TCP");
    carol.expect("bob: hello from TCP");
    carol.send("/quit bye");
    carol.expect("* carol left (quit: bye)");
    bob.expect("* carol left (quit: bye)");
    let status = carol.wait_exit();
    assert!(status.success(), "{status}; stderr: {}", carol.stderr());
    let log = server.terminate();
    assert!(log.contains("registered as carol"), "{log}");
    assert!(!log.contains("closed: TLS"), "{log}");
}

/// A TLS 1.2 client asking to renegotiate (s_client's `R` command) is
/// refused: rustls answers no_renegotiation, OpenSSL gives up with a fatal
/// alert, the server closes that connection (logged and counted as a TLS
/// error, the room told `(connection error)`) and another TLS client goes
/// on chatting.
#[test]
fn tls12_renegotiation_is_refused_without_harming_others() {
    let pki = Pki::new("chatroom test CA");
    let server = plain_and_tls(&pki);
    let mut bob = TlsClient::login(server.tls, &pki.client(), "bob");
    // `-no_ign_eof` after `-quiet` turns s_client's commands back on.
    let mut reneg = SClient::start(server.tls.port(), &pki.ca, &["-tls1_2", "-no_ign_eof"]);
    reneg.expect(PROMPT);
    reneg.send("reneg");
    reneg.expect("* reneg joined lobby");
    reneg.expect("* welcome to chatroom, reneg! /help lists the commands");
    reneg.expect("* lobby has 2 members: bob, reneg");
    bob.expect("* reneg joined lobby");
    reneg.send("before");
    reneg.expect("reneg: before");
    bob.expect("reneg: before");

    reneg.send("R");
    let status = reneg.wait_exit();
    let stderr = reneg.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("RENEGOTIATING") && stderr.contains("no renegotiation"),
        "{stderr}"
    );
    bob.expect("* reneg left (connection error)");
    server.wait_for_log("closed: TLS: received fatal alert: HandshakeFailure", 1);

    bob.send("still here");
    bob.expect("bob: still here");
    let mut carol = TlsClient::login(server.tls, &pki.client_tls12(), "carol");
    bob.expect("* carol joined lobby");
    carol.send("over TLS 1.2");
    carol.expect("carol: over TLS 1.2");
    bob.expect("carol: over TLS 1.2");
    let log = server.terminate();
    assert_eq!(log.matches("closed: TLS").count(), 1, "{log}");
}

/// SIGHUP makes the binary (here serving TLS only, `--port off`) re-read
/// its certificate and key: a client trusting only the new CA fails before
/// and succeeds after, seeing the new certificate, and the log says so; a
/// bad file at the next SIGHUP is logged and the last good certificate
/// stays.
#[test]
fn sighup_reloads_the_certificate() {
    let old = Pki::new("old CA");
    let new = Pki::new("new CA");
    let (cert, key) = (old.cert.to_str().unwrap(), old.key.to_str().unwrap());
    let server = TlsProcess::spawn(&[
        "--port",
        "off",
        "--tls-port",
        "0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ]);
    assert_eq!(server.plain, None);
    let mut alice = TlsClient::login(server.tls, &old.client(), "alice");
    let unknown_issuer = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let refused =
        |config: &Arc<rustls::ClientConfig>| match TlsClient::try_connect(server.tls, config) {
            Ok(_) => panic!("the handshake succeeded"),
            Err(e) => tls_error(&e).cloned(),
        };
    assert_eq!(refused(&new.client()), Some(unknown_issuer.clone()));

    old.install(&new);
    server.signal(libc::SIGHUP);
    server.wait_for_log(
        &format!("TLS certificate reloaded from {cert} for new connections"),
        1,
    );
    let mut bob = TlsClient::login(server.tls, &new.client(), "bob");
    assert_eq!(bob.server_leaf(), new.leaf());
    alice.expect("* bob joined lobby");
    assert_eq!(refused(&old.client()), Some(unknown_issuer));
    alice.send("from before the reload");
    alice.expect("alice: from before the reload");
    bob.expect("alice: from before the reload");

    write_file(&old.cert, b"not a certificate\n");
    server.signal(libc::SIGHUP);
    server.wait_for_log(
        &format!("TLS reload failed, keeping the old certificate: {cert}: no certificate in it"),
        1,
    );
    let carol = TlsClient::login(server.tls, &new.client(), "carol");
    assert_eq!(carol.server_leaf(), new.leaf());
    bob.expect("* carol joined lobby");
    drop((alice, bob, carol));
    let log = server.terminate();
    assert_eq!(log.matches("TLS certificate reloaded").count(), 1, "{log}");
}
