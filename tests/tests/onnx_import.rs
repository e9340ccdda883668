//! The ONNX importer on small hand-built models (no files needed): values checked against
//! numbers worked out by hand, and hostile files getting typed errors that say what and
//! where.

use kayak::{Config, Error, Predictor, Tensor};
use kayak_proto::onnx::pb::*;
use kayak_proto::Error as LoadError;
use prost::Message;

fn vi(name: &str, elem: i32, dims: &[Dimension]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: elem,
                shape: Some(TensorShapeProto { dim: dims.to_vec() }),
            }),
            ..Default::default()
        }),
    }
}

fn d(v: i64) -> Dimension {
    Dimension {
        dim_value: Some(v),
        dim_param: None,
    }
}

fn sym(p: &str) -> Dimension {
    Dimension {
        dim_value: None,
        dim_param: Some(p.into()),
    }
}

fn node(op: &str, ins: &[&str], outs: &[&str]) -> NodeProto {
    NodeProto {
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        op_type: op.into(),
        ..Default::default()
    }
}

fn i64_tensor(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: data_type::INT64,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn model(graph: GraphProto, opset: i64) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

fn load(bytes: Vec<u8>) -> Result<Predictor, Error> {
    Predictor::new(Config::new().model_buffers(bytes, vec![]))
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.as_f32().unwrap().iter().copied().collect()
}

/// relu(reshape(x, [3, 2])) + b: a view of a graph input, an initializer, shared
/// dim_param symbols.
fn small_graph() -> GraphProto {
    GraphProto {
        node: vec![
            node("Reshape", &["x", "shape"], &["r"]),
            node("Relu", &["r"], &["y"]),
            node("Add", &["y", "b"], &["out"]),
        ],
        initializer: vec![
            i64_tensor("shape", &[3, 2]),
            TensorProto {
                name: "b".into(),
                dims: vec![2],
                data_type: data_type::FLOAT,
                float_data: vec![10.0, 20.0],
                ..Default::default()
            },
        ],
        input: vec![vi("x", data_type::FLOAT, &[d(2), d(3)])],
        output: vec![vi("out", data_type::FLOAT, &[d(3), d(2)])],
        ..Default::default()
    }
}

#[test]
fn a_small_onnx_graph_runs_with_its_initializers() {
    let mut p = load(model(small_graph(), 13)).unwrap();
    assert!(p.model().format.contains("ONNX"), "{}", p.model().format);
    assert_eq!(p.input_names(), ["x"]);
    let x = Tensor::from_f32s(&[2, 3], vec![-1.0, 2.0, -3.0, 4.0, 5.0, -6.0]).unwrap();
    let y = p.run_with(&[x]).unwrap();
    assert_eq!(y[0].shape(), [3, 2]);
    assert_eq!(f32s(&y[0]), [10.0, 22.0, 10.0, 24.0, 15.0, 20.0]);
}

#[test]
fn dim_params_are_shared_symbols_and_shape_subgraphs_fold() {
    // out = x + y, with x: [N, 4], y: [N, 4]; then reshape(out, concat(shape(x)[0:1], [-1]))
    let g = GraphProto {
        node: vec![
            node("Add", &["x", "y"], &["s"]),
            node("Shape", &["x"], &["sh"]),
            node("Slice", &["sh", "zero", "one"], &["n"]),
            NodeProto {
                attribute: vec![AttributeProto {
                    name: "axis".into(),
                    r#type: attr_type::INT,
                    i: 0,
                    ..Default::default()
                }],
                ..node("Concat", &["n", "minus1"], &["target"])
            },
            node("Reshape", &["s", "target"], &["out"]),
        ],
        initializer: vec![
            i64_tensor("zero", &[0]),
            i64_tensor("one", &[1]),
            i64_tensor("minus1", &[-1]),
        ],
        input: vec![
            vi("x", data_type::FLOAT, &[sym("N"), d(4)]),
            vi("y", data_type::FLOAT, &[sym("N"), d(4)]),
        ],
        output: vec![vi("out", data_type::FLOAT, &[sym("N"), d(4)])],
        ..Default::default()
    };
    let mut p = load(model(g, 13)).unwrap();
    // The reshape target became static ([0, -1]): no shape op is left to run.
    let kinds: Vec<&str> = p.graph().nodes.iter().map(|n| n.op.name()).collect();
    assert!(
        !kinds.contains(&"shape64") && !kinds.contains(&"concat"),
        "{kinds:?}"
    );
    for n in [1usize, 3] {
        let x = Tensor::from_f32s(&[n, 4], (0..4 * n).map(|v| v as f32).collect()).unwrap();
        let y = Tensor::from_f32s(&[n, 4], vec![1.0; 4 * n]).unwrap();
        let out = p.run_with(&[x, y]).unwrap();
        assert_eq!(out[0].shape(), [n, 4]);
        assert_eq!(f32s(&out[0])[4 * n - 1], 4.0 * n as f32);
    }
}

#[test]
fn external_data_is_read_beside_the_model_and_never_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let weights: Vec<u8> = [0.0f32, 7.0, 10.0, 20.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(dir.path().join("weights.bin"), &weights).unwrap();
    let with_b = |location: &str, offset: &str| {
        let mut g = small_graph();
        g.initializer[1] = TensorProto {
            name: "b".into(),
            dims: vec![2],
            data_type: data_type::FLOAT,
            data_location: 1,
            external_data: vec![
                StringStringEntryProto {
                    key: "location".into(),
                    value: location.into(),
                },
                StringStringEntryProto {
                    key: "offset".into(),
                    value: offset.into(),
                },
                StringStringEntryProto {
                    key: "length".into(),
                    value: "8".into(),
                },
            ],
            ..Default::default()
        };
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, model(g, 13)).unwrap();
        Predictor::new(Config::new().model_file(&path))
    };
    let mut p = with_b("weights.bin", "8").unwrap();
    let x = Tensor::from_f32s(&[2, 3], vec![0.0; 6]).unwrap();
    assert_eq!(f32s(&p.run_with(&[x]).unwrap()[0])[..2], [10.0, 20.0]);
    for (loc, off, want) in [
        ("../weights.bin", "0", "inside the model's directory"),
        ("/etc/passwd", "0", "inside the model's directory"),
        ("weights.bin", "12", "run past its end"),
        ("missing.bin", "0", "missing.bin"),
    ] {
        let err = with_b(loc, off).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, Error::Load(LoadError::ParamsMismatch { ref var, .. }) if var == "b")
                && msg.contains(want),
            "{loc}: {msg}"
        );
    }
}

