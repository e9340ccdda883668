//! The `kayak` command end to end.

use kayak_tests::*;
use std::path::Path;
use std::process::{Command, Output};

fn kayak(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kayak"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run kayak")
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "kayak failed: {}\n{}",
        out,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Fails with exactly one line on stderr, starting `kayak: error:`, and returns it.
fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr should be one line: {err:?}");
    assert!(lines[0].starts_with("kayak: error: "), "{err}");
    lines[0].to_string()
}

#[test]
fn readme_demo_classifies_the_bundled_text_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for (input, reference, label) in [
        (
            "assets/text_line.npy",
            "tests/data/cls/text_line_output_0.npy",
            0,
        ),
        (
            "assets/text_line_rot180.npy",
            "tests/data/cls/text_line_rot180_output_0.npy",
            1,
        ),
    ] {
        let out = ok(&kayak(&[
            "run",
            "assets/ppocr_cls",
            "--input",
            &format!("x={input}"),
            "--output-dir",
            d,
        ]));
        assert!(out.contains("softmax_0.tmp_0: float32[1, 2]"), "{out}");
        let got = npy(&Path::new(d).join("output_0.npy")).unwrap();
        let want = npy(&repo_root().join(reference)).unwrap();
        let (r, _) = worst_ratio(&got, &want, ATOL, RTOL).unwrap();
        assert!(r <= 1.0, "{input}: {r}");
        let v = got.to_f64_vec();
        assert_eq!(if v[0] > v[1] { 0 } else { 1 }, label, "{input}: {v:?}");
    }
}

#[test]
fn run_writes_outputs_and_fetched_variables_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = ok(&kayak(&[
        "run",
        "assets/ppocr_cls",
        "--input",
        "x=assets/text_line.npy",
        "--fetch",
        "linear_1.tmp_1",
        "--fetch",
        "pool2d_10.tmp_0",
        "--output-dir",
        d,
    ]));
    assert!(out.contains("fetch    linear_1.tmp_1"), "{out}");
    let logits = npy(&Path::new(d).join("linear_1.tmp_1.npy")).unwrap();
    assert_eq!(logits.shape(), &[1, 2]);
    let pooled = npy(&Path::new(d).join("pool2d_10.tmp_0.npy")).unwrap();
    assert_eq!(pooled.shape(), &[1, 200, 1, 1]);
    // softmax(logits) is the output.
    let l = logits.to_f64_vec();
    let p0 = 1.0 / (1.0 + (l[1] - l[0]).exp());
    let probs = npy(&Path::new(d).join("output_0.npy"))
        .unwrap()
        .to_f64_vec();
    assert!((probs[0] - p0).abs() < 1e-6);
    assert!(
        !Path::new(d).join("output_1.npy").exists(),
        "fetched variables are not numbered outputs"
    );
}

#[test]
fn random_inputs_need_shapes_for_dynamic_dims() {
    let line = fails(&kayak(&["run", "assets/ppocr_cls"]));
    assert!(line.contains("--shape x="), "{line}");
    let out = ok(&kayak(&[
        "run",
        "assets/ppocr_cls",
        "--shape",
        "x=2,3,48,96",
    ]));
    assert!(
        out.contains("random float32[2, 3, 48, 96]") && out.contains("float32[2, 2]"),
        "{out}"
    );
}

#[test]
fn bad_invocations_fail_with_one_clear_line() {
    let line = fails(&kayak(&["run", "no/such/model"]));
    assert!(line.contains("no/such/model"), "{line}");
    let line = fails(&kayak(&[
        "run",
        "assets/ppocr_cls",
        "--input",
        "y=assets/text_line.npy",
    ]));
    assert!(line.contains("`y`"), "{line}");
    let line = fails(&kayak(&[
        "run",
        "assets/ppocr_cls",
        "--shape",
        "x=1,4,48,192",
    ]));
    assert!(
        line.contains("input `x`") && line.contains("[1, 4, 48, 192]"),
        "{line}"
    );
    let line = fails(&kayak(&[
        "run",
        "assets/ppocr_cls",
        "--input",
        "x=assets/text_line.png",
    ]));
    assert!(line.contains("text_line.png"), "{line}");
    let line = fails(&kayak(&[
        "run",
        "assets/ppocr_cls",
        "--input",
        "x=assets/text_line.npy",
        "--fetch",
        "no_such_var",
    ]));
    assert!(line.contains("no_such_var"), "{line}");
    let dir = tempfile::tempdir().unwrap();
    let m = std::fs::read(repo_root().join("assets/ppocr_cls/inference.pdmodel")).unwrap();
    std::fs::write(dir.path().join("inference.pdmodel"), &m[..m.len() / 2]).unwrap();
    std::fs::copy(
        repo_root().join("assets/ppocr_cls/inference.pdiparams"),
        dir.path().join("inference.pdiparams"),
    )
    .unwrap();
    let line = fails(&kayak(&[
        "run",
        dir.path().to_str().unwrap(),
        "--shape",
        "x=1,3,48,192",
    ]));
    assert!(line.contains("truncated or corrupt"), "{line}");
}

