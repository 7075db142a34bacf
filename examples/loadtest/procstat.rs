//! What `/proc` says about a process: CPU time used (all threads) and
//! resident memory, for the server under test (`--server-pid`) and CPU time
//! for the load tester itself. Reads only; parsing is separate and pure so
//! it is unit tested on fixed text.

use std::fs;
use std::io;
use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// CPU time used so far by all its threads (user + system).
    pub cpu: Duration,
    /// Resident set size now, in KiB.
    pub rss_kib: u64,
    /// Highest resident set size since it started (`VmHWM`), in KiB.
    pub hwm_kib: u64,
}

/// Reads `pid` now. CPU comes from every thread's `schedstat` (nanoseconds),
/// falling back to `stat` clock ticks where schedstat is missing.
pub fn sample(pid: u32) -> io::Result<Sample> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status_kib(&status, "VmRSS:").unwrap_or(0);
    let hwm_kib = status_kib(&status, "VmHWM:").unwrap_or(rss_kib);
    let cpu = match schedstat_cpu(pid) {
        Some(cpu) => cpu,
        None => {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
            let ticks =
                stat_ticks(&stat).ok_or_else(|| io::Error::other("unparsable /proc stat"))?;
            ticks_to_duration(ticks)
        }
    };
    Ok(Sample {
        cpu,
        rss_kib,
        hwm_kib,
    })
}

/// CPU time used by this process so far (getrusage: microsecond precision).
pub fn own_cpu() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer cannot fail.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sums the first field (ns on CPU) of every thread's schedstat.
fn schedstat_cpu(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may exit between listing and reading: skip it.
        if let Ok(text) = fs::read_to_string(path) {
            total += schedstat_ns(&text)?;
        }
    }
    Some(Duration::from_nanos(total))
}

/// The first number of a schedstat line.
fn schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// utime + stime (fields 14 and 15) from a `/proc/PID/stat` line. The command
/// name may hold spaces and parentheses, so fields are counted after the last `)`.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // state is field 3
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// The KiB value of a `/proc/PID/status` line such as `VmRSS:  1234 kB`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_text() {
        let stat = "4242 (my (odd) srv) S 1 4242 4242 0 -1 4194560 300 0 0 0 150 25 0 0 20 0 1 0";
        assert_eq!(stat_ticks(stat), Some(175));
        assert_eq!(stat_ticks("garbage"), None);
        let status = "Name:\tchatroom\nVmHWM:\t   9000 kB\nVmRSS:\t   8123 kB\n";
        let cases: &[(&str, Option<u64>)] = &[
            ("VmRSS:", Some(8123)),
            ("VmHWM:", Some(9000)),
            ("VmSwap:", None),
        ];
        for (key, want) in cases {
            assert_eq!(status_kib(status, key), *want, "{key}");
        }
        assert_eq!(schedstat_ns("123456789 2000 30\n"), Some(123_456_789));
    }

    #[test]
    fn reads_itself() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
    }
}
