//! Typed access to one `OpDesc`'s inputs and attributes, with located errors.

use crate::framework::op_desc::Attr;
use crate::framework::OpDesc;
use crate::{Error, OpLoc, Result};

/// Paddle's attribute type numbers (`AttrType`).
mod ty {
    pub const INT: i32 = 0;
    pub const FLOAT: i32 = 1;
    pub const STRING: i32 = 2;
    pub const INTS: i32 = 3;
    pub const FLOATS: i32 = 4;
    pub const BOOLEAN: i32 = 6;
    pub const BLOCK: i32 = 8;
    pub const LONG: i32 = 9;
    pub const BLOCKS: i32 = 10;
    pub const LONGS: i32 = 11;
    pub const FLOAT64S: i32 = 12;
    pub const FLOAT64: i32 = 15;
    pub const SCALAR: i32 = 16;
}

/// The element type of a variable defined so far, where the builder knows it.
pub type DTypeOf<'a> = &'a dyn Fn(&str) -> Option<kayak_ir::DType>;

/// One op being imported.
pub struct OpCtx<'a> {
    /// The op.
    pub desc: &'a OpDesc,
    /// Its location, for errors.
    pub loc: OpLoc,
    /// Types of the variables defined before this op.
    pub dtype_of: DTypeOf<'a>,
    /// Fresh intermediate names handed out so far.
    pub fresh: std::cell::Cell<usize>,
}

impl<'a> OpCtx<'a> {
    /// A context without type information (for scans before the graph is built).
    pub fn untyped(desc: &'a OpDesc, loc: OpLoc) -> OpCtx<'a> {
        OpCtx {
            desc,
            loc,
            dtype_of: &|_| None,
            fresh: std::cell::Cell::new(0),
        }
    }

    /// The element type of input `param`'s single argument.
    pub fn dtype(&self, param: &str) -> Result<kayak_ir::DType> {
        let name = self.input(param)?;
        (self.dtype_of)(&name)
            .ok_or_else(|| self.bad(param, format!("the type of `{name}` is not known here")))
    }

    /// A fresh name for an intermediate value of this op's expansion.
    pub fn tmp(&self) -> String {
        let k = self.fresh.get();
        self.fresh.set(k + 1);
        let out = self
            .desc
            .outputs
            .iter()
            .flat_map(|v| v.arguments.first())
            .next()
            .map(String::as_str)
            .unwrap_or("op");
        format!("{out}#{k}")
    }

    /// The op type.
    pub fn op_type(&self) -> &str {
        &self.desc.r#type
    }

    /// Arguments of an input parameter (empty if absent).
    pub fn inputs(&self, param: &str) -> &'a [String] {
        self.desc
            .inputs
            .iter()
            .find(|v| v.parameter == param)
            .map(|v| v.arguments.as_slice())
            .unwrap_or(&[])
    }

