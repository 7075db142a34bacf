//! `gencert DIR`: writes a throwaway private CA (`ca.pem`) and a server
//! certificate chain (`cert.pem`) and key (`key.pem`) for `localhost`,
//! `127.0.0.1` and `::1` into DIR, so TLS can be tried without openssl:
//!
//! ```text
//! cargo run --example gencert -- certs
//! cargo run --release -- --tls-cert certs/cert.pem --tls-key certs/key.pem
//! cargo run --example client -- --addr localhost:5551 --ca certs/ca.pem
//! ```
//!
//! For trying and testing only: a real deployment uses a certificate from a
//! public CA (e.g. Let's Encrypt) and no client needs `--ca`.

mod certs;

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: gencert DIR [NAME...]  (names default to localhost 127.0.0.1 ::1)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if dir.starts_with('-') {
        eprintln!("{USAGE}");
        return ExitCode::from(if dir == "-h" || dir == "--help" { 0 } else { 2 });
    }
    let mut names: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    if names.is_empty() {
        names = vec!["localhost", "127.0.0.1", "::1"];
    }
    match write(Path::new(dir), &names) {
        Ok(()) => {
            println!(
                "gencert: wrote {dir}/ca.pem, {dir}/cert.pem and {dir}/key.pem for {}",
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gencert: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(dir: &Path, names: &[&str]) -> Result<(), String> {
    let pem = certs::generate("chatroom test CA", names).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (file, text, private) in [
        ("ca.pem", &pem.ca, false),
        ("cert.pem", &pem.chain, false),
        ("key.pem", &pem.key, true),
    ] {
        let path = dir.join(file);
        write_file(&path, text, private)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Writes `text` to `path`; a private key is readable by its owner only.
fn write_file(path: &Path, text: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mode = if private { 0o600 } else { 0o644 };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    f.write_all(text.as_bytes())
}
