//! Event payloads as the scripts publish them: a list of fields, each
//! written `<length>:<bytes>,` (a netstring), so no text a client sends can
//! change where a field ends. Pure decoding; what events mean is the bus's.

/// Splits a payload into its fields; `None` if it is malformed (never from
/// our scripts; such a message is logged and dropped).
pub fn fields(mut payload: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::with_capacity(8);
    while !payload.is_empty() {
        let colon = payload.iter().position(|&b| b == b':')?;
        let len: usize = std::str::from_utf8(&payload[..colon]).ok()?.parse().ok()?;
        let start = colon + 1;
        let end = start.checked_add(len)?;
        if payload.get(end) != Some(&b',') {
            return None;
        }
        out.push(&payload[start..end]);
        payload = &payload[end + 1..];
    }
    Some(out)
}

/// A field as text (our scripts only publish UTF-8).
pub fn text(field: &[u8]) -> &str {
    std::str::from_utf8(field).unwrap_or("")
}

/// A field as a number (0 if it is not one).
pub fn number<T: std::str::FromStr + Default>(field: &[u8]) -> T {
    text(field).parse().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_hold_any_bytes() {
        let payload = b"1:S,13:a: b,c:\r\n*3\r\n,0:,";
        let f = fields(payload).unwrap();
        assert_eq!(f, [&b"S"[..], b"a: b,c:\r\n*3\r\n", b""]);
    }

    #[test]
    fn malformed_payloads_are_refused() {
        for bad in [&b"3:ab,"[..], b"x:a,", b"1:ab", b"99999999999999999999:a,"] {
            assert_eq!(fields(bad), None, "{bad:?}");
        }
    }
}