#[test]
fn hostile_onnx_files_get_typed_errors() {
    // Truncated: the format it was read as, not "a Paddle program".
    let mut cut = model(small_graph(), 13);
    cut.truncate(cut.len() - 7);
    let msg = load(cut).unwrap_err().to_string();
    assert!(msg.contains("not a valid ONNX model"), "{msg}");
    // An opset Kayak does not read.
    let msg = load(model(small_graph(), 5)).unwrap_err().to_string();
    assert!(msg.contains("opset 5") && msg.contains("7"), "{msg}");
    // A node of another domain: named with its domain and index.
    let mut g = small_graph();
    g.node[1].domain = "com.microsoft".into();
    match load(model(g, 13)).unwrap_err() {
        Error::Load(LoadError::Unsupported { what, at }) => {
            assert!(what.contains("com.microsoft"), "{what}");
            assert_eq!(at.index, 1);
        }
        e => panic!("{e}"),
    }
    // An unknown op, by type.
    let mut g = small_graph();
    g.node[1].op_type = "Frobnicate".into();
    match load(model(g, 13)).unwrap_err() {
        Error::Load(LoadError::UnknownOps(all)) if all.len() == 1 => {
            let at = &all[0];
            assert_eq!(at.op_type, "Frobnicate")
        }
        e => panic!("{e}"),
    }
    // A value nothing defines.
    let mut g = small_graph();
    g.node[1].input[0] = "nowhere".into();
    let msg = load(model(g, 13)).unwrap_err().to_string();
    assert!(msg.contains("nowhere") && msg.contains("Relu"), "{msg}");
    // Control flow: the subgraph named.
    let mut g = small_graph();
    g.node[1].op_type = "If".into();
    g.node[1].attribute.push(AttributeProto {
        name: "then_branch".into(),
        r#type: attr_type::GRAPH,
        g: Some(GraphProto::default()),
        ..Default::default()
    });
    let msg = load(model(g, 13)).unwrap_err().to_string();
    assert!(
        msg.contains("control flow") && msg.contains("then_branch"),
        "{msg}"
    );
    // An initializer whose data does not fill its dims.
    let mut g = small_graph();
    g.initializer[1].float_data.pop();
    let msg = load(model(g, 13)).unwrap_err().to_string();
    assert!(
        msg.contains("`b`") && msg.contains("1 values for 2 elements"),
        "{msg}"
    );
    // A string input.
    let mut g = small_graph();
    g.input[0] = vi("x", data_type::STRING, &[d(2), d(3)]);
    let msg = load(model(g, 13)).unwrap_err().to_string();
    assert!(msg.contains("STRING") && msg.contains("`x`"), "{msg}");
}

