//! Bad input of every kind gives a typed error naming what and where — never a panic.

use kayak::{Config, Error, Predictor, Tensor};
use kayak_proto::Error as LoadError;
use kayak_tests::program::*;
use kayak_tests::repo_root;

fn load(model: Vec<u8>, params: Vec<u8>) -> Result<Predictor, Error> {
    Predictor::new(Config::new().model_buffers(model, params))
}

fn good() -> (Vec<u8>, Vec<u8>) {
    let (p, b) = add_relu();
    (encode(&p), params(&[&b]))
}

#[test]
fn the_tiny_model_runs_correctly() {
    let (m, p) = good();
    let mut pred = load(m, p).unwrap();
    let out = pred
        .run_with(&[Tensor::from_f32s(&[1, 4], vec![1.0, 1.0, 1.0, -1.0]).unwrap()])
        .unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![2.0, 0.0, 1.5, 0.0]);
}

#[test]
fn truncated_or_corrupt_program() {
    let m = std::fs::read(repo_root().join("assets/ppocr_cls/inference.pdmodel")).unwrap();
    let p = std::fs::read(repo_root().join("assets/ppocr_cls/inference.pdiparams")).unwrap();
    let err = load(m[..m.len() / 3].to_vec(), p.clone()).unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::Decode { .. })),
        "{err}"
    );
    // Not a protobuf message at all (a varint that never ends): not "corrupt", unknown.
    let err = load(vec![0xff; 64], p).unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::UnknownFormat { .. })),
        "{err}"
    );
}

#[test]
fn other_formats_are_named_by_their_content_not_called_corrupt() {
    let onnx = [0x08, 0x08, 0x12, 0x04, b't', b'e', b's', b't', 0x3a, 0x00];
    // An ONNX file is read as one (here: a ModelProto with an empty graph and no opset).
    let err = load(onnx.to_vec(), vec![]).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Load(LoadError::Program { .. })) && msg.contains("opset"),
        "{msg}"
    );
    assert!(!msg.contains("corrupt"), "{msg}");
    // A directory holding only another format's file: it is found and read as that format.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.onnx"), onnx).unwrap();
    let err = Predictor::new(Config::new().model_dir(dir.path())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("model.onnx") && msg.contains("opset"), "{msg}");
    // Files handed over by mistake say what they are and list the formats.
    let npy = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'}".to_vec();
    let err = load(npy, vec![]).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Load(LoadError::UnknownFormat { .. }))
            && msg.contains("NumPy")
            && msg.contains(".pdmodel")
            && msg.contains(".onnx"),
        "{msg}"
    );
    let err = load(br#"{"hello": "world"}"#.to_vec(), vec![]).unwrap_err();
    assert!(err.to_string().contains("JSON"), "{err}");
    let params = std::fs::read(repo_root().join("assets/ppocr_cls/inference.pdiparams")).unwrap();
    let err = load(params, vec![]).unwrap_err();
    assert!(err.to_string().contains(".pdiparams"), "{err}");
}

/// A small PIR program: `relu(x)` fetched, with `ops` spliced in before the fetch.
fn pir_doc(ops: &str) -> Vec<u8> {
    format!(
        r##"{{"base_code":{{"magic":"pir","trainable":true,"version":4}},"program":{{"regions":[{{"#":"region_0","blocks":[{{"#":"block_0","args":[],"ops":[
{{"#":"1.data","A":[{{"AT":{{"#":"0.a_str","D":"x"}},"N":"name"}},{{"AT":{{"#":"1.a_intarray","D":[-1,4]}},"N":"shape"}},{{"AT":{{"#":"1.a_dtype","D":"float32"}},"N":"dtype"}}],"I":[],"O":[{{"%":1,"TT":{{"#":"0.t_dtensor","D":[{{"#":"0.t_f32"}},[-1,4],"NCHW",[],0]}}}}]}},
{{"#":"1.relu","A":[],"I":[{{"%":1}}],"O":[{{"%":2,"TT":{{"#":"0.t_dtensor","D":[{{"#":"0.t_f32"}},[-1,4],"NCHW",[],0]}}}}]}},
{ops}
{{"#":"1.fetch","A":[{{"AT":{{"#":"0.a_str","D":"out"}},"N":"name"}},{{"AT":{{"#":"0.a_i32","D":0}},"N":"col"}}],"I":[{{"%":2}}],"O":[{{"%":3,"TT":{{"#":"0.t_dtensor","D":[{{"#":"0.t_f32"}},[-1,4],"NCHW",[],0]}}}}]}}
]}}]}}]}}}}"##
    )
    .into_bytes()
}

