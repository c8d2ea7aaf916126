//! Text helpers that avoid `core::fmt` on hot and error paths: each `write!`/`to_string()` on a
//! number costs wasm bytes for its formatting machinery at every call site.

/// `n` in decimal, as `n.to_string()` writes it.
pub(crate) fn decimal(mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = digits.get(start..).unwrap_or_default();
    std::str::from_utf8(digits).unwrap_or_default().to_owned()
}

/// `s` in double quotes, escaped as a JSON string, for error messages (what `{s:?}` shows for
/// ordinary names, without `Debug`'s escaping machinery).
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    super::json::write_string(&mut out, s);
    out
}

/// `n` as 16 lowercase hex digits, as `format!("{n:016x}")` writes it.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn hex16(n: u64) -> String {
    (0..16)
        .rev()
        .map(|i| char::from(b"0123456789abcdef"[((n >> (i * 4)) & 0xf) as usize]))
        .collect()
}

#[cfg(test)]
mod quoting {
    #[test]
    fn quotes_like_debug_for_ordinary_names_and_escapes_the_rest() {
        assert_eq!(super::quoted("token"), format!("{:?}", "token"));
        assert_eq!(super::quoted("a\"b\n"), "\"a\\\"b\\n\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_to_string() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(decimal(n), n.to_string());
        }
    }

    #[test]
    fn hex16_matches_format() {
        for n in [0, 1, 0xabc, 0x0123_4567_89ab_cdef, u64::MAX] {
            assert_eq!(hex16(n), format!("{n:016x}"));
        }
    }
}
