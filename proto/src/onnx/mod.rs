//! Importer for ONNX models (`ModelProto`, `ai.onnx` opsets 7–22): initializers (with
//! external data files beside the model), `dim_param` dynamic dims, Constant nodes, and
//! import-time folding of everything computable from constants and static shapes (the
//! shape subgraphs exporters write), so attribute inputs become attributes. Every node maps
//! through one registry ([`convert::registry`]) onto the ops all formats share.

mod convert;
mod ctx;
pub mod pb;
mod shape;
mod tensor;

use convert::registry;

/// The ONNX op types Kayak reads (besides `Constant`), sorted.
pub fn supported_ops() -> Vec<&'static str> {
    let mut v: Vec<&str> = registry().into_keys().collect();
    v.push("Constant");
    v.sort_unstable();
    v
}

use crate::build::Builder;
use crate::paddle::Model;
use crate::{Error, ModelBytes, OpLoc, Result};
use ctx::{NodeCtx, Scope};
use kayak_ir::{Dim, Shape, Tensor, TypeInfo};
use pb::{attr_type, ModelProto, NodeProto, ValueInfoProto};
use prost::Message;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// The `ai.onnx` opsets Kayak reads.
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=22;

impl Scope for Builder {
    fn known(&self, name: &str) -> Option<Arc<Tensor>> {
        Builder::known(self, name)
    }
    fn type_of(&self, name: &str) -> Option<TypeInfo> {
        Builder::type_of(self, name)
    }
    fn reshape_target(&self, shape_name: &str, x: &str) -> Option<Vec<i64>> {
        let parts = shape::parts(self, *self.defs.get(shape_name)?)?;
        let dims = self.type_of(x)?.shape.0;
        shape::reshape_target(&parts, &dims)
    }
}

/// Reads an ONNX model into a [`Model`].
pub fn import(bytes: &ModelBytes) -> Result<Model> {
    import_with(bytes, &Binding::default())
}

/// The declared interface of an ONNX model that needs input values to import
/// ([`Error::NeedsInputValues`]): a [`Model`] whose graph holds only the declared inputs
/// (no nodes, no outputs; the op histogram and sizes are the file's), and the names of the
/// graph outputs in order.
pub fn interface(bytes: &ModelBytes) -> Result<(Model, Vec<String>)> {
    let mut outputs = Vec::new();
    let m = read(bytes, &Binding::default(), Some(&mut outputs))?;
    Ok((m, outputs))
}

/// Reads an ONNX model specialized on `binding`: the inputs it gives shapes for are
/// declared with those shapes, and those it gives values for are constants to every op
/// that reads them (they stay declared inputs, so the input list is the file's).
pub fn import_with(bytes: &ModelBytes, binding: &Binding) -> Result<Model> {
    read(bytes, binding, None)
}

