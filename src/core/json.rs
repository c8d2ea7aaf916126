//! A small, strict JSON reader for the protocol's own payloads (the `ready` frame).
//!
//! The core reads a handful of fields from tiny objects; a full JSON library would cost more wasm
//! bytes than the whole rest of the core. This reader accepts exactly RFC 8259 JSON, keeps numbers
//! as their source text (ids must round-trip exactly), bounds nesting, and never panics.

use std::fmt;

/// Deepest nesting of arrays and objects accepted; protocol payloads are flat.
const MAX_DEPTH: usize = 32;

/// A parsed JSON value. Numbers keep their source text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum JsonValue {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<JsonValue>),
    Object(Vec<(String, JsonValue)>),
}

impl JsonValue {
    /// The value of `key` if this is an object that has it (the last one wins, as in JavaScript).
    pub(crate) fn get(&self, key: &str) -> Option<&JsonValue> {
        match self {
            JsonValue::Object(members) => {
                members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// [`JsonValue::get`], moving the value out (`Null` is left in its place).
    pub(crate) fn take(&mut self, key: &str) -> Option<JsonValue> {
        match self {
            JsonValue::Object(members) => members
                .iter_mut()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| std::mem::replace(v, JsonValue::Null)),
            _ => None,
        }
    }
}

/// Why a payload is not JSON, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What was expected or found there.
    pub reason: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid JSON at byte ")?;
        f.write_str(&super::text::decimal(self.offset as u64))?;
        f.write_str(": ")?;
        f.write_str(self.reason)
    }
}

impl std::error::Error for JsonError {}

/// Parses one JSON value that spans the whole input (surrounding whitespace allowed).
pub(crate) fn parse(input: &str) -> Result<JsonValue, JsonError> {
    let mut reader = Reader {
        text: input,
        bytes: input.as_bytes(),
        pos: 0,
    };
    reader.skip_whitespace();
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.pos != reader.bytes.len() {
        return Err(reader.error("trailing characters after the value"));
    }
    Ok(value)
}

