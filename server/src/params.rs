//! Strict parsing of query parameters.
//!
//! Parameters this server does not know are ignored (clients add their own, such as
//! cache-busters), but a known one with a bad value is an error that names it.

use std::fmt;

/// A known query parameter with a value it does not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The query parameter.
    pub name: &'static str,
    /// Its value as sent.
    pub value: String,
    /// What it takes.
    pub expected: &'static str,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad value {:?} for query parameter `{}`: expected {}",
            self.value, self.name, self.expected
        )
    }
}

impl std::error::Error for ParamError {}

/// Query pairs in URL order, as axum's `Query<Vec<(String, String)>>` gives them.
pub type Pairs = [(String, String)];

/// The value of the last occurrence of `name` (clients append their own parameters to a URL,
/// so the latest one is the one meant).
pub fn last<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An unsigned integer parameter within `min..=max`, in plain ASCII digits.
pub fn int(
    pairs: &Pairs,
    name: &'static str,
    min: u64,
    max: u64,
    expected: &'static str,
) -> Result<Option<u64>, ParamError> {
    let Some(value) = last(pairs, name) else {
        return Ok(None);
    };
    let parsed = Some(value)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| (min..=max).contains(n));
    match parsed {
        Some(n) => Ok(Some(n)),
        None => Err(ParamError {
            name,
            value: value.to_owned(),
            expected,
        }),
    }
}

/// A boolean flag: absent, `0` or `false` is off; `1` or `true` is on.
pub fn flag(pairs: &Pairs, name: &'static str) -> Result<bool, ParamError> {
    match last(pairs, name) {
        None | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(other) => Err(ParamError {
            name,
            value: other.to_owned(),
            expected: "1, 0, true or false",
        }),
    }
}

/// A parameter that takes one of a few words; `parse` maps a word to its value.
pub fn choice<T>(
    pairs: &Pairs,
    name: &'static str,
    expected: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ParamError> {
    match last(pairs, name) {
        None => Ok(None),
        Some(value) => parse(value).map(Some).ok_or_else(|| ParamError {
            name,
            value: value.to_owned(),
            expected,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ints_are_strict() {
        let p = pairs(&[("n", "5"), ("m", "+5"), ("o", ""), ("big", "99")]);
        assert_eq!(int(&p, "n", 0, 10, "x"), Ok(Some(5)));
        assert_eq!(int(&p, "absent", 0, 10, "x"), Ok(None));
        assert!(int(&p, "m", 0, 10, "x").is_err());
        assert!(int(&p, "o", 0, 10, "x").is_err());
        let err = int(&p, "big", 0, 10, "at most 10").unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad value \"99\" for query parameter `big`: expected at most 10"
        );
    }

    #[test]
    fn the_last_occurrence_wins() {
        let p = pairs(&[("n", "1"), ("n", "2")]);
        assert_eq!(last(&p, "n"), Some("2"));
    }
}