#[test]
fn the_supported_op_list_is_the_registry() {
    let ops = kayak_proto::onnx::supported_ops();
    assert_eq!(
        ops.len(),
        139,
        "README's formats table gives the count: {ops:?}"
    );
    for op in [
        "Conv",
        "Constant",
        "Resize",
        "LayerNormalization",
        "ReduceMean",
        "Gelu",
    ] {
        assert!(ops.contains(&op), "{op}");
    }
}

/// `ReduceSum(x, axes)` then `Add(·, Unsqueeze(k, axes2))` with `axes` and `axes2` graph
/// inputs: attributes from run-time values, which the predictor specializes on.
fn axes_from_inputs() -> GraphProto {
    let mut sum = node("ReduceSum", &["x", "axes"], &["s"]);
    sum.attribute.push(AttributeProto {
        name: "keepdims".into(),
        r#type: attr_type::INT,
        i: 0,
        ..Default::default()
    });
    GraphProto {
        node: vec![sum],
        input: vec![
            vi("x", data_type::FLOAT, &[sym("n"), d(3)]),
            vi("axes", data_type::INT64, &[d(1)]),
        ],
        output: vec![vi("s", data_type::FLOAT, &[sym("m")])],
        ..Default::default()
    }
}

#[test]
fn attributes_fed_from_graph_inputs_specialize_on_their_values() {
    let mut p = load(model(axes_from_inputs(), 18)).unwrap();
    assert_eq!(p.input_names(), ["x", "axes"]);
    assert_eq!(p.output_names(), ["s"]);
    let x = Tensor::from_f32s(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let axes = |a: i64| Tensor::from_i64s(&[a]);
    // Rows summed, then columns, then rows again (the first plan, from the cache).
    let y = p.run_with(&[x.clone(), axes(1)]).unwrap();
    assert_eq!((y[0].shape(), f32s(&y[0])), (&[2][..], vec![6.0, 15.0]));
    let y = p.run_with(&[x.clone(), axes(0)]).unwrap();
    assert_eq!((y[0].shape(), f32s(&y[0])), (&[3][..], vec![5.0, 7.0, 9.0]));
    let y = p.run_with(&[x.clone(), axes(-1)]).unwrap();
    assert_eq!(f32s(&y[0]), [6.0, 15.0]);
    // Another shape of x; and a clone shares the plans, runs on its own state.
    let x3 = Tensor::from_f32s(&[3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
    let mut q = p.clone();
    let y = q.run_with(&[x3, axes(1)]).unwrap();
    assert_eq!(f32s(&y[0]), [6.0, 15.0, 24.0]);
    // The handles API: outputs read after run.
    p.input("x").unwrap().set(x.clone()).unwrap();
    p.input("axes").unwrap().set(axes(0)).unwrap();
    p.run().unwrap();
    let mut out = [0f32; 3];
    p.output("s").unwrap().copy_to_cpu(&mut out).unwrap();
    assert_eq!(out, [5.0, 7.0, 9.0]);
    // A bad value is the op's typed error, naming the op; a plan by shapes alone is refused.
    let msg = p.run_with(&[x.clone(), axes(2)]).unwrap_err().to_string();
    assert!(msg.contains("ReduceSum") && msg.contains('2'), "{msg}");
    let msg = p.plan_for(&[vec![2, 3], vec![1]]).unwrap_err().to_string();
    assert!(msg.contains("values") && msg.contains("axes"), "{msg}");
}

#[test]
fn a_value_input_too_large_to_specialize_on_is_refused_by_name() {
    // Reshape(x, shape) with allowzero=1 and `shape` an input of declared length n.
    let mut r = node("Reshape", &["x", "shape"], &["y"]);
    r.attribute.push(AttributeProto {
        name: "allowzero".into(),
        r#type: attr_type::INT,
        i: 1,
        ..Default::default()
    });
    let g = GraphProto {
        node: vec![r],
        input: vec![
            vi("x", data_type::FLOAT, &[sym("a")]),
            vi("shape", data_type::INT64, &[sym("n")]),
        ],
        output: vec![vi("y", data_type::FLOAT, &[])],
        ..Default::default()
    };
    let mut p = load(model(g, 14)).unwrap();
    let x = Tensor::from_f32s(&[6], vec![0.0; 6]).unwrap();
    let y = p
        .run_with(&[x.clone(), Tensor::from_i64s(&[2, 3])])
        .unwrap();
    assert_eq!(y[0].shape(), [2, 3]);
    let mut big = vec![1i64; 5000];
    big[0] = 6;
    let msg = p
        .run_with(&[x, Tensor::from_i64s(&big)])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`shape`") && msg.contains("5000"), "{msg}");
}
