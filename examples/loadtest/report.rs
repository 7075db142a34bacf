//! The result of a run as an ordered list of named values, rendered either
//! as an aligned table for people or as one JSON object for scripts (written
//! by hand: the crate has no serde). Knows nothing of how values were measured.

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

    /// `key  value` lines, nested groups flattened with dots.
    pub fn to_table(&self) -> String {
        let mut rows = Vec::new();
        flatten("", &self.items, &mut rows);
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
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
                r.to_table().lines().nth(3).unwrap_or("").to_string(),
                "latency_us.p50  12.3",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
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
