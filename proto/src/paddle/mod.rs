//! Importer for Paddle's legacy program format (`.pdmodel` ProgramDesc + `.pdiparams`).

mod convert;
mod ctx;

pub use convert::{registry, Converted, Converter};
pub use ctx::OpCtx;

use crate::build::Builder;
use crate::framework::{ProgramDesc, VarDesc};
use crate::params::{dtype_from_paddle, read_params, read_params_from, ParamSpec};
use crate::{Error, ModelBytes, OpLoc, Result};
use kayak_ir::{Dim, Graph, Shape, TypeInfo, ValueId};
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Paddle `VarType.Type` numbers of the feed and fetch holder variables.
const FEED_MINIBATCH: i32 = 9;
const FETCH_LIST: i32 = 10;

/// Op types that carry sub-blocks.
const CONTROL_FLOW: &[&str] = &[
    "while",
    "conditional_block",
    "recurrent",
    "select_input",
    "select_output",
    "while_grad",
    "conditional_block_infer",
];

/// A model read into the IR.
#[derive(Debug, Clone)]
pub struct Model {
    /// The graph: inputs in feed order, outputs in fetch order, weights as constants
    /// (shared: a predictor's plans run it; `Arc::make_mut` edits a copy if it is shared).
    pub graph: std::sync::Arc<Graph>,
    /// Each model variable name → the value holding its last definition.
    pub vars: HashMap<String, ValueId>,
    /// Op types of the program and their counts (feed and fetch included).
    pub op_histogram: BTreeMap<String, usize>,
    /// Number of parameters (persistable tensors) in the params file.
    pub param_count: usize,
    /// Total elements of those parameters.
    pub param_elements: usize,
    /// Size of the params data in bytes.
    pub param_bytes: usize,
    /// Name of the program (path or `<buffer>`), for messages.
    pub model_name: String,
    /// Format description.
    pub format: String,
}

fn tensor_desc(v: &VarDesc) -> Option<(&crate::framework::var_type::TensorDesc, i32)> {
    v.r#type
        .dense_tensor
        .as_ref()
        .map(|d| (&d.tensor, d.lod_level.unwrap_or(0)))
}

/// Reads a legacy Paddle program and its params into a [`Model`]; any other format is
/// handed to its importer ([`crate::import_any`] is the same function).
pub fn import(bytes: &ModelBytes) -> Result<Model> {
    crate::import_any(bytes)
}

/// Reads the bytes of a legacy Paddle program (content already sniffed) and its params.
pub(crate) fn import_legacy(bytes: &ModelBytes) -> Result<Model> {
    let file = bytes.model_name.clone();
    let prog = ProgramDesc::decode(bytes.model.as_slice()).map_err(|source| Error::Decode {
        file: file.clone(),
        format: "Paddle program",
        source,
    })?;
    let format = format!(
        "Paddle ProgramDesc (legacy .pdmodel, version {})",
        prog.version.and_then(|v| v.version).unwrap_or(0)
    );
    let origin = Origin {
        format,
        locs: None,
        consts: vec![],
    };
    import_program(&prog, bytes, &origin)
}

/// Where a program came from: the format's name and, for a program translated from
/// another format, each op's own index and type there (for errors).
pub(crate) struct Origin {
    /// Format description for [`Model::format`].
    pub format: String,
    /// Per op of block 0: (index, op type) in the source file.
    pub locs: Option<Vec<(usize, String)>>,
    /// Constant tensors the translation made (not in the params file), by variable name.
    pub consts: Vec<(String, kayak_ir::Tensor)>,
}

