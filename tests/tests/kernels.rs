//! Every native kernel against the reference op (`Op::eval`), on random cases drawn as
//! rule instances are (`verify::random_op`) plus hand-made random cases for the fused ops
//! the sampler does not draw. Each case runs as a one-node plan at 1 and 3 threads, with
//! the data input fed at run time and the rest as weights, so the plan compiles it to a
//! native kernel (asserted) — the executor's real path, arena and all.
//!
//! The test re-runs itself under every instruction-set path this CPU has
//! (`KAYAK_ISA=generic`, `avx2`), so the portable and the AVX2 kernels are checked too.

use kayak::exec::{Plan, PlanOptions, RunState};
use kayak::ir::ops::*;
use kayak::ir::{DType, Graph, Op, Tensor, TypeInfo};
use kayak_rewrite::verify::random_op;
use kayak_tests::rand_t;
use std::sync::Arc;

/// Runs `op` as a one-node plan (input 0 fed, the rest weights, or all fed) and compares
/// with the reference. Returns the kernel name, or an error message.
fn check(
    op: &Op,
    inputs: &[Tensor],
    all_fed: bool,
    threads: usize,
) -> Result<&'static str, String> {
    let mut g = Graph::new();
    let mut ids = Vec::new();
    let mut fed = Vec::new();
    for (k, t) in inputs.iter().enumerate() {
        if k == 0 || all_fed {
            ids.push(
                g.add_input(&format!("in{k}"), TypeInfo::known(t.dtype(), t.shape()))
                    .unwrap(),
            );
            fed.push(t.clone());
        } else {
            ids.push(g.add_const(&format!("w{k}"), Arc::new(t.clone())).unwrap());
        }
    }
    let n_out = op.num_outputs();
    let names: Vec<String> = (0..n_out).map(|i| format!("out{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let outs = g
        .add_node(op.clone(), ids, &names, "case")
        .map_err(|e| e.to_string())?;
    g.outputs = outs.clone();
    let shapes: Vec<Vec<usize>> = fed.iter().map(|t| t.shape().to_vec()).collect();
    let plan = Plan::new(
        std::sync::Arc::new(g),
        &shapes,
        &outs,
        PlanOptions {
            threads,
            ..PlanOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    plan.check_memory()?;
    let kernel = plan.steps().next().map_or("none", |s| s.kernel);
    let mut state = RunState::new(threads);
    plan.run(&fed, &mut state).map_err(|e| e.to_string())?;
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let want = op.eval(&refs).map_err(|e| e.to_string())?;
    for (k, (got, want)) in state.outputs().iter().zip(&want).enumerate() {
        if got.shape() != want.shape() || got.dtype() != want.dtype() {
            return Err(format!(
                "output {k}: {}{:?} vs {}{:?}",
                got.dtype(),
                got.shape(),
                want.dtype(),
                want.shape()
            ));
        }
        let (a, b) = (got.to_f64_vec(), want.to_f64_vec());
        let scale = b.iter().fold(1f64, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            if (x - y).abs() > 1e-5 * scale + 1e-4 * y.abs() || x.is_nan() != y.is_nan() {
                return Err(format!("output {k}[{i}]: {x} vs {y} ({kernel})"));
            }
        }
    }
    Ok(kernel)
}

/// Hand-made random cases of the ops `random_op` does not draw.
fn extra_cases(seed: u64) -> Vec<(Op, Vec<Tensor>, bool)> {
    let r = |k: u64| 2 + ((seed * 31 + k * 17) % 5) as usize;
    let (n, c, h, w) = (1 + seed as usize % 2, r(1) * 2, r(2), r(3) + 1);
    let c1 = r(4);
    let act = [
        UnaryOp::Relu,
        UnaryOp::HardSigmoid {
            slope: 0.2,
            offset: 0.5,
        },
        UnaryOp::Sigmoid,
    ][seed as usize % 3];
    let mut v = vec![
        (
            Op::SeBlock(SeBlock {
                act1: UnaryOp::Relu,
                act2: act,
            }),
            vec![
                rand_t(&[n, c, h, w], seed),
                rand_t(&[c1, c, 1, 1], seed + 1),
                rand_t(&[c1], seed + 2),
                rand_t(&[c, c1, 1, 1], seed + 3),
                rand_t(&[c], seed + 4),
            ],
            false,
        ),
        (
            Op::SkipLayerNorm(SkipLayerNorm {
                ln: LayerNorm {
                    begin_norm_axis: 2,
                    epsilon: 1e-5,
                    has_scale: true,
                    has_bias: true,
                },
            }),
            vec![
                rand_t(&[n, h, w * 4], seed),
                rand_t(&[n, h, w * 4], seed + 1),
                rand_t(&[w * 4], seed + 2),
                rand_t(&[w * 4], seed + 3),
            ],
            true,
        ),
        (
            Op::FusedBinary(FusedBinary {
                op: BinaryOp::Mul,
                axis: 1,
                act,
            }),
            vec![rand_t(&[n, c, h, w], seed), rand_t(&[c], seed + 1)],
            false,
        ),
        (
            Op::Unary(UnaryOp::Tanh),
            vec![rand_t(&[n, c, h], seed)],
            false,
        ),
        (
            Op::Concat(Concat { axis: 1 }),
            vec![
                rand_t(&[n, c, h], seed),
                rand_t(&[n, c1, h], seed + 1),
                rand_t(&[n, 1, h], seed + 2),
            ],
            true,
        ),
        (
            Op::Slice(Slice {
                axes: vec![1, 2],
                starts: vec![1, -(h as i64)],
                ends: vec![c as i64, i64::MAX],
                decrease_axis: vec![],
                starts_input: ListInput::Attr,
                ends_input: ListInput::Attr,
            }),
            vec![rand_t(&[n, c, h, w], seed)],
            false,
        ),
        (
            Op::Compare(Compare {
                op: CmpOp::Gt,
                axis: -1,
            }),
            vec![rand_t(&[n, c, h], seed), rand_t(&[h], seed + 1)],
            true,
        ),
        (
            Op::Cast(Cast { to: DType::I64 }),
            vec![rand_t(&[n, c], seed)],
            false,
        ),
    ];
    // 3×3 stride-1 convs with enough channels for the Winograd path, odd sizes, every pad.
    let (ic, oc, pad) = (
        16 + 8 * (seed as usize % 4),
        8 + 4 * (seed as usize % 3),
        seed as usize % 3,
    );
    let (hh, ww) = (4 + r(7) * 2 + 1, 5 + r(8) * 3);
    let (oh, ow) = (hh + 2 * pad - 2, ww + 2 * pad - 2);
    v.push((
        Op::FusedConv(FusedConv {
            conv: Conv {
                strides: [1, 1],
                padding: Padding::Explicit([pad; 4]),
                dilations: [1, 1],
                groups: 1,
                layout: Layout::Nchw,
                has_bias: true,
            },
            residual: true,
            act: Some(UnaryOp::HardSwish {
                threshold: 6.0,
                scale: 6.0,
                offset: 3.0,
            }),
            post: None,
        }),
        vec![
            rand_t(&[n, ic, hh, ww], seed),
            rand_t(&[oc, ic, 3, 3], seed + 1),
            rand_t(&[oc], seed + 2),
            rand_t(&[n, oc, oh, ow], seed + 3),
        ],
        false,
    ));
    // A network's first conv (3 channels, 3×3, stride 2) on rows of 17 to 19 outputs: the
    // direct kernel (AVX-512), whose channel blocks of 16, 8, 4, 2 and 1 apply bias, a
    // piecewise-linear activation and the post affine in registers; with a residual or a
    // sigmoid the epilogue takes its pass over memory instead.
    let stem_oc = 16 + [7, 0, 3][seed as usize % 3];
    let stem_act = [
        Some(UnaryOp::HardSwish {
            threshold: 6.0,
            scale: 6.0,
            offset: 3.0,
        }),
        Some(UnaryOp::Relu),
        Some(UnaryOp::LeakyRelu { alpha: 0.1 }),
        Some(UnaryOp::HardSigmoid {
            slope: 0.2,
            offset: 0.5,
        }),
        Some(UnaryOp::Relu6 { threshold: 6.0 }),
        Some(UnaryOp::Sigmoid),
        None,
    ][seed as usize % 7];
    let stem_hw = 34 + seed as usize % 5;
    let stem_out = (stem_hw + 2 - 3) / 2 + 1;
    let stem_res = seed % 4 == 3;
    let mut stem_in = vec![
        rand_t(&[n, 3, stem_hw, stem_hw], seed),
        rand_t(&[stem_oc, 3, 3, 3], seed + 1),
        rand_t(&[stem_oc], seed + 2),
    ];
    if stem_res {
        stem_in.push(rand_t(&[n, stem_oc, stem_out, stem_out], seed + 3));
    }
    v.push((
        Op::FusedConv(FusedConv {
            conv: Conv {
                strides: [2, 2],
                padding: Padding::Explicit([1; 4]),
                dilations: [1, 1],
                groups: 1,
                layout: Layout::Nchw,
                has_bias: true,
            },
            residual: stem_res,
            act: stem_act,
            post: (seed % 2 == 1).then_some((0.5, -0.25)),
        }),
        stem_in,
        false,
    ));
    // The direct kernel on two images two output rows tall: a task's rows run from one
    // image into the next, whose first row reads input rows with the same indices as
    // the last row of the image before (split rows are kept per image and row).
    v.push((
        Op::FusedConv(FusedConv {
            conv: Conv {
                strides: [2, 2],
                padding: Padding::Explicit([1; 4]),
                dilations: [1, 1],
                groups: 1,
                layout: Layout::Nchw,
                has_bias: true,
            },
            residual: false,
            act: Some(UnaryOp::Relu),
            post: None,
        }),
        vec![
            rand_t(&[2, 3, 3, 34], seed + 5),
            rand_t(&[16, 3, 3, 3], seed + 6),
            rand_t(&[16], seed + 7),
        ],
        false,
    ));
    // An SE block whose squeeze is wider than its channels (scratch holds c + c1).
    v.push((
        Op::SeBlock(SeBlock {
            act1: UnaryOp::Relu,
            act2: UnaryOp::Sigmoid,
        }),
        vec![
            rand_t(&[n, 3, h, w], seed),
            rand_t(&[7, 3, 1, 1], seed + 1),
            rand_t(&[7], seed + 2),
            rand_t(&[3, 7, 1, 1], seed + 3),
            rand_t(&[3], seed + 4),
        ],
        false,
    ));
    // Batch norm (NCHW), fed or in place, and embeddings with a negative padding id.
    v.push((
        Op::BatchNorm(BatchNorm {
            epsilon: 1e-3,
            layout: Layout::Nchw,
        }),
        vec![
            rand_t(&[n, c, h, w], seed),
            rand_t(&[c], seed + 1),
            rand_t(&[c], seed + 2),
            rand_t(&[c], seed + 3),
            Tensor::from_f32s(&[c], (0..c).map(|i| 0.5 + i as f32 * 0.1).collect()).unwrap(),
        ],
        false,
    ));
    let ids32 = Tensor::I32(kayak::ir::ndarray_from(
        &[n, 5],
        (0..n * 5).map(|i| (i * 5 % 9) as i32).collect(),
    ));
    v.push((
        Op::Embedding(Embedding {
            padding_idx: Some(-1),
        }),
        vec![ids32, rand_t(&[9, 6], seed)],
        false,
    ));
    let heads = 1 + seed as usize % 3;
    let d = 4 + seed as usize % 5;
    let (s, t) = (r(5), r(6));
    v.push((
        Op::Attention(Attention {
            heads,
            head_dim: d,
            scale: 0.3,
            has_mask: true,
            packed: false,
        }),
        vec![
            rand_t(&[n, s, heads * d], seed),
            rand_t(&[n, t, heads * d], seed + 1),
            rand_t(&[n, t, heads * d], seed + 2),
            rand_t(&[n, 1, 1, t], seed + 3),
        ],
        true,
    ));
    v.push((
        Op::Attention(Attention {
            heads,
            head_dim: d,
            scale: 0.5,
            has_mask: false,
            packed: true,
        }),
        vec![rand_t(&[n, s, 3 * heads * d], seed)],
        false,
    ));
    v.push((
        Op::Interp(Interp {
            mode: InterpMode::Nearest,
            out_h: -1,
            out_w: -1,
            scale: vec![2.0, 2.0],
            align_corners: false,
            align_mode: 1,
            layout: Layout::Nchw,
            out_size_input: ListInput::Attr,
            scale_input: false,
            onnx: None,
        }),
        vec![rand_t(&[n, c, h, w], seed)],
        false,
    ));
    v.push((
        Op::Pool2d(Pool {
            padding: Padding::Explicit([1, 1, 1, 1]),
            ceil_mode: seed.is_multiple_of(3),
            exclusive: seed % 2 == 1,
            ..Pool::window(
                if seed.is_multiple_of(2) {
                    PoolKind::Max
                } else {
                    PoolKind::Avg
                },
                [3, 3],
                [2, 2],
            )
        }),
        vec![rand_t(&[n, c, h + 3, w + 2], seed)],
        false,
    ));
    let ids = Tensor::I64(kayak::ir::ndarray_from(
        &[n, s],
        (0..n * s).map(|i| (i * 7 % 11) as i64).collect(),
    ));
    let types = Tensor::I64(kayak::ir::ndarray_from(
        &[n, s],
        (0..n * s).map(|i| (i % 2) as i64).collect(),
    ));
    // Position ids broadcast over the batch (as BERT/ERNIE exports have them), and a
    // negative padding id (counted from the end of its table).
    let pos = Tensor::I64(kayak::ir::ndarray_from(
        &[1, s],
        (0..s).map(|i| i as i64).collect(),
    ));
    v.push((
        Op::EmbeddingLayerNorm(EmbeddingLayerNorm {
            padding_idx: vec![Some(0), None, Some(-2)],
            ln: LayerNorm {
                begin_norm_axis: 2,
                epsilon: 1e-5,
                has_scale: true,
                has_bias: true,
            },
        }),
        vec![
            ids,
            types,
            pos,
            rand_t(&[11, 8], seed),
            rand_t(&[2, 8], seed + 1),
            rand_t(&[s, 8], seed + 4),
            rand_t(&[8], seed + 2),
            rand_t(&[8], seed + 3),
        ],
        true,
    ));
    // Integer running sums: position ids as ERNIE 3.0 builds them, and a reversed,
    // exclusive scan of i32s.
    v.push((
        Op::Cumsum(Cumsum {
            axis: -1,
            flatten: false,
            exclusive: false,
            reverse: false,
        }),
        vec![Tensor::full(DType::I64, &[2, s], 1.0)],
        true,
    ));
    v.push((
        Op::Cumsum(Cumsum {
            axis: 0,
            flatten: false,
            exclusive: true,
            reverse: true,
        }),
        vec![Tensor::from_i64s(
            &(0..3 * s as i64)
                .map(|i| (i * 7 + seed as i64) % 11 - 5)
                .collect::<Vec<_>>(),
        )
        .reshape(&[s, 3])
        .unwrap()
        .cast(DType::I32)],
        true,
    ));
    v
}

fn run_all() {
    let mut failures = Vec::new();
    let mut kernels = std::collections::BTreeMap::<String, usize>::new();
    let kinds = [
        ("conv2d", 2),
        ("conv2d", 3),
        ("fused_conv", 3),
        ("fused_conv", 4),
        ("conv2d_transpose", 3),
        ("matmul", 2),
        ("fused_matmul", 3),
        ("pool2d", 1),
        ("layer_norm", 3),
        ("softmax", 1),
        ("add", 2),
        ("sub", 2),
        ("mul_elementwise", 2),
        ("div", 2),
        ("max", 2),
        ("min", 2),
        ("pow", 2),
        ("gelu", 1),
        ("hard_swish", 1),
        ("relu6", 1),
        ("swish", 1),
        ("scale", 1),
        ("clip", 1),
        ("transpose", 1),
        ("attention", 4),
        ("split", 1),
        ("cumsum", 1),
    ];
    for (kind, arity) in kinds {
        let mut native = 0;
        for seed in 0..40u64 {
            let Some((op, inputs)) = random_op(kind, arity, seed, 1 + seed as usize % 4) else {
                continue;
            };
            for threads in [1, 3] {
                match check(&op, &inputs, false, threads) {
                    Ok(k) => {
                        if k != "fallback" {
                            native += 1;
                        }
                        *kernels.entry(format!("{kind} -> {k}")).or_default() += 1;
                    }
                    Err(e) => failures.push(format!(
                        "{kind} seed {seed} threads {threads}: {e}\n  op {op:?}"
                    )),
                }
            }
        }
        if native < 20 {
            failures.push(format!(
                "{kind}/{arity}: only {native} cases ran a native kernel"
            ));
        }
    }
    for seed in 0..12u64 {
        for (op, inputs, all_fed) in extra_cases(seed) {
            for threads in [1, 3] {
                match check(&op, &inputs, all_fed, threads) {
                    Ok("fallback") => failures.push(format!("{}: no native kernel", op.name())),
                    Ok(k) => *kernels.entry(format!("{} -> {k}", op.name())).or_default() += 1,
                    Err(e) => failures.push(format!(
                        "{} seed {seed} threads {threads}: {e}\n  op {op:?}",
                        op.name()
                    )),
                }
            }
        }
    }
    println!("isa {:?}", kayak_kernels_isa());
    for (k, n) in &kernels {
        println!("  {k}: {n}");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn kayak_kernels_isa() -> String {
    std::env::var("KAYAK_ISA").unwrap_or_else(|_| "best".into())
}

#[test]
fn native_kernels_match_the_reference_ops() {
    run_all();
}

#[test]
fn every_isa_path_matches_the_reference_ops() {
    if std::env::var("KAYAK_ISA").is_ok() {
        return; // the child run: `native_kernels_match_the_reference_ops` does the work
    }
    let me = std::env::current_exe().unwrap();
    for isa in ["generic", "avx2"] {
        let out = std::process::Command::new(&me)
            .args([
                "--exact",
                "native_kernels_match_the_reference_ops",
                "--nocapture",
            ])
            .env("KAYAK_ISA", isa)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "KAYAK_ISA={isa}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A depthwise conv whose output only an SE block reads runs as one step on AVX-512
/// (`conv/depthwise+se`: the conv's blocked kernel sums each channel as it writes it, the
/// SE block takes those means), and matches the two reference ops chained, at 1, 2 and 3
/// threads: partial channel blocks, planes cut into row chunks (one block, several
/// chunks), two images, stride 2, and an activation that is not 0 at 0 (lanes past the
/// channels must not leak into the means). Where the conv's output is also kept, the
/// steps stay apart.
#[test]
fn depthwise_conv_and_se_block_merge_and_match_the_reference() {
    // The merge needs the blocked depthwise kernel: AVX-512, not lowered by `KAYAK_ISA`.
    let avx512 = std::is_x86_feature_detected!("avx512f") && std::env::var("KAYAK_ISA").is_err();
    for (case, &(n, c, hw, k, s, keep_conv)) in [
        (1usize, 24usize, 14usize, 5usize, 1usize, false),
        (2, 16, 20, 3, 1, false),
        (1, 40, 15, 3, 2, false),
        (1, 72, 9, 5, 1, true),
    ]
    .iter()
    .enumerate()
    {
        let seed = 100 + case as u64;
        let mut g = Graph::new();
        let x = g
            .add_input("x", TypeInfo::known(DType::F32, &[n, c, hw, hw]))
            .unwrap();
        let mut konst = |name: &str, t: Tensor| g.add_const(name, Arc::new(t)).unwrap();
        let (w, b) = (
            konst("w", rand_t(&[c, 1, k, k], seed + 1)),
            konst("b", rand_t(&[c], seed + 2)),
        );
        let se_w = se_weights(&mut g, c, 4 + case, seed + 3);
        let conv = Op::FusedConv(FusedConv {
            conv: Conv {
                strides: [s, s],
                padding: Padding::Explicit([k / 2; 4]),
                dilations: [1, 1],
                groups: c,
                layout: Layout::Nchw,
                has_bias: true,
            },
            residual: false,
            act: Some(UnaryOp::HardSigmoid {
                slope: 0.2,
                offset: 0.5,
            }),
            post: None,
        });
        let se = Op::SeBlock(SeBlock {
            act1: UnaryOp::Relu,
            act2: UnaryOp::Sigmoid,
        });
        let y = g
            .add_node(conv.clone(), vec![x, w, b], &["y"], "dw")
            .unwrap();
        let mut se_in = vec![y[0]];
        se_in.extend(&se_w);
        let z = g.add_node(se.clone(), se_in, &["z"], "se").unwrap();
        let keep: Vec<_> = if keep_conv {
            vec![z[0], y[0]]
        } else {
            vec![z[0]]
        };
        g.outputs = keep.clone();
        // The reference: the two ops chained.
        let xt = rand_t(&[n, c, hw, hw], seed);
        let get = |v: usize| match &g.values[v].def {
            kayak::ir::ValueDef::Const(t) => Tensor::clone(t),
            _ => unreachable!(),
        };
        let yt = conv.eval(&[&xt, &get(w), &get(b)]).unwrap().remove(0);
        let se_t: Vec<Tensor> = se_w.iter().map(|&v| get(v)).collect();
        let mut se_args = vec![&yt];
        se_args.extend(se_t.iter());
        let want = se.eval(&se_args).unwrap().remove(0);
        for threads in [1, 2, 3] {
            let names = plan_run_compare(&g, &keep, &xt, &want, threads, case);
            assert_eq!(
                names == ["conv/depthwise+se"],
                avx512 && !keep_conv,
                "case {case}, {threads} threads: steps {names:?}"
            );
        }
    }
}

/// A pointwise conv whose output only a depthwise conv reads (alone, or merged with its
/// SE block) runs as one step (`conv/expand+depthwise[+se]`), and matches the reference
/// ops chained: at 1 thread the blocked form (AVX-512: the product written 16 channels
/// per pixel, a partial last block of 8, 12 or 4 channels), at 2 and 3 threads the
/// chunked one (one chunk of channels per thread; without an SE block also off
/// AVX-512), with partial last chunks (40
/// channels in 16, 16, 8 at 3 threads, 44 in 24, 20 at 2), stride 2, an activation
/// that is not 0 at 0 on both convs. Where the expanded tensor is also kept, or there
/// are two images, the steps stay apart.
#[test]
fn pointwise_and_depthwise_convs_merge_and_match_the_reference() {
    // The merge needs the blocked depthwise kernel: AVX-512, not lowered by `KAYAK_ISA`.
    let avx512 = std::is_x86_feature_detected!("avx512f") && std::env::var("KAYAK_ISA").is_err();
    // (images, in channels, expanded channels, plane side, kernel, stride, SE, keep)
    for (case, &(n, ci, c, hw, k, s, se, keep_mid)) in [
        (
            1usize, 8usize, 40usize, 40usize, 3usize, 1usize, false, false,
        ),
        (1, 12, 44, 36, 5, 2, true, false),
        (1, 16, 20, 9, 3, 1, true, false),
        (1, 6, 24, 12, 3, 1, false, true),
        (2, 6, 24, 12, 3, 1, false, false),
    ]
    .iter()
    .enumerate()
    {
        let seed = 200 + 10 * case as u64;
        let mut g = Graph::new();
        let x = g
            .add_input("x", TypeInfo::known(DType::F32, &[n, ci, hw, hw]))
            .unwrap();
        let mut konst = |name: &str, t: Tensor| g.add_const(name, Arc::new(t)).unwrap();
        let (wp, bp, wd, bd) = (
            konst("wp", rand_t(&[c, ci, 1, 1], seed + 1)),
            konst("bp", rand_t(&[c], seed + 2)),
            konst("wd", rand_t(&[c, 1, k, k], seed + 3)),
            konst("bd", rand_t(&[c], seed + 4)),
        );
        let se_w = se_weights(&mut g, c, 4 + case, seed + 5);
        let conv = |k: usize, s: usize, groups: usize, act| {
            Op::FusedConv(FusedConv {
                conv: Conv {
                    strides: [s, s],
                    padding: Padding::Explicit([k / 2; 4]),
                    dilations: [1, 1],
                    groups,
                    layout: Layout::Nchw,
                    has_bias: true,
                },
                residual: false,
                act: Some(act),
                post: None,
            })
        };
        let pw = conv(
            1,
            1,
            1,
            UnaryOp::HardSwish {
                threshold: 6.0,
                scale: 6.0,
                offset: 3.0,
            },
        );
        let dw = conv(
            k,
            s,
            c,
            UnaryOp::HardSigmoid {
                slope: 0.2,
                offset: 0.5,
            },
        );
        let se_op = Op::SeBlock(SeBlock {
            act1: UnaryOp::Relu,
            act2: UnaryOp::Sigmoid,
        });
        let mid = g
            .add_node(pw.clone(), vec![x, wp, bp], &["mid"], "pw")
            .unwrap()[0];
        let y = g
            .add_node(dw.clone(), vec![mid, wd, bd], &["y"], "dw")
            .unwrap()[0];
        let z = if se {
            let mut se_in = vec![y];
            se_in.extend(&se_w);
            g.add_node(se_op.clone(), se_in, &["z"], "se").unwrap()[0]
        } else {
            y
        };
        let keep: Vec<_> = if keep_mid { vec![z, mid] } else { vec![z] };
        g.outputs = keep.clone();
        // The reference: the ops chained.
        let xt = rand_t(&[n, ci, hw, hw], seed);
        let get = |v: usize| match &g.values[v].def {
            kayak::ir::ValueDef::Const(t) => Tensor::clone(t),
            _ => unreachable!(),
        };
        let mt = pw.eval(&[&xt, &get(wp), &get(bp)]).unwrap().remove(0);
        let mut want = dw.eval(&[&mt, &get(wd), &get(bd)]).unwrap().remove(0);
        if se {
            let se_t: Vec<Tensor> = se_w.iter().map(|&v| get(v)).collect();
            let mut args = vec![&want];
            args.extend(se_t.iter());
            want = se_op.eval(&args).unwrap().remove(0);
        }
        for threads in [1, 2, 3] {
            let names = plan_run_compare(&g, &keep, &xt, &want, threads, case);
            let merged = names.iter().any(|m| m.starts_with("conv/expand+depthwise"));
            assert_eq!(
                merged,
                // One thread: the blocked form (AVX-512 only). More threads: the chunked
                // form, on every ISA (without AVX-512 the SE block stays a step of its own
                // and the depthwise conv before it merges).
                n == 1 && !keep_mid && (avx512 || threads > 1),
                "case {case}, {threads} threads: steps {names:?}"
            );
            if merged {
                // The SE block merges too where its fused means apply (AVX-512).
                let steps = if se && !avx512 { 2 } else { 1 };
                assert_eq!(names.len(), steps, "case {case}: steps {names:?}");
            }
        }
    }
}

/// Plans `g` (input `x`, keeping `keep`) at `threads` threads, checks its memory, runs it
/// and compares the first output with `want` (|a − b| ≤ 1e-5 + 1e-4·|b|); returns the
/// plan's step kernel names.
fn plan_run_compare(
    g: &Graph,
    keep: &[usize],
    xt: &Tensor,
    want: &Tensor,
    threads: usize,
    case: usize,
) -> Vec<&'static str> {
    let plan = Plan::new(
        std::sync::Arc::new(g.clone()),
        &[xt.shape().to_vec()],
        keep,
        PlanOptions {
            threads,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    plan.check_memory().unwrap();
    let names: Vec<&'static str> = plan.steps().map(|s| s.kernel).collect();
    let mut state = RunState::new(threads);
    plan.run(&vec![xt.clone()], &mut state).unwrap();
    let got = &state.outputs()[0];
    let (a, b) = (got.to_f64_vec(), want.to_f64_vec());
    assert_eq!(a.len(), b.len());
    for (i, (p, q)) in a.iter().zip(&b).enumerate() {
        assert!(
            (p - q).abs() <= 1e-5 + 1e-4 * q.abs(),
            "case {case}, {threads} threads, [{i}]: {p} vs {q}"
        );
    }
    names
}

/// An SE block's four random weights over `c` channels squeezed to `c1`, as constants
/// `se0`..`se3` of `g` (seeds from `seed`).
fn se_weights(g: &mut Graph, c: usize, c1: usize, seed: u64) -> Vec<usize> {
    [
        rand_t(&[c1, c, 1, 1], seed),
        rand_t(&[c1], seed + 1),
        rand_t(&[c, c1, 1, 1], seed + 2),
        rand_t(&[c], seed + 3),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, t)| g.add_const(&format!("se{i}"), Arc::new(t)).unwrap())
    .collect()
}