/// `interface`: stop after the inputs, recording the output names there.
fn read(
    bytes: &ModelBytes,
    binding: &Binding,
    interface: Option<&mut Vec<String>>,
) -> Result<Model> {
    let file = bytes.model_name.clone();
    let mut m = ModelProto::decode(bytes.model.as_slice()).map_err(|source| Error::Decode {
        file: file.clone(),
        format: "ONNX model",
        source,
    })?;
    let prog = |reason: String| Error::Program {
        file: file.clone(),
        reason,
    };
    let opset = m
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| prog("the model imports no ai.onnx opset".into()))?;
    if !OPSETS.contains(&opset) {
        return Err(prog(format!(
            "ai.onnx opset {opset}; Kayak reads opsets {}–{}",
            OPSETS.start(),
            OPSETS.end()
        )));
    }
    let mut graph = m
        .graph
        .take()
        .ok_or_else(|| prog("the model has no graph".into()))?;
    let dir = Path::new(&file)
        .is_file()
        .then(|| Path::new(&file).parent().map(Path::to_path_buf))
        .flatten();
    let loc = |index: usize, op_type: &str| OpLoc {
        file: file.clone(),
        block: 0,
        index,
        op_type: op_type.to_string(),
    };

    let mut weights = HashMap::new();
    let (mut param_elements, mut param_bytes) = (0, 0);
    for (k, t) in graph.initializer.iter_mut().enumerate() {
        let v = tensor::read_owned(t, dir.as_deref()).map_err(|reason| Error::ParamsMismatch {
            file: file.clone(),
            var: if t.name.is_empty() {
                format!("initializer #{k}")
            } else {
                t.name.clone()
            },
            reason,
        })?;
        param_elements += v.len();
        param_bytes += v.byte_len();
        weights.insert(t.name.clone(), Arc::new(v));
    }
    if let Some(s) = graph.sparse_initializer.first() {
        let name = s.values.as_ref().map_or("", |v| v.name.as_str());
        return Err(prog(format!(
            "sparse initializer `{name}`: sparse tensors are not supported"
        )));
    }
    let param_count = weights.len();
    let mut b = Builder::new(weights, true);
    let mut inputs = HashSet::new();
    for (k, vi) in graph.input.iter().enumerate() {
        if b.known(&vi.name).is_some() {
            continue; // an initializer listed as an input (IR version < 4): a weight
        }
        let mut ty = value_type(vi)
            .map_err(|reason| prog(format!("graph input #{k} `{}`: {reason}", vi.name)))?;
        if let Some(dims) = binding.shapes.get(&vi.name) {
            if dims.len() != ty.shape.rank() {
                return Err(prog(format!(
                    "graph input #{k} `{}`: bound to shape {dims:?}, declared {}",
                    vi.name, ty.shape
                )));
            }
            ty.shape = Shape(dims.iter().map(|&d| Dim::Known(d)).collect());
        }
        b.input(&vi.name, ty, &loc(k, "graph input"))?;
        if let Some(v) = binding.values.get(&vi.name) {
            b.set_known(&vi.name, v.clone());
        }
        inputs.insert(vi.name.clone());
    }
    let mut op_histogram = BTreeMap::new();
    for n in &graph.node {
        *op_histogram.entry(node_type(n)).or_insert(0) += 1;
    }
    if let Some(outs) = interface {
        outs.extend(graph.output.iter().map(|o| o.name.clone()));
        return Ok(Model {
            graph: Arc::new(b.g),
            vars: HashMap::new(),
            op_histogram,
            param_count,
            param_elements,
            param_bytes,
            model_name: file.clone(),
            format: format_name(&m, opset),
        });
    }
    let producers: HashMap<&str, &NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();

    let mut used: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    for n in &graph.node {
        used.extend(n.input.iter().filter(|i| !i.is_empty()).cloned());
    }
    let reg = registry();
    let mut unknown = crate::error::Unknown::default();
    for (i, node) in graph.node.iter().enumerate() {
        let domain = node.domain.as_str();
        let op_type = node_type(node);
        let at = loc(i, &op_type);
        if !(domain.is_empty() || domain == "ai.onnx") {
            return Err(Error::Unsupported {
                what: format!("op domain `{domain}` (Kayak reads the ai.onnx domain)"),
                at,
            });
        }
        if let Some(a) = node
            .attribute
            .iter()
            .find(|a| a.r#type == attr_type::GRAPH || a.r#type == attr_type::GRAPHS)
        {
            return Err(Error::Unsupported {
                what: format!(
                    "control flow (`{}` with subgraph `{}`)",
                    node.op_type, a.name
                ),
                at,
            });
        }
        if node.op_type == "Constant" {
            let t = constant(node, dir.as_deref()).map_err(|reason| Error::BadAttribute {
                attr: "value".into(),
                reason,
                at: at.clone(),
            })?;
            let out = node.output.first().ok_or_else(|| Error::BadAttribute {
                attr: "output".into(),
                reason: "a Constant without an output".into(),
                at: at.clone(),
            })?;
            b.set_known(out, Arc::new(t));
            continue;
        }
        let Some(conv) = reg.get(node.op_type.as_str()) else {
            unknown.note(at.clone());
            continue;
        };
        if unknown.any() {
            continue; // after an unknown op only the types are checked
        }
        let converted = {
            let ctx = NodeCtx::new(node, at.clone(), opset, &b, &used);
            conv(&ctx).map_err(|e| traced(e, &producers, &inputs))?
        };
        for c in converted {
            b.add(c, &at)?;
        }
    }
    unknown.check()?;
    for (k, o) in graph.output.iter().enumerate() {
        b.output(&o.name, &loc(k, "graph output"))?;
    }
    let Builder { g, defs, .. } = b;
    g.validate().map_err(|source| prog(source.to_string()))?;
    Ok(Model {
        graph: Arc::new(g),
        vars: defs,
        op_histogram,
        param_count,
        param_elements,
        param_bytes,
        model_name: file.clone(),
        format: format_name(&m, opset),
    })
}

/// The values and shapes an import is specialized on (by graph input name).
#[derive(Debug, Clone, Default)]
pub struct Binding {
    /// Concrete shapes for graph inputs.
    pub shapes: HashMap<String, Vec<usize>>,
    /// Values of graph inputs, constants to the ops that read them.
    pub values: HashMap<String, Arc<Tensor>>,
}

/// A node's op type, with its domain when not `ai.onnx`.
fn node_type(node: &NodeProto) -> String {
    let domain = node.domain.as_str();
    if domain.is_empty() || domain == "ai.onnx" {
        node.op_type.clone()
    } else {
        format!("{domain}.{}", node.op_type)
    }
}

