//! The kernel templates' emitter: CUDA C lives in `.cu` files under `src/cu/` (included
//! with `include_str!`), with `{{name}}` placeholders that [`fill`] replaces by typed
//! values — integers, f32 literals, or C code (expressions such as [`act_expr`]'s, or
//! statements a lowering builds).
//!
//! A template and its values must match exactly: a placeholder with no value, a value no
//! placeholder uses, a name given twice or a malformed placeholder makes [`fill`] answer
//! `None`, so the node runs on the host rather than with wrong code. A template's text
//! is used as it is, but for its file's final line break; `{{` always opens a
//! placeholder (kernel code never needs two braces in a row), and filled-in values are
//! not scanned again.
//!
//! [`act_expr`]: super::act_expr

use std::borrow::Cow;
use std::fmt::Write as _;

/// A value for a template's placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    /// An integer, in decimal.
    Int(i128),
    /// An f32, as the C float literal [`lit`] writes.
    F32(f32),
    /// C code, inserted as it is.
    Code(Cow<'a, str>),
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl From<$t> for Value<'_> {
            fn from(x: $t) -> Self {
                Value::Int(x as i128)
            }
        }
    )*};
}
int_values!(usize, u32, i32, i64);

impl From<f32> for Value<'_> {
    fn from(x: f32) -> Self {
        Value::F32(x)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Code(Cow::Borrowed(s))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Self {
        Value::Code(Cow::Borrowed(s))
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Code(Cow::Owned(s))
    }
}

/// A C float literal.
pub(crate) fn lit(x: f32) -> String {
    if x.is_nan() {
        "(0.0f/0.0f)".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "(1.0f/0.0f)".into()
        } else {
            "(-1.0f/0.0f)".into()
        }
    } else {
        format!("({:?}f)", x)
    }
}

/// Why a template and its values do not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// A placeholder has no value.
    Missing(String),
    /// A value is used by no placeholder.
    Unused(String),
    /// A name is given twice.
    Twice(String),
    /// `{{` at this byte offset opens no well-formed placeholder.
    Malformed(usize),
}

