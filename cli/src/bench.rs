//! `kayak bench`: load → optimize → plan → run, timed, with memory figures and op counts.
//!
//! Latency is what `../shared/tools/peers.py` times for the peer engines: copying the
//! inputs into the predictor's input buffers, the run, and copying every output into a
//! buffer of the caller's.

use crate::{build_inputs, BenchArgs};
use anyhow::{Context, Result};
use kayak::{Config, Predictor, Tensor};
use std::io::IsTerminal;
use std::time::Instant;

/// A process memory figure from /proc/self/status (`VmHWM`: peak RSS, `VmRSS`: now), in
/// bytes; 0 where /proc is not available.
pub fn proc_status_bytes(key: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(key)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<usize>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// One input set and the caller's output buffers for it.
struct Case {
    inputs: Vec<(String, Tensor)>,
    outputs: Vec<(String, Tensor)>,
}

/// A case's first run: sets its inputs, runs, and makes its output buffers from the
/// results (their shapes are known only now).
fn first_run(p: &mut Predictor, c: &mut Case, names: &[String]) -> Result<()> {
    for (name, t) in &c.inputs {
        p.input(name)?.set(t.clone())?;
    }
    p.run()?;
    c.outputs = names
        .iter()
        .map(|n| Ok((n.clone(), p.output(n)?.tensor()?.clone())))
        .collect::<Result<_>>()?;
    Ok(())
}

/// Copies a case's inputs in, runs, copies the outputs out.
fn run_case(p: &mut Predictor, c: &mut Case, times: Option<&mut Vec<u64>>) -> Result<()> {
    for (name, t) in &c.inputs {
        let mut h = p.input(name)?;
        h.reshape(t.shape())?;
        kayak::ir::with_tensor!(t, a => h.copy_from_cpu(a.as_slice().context("input not contiguous")?))?;
    }
    match times {
        Some(t) => p.run_profiled(t)?,
        None => p.run()?,
    }
    for (name, buf) in &mut c.outputs {
        let h = p.output(name)?;
        kayak::ir::with_tensor!(buf, a => h.copy_to_cpu(a.as_slice_mut().context("buffer not contiguous")?))?;
    }
    Ok(())
}

/// `n` untimed runs, the cases in turn.
fn warm_up(p: &mut Predictor, cases: &mut [Case], n: usize) -> Result<()> {
    for i in 0..n {
        let k = cases.len();
        run_case(p, &mut cases[i % k], None)?;
    }
    Ok(())
}

/// `args.iters` timed runs (ms each), the cases in turn, with a progress bar on a
/// terminal; with `times`, each step's time in the main shapes' runs is added to it
/// (the step list is per plan).
fn timed_runs(
    p: &mut Predictor,
    cases: &mut [Case],
    args: &BenchArgs,
    mut times: Option<&mut Vec<u64>>,
) -> Result<Vec<f64>> {
    let mut lat = Vec::with_capacity(args.iters);
    let bar = std::io::stderr().is_terminal() && !args.json;
    let t_all = Instant::now();
    for i in 0..args.iters {
        let n = cases.len();
        let t0 = Instant::now();
        let prof = if i % n == 0 {
            times.as_deref_mut()
        } else {
            None
        };
        run_case(p, &mut cases[i % n], prof)?;
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
        if bar && t_all.elapsed().as_secs_f64() > 1.0 && (i % (args.iters / 50).max(1) == 0) {
            let done = (i + 1) * 40 / args.iters;
            eprint!(
                "\r[{}{}] {}/{}",
                "#".repeat(done),
                " ".repeat(40 - done),
                i + 1,
                args.iters
            );
        }
    }
    if bar && t_all.elapsed().as_secs_f64() > 1.0 {
        eprintln!("\r[{}] {}/{}", "#".repeat(40), args.iters, args.iters);
    }
    Ok(lat)
}

/// Each case's first run (the first one timed, in ms: its plan is already made).
fn first_runs(p: &mut Predictor, cases: &mut [Case]) -> Result<f64> {
    let names: Vec<String> = p
        .output_names()
        .iter()
        .chain(p.fetch_names())
        .cloned()
        .collect();
    let t_first = Instant::now();
    first_run(p, &mut cases[0], &names)?;
    let ms = t_first.elapsed().as_secs_f64() * 1e3;
    for c in cases.iter_mut().skip(1) {
        first_run(p, c, &names)?;
    }
    Ok(ms)
}

/// Sorts `lat` and returns its min, median, 90th percentile and max.
fn summary(lat: &mut [f64]) -> (f64, f64, f64, f64) {
    lat.sort_by(|a, b| a.total_cmp(b));
    (
        lat.first().copied().unwrap_or(0.0),
        percentile(lat, 0.5),
        percentile(lat, 0.9),
        lat.last().copied().unwrap_or(0.0),
    )
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Runs the command.
pub fn bench(args: BenchArgs) -> Result<()> {
    let t_load = Instant::now();
    let mut cfg = Config::new()
        .model_path(crate::model_file(&args.model)?)
        .threads(args.threads)
        .ir_optim(!args.no_optimize)
        .adaptive_threads(!args.no_adapt);
    if let Some(d) = &args.optim_cache_dir {
        cfg = cfg.optim_cache_dir(d);
    }
    cfg = args.device.apply(cfg);
    let mut p = Predictor::new(cfg)?;
    let new_ms = t_load.elapsed().as_secs_f64() * 1e3;
    let optimize_ms = p.optimization_report().map_or(0.0, |r| r.optimize_ms);
    let load_ms = new_ms - optimize_ms;
    let ops_before = p
        .optimization_report()
        .map_or_else(|| p.graph().nodes.len(), |r| r.ops_before);
    let ops_after = p.optimization_report().map_or(ops_before, |r| r.ops_after);

    let main = build_inputs(&p, &args.inputs, &args.shapes, args.seed, args.json)?;
    let mut cases = vec![Case {
        inputs: main,
        outputs: vec![],
    }];
    if !args.alternate.is_empty() {
        let alt = build_inputs(&p, &[], &args.alternate, args.seed + 1, args.json)?;
        cases.push(Case {
            inputs: alt,
            outputs: vec![],
        });
    }

    // Plan for the main shapes (timed), then the first run (timed, plan cached).
    let shapes: Vec<Vec<usize>> = cases[0]
        .inputs
        .iter()
        .map(|(_, t)| t.shape().to_vec())
        .collect();
    if args.device != crate::Device::Cpu {
        return bench_gpu(&args, &mut p, cases, &shapes, load_ms, optimize_ms);
    }
    let t_plan = Instant::now();
    p.plan_for(&shapes)?;
    let plan_ms = t_plan.elapsed().as_secs_f64() * 1e3;
    let first_run_ms = first_runs(&mut p, &mut cases)?;
    // The main shapes' plan (cached), for its memory figures and step profile.
    let plan = p
        .plan_as::<kayak::exec::Plan>(&shapes)?
        .context("a CPU predictor makes CPU plans")?;

    warm_up(&mut p, &mut cases, args.warmup)?;
    let rss_warm = proc_status_bytes("VmRSS:");
    let hwm_warm = proc_status_bytes("VmHWM:");
    let mut times: Vec<u64> = Vec::new();
    let mut lat = timed_runs(
        &mut p,
        &mut cases,
        &args,
        args.profile.then_some(&mut times),
    )?;
    let rss_end = proc_status_bytes("VmRSS:");
    let (min, med, p90, max) = summary(&mut lat);
    let m = plan.memory();
    let weights = p.weights_bytes();
    let peak_rss = proc_status_bytes("VmHWM:");
    let model = args.model.display().to_string();

    if !args.json || args.profile {
        out!("model:    {model}");
        let (inline, multi) = p.inline_runs();
        if multi > 0 {
            out!(
                "threads:  {} (adaptive {}: {inline} of {multi} runs on the calling thread alone)",
                args.threads,
                if args.no_adapt { "off" } else { "on" },
            );
        } else {
            out!("threads:  {}", args.threads);
        }
        out!(
            "load {load_ms:.1} ms, optimize {optimize_ms:.1} ms, plan {plan_ms:.2} ms, first run {first_run_ms:.2} ms"
        );
        out!(
            "latency over {} runs (ms): min {min:.3}, median {med:.3}, p90 {p90:.3}, max {max:.3}",
            args.iters
        );
        out!(
            "memory:   arena {} (lower bound {}, {:.3}x; no reuse {}), workspace {}, weights {}, outputs {}",
            mb(m.arena_bytes),
            mb(m.lower_bound_bytes),
            m.arena_bytes as f64 / m.lower_bound_bytes.max(1) as f64,
            mb(m.naive_bytes),
            mb(m.workspace_bytes),
            mb(weights),
            mb(m.output_bytes),
        );
        out!(
            "          {} intermediates, {} views aliased, {} steps in place, scratch {}, {} order; peak RSS {}, RSS after warm-up {}, at the end {}",
            m.intermediates,
            m.aliased_views,
            m.in_place_steps,
            mb(m.scratch_bytes),
            if m.reordered { "memory-scheduled" } else { "graph" },
            mb(peak_rss),
            mb(rss_warm),
            mb(rss_end)
        );
        out!(
            "ops:      {ops_before} -> {ops_after}; {} steps, {} on the reference fallback",
            plan.step_count(),
            m.fallback_steps
        );
    }
    if args.profile {
        profile(
            &p,
            &plan,
            &times,
            (args.iters as u64).div_ceil(cases.len() as u64),
        );
    }
    if args.json {
        let j = serde_json::json!({
            "model": model,
            "threads": args.threads,
            "adaptive": !args.no_adapt,
            "inline_runs": p.inline_runs().0,
            "load_ms": load_ms,
            "optimize_ms": optimize_ms,
            "plan_ms": plan_ms,
            "first_run_ms": first_run_ms,
            "latency_ms": {"min": min, "median": med, "p90": p90, "max": max},
            "iters": args.iters,
            "arena_bytes": m.arena_bytes,
            "workspace_bytes": m.workspace_bytes,
            "scratch_bytes": m.scratch_bytes,
            "arena_lower_bound_bytes": m.lower_bound_bytes,
            "intermediate_bytes_naive": m.naive_bytes,
            "output_bytes": m.output_bytes,
            "weights_bytes": weights,
            "peak_rss_bytes": peak_rss,
            "rss_after_warmup_bytes": rss_warm,
            "peak_rss_after_warmup_bytes": hwm_warm,
            "rss_end_bytes": rss_end,
            "ops_before": ops_before,
            "ops_after": ops_after,
            "steps": plan.step_count(),
            "fallback_steps": m.fallback_steps,
            "in_place_steps": m.in_place_steps,
            "aliased_views": m.aliased_views,
            "reordered": m.reordered,
        });
        out!("{j}");
    }
    Ok(())
}

fn mb(b: usize) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// Time per op type and the 20 slowest nodes, per run.
fn profile(p: &Predictor, plan: &kayak::exec::Plan, times: &[u64], runs: u64) {
    let g = p.graph();
    let total: u64 = times.iter().sum();
    let runs = runs.max(1);
    let steps: Vec<kayak::exec::StepInfo<'_>> = plan.steps().collect();
    let mut by_type: std::collections::BTreeMap<String, (u64, usize)> = Default::default();
    for (s, step) in steps.iter().enumerate() {
        let key = format!("{} [{}]", g.nodes[step.node].op.name(), step.kernel);
        let e = by_type.entry(key).or_default();
        e.0 += times.get(s).copied().unwrap_or(0);
        e.1 += 1;
    }
    let mut rows: Vec<_> = by_type.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
    out!("time per op type (per run):");
    for (k, (ns, n)) in rows {
        out!(
            "  {k:<44} {n:>4} x  {:>9.3} ms  {:>5.1}%",
            ns as f64 / runs as f64 / 1e6,
            100.0 * ns as f64 / total.max(1) as f64
        );
    }
    let mut nodes: Vec<usize> = (0..steps.len()).collect();
    nodes.sort_by_key(|&s| std::cmp::Reverse(times.get(s).copied().unwrap_or(0)));
    out!("slowest nodes (per run; GFLOP/s for products):");
    for &s in nodes.iter().take(20) {
        let step = &steps[s];
        let node = &g.nodes[step.node];
        let shape = step
            .outputs
            .first()
            .and_then(|&o| plan.value_type(o))
            .map(|t| t.shape.to_string())
            .unwrap_or_default();
        let ms = times.get(s).copied().unwrap_or(0) as f64 / runs as f64 / 1e6;
        let rate = if step.flops > 0 && ms > 0.0 {
            format!("{:>6.1}", step.flops as f64 / (ms * 1e-3) / 1e9)
        } else {
            "     -".to_string()
        };
        out!(
            "  {ms:>9.3} ms {rate}  {:<14} {:<16} {shape:<20} {}",
            node.op.name(),
            step.kernel,
            node.origin
        );
    }
}

/// `kayak bench --device cuda|emulator`: the GPU plan (timed), the first run, then the
/// timed runs (each ends with its outputs downloaded, so it measures the whole run), and
/// where the plan put each op.
fn bench_gpu(
    args: &BenchArgs,
    p: &mut Predictor,
    mut cases: Vec<Case>,
    shapes: &[Vec<usize>],
    load_ms: f64,
    optimize_ms: f64,
) -> Result<()> {
    let t_plan = Instant::now();
    let report = p
        .plan_as::<kayak::gpu_exec::GpuPlan>(shapes)?
        .context("a GPU predictor makes GPU plans")?
        .report()
        .clone();
    let plan_ms = t_plan.elapsed().as_secs_f64() * 1e3;
    let first_run_ms = first_runs(p, &mut cases)?;
    warm_up(p, &mut cases, args.warmup)?;
    let mut lat = timed_runs(p, &mut cases, args, None)?;
    let (min, med, p90, max) = summary(&mut lat);
    let model = args.model.display().to_string();
    let host: Vec<String> = report
        .host_ops
        .iter()
        .map(|(k, v)| format!("{k} x{v}"))
        .collect();
    if args.json {
        let j = serde_json::json!({
            "model": model,
            "device": format!("{:?}", args.device),
            "load_ms": load_ms,
            "optimize_ms": optimize_ms,
            "plan_ms": plan_ms,
            "first_run_ms": first_run_ms,
            "latency_ms": {"min": min, "median": med, "p90": p90, "max": max},
            "iters": args.iters,
            "device_nodes": report.device_nodes,
            "host_nodes": report.host_nodes,
            "host_ops": report.host_ops,
            "uploads": report.uploads,
            "downloads": report.downloads,
            "launches": report.launches,
            "kernels": report.kernels,
            "arena_bytes": report.arena_bytes,
            "weights_bytes": report.weight_bytes,
        });
        out!("{j}");
    } else {
        out!("model:    {model}");
        out!("device:   {:?}", args.device);
        out!(
            "load {load_ms:.1} ms, optimize {optimize_ms:.1} ms, plan (kernels compiled) {plan_ms:.1} ms, first run {first_run_ms:.2} ms"
        );
        out!(
            "latency over {} runs (ms): min {min:.3}, median {med:.3}, p90 {p90:.3}, max {max:.3}",
            args.iters
        );
        out!(
            "placement: {} ops on the device, {} on the host{}; {} uploads, {} downloads, {} launches, {} kernels",
            report.device_nodes,
            report.host_nodes,
            if host.is_empty() {
                String::new()
            } else {
                format!(" ({})", host.join(", "))
            },
            report.uploads,
            report.downloads,
            report.launches,
            report.kernels
        );
        out!(
            "memory:   device arena {}, device weights {}",
            mb(report.arena_bytes),
            mb(report.weight_bytes)
        );
    }
    Ok(())
}