#[test]
fn pir_programs_import_and_their_errors_name_path_op_and_block() {
    // Well formed: it runs (relu of the input), its output named by its fetch.
    let mut p = load(pir_doc(""), vec![]).unwrap();
    assert_eq!(p.output_names(), ["out"]);
    let x = Tensor::from_f32s(&[2, 4], vec![-1.0, 2.0, -3.0, 4.0, 0.5, -0.5, 0.0, 1.0]).unwrap();
    let y = p.run_with(&[x]).unwrap();
    assert_eq!(
        y[0].as_f32().unwrap().iter().copied().collect::<Vec<_>>(),
        [0.0, 2.0, 0.0, 4.0, 0.5, 0.0, 0.0, 1.0]
    );
    // Not JSON past some point: line and column.
    let mut cut = pir_doc("");
    cut.truncate(cut.len() / 2);
    let msg = load(cut, vec![]).unwrap_err().to_string();
    assert!(
        msg.contains("not a valid PIR program") && msg.contains("line"),
        "{msg}"
    );
    // JSON of the wrong shape: the JSON path.
    let bad = pir_doc(r##"{"A":[],"I":[],"O":[]},"##);
    let msg = load(bad, vec![]).unwrap_err().to_string();
    assert!(
        msg.contains("$.program.regions[0].blocks[0].ops[2]") && msg.contains("`#`"),
        "{msg}"
    );
    let bad = pir_doc(
        r##"{"#":"1.scale","A":[{"N":"bias","AT":{"#":"0.a_f32","D":[1]}}],"I":[{"%":2}],"O":[]},"##,
    );
    let msg = load(bad, vec![]).unwrap_err().to_string();
    assert!(msg.contains("ops[2].A[0].AT.D"), "{msg}");
    // Control flow: typed, naming the op and where it is.
    let cf = pir_doc(r##"{"#":"1.while","A":[],"I":[{"%":2}],"O":[],"regions":[{"blocks":[]}]},"##);
    match load(cf, vec![]).unwrap_err() {
        Error::Load(LoadError::Unsupported { what, at }) => {
            assert!(what.contains("control flow"), "{what}");
            assert_eq!(
                (at.op_type.as_str(), at.index, at.block),
                ("pd_op.while", 2, 0)
            );
        }
        e => panic!("{e}"),
    }
    // An op Kayak does not know, by its PIR name.
    let unknown = pir_doc(r##"{"#":"1.frobnicate","A":[],"I":[{"%":2}],"O":[]},"##);
    match load(unknown, vec![]).unwrap_err() {
        Error::Load(LoadError::UnknownOps(all)) if all.len() == 1 => {
            let at = &all[0];
            assert_eq!((at.op_type.as_str(), at.index), ("pd_op.frobnicate", 2))
        }
        e => panic!("{e}"),
    }
    // A value nothing defines.
    let dangling = pir_doc(
        r##"{"#":"1.relu","A":[],"I":[{"%":77}],"O":[{"%":5,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[4],"NCHW",[],0]}}]},"##,
    );
    let msg = load(dangling, vec![]).unwrap_err().to_string();
    assert!(msg.contains("%77") && msg.contains("pd_op.relu"), "{msg}");
    // A parameter the params file does not hold.
    let param = pir_doc(
        r##"{"#":"p","A":[0,1,1,"w"],"O":{"%":9,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[4],"NCHW",[],0]}}},"##,
    );
    let msg = load(param, vec![]).unwrap_err().to_string();
    assert!(msg.contains("`w`") || msg.contains("params"), "{msg}");
}

#[test]
fn truncated_params_name_the_variable() {
    let m = std::fs::read(repo_root().join("assets/ppocr_cls/inference.pdmodel")).unwrap();
    let p = std::fs::read(repo_root().join("assets/ppocr_cls/inference.pdiparams")).unwrap();
    let err = load(m, p[..p.len() - 100].to_vec()).unwrap_err();
    match &err {
        Error::Load(LoadError::ParamsTruncated { var, .. }) => assert!(!var.is_empty()),
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn params_count_and_shape_mismatch() {
    let (prog, b) = add_relu();
    let extra = Tensor::from_f32s(&[1], vec![0.0]).unwrap();
    let err = load(encode(&prog), params(&[&b, &extra])).unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::ParamsTrailing { count: 1, .. })),
        "{err}"
    );
    let err = load(encode(&prog), vec![]).unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::ParamsTruncated { ref var, .. }) if var == "b"),
        "{err}"
    );
    let wrong = Tensor::from_f32s(&[5], vec![0.0; 5]).unwrap();
    let err = load(encode(&prog), params(&[&wrong])).unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::ParamsMismatch { ref var, .. }) if var == "b"),
        "{err}"
    );
    let ints = Tensor::from_i64s(&[1, 2, 3, 4]);
    let err = load(encode(&prog), params(&[&ints])).unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::ParamsMismatch { ref var, .. }) if var == "b"),
        "{err}"
    );
}

