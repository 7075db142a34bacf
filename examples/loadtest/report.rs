//! The result of a run as an ordered list of named values, rendered as a
//! small aligned summary for people, or every value as one JSON object or
//! as CSV for scripts (written by hand: the crate has no serde). Knows the
//! names of the values it summarises, nothing of how they were measured.

use std::fmt::Write as _;

/// One reported value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A count.
    U(u64),
    /// A measurement, printed with this many decimals.
    F(f64, usize),
    /// Text.
    S(String),
    /// A verdict.
    B(bool),
    /// A list (memory samples).
    List(Vec<Value>),
    /// A group of values, flattened to `group.key` in the table.
    Obj(Vec<(String, Value)>),
}

/// Named values in the order they are shown.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    /// The values, in display order.
    pub items: Vec<(String, Value)>,
}

impl Report {
    /// Appends `key = value`.
    pub fn put(&mut self, key: &str, value: Value) -> &mut Report {
        self.items.push((key.to_string(), value));
        self
    }

    /// The value at a dotted path such as `latency_us.p99`.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut items = &self.items;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let v = &items.iter().find(|(k, _)| k == part)?.1;
            if parts.peek().is_none() {
                return Some(v);
            }
            let Value::Obj(inner) = v else { return None };
            items = inner;
        }
        None
    }

    /// One JSON object on one line.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        json_obj(&mut out, &self.items);
        out
    }

    /// Every value as CSV: a header line of keys (nested groups flattened
    /// as `group.key`) and one line of values, so runs append to one file.
    pub fn to_csv(&self) -> String {
        let mut rows = Vec::new();
        flatten("", &self.items, &mut rows);
        let header: Vec<String> = rows.iter().map(|(k, _)| csv_field(k)).collect();
        let values: Vec<String> = rows.iter().map(|(_, v)| csv_field(v)).collect();
        format!("{}\n{}\n", header.join(","), values.join(","))
    }

    /// The summary people read: what ran, then one aligned row per figure
    /// (counts with thousands separators), then whatever went wrong.
    pub fn to_summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title());
        let mut rows = Table::default();
        self.traffic_rows(&mut rows);
        self.extra_rows(&mut rows);
        rows.row("errors", self.count("errors"), "");
        if let Some(Value::S(why)) = self.get("stopped") {
            if why != "complete" {
                rows.row("stopped", why.clone(), "");
            }
        }
        out.push_str(&rows.render());
        if let Some(Value::S(e)) = self.get("error") {
            let _ = writeln!(out, "error: {e}");
        }
        if let Some(Value::List(notes)) = self.get("notes") {
            for n in notes {
                let _ = writeln!(out, "note: {}", plain(n));
            }
        }
        out
    }

    /// `fanout, chatroom at 127.0.0.1:5550 over tcp: 100 clients, 10 senders, 64-byte lines`
    fn title(&self) -> String {
        let text = |k: &str| self.get(k).map(plain).unwrap_or_default();
        let mut t = format!(
            "{}, {} at {} over {}: {} clients",
            text("scenario"),
            text("target"),
            text("addr"),
            text("transport"),
            self.count("clients"),
        );
        if let Some(Value::U(r)) = self.get("rooms") {
            let _ = write!(t, " in {} rooms", thousands(*r));
        }
        if let Some(Value::U(s)) = self.get("senders") {
            let _ = write!(t, ", {} sender{}", thousands(*s), plural(*s));
        }
        if let Some(Value::U(b)) = self.get("line_bytes") {
            let _ = write!(t, ", {b}-byte lines");
        }
        t
    }

    fn traffic_rows(&self, rows: &mut Table) {
        let Some(Value::U(expected)) = self.get("expected") else {
            if self.get("connect_per_s").is_some() {
                rows.row("registered/s", self.count("connect_per_s"), "");
            }
            return;
        };
        let elapsed = self.fixed("elapsed_s", 3);
        let sent = match self.get("sent") {
            Some(Value::U(n)) => *n,
            _ => 0,
        };
        rows.row(
            "sent",
            thousands(sent),
            &format!("message{} in {elapsed} s", plural(sent)),
        );
        rows.row(
            "delivered",
            self.count("received"),
            &format!("of {} expected", thousands(*expected)),
        );
        if let Some(Value::U(n)) = self.get("received_churners") {
            rows.row("to churners", thousands(*n), "deliveries (not expected)");
        }
        let lost = match self.get("lost") {
            Some(Value::U(n)) => *n,
            _ => 0,
        };
        let pct = if *expected == 0 {
            0.0
        } else {
            lost as f64 * 100.0 / *expected as f64
        };
        rows.row("loss", thousands(lost), &format!("({pct:.3}%)"));
        if let Some(Value::U(n)) = self.get("late") {
            if *n > 0 {
                rows.row("late", thousands(*n), "duplicated or reordered");
            }
        }
        if let Some(Value::U(n)) = self.get("order_mismatches") {
            if *n > 0 {
                rows.row(
                    "order",
                    thousands(*n),
                    "clients saw another order than the rest",
                );
            }
        }
        rows.row("deliveries/s", self.count("deliveries_per_s"), "");
        rows.row("MB/s", self.fixed("mb_per_s", 1), "of delivered lines");
        for (label, key) in [
            ("p50", "latency_us.p50"),
            ("p99", "latency_us.p99"),
            ("p99.9", "latency_us.p999"),
            ("max", "latency_us.max"),
        ] {
            let ms = match self.get(key) {
                Some(Value::F(us, _)) => format!("{:.3}", us / 1000.0),
                _ => "-".into(),
            };
            rows.row(label, ms, "ms latency");
        }
    }

    /// Rows only some scenarios or flags have.
    fn extra_rows(&self, rows: &mut Table) {
        if self.get("expected").is_some() && self.get("connect_per_s").is_some() {
            rows.row("registered/s", self.count("connect_per_s"), "clients");
        }
        if let Some(Value::F(ms, _)) = self.get("broadcast.last_ms") {
            rows.row("broadcast", format!("{ms:.3}"), "ms to the last client");
        }
        if let Some(Value::U(n)) = self.get("leaves") {
            let rejoins = self.count("rejoins");
            rows.row("churn", thousands(*n), &format!("left, {rejoins} rejoined"));
        }
        if let Some(Value::B(flat)) = self.get("memory.flat") {
            let verdict = if *flat { "flat" } else { "GREW" };
            rows.row(
                "server RSS",
                self.count("memory.max_after_warmup_kib"),
                &format!("KiB at most after warm-up ({verdict})"),
            );
        }
        if let Some(Value::F(cpu, _)) = self.get("server.cpu_util") {
            rows.row("server CPU", format!("{:.0}%", cpu * 100.0), "of one core");
        }
        if let Some(Value::F(cpu, _)) = self.get("tool.cpu_util") {
            rows.row(
                "loadtest CPU",
                format!("{:.0}%", cpu * 100.0),
                "of one core",
            );
        }
        for (label, key) in [
            ("connect errors", "problems.connect_errors"),
            ("disconnects", "problems.disconnects"),
            ("server errors", "problems.server_errors"),
            ("malformed", "problems.malformed"),
        ] {
            if let Some(Value::U(n)) = self.get(key) {
                if *n > 0 {
                    rows.row(label, thousands(*n), "");
                }
            }
        }
    }

    /// A count with thousands separators, or `-` if absent.
    fn count(&self, key: &str) -> String {
        match self.get(key) {
            Some(Value::U(n)) => thousands(*n),
            Some(Value::F(x, _)) if x.is_finite() && *x >= 0.0 => thousands(x.round() as u64),
            _ => "-".into(),
        }
    }

    /// A measurement with `decimals` places, or `-` if absent.
    fn fixed(&self, key: &str, decimals: usize) -> String {
        match self.get(key) {
            Some(Value::F(x, _)) => format!("{x:.decimals$}"),
            Some(Value::U(n)) => n.to_string(),
            _ => "-".into(),
        }
    }
}

