//! Command-line flags for the server, the example client and the load tester
//! alike: `--flag value` and `--flag=value`, a flag given twice is an error,
//! every value is checked against its range, and every error reads
//! `<program>: <flag>: <what is wrong>` (exit status 2). Built on pico-args;
//! owns no program's flags, only how they are read.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

/// A command-line error, already worded for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// The arguments of one program run.
#[derive(Debug)]
pub struct Args {
    pargs: pico_args::Arguments,
}

impl Args {
    /// The process's arguments. Fails if any `--flag` is given twice.
    pub fn from_env() -> Result<Args, CliError> {
        Args::from_vec(std::env::args_os().skip(1).collect())
    }

    /// Arguments from a list (without the program name), for tests.
    pub fn from_vec(args: Vec<std::ffi::OsString>) -> Result<Args, CliError> {
        let mut seen: Vec<String> = Vec::new();
        for arg in &args {
            let Some(arg) = arg.to_str() else { continue };
            if arg == "--" {
                break;
            }
            if let Some(name) = arg.strip_prefix("--") {
                let name = name.split('=').next().unwrap_or(name);
                if seen.iter().any(|s| s == name) {
                    return Err(CliError(format!("--{name}: given more than once")));
                }
                seen.push(name.to_owned());
            }
        }
        Ok(Args {
            pargs: pico_args::Arguments::from_vec(args),
        })
    }

    /// True if the switch (e.g. `["-h", "--help"]`) was given.
    pub fn switch(&mut self, names: impl Into<pico_args::Keys>) -> bool {
        self.pargs.contains(names)
    }

    /// The value of `flag`, parsed and checked by `parse`, if given.
    pub fn value<T>(
        &mut self,
        flag: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, CliError> {
        let raw: Option<String> = self.pargs.opt_value_from_str(flag).map_err(|e| match e {
            pico_args::Error::OptionWithoutAValue(_) => CliError(format!("{flag}: needs a value")),
            pico_args::Error::NonUtf8Argument => CliError(format!("{flag}: not UTF-8")),
            other => CliError(format!("{flag}: {other}")),
        })?;
        raw.map(|s| parse(&s).map_err(|e| CliError(format!("{flag}: {e}"))))
            .transpose()
    }

    /// Fails if anything was left unread: an unknown flag or a stray word.
    pub fn finish(self) -> Result<(), CliError> {
        let rest = self.pargs.finish();
        match rest.first() {
            None => Ok(()),
            Some(arg) => {
                let arg = arg.to_string_lossy();
                if arg.starts_with('-') {
                    Err(CliError(format!("{arg}: unknown flag")))
                } else {
                    Err(CliError(format!("unexpected argument {arg:?}")))
                }
            }
        }
    }
}

/// A whole number in `range`.
pub fn number<T>(range: RangeInclusive<T>) -> impl Fn(&str) -> Result<T, String>
where
    T: FromStr + PartialOrd + fmt::Display + Copy,
{
    move |s| match s.trim().parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number {}-{} (got {s:?})",
            range.start(),
            range.end()
        )),
    }
}

/// A port: `0-65535`.
pub fn port(s: &str) -> Result<u16, String> {
    number(0..=u16::MAX)(s)
}

/// A port, or `off` for none.
pub fn port_or_off(s: &str) -> Result<Option<u16>, String> {
    if s == "off" {
        return Ok(None);
    }
    port(s)
        .map(Some)
        .map_err(|_| format!("must be a port 0-65535 or off (got {s:?})"))
}

/// Whole seconds in `range`.
pub fn seconds(range: RangeInclusive<u64>) -> impl Fn(&str) -> Result<Duration, String> {
    let n = number(range);
    move |s| n(s).map(Duration::from_secs)
}

/// Whole seconds in `range`, or `off`.
pub fn seconds_or_off(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Option<Duration>, String> {
    let secs = seconds(range.clone());
    move |s| {
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        secs(s).map(Some).map_err(|e| format!("{e}, or off"))
    }
}

/// A log level.
pub fn log_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse()
        .map_err(|_| format!("must be one of off, error, warn, info, debug, trace (got {s:?})"))
}

/// `HOST[:PORT]` (`[v6]:PORT` for IPv6, or a bare IPv6 address), resolved;
/// the first address found. `default_port` when none is given.
pub fn address(default_port: u16) -> impl Fn(&str) -> Result<SocketAddr, String> {
    move |s| {
        if s.trim().is_empty() {
            return Err("needs a host".into());
        }
        let (host, port) = split_host_port(s)?;
        (host, port.unwrap_or(default_port))
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host:?} has no address"))
    }
}

