//! The PIR JSON program, decoded into typed ops with JSON paths for errors.
//!
//! Paddle 3 writes `{"base_code": {"magic": "pir", "version": N, ...}, "program": {"regions":
//! [{"blocks": [{"ops": [...]}]}]}}` with a compressed encoding: an op is `{"#": "<dialect
//! id>.<name>", "A": attributes, "I": operands, "O": results, "OA": result attributes}`; an
//! attribute is `{"N": name, "AT": {"#": "<dialect id>.a_<kind>", "D": data}}`; a value is
//! `{"%": id}` (0 is the null value of an absent optional operand) with its type in `"TT"`; a
//! dense tensor type is `{"#": "0.t_dtensor", "D": [dtype, dims, layout, lod, offset]}`.
//! Parameter ops are written shortest of all: `{"#": "p", "A": [.., name], "O": value}`.

use serde_json::Value;

/// A decoded PIR program (the top block of the top region).
pub(crate) struct Program {
    /// `base_code.version`.
    pub version: i64,
    /// The ops of `program.regions[0].blocks[0]`.
    pub ops: Vec<PirOp>,
}

/// One op.
pub(crate) struct PirOp {
    /// Full name, dialect and op: `pd_op.conv2d`, `builtin.parameter`.
    pub name: String,
    /// Attributes in file order.
    pub attrs: Vec<(String, Attr)>,
    /// Operand value ids (0: an absent optional operand).
    pub inputs: Vec<u64>,
    /// Result value ids and types.
    pub outputs: Vec<(u64, Ty)>,
    /// Number of regions the op carries (control flow has some).
    pub regions: usize,
}

impl PirOp {
    /// The op name without its dialect (`conv2d`).
    pub fn short(&self) -> &str {
        self.name.split_once('.').map_or(&self.name, |(_, n)| n)
    }

    /// The dialect (`pd_op`, `builtin`, ...).
    pub fn dialect(&self) -> &str {
        self.name.split_once('.').map_or("", |(d, _)| d)
    }

    /// An attribute by name.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attr {
    Bool(bool),
    I32(i64),
    I64(i64),
    F32(f64),
    F64(f64),
    Str(String),
    Array(Vec<Attr>),
    /// `pd_op.a_intarray`.
    IntArray(Vec<i64>),
    /// `pd_op.a_dtype`: Paddle's dtype name (`float32`).
    DType(String),
    /// `pd_op.a_scalar` (a number of some dtype).
    Scalar(f64),
    /// `pd_op.a_place` and other attributes that do not change inference.
    Ignored,
}

/// A value's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    /// A dense tensor: dtype name (`f32`, `i64`, ...) and dims (-1 dynamic).
    Dense { dtype: String, dims: Vec<i64> },
    /// A vector of values (`builtin.combine` results, `pd_op.split` results).
    Vec(Vec<Ty>),
    /// The null type (an absent result).
    Null,
    /// Anything else, by its type id.
    Other(String),
}

/// A decode error: what is wrong and where (a JSON path).
pub(crate) struct Bad {
    pub path: String,
    pub reason: String,
}

type R<T> = std::result::Result<T, Bad>;

fn bad<T>(path: &str, reason: impl Into<String>) -> R<T> {
    Err(Bad {
        path: path.to_string(),
        reason: reason.into(),
    })
}

fn field<'a>(v: &'a Value, key: &str, path: &str) -> R<&'a Value> {
    v.get(key).ok_or_else(|| Bad {
        path: path.to_string(),
        reason: format!("missing field `{key}`"),
    })
}

fn array<'a>(v: &'a Value, path: &str) -> R<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| Bad {
        path: path.to_string(),
        reason: format!("expected an array, found {}", kind(v)),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn str_of<'a>(v: &'a Value, path: &str) -> R<&'a str> {
    v.as_str().ok_or_else(|| Bad {
        path: path.to_string(),
        reason: format!("expected a string, found {}", kind(v)),
    })
}

fn int_of(v: &Value, path: &str) -> R<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        .ok_or_else(|| Bad {
            path: path.to_string(),
            reason: format!("expected an integer, found {v}"),
        })
}