fn plural(n: u64) -> &'static str {
    chatroom::protocol::lines::plural(usize::try_from(n).unwrap_or(usize::MAX))
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rows of label, value and unit: labels left-aligned, values right-aligned.
#[derive(Debug, Default)]
struct Table {
    rows: Vec<(String, String, String)>,
}

impl Table {
    fn row(&mut self, label: &str, value: String, unit: &str) {
        self.rows.push((label.into(), value, unit.into()));
    }

    fn render(&self) -> String {
        let lw = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let vw = self.rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (label, value, unit) in &self.rows {
            let line = format!("  {label:<lw$}  {value:>vw$}  {unit}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// One CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn flatten(prefix: &str, items: &[(String, Value)], rows: &mut Vec<(String, String)>) {
    for (k, v) in items {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Obj(inner) => flatten(&key, inner, rows),
            other => rows.push((key, plain(other))),
        }
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::U(n) => n.to_string(),
        Value::F(x, d) => format!("{x:.d$}"),
        Value::S(s) => s.clone(),
        Value::B(b) => b.to_string(),
        Value::List(l) => l.iter().map(plain).collect::<Vec<_>>().join(" "),
        Value::Obj(_) => String::from("{..}"),
    }
}

fn json_obj(out: &mut String, items: &[(String, Value)]) {
    out.push('{');
    for (i, (k, v)) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, k);
        out.push(':');
        json_value(out, v);
    }
    out.push('}');
}