fn format_name(m: &ModelProto, opset: i64) -> String {
    let producer = if m.producer_name.is_empty() {
        String::new()
    } else {
        format!(", from {} {}", m.producer_name, m.producer_version)
            .trim_end()
            .to_string()
    };
    format!(
        "ONNX model (opset {opset}, IR version {}{producer})",
        m.ir_version
    )
}

/// A converter's [`Error::NeedsInputValues`] names the value it needed; this traces that
/// value back through the nodes that compute it to the graph inputs it comes from. A
/// `Shape` or `Size` node ends a path (it needs only its input's shape, which a
/// specialized import binds): such a path adds no input, but still makes specializing
/// worth it. A value computed from constants alone that the import could not fold is
/// not something specializing helps: an `Unsupported` error.
fn traced(e: Error, producers: &HashMap<&str, &NodeProto>, inputs: &HashSet<String>) -> Error {
    let Error::NeedsInputValues {
        inputs: names,
        what,
        at,
    } = e
    else {
        return e;
    };
    if names.is_empty() {
        // Static shapes are what it needs: a specialized import binds them.
        return Error::NeedsInputValues {
            inputs: names,
            what,
            at,
        };
    }
    let mut found: Vec<String> = Vec::new();
    let mut via_shape = false;
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = names.iter().map(String::as_str).collect();
    while let Some(n) = stack.pop() {
        if n.is_empty() || !seen.insert(n) {
            continue;
        }
        if inputs.contains(n) {
            found.push(n.to_string());
            continue;
        }
        if let Some(node) = producers.get(n) {
            if matches!(node.op_type.as_str(), "Shape" | "Size") {
                via_shape = true;
                continue;
            }
            stack.extend(node.input.iter().map(String::as_str));
        }
    }
    if found.is_empty() && !via_shape {
        return Error::Unsupported {
            what: format!("{what}, computed from constants at run time (not folded at import)"),
            at,
        };
    }
    found.sort();
    Error::NeedsInputValues {
        inputs: found,
        what,
        at,
    }
}

/// Reads a serialized `TensorProto` (the form of the ONNX test data sets' `input_0.pb`):
/// its name and value.
pub fn read_tensor_proto(bytes: &[u8]) -> std::result::Result<(String, Tensor), String> {
    let t = pb::TensorProto::decode(bytes).map_err(|e| e.to_string())?;
    let v = tensor::read(&t, None)?;
    Ok((t.name, v))
}

/// A graph input's declared type: element type and dims (`dim_param` symbols are shared
/// by name; a dim with neither value nor name gets a symbol of its own).
fn value_type(vi: &ValueInfoProto) -> std::result::Result<TypeInfo, String> {
    let t = vi.r#type.as_ref().ok_or("no type")?;
    if t.sequence_type.is_some() || t.map_type.is_some() || t.optional_type.is_some() {
        return Err("a sequence, map or optional value (Kayak reads tensors)".into());
    }
    let tt = t.tensor_type.as_ref().ok_or("not a tensor")?;
    let dtype = tensor::dtype(tt.elem_type)?;
    let dims = match &tt.shape {
        None => return Err("no shape (the rank must be known)".into()),
        Some(s) => s
            .dim
            .iter()
            .enumerate()
            .map(|(k, d)| match (d.dim_value, &d.dim_param) {
                (_, Some(p)) if !p.is_empty() => Dim::Sym(p.as_str().into()),
                (Some(v), _) if v >= 0 => Dim::Known(v as usize),
                _ => Dim::Sym(format!("{}.{k}", vi.name).into()),
            })
            .collect(),
    };
    Ok(TypeInfo {
        dtype,
        shape: Shape(dims),
    })
}

/// A Constant node's value.
fn constant(node: &NodeProto, dir: Option<&Path>) -> std::result::Result<Tensor, String> {
    let a = node.attribute.first().ok_or("a Constant without a value")?;
    match a.name.as_str() {
        "value" => tensor::read(a.t.as_ref().ok_or("`value` holds no tensor")?, dir),
        "value_float" => Ok(Tensor::from_f32s(&[], vec![a.f]).map_err(|e| e.to_string())?),
        "value_floats" => {
            Tensor::from_f32s(&[a.floats.len()], a.floats.clone()).map_err(|e| e.to_string())
        }
        "value_int" => Ok(Tensor::from_i64s(&[a.i])
            .reshape(&[])
            .map_err(|e| e.to_string())?),
        "value_ints" => Ok(Tensor::from_i64s(&a.ints)),
        other => Err(format!(
            "a Constant with `{other}` (Kayak reads numeric tensors)"
        )),
    }
}