fn num_of(v: &Value, path: &str) -> R<f64> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| Bad {
            path: path.to_string(),
            reason: format!("{n} is not a number"),
        }),
        // Non-finite floats are written as strings.
        Value::String(s) => match s.as_str() {
            "inf" | "INF" | "Infinity" => Ok(f64::INFINITY),
            "-inf" | "-INF" | "-Infinity" => Ok(f64::NEG_INFINITY),
            "nan" | "NaN" | "NAN" => Ok(f64::NAN),
            s => s
                .parse()
                .or_else(|_| bad(path, format!("`{s}` is not a number"))),
        },
        Value::Bool(b) => Ok(*b as i64 as f64),
        v => bad(path, format!("expected a number, found {}", kind(v))),
    }
}

/// Strips a dialect id prefix: `"1.a_i32"` → `"a_i32"`.
fn local(id: &str) -> &str {
    id.split_once('.').map_or(id, |(_, n)| n)
}

/// Dialect ids as Paddle numbers them in the file.
fn dialect_name(id: &str) -> String {
    match id {
        "0" => "builtin".into(),
        "1" => "pd_op".into(),
        "2" => "cf".into(),
        "3" => "pd_dist".into(),
        other => format!("dialect#{other}"),
    }
}

/// Decodes a program document.
pub(crate) fn decode(doc: &Value) -> R<Program> {
    let base = field(doc, "base_code", "$")?;
    let magic = str_of(field(base, "magic", "$.base_code")?, "$.base_code.magic")?;
    if magic != "pir" {
        return bad("$.base_code.magic", format!("`{magic}`, not `pir`"));
    }
    let version = int_of(
        field(base, "version", "$.base_code")?,
        "$.base_code.version",
    )?;
    let prog = field(doc, "program", "$")?;
    let regions = array(field(prog, "regions", "$.program")?, "$.program.regions")?;
    if regions.len() != 1 {
        return bad(
            "$.program.regions",
            format!("expected one top region, found {}", regions.len()),
        );
    }
    let blocks = array(
        field(&regions[0], "blocks", "$.program.regions[0]")?,
        "$.program.regions[0].blocks",
    )?;
    if blocks.len() != 1 {
        return bad(
            "$.program.regions[0].blocks",
            format!("expected one top block, found {}", blocks.len()),
        );
    }
    let bpath = "$.program.regions[0].blocks[0]";
    let ops = array(field(&blocks[0], "ops", bpath)?, &format!("{bpath}.ops"))?;
    let ops = ops
        .iter()
        .enumerate()
        .map(|(i, o)| op(o, &format!("{bpath}.ops[{i}]")))
        .collect::<R<Vec<_>>>()?;
    Ok(Program { version, ops })
}

fn op(v: &Value, path: &str) -> R<PirOp> {
    let id = str_of(field(v, "#", path)?, &format!("{path}.#"))?;
    if id == "p" {
        return parameter(v, path);
    }
    let name = match id.split_once('.') {
        Some((d, n)) => format!("{}.{n}", dialect_name(d)),
        None => return bad(&format!("{path}.#"), format!("op id `{id}` has no dialect")),
    };
    let attrs = match v.get("A") {
        None => vec![],
        Some(a) => array(a, &format!("{path}.A"))?
            .iter()
            .enumerate()
            .map(|(k, a)| named_attr(a, &format!("{path}.A[{k}]")))
            .collect::<R<_>>()?,
    };
    let inputs = match v.get("I") {
        None => vec![],
        Some(i) => array(i, &format!("{path}.I"))?
            .iter()
            .enumerate()
            .map(|(k, x)| value_id(x, &format!("{path}.I[{k}]")))
            .collect::<R<_>>()?,
    };
    let outputs = match v.get("O") {
        None => vec![],
        Some(o) => array(o, &format!("{path}.O"))?
            .iter()
            .enumerate()
            .map(|(k, x)| result(x, &format!("{path}.O[{k}]")))
            .collect::<R<_>>()?,
    };
    let regions = v
        .get("regions")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Ok(PirOp {
        name,
        attrs,
        inputs,
        outputs,
        regions,
    })
}