/// The template filled in (see the [module](self) for the rules), or why not.
pub(crate) fn try_fill(template: &str, values: &[(&str, Value<'_>)]) -> Result<String, Mismatch> {
    for (k, (name, _)) in values.iter().enumerate() {
        if values[..k].iter().any(|(other, _)| other == name) {
            return Err(Mismatch::Twice(name.to_string()));
        }
    }
    let text = template.strip_suffix('\n').unwrap_or(template);
    let mut used = vec![false; values.len()];
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    while let Some(open) = text[at..].find("{{") {
        let start = at + open;
        out.push_str(&text[at..start]);
        let name = placeholder(&text[start..]).ok_or(Mismatch::Malformed(start))?;
        let k = values
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| Mismatch::Missing(name.to_string()))?;
        used[k] = true;
        match &values[k].1 {
            Value::Int(x) => {
                let _ = write!(out, "{x}");
            }
            Value::F32(x) => out.push_str(&lit(*x)),
            Value::Code(c) => out.push_str(c),
        }
        at = start + name.len() + 4;
    }
    out.push_str(&text[at..]);
    match used.iter().position(|&u| !u) {
        Some(k) => Err(Mismatch::Unused(values[k].0.to_string())),
        None => Ok(out),
    }
}

/// The template filled in from `values`, or `None` (logged) if they do not match it.
pub(crate) fn fill(template: &str, values: &[(&str, Value<'_>)]) -> Option<String> {
    try_fill(template, values)
        .map_err(|m| log::warn!("a kernel template and its values do not match: {m:?}"))
        .ok()
}

/// The name of the placeholder `s` starts with (`{{name}}`, the name of ASCII letters,
/// digits and underscores).
fn placeholder(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("{{")?;
    let end = rest.find("}}")?;
    let name = &rest[..end];
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_integers_floats_and_code() {
        let t = "int i = {{n}};\nfloat f = {{f}} * {{e}}; // {{n}} again\n";
        let s = try_fill(
            t,
            &[
                ("n", 42usize.into()),
                ("f", 0.5f32.into()),
                ("e", "x[i]".into()),
            ],
        );
        assert_eq!(
            s.unwrap(),
            "int i = 42;\nfloat f = (0.5f) * x[i]; // 42 again"
        );
        let neg = try_fill(
            "{{a}}{{b}}",
            &[("a", (-3i32).into()), ("b", String::from("!").into())],
        );
        assert_eq!(neg.unwrap(), "-3!");
    }

    #[test]
    fn only_the_final_line_break_is_dropped() {
        assert_eq!(try_fill("a\n\n", &[]).unwrap(), "a\n");
        assert_eq!(try_fill("a", &[]).unwrap(), "a");
        assert_eq!(try_fill("", &[]).unwrap(), "");
    }

    #[test]
    fn a_placeholder_without_a_value_is_a_mismatch() {
        assert_eq!(
            try_fill("p0[i] = {{e}} + {{n}};", &[("e", "v".into())]),
            Err(Mismatch::Missing("n".into()))
        );
        assert_eq!(fill("{{n}}", &[]), None);
    }

    #[test]
    fn an_unused_value_is_a_mismatch() {
        assert_eq!(
            try_fill("p0[i] = {{e}};", &[("e", "v".into()), ("n", 3usize.into())]),
            Err(Mismatch::Unused("n".into()))
        );
        assert_eq!(fill("no placeholders", &[("n", 1usize.into())]), None);
    }

    #[test]
    fn a_name_given_twice_is_a_mismatch() {
        assert_eq!(
            try_fill("{{n}}", &[("n", 1usize.into()), ("n", 2usize.into())]),
            Err(Mismatch::Twice("n".into()))
        );
    }

    #[test]
    fn malformed_placeholders_are_mismatches() {
        for t in ["{{ n}}", "{{}}", "{{n", "a {{n-1}}", "{{{n}}"] {
            assert!(
                matches!(
                    try_fill(t, &[("n", 1usize.into())]),
                    Err(Mismatch::Malformed(_))
                ),
                "{t}"
            );
        }
        // Single braces and a lone `}}` are plain C.
        assert_eq!(
            try_fill("for (;;) { if (x) { y(); }}", &[]).unwrap(),
            "for (;;) { if (x) { y(); }}"
        );
    }

    #[test]
    fn values_are_not_scanned_again() {
        assert_eq!(
            try_fill(
                "{{a}} {{b}}",
                &[("a", "{{b}}".into()), ("b", 7usize.into())]
            )
            .unwrap(),
            "{{b}} 7"
        );
    }

    #[test]
    fn float_literals() {
        let cases = [
            (1.0f32, "(1.0f)"),
            (0.5, "(0.5f)"),
            (-2.25, "(-2.25f)"),
            (1e-5, "(1e-5f)"),
            (0.1, "(0.1f)"),
            (3e38, "(3e38f)"),
            (-0.0, "(-0.0f)"),
            (f32::NAN, "(0.0f/0.0f)"),
            (-f32::NAN, "(0.0f/0.0f)"),
            (f32::INFINITY, "(1.0f/0.0f)"),
            (f32::NEG_INFINITY, "(-1.0f/0.0f)"),
        ];
        for (x, want) in cases {
            assert_eq!(lit(x), want, "{x:?}");
            assert_eq!(try_fill("{{x}}", &[("x", x.into())]).unwrap(), want);
        }
    }

    #[test]
    fn every_kernel_template_is_well_formed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cu");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("cu") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let mut at = 0;
            while let Some(open) = text[at..].find("{{") {
                let name = placeholder(&text[at + open..])
                    .unwrap_or_else(|| panic!("{}: malformed placeholder", path.display()));
                at += open + name.len() + 4;
            }
            assert!(
                text.ends_with('\n'),
                "{}: no final line break",
                path.display()
            );
            count += 1;
        }
        assert!(count > 0);
    }
}