#[test]
fn inspect_shows_io_histogram_and_params() {
    let out = ok(&kayak(&["inspect", "assets/ppocr_cls"]));
    assert!(out.contains("Paddle ProgramDesc"), "{out}");
    assert!(
        out.contains("x                        float32  [x.0, 3, x.2, x.3]"),
        "{out}"
    );
    // Every fetch target, with its dtype and (symbolic) shape.
    assert!(
        out.contains("outputs:\n  softmax_0.tmp_0          float32  [?, 2]\nops:"),
        "{out}"
    );
    assert!(out.contains("conv2d                       42"), "{out}");
    assert!(out.contains("params:  213 tensors"), "{out}");
}

#[test]
fn recognizer_reads_the_lines_through_the_cli() {
    let Some(model) = require(
        "recognizer_reads_the_lines_through_the_cli",
        "ppocr_rec/inference.pdmodel",
    ) else {
        return;
    };
    let (cases, chars) = committed_rec_cases().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for case in &cases {
        let input = &case.input;
        ok(&kayak(&[
            "run",
            model.to_str().unwrap(),
            "--input",
            &format!("x={}", input.display()),
            "--output-dir",
            dir.path().to_str().unwrap(),
        ]));
        let probs = npy(&dir.path().join("output_0.npy")).unwrap();
        assert_eq!(ctc_decode(&probs, &chars).unwrap(), case.text);
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn optimize_reports_json_explains_and_draws() {
    let dir = tempfile::tempdir().unwrap();
    let dot = dir.path().join("g.dot");
    let out = ok(&kayak(&[
        "optimize",
        "assets/ppocr_cls",
        "--shape",
        "x=1,3,48,192",
        "--explain",
        "--dot",
        dot.to_str().unwrap(),
        "--json",
    ]));
    let last = out.lines().last().unwrap();
    let j: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"));
    for k in [
        "ops_before",
        "ops_after",
        "ops_after_by_type",
        "rules_applied",
        "egraph_nodes",
        "egraph_classes",
        "iterations",
        "stop_reason",
        "optimize_ms",
        "cost_before",
        "cost_after",
    ] {
        assert!(j.get(k).is_some(), "missing {k} in {last}");
    }
    assert_eq!(j["ops_before"], 182);
    assert!(j["ops_after"].as_u64().unwrap() < 78, "{last}");
    assert!(j["rules_applied"]["se_block"].as_u64().unwrap() >= 9);
    let sum: u64 = j["ops_after_by_type"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(sum, j["ops_after"].as_u64().unwrap());
    assert!(
        out.contains("se_block <- se_block(pool2d, fused_conv <- conv_relu("),
        "{out}"
    );
    let g = std::fs::read_to_string(&dot).unwrap();
    assert!(
        g.starts_with("digraph")
            && g.contains("cluster_before")
            && g.contains("cluster_after")
            && g.contains("fillcolor=orange")
    );
    let line = fails(&kayak(&[
        "optimize",
        "assets/ppocr_cls",
        "--rules",
        "no/such.rules",
    ]));
    assert!(line.contains("no/such.rules"), "{line}");
}

#[test]
fn rules_list_prints_each_rule_with_its_documentation() {
    let out = ok(&kayak(&["rules", "list"]));
    let heads: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ')).collect();
    assert!(heads.len() >= 30, "{} rules", heads.len());
    for h in &heads {
        let (name, summary) = h
            .split_once(": ")
            .unwrap_or_else(|| panic!("`{h}` is not `name: summary`"));
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}"
        );
        assert!(!summary.is_empty(), "{name}");
    }
    assert!(
        out.contains("conv_bn_fold: Folds inference batch_norm"),
        "{out}"
    );
    assert!(
        out.contains("    Why faster:")
            && out.contains("    Preconditions:")
            && out.contains("    Example:")
    );
    // A user file's rules are listed after the built-ins.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mine.rules");
    std::fs::write(
        &f,
        "# relu is idempotent.\nrelu_idempotent: (relu (relu ?x)) => (relu ?x)\n",
    )
    .unwrap();
    let out = ok(&kayak(&["rules", "list", f.to_str().unwrap()]));
    assert!(
        out.lines().last().unwrap().contains("mine.rules:2"),
        "{out}"
    );
    assert!(out.contains("relu_idempotent: relu is idempotent."));
}

#[test]
fn rules_verify_passes_on_the_builtin_rules() {
    let out = ok(&kayak(&["rules", "verify", "--cases", "8", "--seed", "3"]));
    let last = out.lines().last().unwrap();
    assert!(last.contains("0 wrong, 0 without instances"), "{out}");
    let oks = out.lines().filter(|l| l.starts_with("ok   ")).count();
    assert!(oks >= 30, "{out}");
    assert!(
        last.starts_with(&format!("{oks} of {oks} rules verified")),
        "{out}"
    );
}

#[test]
fn rules_verify_fails_with_a_shrunk_counterexample() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("wrong.rules");
    std::fs::write(
        &f,
        "# hard_sigmoid is not a clamp to [0, 1].\nhard_sigmoid_as_clip: (hard_sigmoid ?h ?x) => (clip ?c ?x)\n    let ?c = zero_bias(?x)\n",
    )
    .unwrap();
    // A let that builds a constant where an attribute leaf belongs: the right side does
    // not type-check, and verification says so.
    let o = kayak(&[
        "rules",
        "verify",
        f.to_str().unwrap(),
        "--rule",
        "hard_sigmoid_as_clip",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("FAIL hard_sigmoid_as_clip"), "{out}");

    std::fs::write(&f, "relu6_as_relu: (relu6 ?h ?x) => (relu ?x)\n").unwrap();
    let o = kayak(&[
        "rules",
        "verify",
        f.to_str().unwrap(),
        "--rule",
        "relu6_as_relu",
        "--cases",
        "20",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("counterexample shrunk to size 1"), "{out}");
    assert!(out.contains("instance: (relu6 "), "{out}");
    assert!(out.contains("worst at"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 rules did not verify"), "{err}");
}

#[test]
fn bench_reports_timings_memory_and_op_counts() {
    // The bundled classifier: 2 shapes alternating, the JSON line last on stdout.
    let out = ok(&kayak(&[
        "bench",
        "assets/ppocr_cls",
        "--input",
        "x=assets/text_line.npy",
        "--alternate-shape",
        "x=1,3,48,96",
        "--iters",
        "20",
        "--warmup",
        "2",
        "--json",
    ]));
    let last = out.lines().last().unwrap();
    let j: serde_json::Value = serde_json::from_str(last).unwrap();
    for key in [
        "model",
        "threads",
        "load_ms",
        "optimize_ms",
        "plan_ms",
        "first_run_ms",
        "latency_ms",
        "arena_bytes",
        "workspace_bytes",
        "arena_lower_bound_bytes",
        "intermediate_bytes_naive",
        "weights_bytes",
        "peak_rss_bytes",
        "ops_before",
        "ops_after",
    ] {
        assert!(j.get(key).is_some(), "missing {key}: {last}");
    }
    let lat = &j["latency_ms"];
    let (min, med, p90, max) = (
        lat["min"].as_f64().unwrap(),
        lat["median"].as_f64().unwrap(),
        lat["p90"].as_f64().unwrap(),
        lat["max"].as_f64().unwrap(),
    );
    assert!(0.0 < min && min <= med && med <= p90 && p90 <= max, "{lat}");
    let arena = j["arena_bytes"].as_u64().unwrap();
    let lb = j["arena_lower_bound_bytes"].as_u64().unwrap();
    let naive = j["intermediate_bytes_naive"].as_u64().unwrap();
    assert!(
        lb > 0 && arena as f64 <= 1.05 * lb as f64 && naive > arena,
        "{last}"
    );
    assert!(j["ops_after"].as_u64().unwrap() < j["ops_before"].as_u64().unwrap());
    assert!(j["weights_bytes"].as_u64().unwrap() > 400_000);
    assert!(j["peak_rss_bytes"].as_u64().unwrap() > 1_000_000);
    // Without --json: the human report, and --profile's tables.
    let out = ok(&kayak(&[
        "bench",
        "assets/ppocr_cls",
        "--input",
        "x=assets/text_line.npy",
        "--iters",
        "3",
        "--profile",
    ]));
    assert!(out.contains("latency over 3 runs"), "{out}");
    assert!(
        out.contains("time per op type") && out.contains("fused_conv [conv/"),
        "{out}"
    );
    assert!(out.contains("slowest nodes"), "{out}");
    // Bad input: one clear line.
    let e = fails(&kayak(&["bench", "assets/ppocr_cls", "--shape", "y=1,2"]));
    assert!(e.contains("no input named `y`"), "{e}");
}

#[test]
fn optimize_costs_with_the_gpu_table_on_request() {
    let cpu = ok(&kayak(&["optimize", "assets/ppocr_cls", "--json"]));
    let gpu = ok(&kayak(&[
        "optimize",
        "assets/ppocr_cls",
        "--cost",
        "gpu",
        "--json",
    ]));
    assert!(cpu.contains("(estimated, CPU table)"), "{cpu}");
    assert!(gpu.contains("(estimated, GPU table)"), "{gpu}");
    // The input goes up once and the class probabilities come down once.
    assert!(
        gpu.contains("ops on the device, 1 uploads, 1 downloads"),
        "{gpu}"
    );
    assert!(!cpu.contains("placement:"), "{cpu}");
    let cost = |out: &str| -> f64 {
        let j: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        j["cost_after"].as_f64().unwrap()
    };
    // One x86 core against an H100-class GPU: the estimates are tables apart.
    assert!(
        cost(&gpu) * 5.0 < cost(&cpu),
        "{} vs {}",
        cost(&gpu),
        cost(&cpu)
    );
    // A usage error, from the argument parser.
    let o = kayak(&["optimize", "assets/ppocr_cls", "--cost", "tpu"]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("unknown cost model `tpu`: expected cpu or gpu"),
        "{e}"
    );
}

#[test]
fn run_and_bench_on_the_gpu_emulator() {
    let args = ["assets/ppocr_cls", "--input", "x=assets/text_line.npy"];
    let cpu = ok(&kayak(&[&["run"][..], &args[..]].concat()));
    let emu = ok(&kayak(
        &[&["run"][..], &args[..], &["--device", "emulator"][..]].concat(),
    ));
    let line = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("output 0"))
            .unwrap()
            .to_string()
    };
    assert_eq!(line(&cpu), line(&emu));
    let b = ok(&kayak(&[
        "bench",
        "assets/ppocr_cls",
        "--shape",
        "x=1,3,48,192",
        "--device",
        "emulator",
        "--iters",
        "2",
        "--warmup",
        "0",
        "--json",
    ]));
    let j: serde_json::Value = serde_json::from_str(b.lines().last().unwrap()).unwrap();
    assert!(j["device_nodes"].as_u64().unwrap() > 40, "{b}");
    assert_eq!(j["uploads"], 1, "{b}");
}

#[test]
fn onnx_models_run_through_the_whole_cli() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.onnx");
    std::fs::write(&model, kayak_tests::program::tiny_onnx_classifier()).unwrap();
    let m = model.to_str().unwrap();
    // inspect (by directory: the ONNX file is found there), with the format and symbols.
    let out = ok(&kayak(&["inspect", dir.path().to_str().unwrap()]));
    assert!(out.contains("format:  ONNX model (opset 13"), "{out}");
    assert!(out.contains("x") && out.contains("[N, 3, 8, 8]"), "{out}");
    // run: the probabilities of each row sum to one.
    let outdir = dir.path().join("out");
    ok(&kayak(&[
        "run",
        m,
        "--shape",
        "x=2,3,8,8",
        "--output-dir",
        outdir.to_str().unwrap(),
    ]));
    let p = npy(&outdir.join("output_0.npy")).unwrap();
    assert_eq!(p.shape(), [2, 2]);
    let v: Vec<f32> = p.as_f32().unwrap().iter().copied().collect();
    for row in v.chunks(2) {
        assert!(
            (row[0] + row[1] - 1.0).abs() < 1e-5 && row[0] > 0.0,
            "{v:?}"
        );
    }
    // optimize --explain: the conv, bias and relu become one fused conv.
    let out = ok(&kayak(&[
        "optimize",
        m,
        "--shape",
        "x=1,3,8,8",
        "--explain",
        "--json",
    ]));
    let j: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(
        j["ops_after"].as_u64().unwrap() < j["ops_before"].as_u64().unwrap(),
        "{out}"
    );
    assert!(out.contains("fused_conv"), "{out}");
    // bench.
    let out = ok(&kayak(&[
        "bench",
        m,
        "--shape",
        "x=1,3,8,8",
        "--iters",
        "5",
        "--warmup",
        "1",
        "--json",
    ]));
    let j: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(
        j["model"].as_str().unwrap().ends_with("model.onnx"),
        "{out}"
    );
}
