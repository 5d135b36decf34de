//! JSON text as Python's `json.dumps(value, ensure_ascii=False)` writes it: `", "` between
//! items, `": "` after keys, non-ASCII characters as they are, floats as Python's `repr`.
//!
//! mistral-common tokenizes tool definitions and tool calls as such text (tokenizers v2 and
//! v3, `json.dumps(..., ensure_ascii=False)`); counting the same text makes the count of a
//! record's tools independent of how the record happened to format them. Object keys come in
//! the order serde_json keeps them (sorted), so the key order of the record does not matter
//! either.

use serde_json::Value as Json;

/// `value` written as `json.dumps(value, ensure_ascii=False)` writes it (keys sorted).
pub fn dumps(value: &Json) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Appends `value` to `out`.
pub fn write(value: &Json, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(itoa::Buffer::new().format(i)),
            (_, Some(u), _) => out.push_str(itoa::Buffer::new().format(u)),
            (_, _, Some(f)) => float(f, out),
            _ => out.push_str("null"),
        },
        Json::String(s) => string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out);
            }
            out.push(']');
        }
        Json::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                string(k, out);
                out.push_str(": ");
                write(v, out);
            }
            out.push('}');
        }
    }
}

/// A string as Python's encoder escapes it with `ensure_ascii=False`: `"`, `\`, and the
/// characters below U+0020 (`\n`, `\r`, `\t`, `\b`, `\f` by name, the others as `\u00XX`).
pub fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A finite float as Python's `repr`: the shortest digits that round-trip, in positional
/// notation when the decimal exponent is in -4..16 (with `.0` when whole), else as
/// `d.ddde+XX`.
fn float(f: f64, out: &mut String) {
    // `{:e}` gives the shortest round-trip digits: `-1.2345e-7`, `1e16`, `0e0`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    out.push_str(sign);
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-point) as usize));
            out.push_str(&digits);
        } else if point as usize >= digits.len() {
            out.push_str(&digits);
            out.push_str(&"0".repeat(point as usize - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_what_python_json_dumps_writes() {
        // Each right-hand side is `json.dumps(x, ensure_ascii=False)` in CPython 3.
        let cases = [
            (json!(null), "null"),
            (json!([]), "[]"),
            (json!({}), "{}"),
            (
                json!([1, -2, true, false, null]),
                "[1, -2, true, false, null]",
            ),
            (
                json!({"b": {"x": [1, "y"]}, "a": "é\"\\\n\t\u{1}\u{7f}"}),
                "{\"a\": \"é\\\"\\\\\\n\\t\\u0001\u{7f}\", \"b\": {\"x\": [1, \"y\"]}}",
            ),
            (json!(18446744073709551615u64), "18446744073709551615"),
            (json!(0.5), "0.5"),
            (json!(1.0), "1.0"),
            (json!(100.0), "100.0"),
            (json!(-0.0001), "-0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(1.5e-7), "1.5e-07"),
            (json!(1e16), "1e+16"),
            (json!(123456789012345.6), "123456789012345.6"),
            (json!(2.5e300), "2.5e+300"),
            (json!(0.0), "0.0"),
        ];
        for (value, want) in cases {
            assert_eq!(dumps(&value), want, "{value}");
        }
    }
}