/// Imports a decoded program: the legacy importer and the PIR importer (which translates
/// its ops into this form) share it, so both go through one registry.
pub(crate) fn import_program(
    prog: &ProgramDesc,
    bytes: &ModelBytes,
    origin: &Origin,
) -> Result<Model> {
    let file = bytes.model_name.clone();
    let block = prog.blocks.first().ok_or_else(|| Error::Program {
        file: file.clone(),
        reason: "the program has no blocks".into(),
    })?;
    let loc = |index: usize, op_type: &str| match origin.locs.as_ref().and_then(|l| l.get(index)) {
        Some((i, t)) => OpLoc {
            file: file.clone(),
            block: 0,
            index: *i,
            op_type: t.clone(),
        },
        None => OpLoc {
            file: file.clone(),
            block: 0,
            index,
            op_type: op_type.to_string(),
        },
    };

    let mut op_histogram = BTreeMap::new();
    for (i, op) in block.ops.iter().enumerate() {
        *op_histogram.entry(loc(i, &op.r#type).op_type).or_insert(0) += 1;
        let ctx = OpCtx::untyped(op, loc(i, &op.r#type));
        if CONTROL_FLOW.contains(&op.r#type.as_str()) || ctx.has_block_attr() {
            return Err(Error::Unsupported {
                what: format!(
                    "control flow (`{}` with a sub-block; the program has {} blocks)",
                    op.r#type,
                    prog.blocks.len()
                ),
                at: ctx.loc,
            });
        }
    }
    if prog.blocks.len() > 1 {
        return Err(Error::Program {
            file,
            reason: format!(
                "the program has {} blocks but no control-flow op uses them",
                prog.blocks.len()
            ),
        });
    }

    let var_desc: HashMap<&str, &VarDesc> =
        block.vars.iter().map(|v| (v.name.as_str(), v)).collect();

    // Parameters: persistable tensors other than the feed/fetch holders, sorted by name.
    let mut specs = Vec::new();
    for v in &block.vars {
        let holder = matches!(v.r#type.r#type, FEED_MINIBATCH | FETCH_LIST)
            || v.name == "feed"
            || v.name == "fetch";
        if !v.persistable.unwrap_or(false) || holder {
            continue;
        }
        let (td, _) = tensor_desc(v).ok_or_else(|| Error::Program {
            file: file.clone(),
            reason: format!("persistable variable `{}` is not a dense tensor", v.name),
        })?;
        let dtype = dtype_from_paddle(td.data_type).ok_or_else(|| Error::Program {
            file: file.clone(),
            reason: format!(
                "parameter `{}` has unsupported data type {}",
                v.name, td.data_type
            ),
        })?;
        specs.push(ParamSpec {
            name: v.name.clone(),
            dtype,
            dims: td.dims.clone(),
        });
    }
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    let tensors = match &bytes.params_file {
        Some(path) => {
            let io = |source| Error::Io {
                path: path.display().to_string(),
                source,
            };
            let f = std::fs::File::open(path).map_err(io)?;
            let len = f.metadata().map_err(io)?.len();
            read_params_from(
                std::io::BufReader::with_capacity(1 << 16, f),
                len,
                &specs,
                &bytes.params_name,
            )?
        }
        None => read_params(&bytes.params, &specs, &bytes.params_name)?,
    };
    let param_elements = tensors.iter().map(|t| t.len()).sum();
    let param_bytes = tensors.iter().map(|t| t.byte_len()).sum();
    let param_count = tensors.len();
    let mut params: HashMap<String, Arc<kayak_ir::Tensor>> = specs
        .iter()
        .map(|s| s.name.clone())
        .zip(tensors.into_iter().map(Arc::new))
        .collect();
    for (name, t) in &origin.consts {
        params.insert(name.clone(), Arc::new(t.clone()));
    }

    let mut b = Builder::new(params, false);

    // Feeds, in column order.
    let mut feeds: Vec<(i64, usize, String)> = Vec::new();
    let mut fetches: Vec<(i64, usize, String)> = Vec::new();
    for (i, op) in block.ops.iter().enumerate() {
        let ctx = OpCtx::untyped(op, loc(i, &op.r#type));
        match op.r#type.as_str() {
            "feed" => feeds.push((ctx.i64_or("col", 0)?, i, ctx.output("Out")?)),
            "fetch" => fetches.push((ctx.i64_or("col", 0)?, i, ctx.input("X")?)),
            _ => {}
        }
    }
    feeds.sort();
    fetches.sort();
    if feeds.is_empty() {
        return Err(Error::Program {
            file,
            reason: "the program has no feed op (not an inference model?)".into(),
        });
    }
    if fetches.is_empty() {
        return Err(Error::Program {
            file,
            reason: "the program has no fetch op (not an inference model?)".into(),
        });
    }
    for (_, i, name) in &feeds {
        let v = var_desc.get(name.as_str()).ok_or_else(|| Error::Program {
            file: file.clone(),
            reason: format!("feed variable `{name}` is not declared"),
        })?;
        let (td, lod) = tensor_desc(v).ok_or_else(|| Error::Program {
            file: file.clone(),
            reason: format!("feed variable `{name}` is not a dense tensor"),
        })?;
        if lod > 0 {
            return Err(Error::Unsupported {
                what: format!("LoD input `{name}` (lod_level {lod})"),
                at: loc(*i, "feed"),
            });
        }
        let dtype = dtype_from_paddle(td.data_type).ok_or_else(|| Error::Program {
            file: file.clone(),
            reason: format!("feed `{name}` has unsupported data type {}", td.data_type),
        })?;
        let dims = td
            .dims
            .iter()
            .enumerate()
            .map(|(k, &d)| {
                if d < 0 {
                    Dim::Sym(format!("{name}.{k}").into())
                } else {
                    Dim::Known(d as usize)
                }
            })
            .collect();
        let ty = TypeInfo {
            dtype,
            shape: Shape(dims),
        };
        b.input(name, ty, &loc(*i, "feed"))?;
    }

    let reg = registry();
    let mut unknown = crate::error::Unknown::default();
    for (i, op) in block.ops.iter().enumerate() {
        let t = op.r#type.as_str();
        if t == "feed" || t == "fetch" {
            continue;
        }
        let at = loc(i, t);
        match reg.get(t) {
            None => unknown.note(at),
            // After an unknown op only the types are checked: its outputs do not exist.
            Some(_) if unknown.any() => {}
            Some(conv) => {
                let converted = {
                    let dtype_of = |n: &str| b.type_of(n).map(|t| t.dtype);
                    let ctx = OpCtx {
                        desc: op,
                        loc: at.clone(),
                        dtype_of: &dtype_of,
                        fresh: std::cell::Cell::new(0),
                    };
                    conv(&ctx)?
                };
                for c in converted {
                    b.add(c, &at)?;
                }
            }
        }
    }
    unknown.check()?;
    for (_, i, name) in &fetches {
        b.output(name, &loc(*i, "fetch"))?;
    }
    let Builder { g, defs, .. } = b;
    g.validate().map_err(|source| Error::Program {
        file: file.clone(),
        reason: source.to_string(),
    })?;
    Ok(Model {
        graph: std::sync::Arc::new(g),
        vars: defs,
        op_histogram,
        param_count,
        param_elements,
        param_bytes,
        model_name: file,
        format: origin.format.clone(),
    })
}