#[test]
fn every_unknown_op_type_is_listed_at_once() {
    // Two unknown types (one twice): both named, each once, at its first op, in order.
    let (mut prog, b) = add_relu();
    let relu = prog.blocks[0].ops[2].clone();
    prog.blocks[0].ops[1].r#type = "mystery_a".into();
    prog.blocks[0].ops[2].r#type = "mystery_b".into();
    let mut again = relu;
    again.r#type = "mystery_a".into();
    let n = prog.blocks[0].ops.len();
    prog.blocks[0].ops.insert(n - 1, again);
    let err = load(encode(&prog), params(&[&b])).unwrap_err();
    match &err {
        Error::Load(LoadError::UnknownOps(all)) => {
            let got: Vec<(&str, usize)> =
                all.iter().map(|l| (l.op_type.as_str(), l.index)).collect();
            assert_eq!(got, [("mystery_a", 1), ("mystery_b", 2)]);
        }
        e => panic!("unexpected {e}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with("2 unknown op types") && msg.contains("`mystery_b` (block 0, op #2)"),
        "{msg}"
    );
}

#[test]
fn unknown_op_names_type_block_index_and_file() {
    let (mut prog, b) = add_relu();
    prog.blocks[0].ops[2].r#type = "frobnicate".into();
    let err = load(encode(&prog), params(&[&b])).unwrap_err();
    match &err {
        Error::Load(LoadError::UnknownOps(all)) if all.len() == 1 => {
            let at = &all[0];
            assert_eq!(
                (at.op_type.as_str(), at.block, at.index),
                ("frobnicate", 0, 2)
            );
            assert_eq!(at.file, "<model buffer>");
        }
        e => panic!("unexpected {e}"),
    }
    assert!(
        err.to_string().contains("frobnicate") && err.to_string().contains("op #2"),
        "{err}"
    );
}

#[test]
fn bad_attributes() {
    // Wrong attribute type.
    let (mut prog, b) = add_relu();
    prog.blocks[0].ops[1].attrs = vec![attr_s("axis", "minus one")];
    let err = load(encode(&prog), params(&[&b])).unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::BadAttribute { ref attr, .. }) if attr == "axis"),
        "{err}"
    );
    // Absurd value: a pooling type that does not exist.
    let vars = vec![
        var("x", FP32, &[1, 1, 4, 4], false, 0),
        var("y", FP32, &[1, 1, 2, 2], false, 0),
    ];
    let pool = op(
        "pool2d",
        &[("X", &["x"])],
        &[("Out", &["y"])],
        vec![
            attr_s("pooling_type", "median"),
            attr_ints("ksize", &[2, 2]),
            attr_ints("strides", &[2, 2]),
        ],
    );
    let err = load(
        encode(&program(vars.clone(), vec![pool], &["x"], &["y"])),
        vec![],
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::BadAttribute { ref attr, .. }) if attr == "pooling_type"),
        "{err}"
    );
    // A window larger than the input: caught by shape inference, located at the op.
    let pool = op(
        "pool2d",
        &[("X", &["x"])],
        &[("Out", &["y"])],
        vec![
            attr_s("pooling_type", "max"),
            attr_ints("ksize", &[9, 9]),
            attr_ints("strides", &[1, 1]),
        ],
    );
    let err = load(
        encode(&program(vars.clone(), vec![pool], &["x"], &["y"])),
        vec![],
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::Ir { ref at, .. }) if at.op_type == "pool2d"),
        "{err}"
    );
    // Transpose with a non-permutation.
    let tr = op(
        "transpose2",
        &[("X", &["x"])],
        &[("Out", &["y"])],
        vec![attr_ints("axis", &[0, 1, 1, 2])],
    );
    let err = load(encode(&program(vars, vec![tr], &["x"], &["y"])), vec![]).unwrap_err();
    assert!(err.to_string().contains("not a permutation"), "{err}");
}

