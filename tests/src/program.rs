//! Builders for small Paddle programs, for tests that need a model with a given defect.

use kayak::Tensor;
use kayak_proto::framework::{op_desc, var_type, BlockDesc, OpDesc, ProgramDesc, VarDesc, VarType};
use prost::Message;

/// Paddle's VarType numbers used here.
pub const FP32: i32 = 5;
/// int64.
pub const INT64: i32 = 3;

/// A dense-tensor variable.
pub fn var(name: &str, dtype: i32, dims: &[i64], persistable: bool, lod_level: i32) -> VarDesc {
    VarDesc {
        name: name.into(),
        r#type: VarType {
            r#type: 7,
            dense_tensor: Some(var_type::DenseTensorDesc {
                tensor: var_type::TensorDesc {
                    data_type: dtype,
                    dims: dims.to_vec(),
                },
                lod_level: Some(lod_level),
            }),
            ..Default::default()
        },
        persistable: Some(persistable),
        ..Default::default()
    }
}

/// An op with (parameter, arguments) inputs and outputs and attributes.
pub fn op(
    t: &str,
    inputs: &[(&str, &[&str])],
    outputs: &[(&str, &[&str])],
    attrs: Vec<op_desc::Attr>,
) -> OpDesc {
    let v = |l: &[(&str, &[&str])]| {
        l.iter()
            .map(|(p, a)| op_desc::Var {
                parameter: p.to_string(),
                arguments: a.iter().map(|s| s.to_string()).collect(),
            })
            .collect()
    };
    OpDesc {
        r#type: t.into(),
        inputs: v(inputs),
        outputs: v(outputs),
        attrs,
        is_target: None,
    }
}

/// An INT attribute.
pub fn attr_i(name: &str, i: i32) -> op_desc::Attr {
    op_desc::Attr {
        name: name.into(),
        r#type: 0,
        i: Some(i),
        ..Default::default()
    }
}

/// A STRING attribute.
pub fn attr_s(name: &str, s: &str) -> op_desc::Attr {
    op_desc::Attr {
        name: name.into(),
        r#type: 2,
        s: Some(s.into()),
        ..Default::default()
    }
}

/// An INTS attribute.
pub fn attr_ints(name: &str, v: &[i32]) -> op_desc::Attr {
    op_desc::Attr {
        name: name.into(),
        r#type: 3,
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// A BLOCK attribute.
pub fn attr_block(name: &str, b: i32) -> op_desc::Attr {
    op_desc::Attr {
        name: name.into(),
        r#type: 8,
        block_idx: Some(b),
        ..Default::default()
    }
}

/// The feed and fetch holder variables and ops around a body.
pub fn program(
    mut vars: Vec<VarDesc>,
    body: Vec<OpDesc>,
    feeds: &[&str],
    fetches: &[&str],
) -> ProgramDesc {
    let holder = |name: &str, t: i32| VarDesc {
        name: name.into(),
        r#type: VarType {
            r#type: t,
            ..Default::default()
        },
        persistable: Some(true),
        ..Default::default()
    };
    vars.push(holder("feed", 9));
    vars.push(holder("fetch", 10));
    let mut ops = Vec::new();
    for (i, f) in feeds.iter().enumerate() {
        ops.push(op(
            "feed",
            &[("X", &["feed"])],
            &[("Out", &[f])],
            vec![attr_i("col", i as i32)],
        ));
    }
    ops.extend(body);
    for (i, f) in fetches.iter().enumerate() {
        ops.push(op(
            "fetch",
            &[("X", &[f])],
            &[("Out", &["fetch"])],
            vec![attr_i("col", i as i32)],
        ));
    }
    ProgramDesc {
        blocks: vec![BlockDesc {
            idx: 0,
            parent_idx: -1,
            vars,
            ops,
            forward_block_idx: None,
        }],
        version: None,
        op_version_map: None,
    }
}

/// Encodes a program.
pub fn encode(p: &ProgramDesc) -> Vec<u8> {
    p.encode_to_vec()
}

/// A params file holding these tensors (in the given order).
pub fn params(ts: &[&Tensor]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in ts {
        kayak_proto::params::write_record(t, &mut out);
    }
    out
}

/// `out = relu(x + b)` with `x: f32[-1, 4]` and a parameter `b: f32[4]`.
pub fn add_relu() -> (ProgramDesc, Tensor) {
    let vars = vec![
        var("x", FP32, &[-1, 4], false, 0),
        var("b", FP32, &[4], true, 0),
        var("s", FP32, &[-1, 4], false, 0),
        var("y", FP32, &[-1, 4], false, 0),
    ];
    let body = vec![
        op(
            "elementwise_add",
            &[("X", &["x"]), ("Y", &["b"])],
            &[("Out", &["s"])],
            vec![attr_i("axis", -1)],
        ),
        op("relu", &[("X", &["s"])], &[("Out", &["y"])], vec![]),
    ];
    let b = Tensor::from_f32s(&[4], vec![1.0, -2.0, 0.5, 0.0]).expect("4 values");
    (program(vars, body, &["x"], &["y"]), b)
}

/// A tiny ONNX image classifier (opset 13; weights from a fixed formula):
/// `x [N, 3, 8, 8]` → Conv 3×3 (4 channels, pad 1, bias) → Relu → GlobalAveragePool →
/// Flatten → Gemm (4 → 2) → Softmax → `prob [N, 2]`.
pub fn tiny_onnx_classifier() -> Vec<u8> {
    use kayak_proto::onnx::pb::*;
    let f32_init = |name: &str, dims: &[i64]| {
        let n: i64 = dims.iter().product();
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: data_type::FLOAT,
            float_data: (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0).collect(),
            ..Default::default()
        }
    };
    let ints = |name: &str, v: &[i64]| AttributeProto {
        name: name.into(),
        r#type: attr_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    };
    let node = |op: &str, ins: &[&str], out: &str, attribute: Vec<AttributeProto>| NodeProto {
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        op_type: op.into(),
        attribute,
        ..Default::default()
    };
    let vi = |name: &str, dims: Vec<Dimension>| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
            ..Default::default()
        }),
    };
    let dv = |v: i64| Dimension {
        dim_value: Some(v),
        dim_param: None,
    };
    let n = Dimension {
        dim_value: None,
        dim_param: Some("N".into()),
    };
    let graph = GraphProto {
        name: "tiny".into(),
        node: vec![
            node(
                "Conv",
                &["x", "w", "b"],
                "c",
                vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])],
            ),
            node("Relu", &["c"], "r", vec![]),
            node("GlobalAveragePool", &["r"], "p", vec![]),
            node("Flatten", &["p"], "f", vec![]),
            node("Gemm", &["f", "w2", "b2"], "g", vec![]),
            node("Softmax", &["g"], "prob", vec![]),
        ],
        initializer: vec![
            f32_init("w", &[4, 3, 3, 3]),
            f32_init("b", &[4]),
            f32_init("w2", &[4, 2]),
            f32_init("b2", &[2]),
        ],
        input: vec![vi("x", vec![n.clone(), dv(3), dv(8), dv(8)])],
        output: vec![vi("prob", vec![n, dv(2)])],
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "kayak-tests".into(),
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}