/// Splits `HOST[:PORT]` without resolving it: `[::1]:5550`, `::1` (a bare
/// IPv6 address), `localhost`, `10.0.0.1:80`; the port is `None` when not
/// given. Errors on an unclosed `[`, text after `]` or a bad port; an empty
/// host (`:80`) is the caller's to refuse or resolve.
pub fn split_host_port(s: &str) -> Result<(&str, Option<u16>), String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed [ in {s:?}"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(port(p)?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected {after:?} after ] in {s:?}")),
        };
    }
    match s.rsplit_once(':') {
        // More than one ':' and no brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => Ok((s, None)),
        Some((host, p)) => Ok((host, Some(port(p)?))),
        None => Ok((s, None)),
    }
}

/// Prints `<prog>: <error>` and how to get help; the exit status is 2.
pub fn fail(prog: &str, e: &dyn fmt::Display) -> std::process::ExitCode {
    eprintln!("{prog}: {e}\nTry `{prog} --help`.");
    std::process::ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, CliError> {
        Args::from_vec(list.iter().map(Into::into).collect())
    }

    #[test]
    fn both_value_forms_and_duplicates() {
        let mut a = args(&["--port=7", "--max-line", "99"]).unwrap();
        assert_eq!(a.value("--port", port), Ok(Some(7)));
        assert_eq!(a.value("--max-line", number(64..=100)), Ok(Some(99)));
        a.finish().unwrap();
        let e = args(&["--port", "1", "--port=2"]).unwrap_err();
        assert_eq!(e.0, "--port: given more than once");
    }

    #[test]
    fn errors_name_the_flag_and_the_range() {
        let mut a = args(&["--port", "70000"]).unwrap();
        let e = a.value("--port", port).unwrap_err();
        assert_eq!(
            e.0,
            "--port: must be a whole number 0-65535 (got \"70000\")"
        );
        let mut a = args(&["--log-level", "loud"]).unwrap();
        let e = a.value("--log-level", log_level).unwrap_err();
        assert!(e.0.contains("off, error, warn, info, debug, trace"), "{e}");
        let mut a = args(&["--port"]).unwrap();
        assert_eq!(
            a.value("--port", port).unwrap_err().0,
            "--port: needs a value"
        );
        let a = args(&["--frob"]).unwrap();
        assert_eq!(a.finish().unwrap_err().0, "--frob: unknown flag");
    }

    #[test]
    fn addresses() {
        let a = address(5550);
        assert_eq!(a("127.0.0.1").unwrap(), "127.0.0.1:5550".parse().unwrap());
        assert_eq!(a("127.0.0.1:80").unwrap(), "127.0.0.1:80".parse().unwrap());
        assert_eq!(a("[::1]:80").unwrap(), "[::1]:80".parse().unwrap());
        assert_eq!(a("::1").unwrap(), "[::1]:5550".parse().unwrap());
        assert!(a("localhost").unwrap().ip().is_loopback());
        assert!(a("127.0.0.1:99999").unwrap_err().contains("0-65535"));
    }

    #[test]
    fn host_and_port_split() {
        let ok: &[(&str, &str, Option<u16>)] = &[
            ("localhost", "localhost", None),
            (" 10.0.0.1:80 ", "10.0.0.1", Some(80)),
            ("[::1]:5550", "::1", Some(5550)),
            ("[::1]", "::1", None),
            ("::1", "::1", None),
            (":80", "", Some(80)),
            ("", "", None),
        ];
        for &(input, host, port) in ok {
            assert_eq!(split_host_port(input), Ok((host, port)), "{input:?}");
        }
        let bad = [
            ("[::1", "unclosed [ in \"[::1\""),
            ("[::1]x", "unexpected \"x\" after ] in \"[::1]x\""),
        ];
        for (input, want) in bad {
            assert_eq!(split_host_port(input), Err(want.to_string()), "{input:?}");
        }
        assert!(split_host_port("a:99999").unwrap_err().contains("0-65535"));
    }

    #[test]
    fn seconds_and_off() {
        let k = seconds_or_off(1..=10);
        assert_eq!(k("off"), Ok(None));
        assert_eq!(k("3"), Ok(Some(Duration::from_secs(3))));
        assert!(k("0").unwrap_err().ends_with(", or off"));
    }
}
