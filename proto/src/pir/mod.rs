//! Importer for Paddle 3's PIR programs (`model.json` / `inference.json` + `.pdiparams`).
//!
//! The JSON program ([`json`]) is translated op by op into the legacy form through
//! [`table`]: each PIR op becomes its legacy counterpart with named inputs and attributes,
//! so one registry ([`crate::paddle::registry`]) reads both formats and the two imports of a
//! model give the same graph. Constant operands (`pd_op.full_int_array`, scalar
//! `pd_op.full`) fold back into attributes; `builtin.combine` / `builtin.split` become a
//! legacy op's list of inputs / outputs; `builtin.parameter` ops are the program's
//! persistable variables, read from the `.pdiparams` in name order as the legacy program's
//! are (Paddle writes one file for both).

mod json;
mod table;

use crate::framework::op_desc::{Attr as PAttr, Var};
use crate::framework::var_type::{DenseTensorDesc, TensorDesc};
use crate::framework::{
    AttrType, BlockDesc, OpDesc, ProgramDesc, Scalar as PScalar, VarDesc, VarType,
};
use crate::paddle::{import_program, Model, Origin};
use crate::{Error, ModelBytes, OpLoc, Result};
use json::{Attr, PirOp, Ty};
use std::collections::{BTreeMap, HashMap, HashSet};
use table::{Arg, Fixed};

/// Paddle `VarType.Type` of dense tensors.
const DENSE_TENSOR: i32 = 7;

/// Attributes that carry no meaning for inference.
const IGNORED_ATTRS: &[&str] = &["struct_name", "stop_gradient", "place", "persistable"];

/// Reads a PIR program and its params into a [`Model`].
pub fn import(bytes: &ModelBytes) -> Result<Model> {
    let file = bytes.model_name.clone();
    let doc: serde_json::Value = serde_json::from_slice(&bytes.model).map_err(|e| Error::Json {
        file: file.clone(),
        path: format!("line {} column {}", e.line(), e.column()),
        reason: e.to_string(),
    })?;
    let prog = json::decode(&doc).map_err(|b| Error::Json {
        file: file.clone(),
        path: b.path,
        reason: b.reason,
    })?;
    let t = Translator::new(&prog, &file)?.run()?;
    let origin = Origin {
        format: format!("Paddle 3 PIR program (JSON, version {})", prog.version),
        locs: Some(t.locs),
        consts: t.consts,
    };
    let mut m = import_program(&t.program, bytes, &origin)?;
    m.op_histogram = t.histogram;
    Ok(m)
}

struct Translated {
    program: ProgramDesc,
    locs: Vec<(usize, String)>,
    consts: Vec<(String, kayak_ir::Tensor)>,
    histogram: BTreeMap<String, usize>,
}

/// One op being built, with its place in the PIR program.
struct Pending {
    desc: OpDesc,
    index: usize,
    name: String,
    /// Emitted only if some op reads its result as a tensor (a folded constant).
    lazy_value: Option<u64>,
}

struct Translator<'a> {
    prog: &'a json::Program,
    file: &'a str,
    names: HashMap<u64, String>,
    types: HashMap<u64, &'a Ty>,
    int_consts: HashMap<u64, (Vec<i64>, String)>,
    scalar_consts: HashMap<u64, f64>,
    combine: HashMap<u64, Vec<u64>>,
    split_outs: HashMap<u64, Vec<u64>>,
    needed: HashSet<u64>,
}

fn at(file: &str, index: usize, op: &PirOp) -> OpLoc {
    OpLoc {
        file: file.to_string(),
        block: 0,
        index,
        op_type: op.name.clone(),
    }
}

fn var(parameter: &str, args: Vec<String>) -> Var {
    Var {
        parameter: parameter.to_string(),
        arguments: args,
    }
}

fn pattr(name: &str, ty: AttrType) -> PAttr {
    PAttr {
        name: name.to_string(),
        r#type: ty as i32,
        ..Default::default()
    }
}

fn long_attr(name: &str, v: i64) -> PAttr {
    PAttr {
        l: Some(v),
        ..pattr(name, AttrType::Long)
    }
}