#[test]
fn undefined_variable() {
    let (mut prog, b) = add_relu();
    prog.blocks[0].ops[2].inputs[0].arguments = vec!["ghost".into()];
    let err = load(encode(&prog), params(&[&b])).unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::UndefinedVar { ref var, .. }) if var == "ghost"),
        "{err}"
    );
}

#[test]
fn control_flow_is_not_supported_yet() {
    let (mut prog, b) = add_relu();
    let w = op(
        "while",
        &[("X", &["x"]), ("Condition", &["x"])],
        &[("Out", &["s"])],
        vec![attr_block("sub_block", 1)],
    );
    prog.blocks[0].ops.insert(1, w);
    let mut sub = prog.blocks[0].clone();
    sub.idx = 1;
    sub.parent_idx = 0;
    sub.ops.clear();
    prog.blocks.push(sub);
    let err = load(encode(&prog), params(&[&b])).unwrap_err();
    match &err {
        Error::Load(LoadError::Unsupported { at, what }) => {
            assert_eq!(at.op_type, "while");
            assert!(what.contains("control flow"), "{what}");
        }
        e => panic!("unexpected {e}"),
    }
    let (mut prog, b) = add_relu();
    prog.blocks[0].ops[1].r#type = "conditional_block".into();
    let err = load(encode(&prog), params(&[&b])).unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::Unsupported { ref at, .. }) if at.op_type == "conditional_block"),
        "{err}"
    );
}