/// `{"#": "p", "A": [is_distributed, is_parameter, need_clip, name], "O": value}`.
fn parameter(v: &Value, path: &str) -> R<PirOp> {
    let a = array(field(v, "A", path)?, &format!("{path}.A"))?;
    let name = a.iter().rev().find_map(Value::as_str).ok_or_else(|| Bad {
        path: format!("{path}.A"),
        reason: "a parameter op without a name".into(),
    })?;
    let out = result(field(v, "O", path)?, &format!("{path}.O"))?;
    Ok(PirOp {
        name: "builtin.parameter".into(),
        attrs: vec![("parameter_name".into(), Attr::Str(name.to_string()))],
        inputs: vec![],
        outputs: vec![out],
        regions: 0,
    })
}

fn value_id(v: &Value, path: &str) -> R<u64> {
    let id = int_of(field(v, "%", path)?, &format!("{path}.%"))?;
    u64::try_from(id).or_else(|_| bad(path, format!("value id {id} is negative")))
}

fn result(v: &Value, path: &str) -> R<(u64, Ty)> {
    let id = value_id(v, path)?;
    let ty = match v.get("TT") {
        Some(t) => ty(t, &format!("{path}.TT"))?,
        None => Ty::Null,
    };
    Ok((id, ty))
}

fn ty(v: &Value, path: &str) -> R<Ty> {
    let id = str_of(field(v, "#", path)?, &format!("{path}.#"))?;
    match local(id) {
        "t_dtensor" => {
            let d = array(field(v, "D", path)?, &format!("{path}.D"))?;
            if d.len() < 2 {
                return bad(path, "a dense tensor type needs a dtype and dims");
            }
            let dt = str_of(field(&d[0], "#", &format!("{path}.D[0]"))?, path)?;
            let dims = array(&d[1], &format!("{path}.D[1]"))?
                .iter()
                .enumerate()
                .map(|(k, x)| int_of(x, &format!("{path}.D[1][{k}]")))
                .collect::<R<_>>()?;
            Ok(Ty::Dense {
                dtype: local(dt).trim_start_matches("t_").to_string(),
                dims,
            })
        }
        "t_vec" => {
            let d = array(field(v, "D", path)?, &format!("{path}.D"))?;
            Ok(Ty::Vec(
                d.iter()
                    .enumerate()
                    .map(|(k, x)| ty(x, &format!("{path}.D[{k}]")))
                    .collect::<R<_>>()?,
            ))
        }
        "t_null" => Ok(Ty::Null),
        other => Ok(Ty::Other(other.to_string())),
    }
}

fn named_attr(v: &Value, path: &str) -> R<(String, Attr)> {
    let name = str_of(field(v, "N", path)?, &format!("{path}.N"))?;
    let a = attr(field(v, "AT", path)?, &format!("{path}.AT"))?;
    Ok((name.to_string(), a))
}

fn attr(v: &Value, path: &str) -> R<Attr> {
    let id = str_of(field(v, "#", path)?, &format!("{path}.#"))?;
    let d = || field(v, "D", path);
    let dp = format!("{path}.D");
    Ok(match local(id) {
        "a_bool" => Attr::Bool(d()?.as_bool().ok_or_else(|| Bad {
            path: dp.clone(),
            reason: "expected a bool".into(),
        })?),
        "a_i32" | "a_index" => Attr::I32(int_of(d()?, &dp)?),
        "a_i64" => Attr::I64(int_of(d()?, &dp)?),
        "a_f32" => Attr::F32(num_of(d()?, &dp)?),
        "a_f64" => Attr::F64(num_of(d()?, &dp)?),
        "a_str" => Attr::Str(str_of(d()?, &dp)?.to_string()),
        "a_array" => Attr::Array(
            array(d()?, &dp)?
                .iter()
                .enumerate()
                .map(|(k, x)| attr(x, &format!("{dp}[{k}]")))
                .collect::<R<_>>()?,
        ),
        "a_intarray" => Attr::IntArray(
            array(d()?, &dp)?
                .iter()
                .enumerate()
                .map(|(k, x)| int_of(x, &format!("{dp}[{k}]")))
                .collect::<R<_>>()?,
        ),
        "a_dtype" => Attr::DType(str_of(d()?, &dp)?.to_string()),
        "a_scalar" => {
            // A scalar is written as its number, or as [dtype, number].
            let x = d()?;
            Attr::Scalar(match x.as_array() {
                Some(pair) if !pair.is_empty() => num_of(&pair[pair.len() - 1], &dp)?,
                _ => num_of(x, &dp)?,
            })
        }
        _ => Attr::Ignored,
    })
}