fn json_value(out: &mut String, v: &Value) {
    match v {
        Value::U(n) => {
            let _ = write!(out, "{n}");
        }
        // JSON has no NaN or infinity.
        Value::F(x, d) if x.is_finite() => {
            let _ = write!(out, "{x:.d$}");
        }
        Value::F(..) => out.push_str("null"),
        Value::S(s) => json_str(out, s),
        Value::B(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, item);
            }
            out.push(']');
        }
        Value::Obj(items) => json_obj(out, items),
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report::default();
        r.put("scenario", Value::S("fanout".into()))
            .put("expected", Value::U(42))
            .put("ok", Value::B(true))
            .put(
                "latency_us",
                Value::Obj(vec![("p50".into(), Value::F(12.345, 1))]),
            )
            .put("rss", Value::List(vec![Value::U(1), Value::U(2)]))
            .put("note", Value::S("a \"q\"\n\u{1}".into()))
            .put("nan", Value::F(f64::NAN, 2));
        r
    }

    #[test]
    fn renders() {
        let r = sample();
        let cases: &[(String, &str)] = &[
            (
                r.to_json(),
                "{\"scenario\":\"fanout\",\"expected\":42,\"ok\":true,\"latency_us\":{\"p50\":12.3},\
                 \"rss\":[1,2],\"note\":\"a \\\"q\\\"\\n\\u0001\",\"nan\":null}",
            ),
            (
                r.to_csv(),
                "scenario,expected,ok,latency_us.p50,rss,note,nan\n\
                 fanout,42,true,12.3,1 2,\"a \"\"q\"\"\n\u{1}\",NaN\n",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn thousands_separators() {
        let cases: &[(u64, &str)] = &[
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (123_456, "123,456"),
            (1_234_567, "1,234,567"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ];
        for (n, want) in cases {
            assert_eq!(thousands(*n), *want);
        }
    }

    /// A complete fanout report summarises as an aligned table: labels
    /// left, values right-aligned with separators, units after.
    #[test]
    fn summary_table() {
        let mut r = Report::default();
        r.put("scenario", Value::S("fanout".into()))
            .put("target", Value::S("chatroom".into()))
            .put("addr", Value::S("127.0.0.1:5550".into()))
            .put("transport", Value::S("tcp".into()))
            .put("clients", Value::U(100))
            .put("senders", Value::U(10))
            .put("line_bytes", Value::U(64))
            .put("connect_s", Value::F(0.1, 3))
            .put("connect_per_s", Value::F(1000.0, 0))
            .put("sent", Value::U(20_000))
            .put("expected", Value::U(2_000_000))
            .put("received", Value::U(1_999_000))
            .put("lost", Value::U(1000))
            .put("late", Value::U(0))
            .put("elapsed_s", Value::F(1.2345, 3))
            .put("deliveries_per_s", Value::F(1_619_278.4, 0))
            .put("mb_per_s", Value::F(103.63, 1))
            .put(
                "latency_us",
                Value::Obj(vec![
                    ("p50".into(), Value::F(412.0, 1)),
                    ("p99".into(), Value::F(1221.5, 1)),
                    ("p999".into(), Value::F(2004.0, 1)),
                    ("max".into(), Value::F(13100.0, 1)),
                ]),
            )
            .put(
                "problems",
                Value::Obj(vec![
                    ("connect_errors".into(), Value::U(0)),
                    ("disconnects".into(), Value::U(1)),
                ]),
            )
            .put("stopped", Value::S("complete".into()))
            .put("errors", Value::U(1001))
            .put("notes", Value::List(vec![Value::S("read: reset".into())]));
        let want = "\
fanout, chatroom at 127.0.0.1:5550 over tcp: 100 clients, 10 senders, 64-byte lines
  sent             20,000  messages in 1.234 s
  delivered     1,999,000  of 2,000,000 expected
  loss              1,000  (0.050%)
  deliveries/s  1,619,278
  MB/s              103.6  of delivered lines
  p50               0.412  ms latency
  p99               1.222  ms latency
  p99.9             2.004  ms latency
  max              13.100  ms latency
  registered/s      1,000  clients
  disconnects           1
  errors            1,001
note: read: reset
";
        assert_eq!(r.to_summary(), want);
    }

    /// A run that never got to send summarises what it has and why.
    #[test]
    fn summary_without_traffic() {
        let mut r = Report::default();
        r.put("scenario", Value::S("connections".into()))
            .put("target", Value::S("chatroom".into()))
            .put("addr", Value::S("127.0.0.1:5550".into()))
            .put("transport", Value::S("tcp".into()))
            .put("clients", Value::U(20))
            .put("connect_per_s", Value::F(12.0, 0))
            .put("error", Value::S("only 5 of 20 clients registered".into()))
            .put("stopped", Value::S("interrupted".into()))
            .put("errors", Value::U(15));
        let want = "\
connections, chatroom at 127.0.0.1:5550 over tcp: 20 clients
  registered/s           12
  errors                 15
  stopped       interrupted
error: only 5 of 20 clients registered
";
        assert_eq!(r.to_summary(), want);
    }

    #[test]
    fn gets_by_path() {
        let r = sample();
        let cases: &[(&str, Option<Value>)] = &[
            ("expected", Some(Value::U(42))),
            ("latency_us.p50", Some(Value::F(12.345, 1))),
            ("latency_us.p99", None),
            ("expected.x", None),
        ];
        for (path, want) in cases {
            assert_eq!(r.get(path).cloned(), *want, "{path}");
        }
    }
}