fn longs_attr(name: &str, v: Vec<i64>) -> PAttr {
    PAttr {
        longs: v,
        ..pattr(name, AttrType::Longs)
    }
}

fn f64_attr(name: &str, v: f64) -> PAttr {
    PAttr {
        float64: Some(v),
        ..pattr(name, AttrType::Float64)
    }
}

/// Paddle's `VarType.Type` number of a dtype, by its PIR attribute name (`float32`) or
/// type name (`f32`); -1 for `undefined`.
fn dtype_number(name: &str) -> Option<i64> {
    Some(match name {
        "bool" => 0,
        "int16" | "i16" => 1,
        "int32" | "i32" => 2,
        "int64" | "i64" => 3,
        "float16" | "f16" => 4,
        "float32" | "f32" => 5,
        "float64" | "f64" => 6,
        "uint8" | "ui8" => 20,
        "int8" | "i8" => 21,
        "bfloat16" | "bf16" => 22,
        "complex64" | "c64" => 23,
        "complex128" | "c128" => 24,
        "undefined" | "" => -1,
        _ => return None,
    })
}

/// A PIR attribute as a legacy one (`None`: nothing to pass).
fn convert_attr(name: &str, a: &Attr) -> std::result::Result<Option<PAttr>, String> {
    Ok(Some(match a {
        Attr::Bool(b) => PAttr {
            b: Some(*b),
            ..pattr(name, AttrType::Boolean)
        },
        Attr::I32(v) => PAttr {
            i: Some(i32::try_from(*v).map_err(|_| format!("{v} does not fit in i32"))?),
            ..pattr(name, AttrType::Int)
        },
        Attr::I64(v) => long_attr(name, *v),
        Attr::F32(v) => PAttr {
            f: Some(*v as f32),
            ..pattr(name, AttrType::Float)
        },
        Attr::F64(v) => f64_attr(name, *v),
        Attr::Str(s) => PAttr {
            s: Some(s.clone()),
            ..pattr(name, AttrType::String)
        },
        Attr::IntArray(v) => longs_attr(name, v.clone()),
        Attr::DType(d) => long_attr(
            name,
            dtype_number(d).ok_or_else(|| format!("unknown dtype `{d}`"))?,
        ),
        Attr::Scalar(v) => PAttr {
            scalar: Some(PScalar {
                r#type: 3,
                r: Some(*v),
                i: (v.fract() == 0.0 && v.abs() < 9.0e18).then_some(*v as i64),
                ..Default::default()
            }),
            ..pattr(name, AttrType::Scalar)
        },
        Attr::Ignored => return Ok(None),
        Attr::Array(items) => {
            if items.is_empty() {
                return Ok(None);
            }
            let all = |f: fn(&Attr) -> bool| items.iter().all(f);
            if all(|x| matches!(x, Attr::I32(_))) {
                let v = items
                    .iter()
                    .map(|x| match x {
                        Attr::I32(v) => i32::try_from(*v).map_err(|_| format!("{v} overflows")),
                        _ => unreachable!(),
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                PAttr {
                    ints: v,
                    ..pattr(name, AttrType::Ints)
                }
            } else if all(|x| matches!(x, Attr::I32(_) | Attr::I64(_))) {
                longs_attr(
                    name,
                    items
                        .iter()
                        .map(|x| match x {
                            Attr::I32(v) | Attr::I64(v) => *v,
                            _ => unreachable!(),
                        })
                        .collect(),
                )
            } else if all(|x| matches!(x, Attr::F32(_))) {
                PAttr {
                    floats: items
                        .iter()
                        .map(|x| match x {
                            Attr::F32(v) => *v as f32,
                            _ => unreachable!(),
                        })
                        .collect(),
                    ..pattr(name, AttrType::Floats)
                }
            } else if all(|x| matches!(x, Attr::F32(_) | Attr::F64(_))) {
                PAttr {
                    float64s: items
                        .iter()
                        .map(|x| match x {
                            Attr::F32(v) | Attr::F64(v) => *v,
                            _ => unreachable!(),
                        })
                        .collect(),
                    ..pattr(name, AttrType::Float64s)
                }
            } else if all(|x| matches!(x, Attr::Bool(_))) {
                PAttr {
                    bools: items
                        .iter()
                        .map(|x| matches!(x, Attr::Bool(true)))
                        .collect(),
                    ..pattr(name, AttrType::Booleans)
                }
            } else if all(|x| matches!(x, Attr::Str(_))) {
                PAttr {
                    strings: items
                        .iter()
                        .map(|x| match x {
                            Attr::Str(s) => s.clone(),
                            _ => unreachable!(),
                        })
                        .collect(),
                    ..pattr(name, AttrType::Strings)
                }
            } else {
                return Err(format!("an array of mixed kinds: {items:?}"));
            }
        }
    }))
}

impl<'a> Translator<'a> {
    fn new(prog: &'a json::Program, file: &'a str) -> Result<Self> {
        let mut t = Translator {
            prog,
            file,
            names: HashMap::new(),
            types: HashMap::new(),
            int_consts: HashMap::new(),
            scalar_consts: HashMap::new(),
            combine: HashMap::new(),
            split_outs: HashMap::new(),
            needed: HashSet::new(),
        };
        for (i, op) in prog.ops.iter().enumerate() {
            if op.regions > 0 || matches!(op.short(), "if" | "while" | "pylayer") {
                return Err(Error::Unsupported {
                    what: format!("control flow (`{}` with {} region(s))", op.name, op.regions),
                    at: at(file, i, op),
                });
            }
            for (id, ty) in &op.outputs {
                if *id != 0 {
                    t.types.insert(*id, ty);
                }
            }
            let out0 = op.outputs.first().map(|o| o.0);
            match (op.name.as_str(), out0) {
                ("builtin.parameter", Some(v)) => {
                    if let Some(Attr::Str(n)) = op.attr("parameter_name") {
                        t.names.insert(v, n.clone());
                    }
                }
                ("pd_op.data" | "pd_op.feed", Some(v)) => {
                    if let Some(Attr::Str(n)) = op.attr("name") {
                        t.names.insert(v, n.clone());
                    }
                }
                ("pd_op.fetch", _) => {
                    // A fetched value is named by its fetch (`fetch_name_0`), as Paddle
                    // Inference names the outputs, unless it has a name of its own.
                    if let (Some(Attr::Str(n)), Some(&v)) = (op.attr("name"), op.inputs.first()) {
                        t.names.entry(v).or_insert_with(|| n.clone());
                    }
                }
                ("pd_op.full_int_array", Some(v)) => {
                    let vals = match op.attr("value") {
                        Some(Attr::Array(items)) => items
                            .iter()
                            .map(|x| match x {
                                Attr::I32(v) | Attr::I64(v) => Some(*v),
                                Attr::F32(f) | Attr::F64(f) if f.fract() == 0.0 => Some(*f as i64),
                                _ => None,
                            })
                            .collect::<Option<Vec<_>>>(),
                        Some(Attr::IntArray(v)) => Some(v.clone()),
                        None => Some(vec![]),
                        _ => None,
                    };
                    let dtype = match op.attr("dtype") {
                        Some(Attr::DType(d)) => d.clone(),
                        _ => "int64".into(),
                    };
                    match vals {
                        Some(vals) => {
                            t.int_consts.insert(v, (vals, dtype));
                        }
                        None => {
                            return Err(Error::BadAttribute {
                                attr: "value".into(),
                                reason: "expected a list of integers".into(),
                                at: at(file, i, op),
                            })
                        }
                    }
                }
                ("pd_op.full", Some(v)) => {
                    let one = match op.attr("shape") {
                        Some(Attr::IntArray(s)) => s.iter().product::<i64>() == 1,
                        _ => false,
                    };
                    let value = match op.attr("value") {
                        Some(Attr::F64(x) | Attr::F32(x) | Attr::Scalar(x)) => Some(*x),
                        Some(Attr::I32(x) | Attr::I64(x)) => Some(*x as f64),
                        _ => None,
                    };
                    if let (true, Some(x)) = (one, value) {
                        t.scalar_consts.insert(v, x);
                    }
                }
                ("builtin.combine", Some(v)) => {
                    t.combine.insert(v, op.inputs.clone());
                }
                ("builtin.split", _) => {
                    if let Some(&src) = op.inputs.first() {
                        t.split_outs
                            .insert(src, op.outputs.iter().map(|o| o.0).collect());
                    }
                }
                _ => {}
            }
        }
        Ok(t)
    }

    fn name(&self, id: u64) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("%{id}"))
    }

    fn run(mut self) -> Result<Translated> {
        let mut histogram = BTreeMap::new();
        let mut vars = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut consts = Vec::new();
        let mut feed_col = 0i64;
        let mut fetch_col = 0i64;
        let ops = &self.prog.ops;
        let mut unknown = crate::error::Unknown::default();
        for (i, op) in ops.iter().enumerate() {
            *histogram.entry(op.name.clone()).or_insert(0) += 1;
            let loc = at(self.file, i, op);
            let out0 = op.outputs.first().map(|o| o.0).unwrap_or(0);
            let mut push = |desc: OpDesc, lazy_value: Option<u64>| {
                pending.push(Pending {
                    desc,
                    index: i,
                    name: op.name.clone(),
                    lazy_value,
                })
            };
            match op.name.as_str() {
                "builtin.parameter" => {
                    vars.push(self.var_desc(out0, true, &loc)?);
                }
                "builtin.combine" | "builtin.split" => {}
                "pd_op.data" | "pd_op.feed" => {
                    // `data` (a saved program) or `feed` (a translated legacy program):
                    // inputs in program order, or by their `col` where given.
                    let col = match op.attr("col") {
                        Some(Attr::I32(c) | Attr::I64(c)) => *c,
                        _ => feed_col,
                    };
                    let mut vd = self.var_desc(out0, false, &loc)?;
                    if let Some(Attr::IntArray(dims)) = op.attr("shape") {
                        if let Some(d) = vd.r#type.dense_tensor.as_mut() {
                            d.tensor.dims = dims.clone();
                        }
                    }
                    vars.push(vd);
                    push(
                        OpDesc {
                            r#type: "feed".into(),
                            inputs: vec![var("X", vec!["feed".into()])],
                            outputs: vec![var("Out", vec![self.name(out0)])],
                            attrs: vec![long_attr("col", col)],
                            is_target: None,
                        },
                        None,
                    );
                    feed_col += 1;
                }
                "pd_op.fetch" | "builtin.shadow_output" => {
                    let col = match op.attr("col") {
                        Some(Attr::I32(c) | Attr::I64(c)) => *c,
                        _ => fetch_col,
                    };
                    let src = *op.inputs.first().ok_or_else(|| Error::Program {
                        file: self.file.to_string(),
                        reason: format!("{loc} has no operand"),
                    })?;
                    self.needed.insert(src);
                    push(
                        OpDesc {
                            r#type: "fetch".into(),
                            inputs: vec![var("X", vec![self.name(src)])],
                            outputs: vec![var("Out", vec!["fetch".into()])],
                            attrs: vec![long_attr("col", col)],
                            is_target: None,
                        },
                        None,
                    );
                    fetch_col += 1;
                }
                "pd_op.full_int_array" => {
                    // A constant tensor, made only if read as one.
                    let (vals, dtype) = self.int_consts[&out0].clone();
                    let t = if dtype == "int32" {
                        let v: Vec<i32> = vals.iter().map(|&x| x as i32).collect();
                        kayak_ir::Tensor::from_i32s(&v)
                    } else {
                        kayak_ir::Tensor::from_i64s(&vals)
                    };
                    consts.push((out0, self.name(out0), t));
                }
                _ if op.dialect() == "pd_op" => match table::entry(op.short()) {
                    None => unknown.note(loc),
                    // After an unknown op only the types are checked.
                    Some(_) if unknown.any() => {}
                    Some(entry) => {
                        let desc = self.translate(op, entry, &loc)?;
                        let lazy = (op.short() == "full").then_some(out0);
                        push(desc, lazy);
                    }
                },
                _ => unknown.note(loc),
            }
        }
        unknown.check()?;
        let mut locs = Vec::new();
        let mut block_ops = Vec::new();
        for p in pending {
            if p.lazy_value.is_some_and(|v| !self.needed.contains(&v)) {
                continue;
            }
            locs.push((p.index, p.name));
            block_ops.push(p.desc);
        }
        let consts = consts
            .into_iter()
            .filter(|(v, _, _)| self.needed.contains(v))
            .map(|(_, n, t)| (n, t))
            .collect();
        let program = ProgramDesc {
            blocks: vec![BlockDesc {
                idx: 0,
                parent_idx: -1,
                vars,
                ops: block_ops,
                forward_block_idx: None,
            }],
            ..Default::default()
        };
        Ok(Translated {
            program,
            locs,
            consts,
            histogram,
        })
    }

    fn var_desc(&self, id: u64, persistable: bool, loc: &OpLoc) -> Result<VarDesc> {
        let (dtype, dims) = match self.types.get(&id) {
            Some(Ty::Dense { dtype, dims }) => (dtype.clone(), dims.clone()),
            other => {
                return Err(Error::Unsupported {
                    what: format!("a value of type {other:?} (not a dense tensor)"),
                    at: loc.clone(),
                })
            }
        };
        let data_type =
            dtype_number(&dtype)
                .filter(|&d| d >= 0)
                .ok_or_else(|| Error::Unsupported {
                    what: format!("data type `{dtype}`"),
                    at: loc.clone(),
                })?;
        Ok(VarDesc {
            name: self.name(id),
            r#type: VarType {
                r#type: DENSE_TENSOR,
                dense_tensor: Some(DenseTensorDesc {
                    tensor: TensorDesc {
                        data_type: data_type as i32,
                        dims,
                    },
                    lod_level: Some(0),
                }),
                ..Default::default()
            },
            persistable: Some(persistable),
            ..Default::default()
        })
    }

    /// The list of values a (possibly combined) operand stands for.
    fn list(&self, v: u64) -> Vec<u64> {
        match self.combine.get(&v) {
            Some(items) => items.clone(),
            None if v == 0 => vec![],
            None => vec![v],
        }
    }

    fn const_ints(&self, v: u64) -> Option<Vec<i64>> {
        if let Some((vals, _)) = self.int_consts.get(&v) {
            return Some(vals.clone());
        }
        let items = self.combine.get(&v)?;
        items
            .iter()
            .map(|i| {
                self.scalar_consts
                    .get(i)
                    .filter(|x| x.fract() == 0.0)
                    .map(|&x| x as i64)
                    .or_else(|| match self.int_consts.get(i) {
                        Some((vals, _)) if vals.len() == 1 => Some(vals[0]),
                        _ => None,
                    })
            })
            .collect()
    }

    fn const_scalar(&self, v: u64) -> Option<f64> {
        self.scalar_consts
            .get(&v)
            .copied()
            .or_else(|| match self.int_consts.get(&v) {
                Some((vals, _)) if vals.len() == 1 => Some(vals[0] as f64),
                _ => None,
            })
    }

    fn translate(&mut self, op: &PirOp, e: &table::Entry, loc: &OpLoc) -> Result<OpDesc> {
        let mut inputs: Vec<Var> = Vec::new();
        let mut attrs: Vec<PAttr> = Vec::new();
        let mut used: Vec<u64> = Vec::new();
        let tensor = |inputs: &mut Vec<Var>, used: &mut Vec<u64>, p: &str, vs: Vec<u64>| {
            used.extend(vs.iter().copied());
            let names = vs.iter().map(|&v| self.name(v)).collect();
            inputs.push(var(p, names));
        };
        if op.inputs.len() > e.args.len() {
            return Err(Error::Unsupported {
                what: format!(
                    "`{}` with {} operands (Kayak knows {})",
                    op.name,
                    op.inputs.len(),
                    e.args.len()
                ),
                at: loc.clone(),
            });
        }
        let not_const = |attr: &str, k: usize| Error::Unsupported {
            what: format!(
                "`{}` whose `{attr}` (operand #{k}) is computed at run time",
                op.name
            ),
            at: loc.clone(),
        };
        for (k, arg) in e.args.iter().enumerate() {
            let v = op.inputs.get(k).copied().unwrap_or(0);
            match *arg {
                Arg::Skip => {}
                Arg::In(p) => {
                    if v == 0 {
                        return Err(Error::BadAttribute {
                            attr: p.to_string(),
                            reason: format!("operand #{k} is required but null"),
                            at: loc.clone(),
                        });
                    }
                    tensor(&mut inputs, &mut used, p, vec![v]);
                }
                Arg::Opt(p) => {
                    if v != 0 {
                        tensor(&mut inputs, &mut used, p, vec![v]);
                    }
                }
                Arg::List(p) => {
                    let vs = self.list(v);
                    if !vs.is_empty() {
                        tensor(&mut inputs, &mut used, p, vs);
                    }
                }
                Arg::Ints(attr, fallback) => {
                    if v == 0 {
                        continue;
                    }
                    match (self.const_ints(v), fallback) {
                        (Some(vals), _) => attrs.push(longs_attr(attr, vals)),
                        (None, Some(p)) => {
                            if self.combine.contains_key(&v) {
                                // A list of scalar tensors: the legacy list parameter.
                                let lp = if p == "Shape" {
                                    "ShapeTensor".to_string()
                                } else {
                                    format!("{p}List")
                                };
                                let vs = self.list(v);
                                tensor(&mut inputs, &mut used, &lp, vs);
                            } else {
                                tensor(&mut inputs, &mut used, p, vec![v]);
                            }
                        }
                        (None, None) => return Err(not_const(attr, k)),
                    }
                }
                Arg::Int(attr, fallback) | Arg::Float(attr, fallback) => {
                    if v == 0 {
                        continue;
                    }
                    match (self.const_scalar(v), fallback) {
                        (Some(x), _) => attrs.push(if matches!(arg, Arg::Int(..)) {
                            long_attr(attr, x as i64)
                        } else {
                            f64_attr(attr, x)
                        }),
                        (None, Some(p)) => tensor(&mut inputs, &mut used, p, vec![v]),
                        (None, None) => return Err(not_const(attr, k)),
                    }
                }
            }
        }
        self.needed.extend(used);
        for (name, a) in &op.attrs {
            if IGNORED_ATTRS.contains(&name.as_str()) {
                continue;
            }
            let legacy = e
                .rename
                .iter()
                .find(|(p, _)| p == name)
                .map_or(name.as_str(), |(_, l)| l);
            match convert_attr(legacy, a) {
                Ok(Some(pa)) => attrs.push(pa),
                Ok(None) => {}
                Err(reason) => {
                    return Err(Error::BadAttribute {
                        attr: name.clone(),
                        reason,
                        at: loc.clone(),
                    })
                }
            }
        }
        for (name, Fixed::Int(v)) in e.set {
            if !attrs.iter().any(|a| a.name == *name) {
                attrs.push(long_attr(name, *v));
            }
        }
        let mut outputs: Vec<Var> = Vec::new();
        for (k, (id, ty)) in op.outputs.iter().enumerate() {
            let Some(&param) = e.outs.get(k) else {
                continue;
            };
            if *id == 0 {
                continue;
            }
            let names = match ty {
                Ty::Vec(parts) => match self.split_outs.get(id) {
                    Some(outs) => outs.iter().map(|&o| self.name(o)).collect(),
                    None => (0..parts.len()).map(|j| format!("%{id}#{j}")).collect(),
                },
                _ => vec![self.name(*id)],
            };
            outputs.push(var(param, names));
        }
        if e.legacy == "split" {
            // The legacy converter takes the count from `num` or `sections`.
            if let Some(n) = outputs.first().map(|o| o.arguments.len()) {
                if !attrs
                    .iter()
                    .any(|a| a.name == "num" || a.name == "sections")
                {
                    attrs.push(long_attr("num", n as i64));
                }
            }
        }
        Ok(OpDesc {
            r#type: e.legacy.to_string(),
            inputs,
            outputs,
            attrs,
            is_target: None,
        })
    }
}