#[test]
fn lod_inputs_are_not_supported_yet() {
    let (mut prog, b) = add_relu();
    prog.blocks[0].vars[0] = var("x", FP32, &[-1, 4], false, 1);
    let err = load(encode(&prog), params(&[&b])).unwrap_err();
    match &err {
        Error::Load(LoadError::Unsupported { at, what }) => {
            assert_eq!(at.op_type, "feed");
            assert!(what.contains("LoD input `x`"), "{what}");
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn wrong_inputs_at_run_time() {
    let (m, p) = good();
    let mut pred = load(m, p).unwrap();
    let err = pred.input("z").err().unwrap();
    assert!(
        matches!(err, Error::UnknownInput { ref name, .. } if name == "z"),
        "{err}"
    );
    let err = pred.run().unwrap_err();
    assert!(
        matches!(err, Error::MissingInput { ref name } if name == "x"),
        "{err}"
    );
    let err = pred.input("x").unwrap().reshape(&[2, 5]).unwrap_err();
    assert!(
        matches!(err, Error::InputShape { ref got, .. } if got == &[2, 5]),
        "{err}"
    );
    let err = pred.input("x").unwrap().reshape(&[4]).unwrap_err();
    assert!(matches!(err, Error::InputShape { .. }), "{err}");
    let err = pred
        .run_with(&[Tensor::from_i64s(&[1, 2, 3, 4]).reshape(&[1, 4]).unwrap()])
        .unwrap_err();
    assert!(matches!(err, Error::InputDType { .. }), "{err}");
    let mut h = pred.input("x").unwrap();
    h.reshape(&[2, 4]).unwrap();
    let err = h.copy_from_cpu(&[1i64; 8]).unwrap_err();
    assert!(matches!(err, Error::InputDType { .. }), "{err}");
    let err = h.copy_from_cpu(&[1f32; 7]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BufferSize {
                expected: 8,
                got: 7,
                ..
            }
        ),
        "{err}"
    );
    let err = pred.output("y").unwrap().tensor().unwrap_err();
    assert!(matches!(err, Error::NotRun { .. }), "{err}");
    assert!(matches!(
        pred.output("nope").err(),
        Some(Error::UnknownVariable { .. })
    ));
}

#[test]
fn handle_path_runs_and_copies_out() {
    let (m, p) = good();
    let mut pred = load(m, p).unwrap();
    {
        let mut h = pred.input("x").unwrap();
        h.reshape(&[2, 4]).unwrap();
        h.copy_from_cpu(&[0.0f32, 1.0, 2.0, 3.0, -5.0, -5.0, -5.0, -5.0])
            .unwrap();
    }
    pred.run().unwrap();
    let o = pred.output("y").unwrap();
    assert_eq!(o.shape().unwrap(), vec![2, 4]);
    let mut buf = [0.0f32; 8];
    o.copy_to_cpu(&mut buf).unwrap();
    assert_eq!(buf, [1.0, 0.0, 2.5, 3.0, 0.0, 0.0, 0.0, 0.0]);
    let mut small = [0.0f32; 3];
    assert!(matches!(
        o.copy_to_cpu(&mut small),
        Err(Error::BufferSize { .. })
    ));
    let mut ints = [0i64; 8];
    assert!(o.copy_to_cpu(&mut ints).is_err());
}

#[test]
fn missing_model_files() {
    let err = Predictor::new(Config::new().model_dir("/no/such/dir")).unwrap_err();
    assert!(
        matches!(err, Error::Load(LoadError::ModelNotFound { .. })),
        "{err}"
    );
    let err = Predictor::new(Config::new()).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_root().join("assets/ppocr_cls/inference.pdmodel"),
        dir.path().join("m.pdmodel"),
    )
    .unwrap();
    let err = Predictor::new(Config::new().model_file(dir.path().join("m.pdmodel"))).unwrap_err();
    assert!(err.to_string().contains("m.pdiparams"), "{err}");
}

#[test]
fn zero_sized_kernel_is_an_error() {
    let vars = vec![
        var("x", FP32, &[1, 3, 8, 8], false, 0),
        var("w", FP32, &[4, 3, 0, 3], true, 0),
        var("y", FP32, &[1, 4, 8, 8], false, 0),
    ];
    let conv = op(
        "conv2d",
        &[("Input", &["x"]), ("Filter", &["w"])],
        &[("Output", &["y"])],
        vec![
            attr_ints("strides", &[1, 1]),
            attr_ints("paddings", &[1, 1]),
        ],
    );
    let w = Tensor::zeros(kayak::DType::F32, &[4, 3, 0, 3]);
    let err = load(
        encode(&program(vars, vec![conv], &["x"], &["y"])),
        params(&[&w]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("zero-sized kernel"), "{err}");
}