/// The source text of each item of a top-level JSON array, in order (each item checked as JSON).
pub(crate) fn array_items(input: &str) -> Result<Vec<&str>, JsonError> {
    let mut reader = Reader {
        text: input,
        bytes: input.as_bytes(),
        pos: 0,
    };
    reader.skip_whitespace();
    if reader.peek() != Some(b'[') {
        return Err(reader.error("expected a JSON array"));
    }
    reader.pos += 1;
    let mut items = Vec::new();
    reader.skip_whitespace();
    if reader.peek() == Some(b']') {
        reader.pos += 1;
    } else {
        loop {
            reader.skip_whitespace();
            let start = reader.pos;
            reader.value(1)?;
            items.push(input.get(start..reader.pos).unwrap_or_default());
            reader.skip_whitespace();
            match reader.peek() {
                Some(b',') => reader.pos += 1,
                Some(b']') => {
                    reader.pos += 1;
                    break;
                }
                _ => return Err(reader.error("expected ',' or ']'")),
            }
        }
    }
    reader.skip_whitespace();
    if reader.pos != reader.bytes.len() {
        return Err(reader.error("trailing characters after the value"));
    }
    Ok(items)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, reason: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            reason,
        }
    }

    /// The input from the current position.
    fn rest(&self) -> &[u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// The length in bytes of the string body from here to its closing quote (or to the end).
    fn escaped_len(&self) -> usize {
        let rest = self.rest();
        let mut at = 0;
        while let Some(&b) = rest.get(at) {
            match b {
                b'"' => break,
                b'\\' => at += 2,
                _ => at += 1,
            }
        }
        at.min(rest.len())
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect_literal(
        &mut self,
        literal: &'static [u8],
        value: JsonValue,
    ) -> Result<JsonValue, JsonError> {
        if self.rest().starts_with(literal) {
            self.pos += literal.len();
            Ok(value)
        } else {
            Err(self.error("unknown literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<JsonValue, JsonError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'n') => self.expect_literal(b"null", JsonValue::Null),
            Some(b't') => self.expect_literal(b"true", JsonValue::Bool(true)),
            Some(b'f') => self.expect_literal(b"false", JsonValue::Bool(false)),
            Some(b'"') => self.string().map(JsonValue::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => self.array(depth + 1),
            Some(b'{') => self.object(depth + 1),
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<JsonValue, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(JsonValue::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(JsonValue::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<JsonValue, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.pos += 1; // '{'
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(JsonValue::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(JsonValue::Object(members));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<JsonValue, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after '.'"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        // Only ASCII was consumed, so the range is on char boundaries.
        let text = self
            .text
            .get(start..self.pos)
            .unwrap_or_default()
            .to_owned();
        Ok(JsonValue::Number(text))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut code = 0u32;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.error("expected four hex digits after \\u")),
            };
            code = code * 16 + u32::from(digit);
            self.pos += 1;
        }
        Ok(code)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // opening quote

        // A string's escaped length bounds its decoded one: one allocation, however many escapes
        // (frames on the tabs' channel carry JSON data, a `\"` every few bytes).
        let mut out = String::with_capacity(self.escaped_len());
        loop {
            // Copy the run of plain characters in one go; the input is a &str, so any run that
            // stops at an ASCII '"' or '\\' ends on a char boundary.
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated escape"))?;
                    self.pos += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.error("unknown escape")),
                    }
                }
                Some(_) => return Err(self.error("control character in string")),
            }
        }
    }

    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.rest().starts_with(b"\\u") {
                    return Err(self.error("lone high surrogate"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("high surrogate not followed by a low one"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone low surrogate")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid code point"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ready_shape() {
        let v = parse(r#" {"tail": "1700000000000-3", "epoch": "e1", "n": -1.5e3} "#).unwrap();
        assert_eq!(
            v.get("tail"),
            Some(&JsonValue::String("1700000000000-3".into()))
        );
        assert_eq!(v.get("epoch"), Some(&JsonValue::String("e1".into())));
        assert_eq!(v.get("n"), Some(&JsonValue::Number("-1.5e3".into())));
        assert_eq!(
            parse(r#"{"tail":null}"#).unwrap().get("tail"),
            Some(&JsonValue::Null)
        );
    }

    #[test]
    fn decodes_escapes_and_surrogates() {
        let v = parse(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#).unwrap();
        assert_eq!(v, JsonValue::String("a\"\\/\u{8}\u{c}\n\r\té😀".into()));
    }

    #[test]
    fn rejects_what_json_rejects() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "[1,]",
            "01",
            "1.",
            "-",
            "1e",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "nul",
            "{} {}",
            "\"a\u{1}\"",
            "{'a':1}",
            "[1 2]",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn splits_an_array_into_the_source_of_its_items() {
        assert_eq!(
            array_items(" [ {\"a\": [1, 2]} , \"x,]\" ,3.5e1,null ] ").unwrap(),
            ["{\"a\": [1, 2]}", "\"x,]\"", "3.5e1", "null"]
        );
        assert_eq!(array_items("[]").unwrap(), Vec::<&str>::new());
        assert!(array_items("{}").is_err());
        assert!(array_items("[1,]").is_err());
        assert!(array_items("[1] 2").is_err());
        assert!(array_items("[").is_err());
    }

    #[test]
    fn bounds_nesting() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep).unwrap_err().reason, "nested too deeply");
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn last_duplicate_key_wins() {
        let v = parse(r#"{"epoch":"a","epoch":"b"}"#).unwrap();
        assert_eq!(v.get("epoch"), Some(&JsonValue::String("b".into())));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod agreement_with_serde_json {
    use super::*;
    use proptest::prelude::*;

    fn to_ours(v: &serde_json::Value) -> JsonValue {
        match v {
            serde_json::Value::Null => JsonValue::Null,
            serde_json::Value::Bool(b) => JsonValue::Bool(*b),
            serde_json::Value::Number(n) => JsonValue::Number(n.to_string()),
            serde_json::Value::String(s) => JsonValue::String(s.clone()),
            serde_json::Value::Array(a) => JsonValue::Array(a.iter().map(to_ours).collect()),
            serde_json::Value::Object(o) => {
                JsonValue::Object(o.iter().map(|(k, v)| (k.clone(), to_ours(v))).collect())
            }
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn reads_what_serde_json_writes(v in json_value(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            prop_assert_eq!(parse(&text), Ok(to_ours(&v)));
        }

        #[test]
        fn accepts_exactly_what_serde_json_accepts(s in prop_oneof![any::<String>(), "[\\[\\]{}\",:0-9.eE+\\-a-z\\\\ ]{0,24}"]) {
            let ours = parse(&s);
            let theirs = serde_json::from_str::<serde_json::Value>(&s);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}: ours {:?}, serde_json {:?}", s, ours, theirs.err());
        }
    }
}

/// Appends `s` to `out` as a JSON string literal.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let n = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[n >> 4]));
                out.push(char::from(HEX[n & 15]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod writing {
    use super::*;

    #[test]
    fn written_strings_read_back() {
        for s in [
            "",
            "plain",
            "quote \" and \\ slash",
            "lines\n\r\t",
            "\u{0}\u{1f}\u{7f}",
            "é😀",
        ] {
            let mut out = String::new();
            write_string(&mut out, s);
            assert_eq!(parse(&out), Ok(JsonValue::String(s.to_owned())), "{out}");
        }
    }
}