    /// Arguments of an output parameter (empty if absent).
    pub fn outputs(&self, param: &str) -> &'a [String] {
        self.desc
            .outputs
            .iter()
            .find(|v| v.parameter == param)
            .map(|v| v.arguments.as_slice())
            .unwrap_or(&[])
    }

    /// The single argument of a required input.
    pub fn input(&self, param: &str) -> Result<String> {
        match self.inputs(param) {
            [one] => Ok(one.clone()),
            [] => Err(self.bad(param, "required input is missing")),
            many => Err(self.bad(param, format!("expected one argument, got {}", many.len()))),
        }
    }

    /// The single argument of an optional input.
    pub fn opt_input(&self, param: &str) -> Result<Option<String>> {
        match self.inputs(param) {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            many => Err(self.bad(
                param,
                format!("expected at most one argument, got {}", many.len()),
            )),
        }
    }

    /// The single argument of a required output.
    pub fn output(&self, param: &str) -> Result<String> {
        match self.outputs(param) {
            [one] => Ok(one.clone()),
            [] => Err(self.bad(param, "required output is missing")),
            many => Err(self.bad(param, format!("expected one output, got {}", many.len()))),
        }
    }

    /// An attribute error at this op.
    pub fn bad(&self, attr: &str, reason: impl Into<String>) -> Error {
        Error::BadAttribute {
            attr: attr.to_string(),
            reason: reason.into(),
            at: self.loc.clone(),
        }
    }

    /// A "not supported yet" error at this op.
    pub fn unsupported(&self, what: impl Into<String>) -> Error {
        Error::Unsupported {
            what: what.into(),
            at: self.loc.clone(),
        }
    }

    /// Fails if a tensor-valued input that Kayak does not handle for this op is present.
    pub fn reject_inputs(&self, params: &[&str]) -> Result<()> {
        for p in params {
            if !self.inputs(p).is_empty() {
                return Err(self.unsupported(format!("`{}` with input `{p}`", self.op_type())));
            }
        }
        Ok(())
    }

    fn attr(&self, name: &str) -> Option<&'a Attr> {
        self.desc.attrs.iter().find(|a| a.name == name)
    }

    /// True if the op has a block-valued attribute (control flow).
    pub fn has_block_attr(&self) -> bool {
        self.desc
            .attrs
            .iter()
            .any(|a| a.r#type == ty::BLOCK || a.r#type == ty::BLOCKS)
    }

    fn wrong(&self, name: &str, a: &Attr, want: &str) -> Error {
        self.bad(
            name,
            format!("expected {want}, found attribute type {}", a.r#type),
        )
    }

    /// An integer attribute (INT or LONG).
    pub fn i64(&self, name: &str) -> Result<Option<i64>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => match a.r#type {
                ty::INT => Ok(Some(a.i.unwrap_or(0) as i64)),
                ty::LONG => Ok(Some(a.l.unwrap_or(0))),
                ty::SCALAR => a
                    .scalar
                    .as_ref()
                    .and_then(|s| s.i.or(s.r.map(|r| r as i64)))
                    .map(Some)
                    .ok_or_else(|| self.wrong(name, a, "an integer")),
                _ => Err(self.wrong(name, a, "an integer")),
            },
        }
    }

    /// An integer attribute with a default.
    pub fn i64_or(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.i64(name)?.unwrap_or(default))
    }

    /// A float attribute (FLOAT or FLOAT64).
    pub fn f64(&self, name: &str) -> Result<Option<f64>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => match a.r#type {
                ty::FLOAT => Ok(Some(a.f.unwrap_or(0.0) as f64)),
                ty::FLOAT64 => Ok(Some(a.float64.unwrap_or(0.0))),
                ty::INT => Ok(Some(a.i.unwrap_or(0) as f64)),
                ty::LONG => Ok(Some(a.l.unwrap_or(0) as f64)),
                ty::SCALAR => a
                    .scalar
                    .as_ref()
                    .and_then(|s| {
                        s.r.or(s.i.map(|i| i as f64))
                            .or(s.b.map(|b| b as i64 as f64))
                    })
                    .map(Some)
                    .ok_or_else(|| self.wrong(name, a, "a number")),
                _ => Err(self.wrong(name, a, "a float")),
            },
        }
    }

    /// A float attribute with a default, checked to be finite.
    pub fn f32_or(&self, name: &str, default: f32) -> Result<f32> {
        let v = self.f64(name)?.map(|v| v as f32).unwrap_or(default);
        if !v.is_finite() {
            return Err(self.bad(name, format!("{v} is not finite")));
        }
        Ok(v)
    }

    /// A bool attribute with a default.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) => match a.r#type {
                ty::BOOLEAN => Ok(a.b.unwrap_or(false)),
                ty::INT => Ok(a.i.unwrap_or(0) != 0),
                _ => Err(self.wrong(name, a, "a bool")),
            },
        }
    }

    /// A string attribute with a default.
    pub fn str_or(&self, name: &str, default: &str) -> Result<String> {
        match self.attr(name) {
            None => Ok(default.to_string()),
            Some(a) if a.r#type == ty::STRING => Ok(a.s.clone().unwrap_or_default()),
            Some(a) => Err(self.wrong(name, a, "a string")),
        }
    }

    /// An integer-list attribute (INTS or LONGS); absent → empty.
    pub fn ints(&self, name: &str) -> Result<Vec<i64>> {
        match self.attr(name) {
            None => Ok(vec![]),
            Some(a) => match a.r#type {
                ty::INTS => Ok(a.ints.iter().map(|&v| v as i64).collect()),
                ty::LONGS => Ok(a.longs.clone()),
                ty::INT => Ok(vec![a.i.unwrap_or(0) as i64]),
                ty::LONG => Ok(vec![a.l.unwrap_or(0)]),
                _ => Err(self.wrong(name, a, "a list of integers")),
            },
        }
    }

    /// A float-list attribute; absent → empty.
    pub fn floats(&self, name: &str) -> Result<Vec<f32>> {
        match self.attr(name) {
            None => Ok(vec![]),
            Some(a) => match a.r#type {
                ty::FLOATS => Ok(a.floats.clone()),
                ty::FLOAT64S => Ok(a.float64s.iter().map(|&v| v as f32).collect()),
                ty::FLOAT => Ok(vec![a.f.unwrap_or(0.0)]),
                _ => Err(self.wrong(name, a, "a list of floats")),
            },
        }
    }

    /// A list of non-negative integers of a fixed length.
    pub fn usizes(&self, name: &str, len: usize, default: &[usize]) -> Result<Vec<usize>> {
        let v = self.ints(name)?;
        if v.is_empty() {
            return Ok(default.to_vec());
        }
        if v.len() != len {
            return Err(self.bad(name, format!("expected {len} values, got {v:?}")));
        }
        v.iter()
            .map(|&x| {
                usize::try_from(x).map_err(|_| self.bad(name, format!("negative value in {v:?}")))
            })
            .collect()
    }
}
