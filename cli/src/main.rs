//! `kayak`: inspect and run Paddle models from the command line.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use kayak::{Config, DType, Dim, Predictor, Tensor};
use std::path::PathBuf;
use std::process::ExitCode;

/// Prints a line to stdout; a closed pipe (`kayak ... | head`) ends the program quietly,
/// any other write error ends it with a message.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("kayak: error: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }};
}

mod bench;

#[derive(Parser)]
#[command(
    name = "kayak",
    version,
    about = "Native inference for PaddlePaddle models"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print a model's format, inputs, outputs, op histogram and parameter sizes.
    Inspect {
        /// Model directory or .pdmodel file.
        model: PathBuf,
    },
    /// Run a model on .npy inputs (or seeded random data) and write its outputs.
    Run(RunArgs),
    /// Optimize a model and report what the rules did.
    Optimize(OptimizeArgs),
    /// Load, optimize, plan and run a model repeatedly: timings, memory and op counts.
    Bench(BenchArgs),
    /// The rewrite rules.
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
    },
}

#[derive(Subcommand)]
enum RulesCmd {
    /// List the rules (built-ins, plus any files given) with their documentation.
    List {
        /// Extra rule files.
        files: Vec<PathBuf>,
    },
    /// Verify the rules (built-ins, plus any files given) on random instances: exit 0 only
    /// if every rule verifies; otherwise print each shrunk counterexample and exit 1.
    Verify {
        /// Extra rule files.
        files: Vec<PathBuf>,
        /// Instances to check per rule.
        #[arg(long, default_value_t = 30)]
        cases: usize,
        /// Seed of the run (the same seed gives the same instances).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Verify only this rule (repeatable).
        #[arg(long = "rule", value_name = "NAME")]
        only: Vec<String>,
    },
}

#[derive(clap::Args)]
struct OptimizeArgs {
    /// Model directory or .pdmodel file.
    model: PathBuf,
    /// An input as NAME=FILE.npy (repeatable): fixes that input's shape.
    #[arg(long = "input", value_name = "NAME=FILE.npy")]
    inputs: Vec<String>,
    /// An input shape as NAME=D0,D1,... (repeatable).
    #[arg(long = "shape", value_name = "NAME=D0,D1,...")]
    shapes: Vec<String>,
    /// Extra rule file (repeatable).
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// For each fused node, print the rule chain that produced it.
    #[arg(long)]
    explain: bool,
    /// Write Graphviz of the graph before and after (fused nodes coloured); also an SVG
    /// beside it when `dot` is installed.
    #[arg(long, value_name = "FILE")]
    dot: Option<PathBuf>,
    /// The backend cost model extraction uses: `cpu` (one x86 core) or `gpu` (an
    /// H100-class GPU: a roofline with launch costs and SM occupancy).
    #[arg(long, value_name = "cpu|gpu", default_value = "cpu", value_parser = parse_cost)]
    cost: CostTable,
    /// Print one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// A cost table by name (`kayak optimize --cost`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum CostTable {
    Cpu,
    Gpu,
}

fn parse_cost(s: &str) -> std::result::Result<CostTable, String> {
    match s {
        "cpu" => Ok(CostTable::Cpu),
        "gpu" => Ok(CostTable::Gpu),
        _ => Err(format!("unknown cost model `{s}`: expected cpu or gpu")),
    }
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Model directory or .pdmodel file.
    model: PathBuf,
    /// An input as NAME=FILE.npy (repeatable); inputs not given are seeded random data.
    #[arg(long = "input", value_name = "NAME=FILE.npy")]
    inputs: Vec<String>,
    /// Shape of a random input as NAME=D0,D1,... (repeatable).
    #[arg(long = "shape", value_name = "NAME=D0,D1,...")]
    shapes: Vec<String>,
    /// Threads per run.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Untimed runs before timing.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 100)]
    iters: usize,
    /// Run the graph as imported, without optimization.
    #[arg(long = "no-optimize")]
    no_optimize: bool,
    /// Every other run uses random inputs of this shape instead, NAME=D0,D1,...
    /// (repeatable): shows that memory stays flat across shape changes.
    #[arg(long = "alternate-shape", value_name = "NAME=D0,D1,...")]
    alternate: Vec<String>,
    /// Also print time per op type and the 20 slowest nodes.
    #[arg(long)]
    profile: bool,
    /// Print one JSON object on a single line, as the last line of stdout.
    #[arg(long)]
    json: bool,
    /// Seed for random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep optimized graphs here; a second load skips saturation.
    #[arg(long = "optim-cache-dir", value_name = "DIR")]
    optim_cache_dir: Option<PathBuf>,
    /// Always dispatch ops across the threads (no measuring against running them all on
    /// the calling thread; see `Config::adaptive_threads`).
    #[arg(long = "no-adapt")]
    no_adapt: bool,
    /// Where to run: `cpu`; `cuda` / `cuda:N` for NVIDIA GPU N (a build with `--features
    /// cuda`; without a usable GPU the command fails saying why); `emulator` for the GPU
    /// backend on its CPU emulator (testing only: slow).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Model directory or .pdmodel file.
    model: PathBuf,
    /// An input as NAME=FILE.npy (repeatable).
    #[arg(long = "input", value_name = "NAME=FILE.npy")]
    inputs: Vec<String>,
    /// Shape of a random input as NAME=D0,D1,... (repeatable).
    #[arg(long = "shape", value_name = "NAME=D0,D1,...")]
    shapes: Vec<String>,
    /// Also fetch this model variable (repeatable); written as DIR/<VAR>.npy.
    #[arg(long = "fetch", value_name = "VAR")]
    fetch: Vec<String>,
    /// Write outputs here as output_0.npy, output_1.npy, ... in fetch order.
    #[arg(long = "output-dir", value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Threads (upper bound).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Run the graph as imported, without optimization.
    #[arg(long = "no-optimize")]
    no_optimize: bool,
    /// Seed for random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep optimized graphs here; a second run skips saturation.
    #[arg(long = "optim-cache-dir", value_name = "DIR")]
    optim_cache_dir: Option<PathBuf>,
    /// Where to run: `cpu`; `cuda` / `cuda:N` for NVIDIA GPU N (a build with `--features
    /// cuda`; without a usable GPU the command fails saying why); `emulator` for the GPU
    /// backend on its CPU emulator (testing only: slow).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
}

/// `--device`: where a predictor runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Device {
    /// The CPU.
    Cpu,
    /// NVIDIA GPU N.
    Cuda(usize),
    /// The GPU backend on its CPU emulator (tests; slow).
    Emulator,
}

impl Device {
    /// `cfg` set to run here.
    fn apply(self, cfg: Config) -> Config {
        match self {
            Device::Cpu => cfg,
            Device::Cuda(id) => cfg.enable_gpu(id),
            Device::Emulator => cfg.enable_gpu_emulator(),
        }
    }
}

/// `cpu`, `cuda` (GPU 0), `cuda:N`, or `emulator`.
fn parse_device(s: &str) -> std::result::Result<Device, String> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        "emulator" => Ok(Device::Emulator),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("`{s}`: expected cpu, cuda, cuda:N or emulator")),
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kayak: error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line (the facade's messages already carry context).
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

fn real_main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Inspect { model } => inspect(model),
        Cmd::Run(args) => run(args),
        Cmd::Optimize(args) => optimize(args),
        Cmd::Bench(args) => bench::bench(args),
        Cmd::Rules {
            cmd: RulesCmd::List { files },
        } => rules_list(&files),
        Cmd::Rules {
            cmd:
                RulesCmd::Verify {
                    files,
                    cases,
                    seed,
                    only,
                },
        } => rules_verify(&files, cases, seed, &only),
    }
}

/// The model file a path names: a file as given; for a directory, the first of
/// `kayak::DIR_CANDIDATES` it holds, said on stderr when it holds several.
pub(crate) fn model_file(path: &std::path::Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let (file, others) = kayak::ModelSource::model_in_dir(path)?;
    if !others.is_empty() {
        let names: Vec<String> = others
            .iter()
            .filter_map(|o| o.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        eprintln!(
            "kayak: {}: took {} (also there: {})",
            path.display(),
            file.file_name().unwrap_or_default().to_string_lossy(),
            names.join(", ")
        );
    }
    Ok(file)
}

fn inspect(path: PathBuf) -> Result<()> {
    // The imported program as declared (symbolic shapes), not optimized: nothing to run.
    let p = Predictor::new(Config::new().model_path(model_file(&path)?).ir_optim(false))?;
    let m = p.model();
    let g = &m.graph;
    out!("model:   {}", m.model_name);
    out!("format:  {}", m.format);
    out!("inputs:");
    for &v in &g.inputs {
        out!(
            "  {:<24} {:<8} {}",
            g.values[v].name,
            g.values[v].ty.dtype,
            g.values[v].ty.shape
        );
    }
    out!("outputs:");
    for (name, &v) in p.output_names().iter().zip(p.kept_values()) {
        out!(
            "  {:<24} {:<8} {}",
            name,
            g.values[v].ty.dtype,
            g.values[v].ty.shape
        );
    }
    let total: usize = m.op_histogram.values().sum();
    out!("ops:     {total} in {} types", m.op_histogram.len());
    let mut hist: Vec<_> = m.op_histogram.iter().collect();
    hist.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (op, n) in hist {
        out!("  {op:<28} {n}");
    }
    out!(
        "params:  {} tensors, {} values, {} bytes",
        m.param_count,
        m.param_elements,
        m.param_bytes
    );
    Ok(())
}

/// xorshift64*: a small deterministic generator for random inputs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn random_tensor(dtype: DType, shape: &[usize], rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    // Floats uniform in [0, 1); integers in {0, 1} (valid ids for any vocabulary); bools fair.
    let vals: Vec<f64> = (0..n)
        .map(|_| {
            if dtype.is_float() {
                rng.unit()
            } else {
                (rng.next() >> 63) as f64
            }
        })
        .collect();
    let t = Tensor::F64(kayak::ir::ndarray_from(shape, vals));
    t.cast(dtype)
}

/// `D0,D1,...` of `--shape NAME=...`.
fn parse_dims(name: &str, v: &str) -> Result<Vec<usize>> {
    v.split(',')
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .with_context(|| format!("--shape {name}: `{d}` is not a size"))
        })
        .collect()
}

fn parse_kv(s: &str, what: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("{what} `{s}` must be NAME=VALUE"))?;
    Ok((k.to_string(), v.to_string()))
}

/// The inputs of a run: each from `--input NAME=FILE.npy`, else random with its
/// `--shape`, else random with its declared shape (a dynamic batch taken as 1). Prints a
/// line per random input unless `quiet`.
fn build_inputs(
    p: &Predictor,
    inputs: &[String],
    shapes: &[String],
    seed: u64,
    quiet: bool,
) -> Result<Vec<(String, Tensor)>> {
    let mut given = std::collections::HashMap::new();
    for s in inputs {
        let (k, v) = parse_kv(s, "--input")?;
        if !p.input_names().contains(&k) {
            bail!(
                "--input {k}: the model has no input named `{k}` (inputs: {:?})",
                p.input_names()
            );
        }
        given.insert(k, kayak::npy::read(&v)?);
    }
    let mut shape_of = std::collections::HashMap::new();
    for s in shapes {
        let (k, v) = parse_kv(s, "--shape")?;
        if !p.input_names().contains(&k) {
            bail!(
                "--shape {k}: the model has no input named `{k}` (inputs: {:?})",
                p.input_names()
            );
        }
        let dims = parse_dims(&k, &v)?;
        shape_of.insert(k, dims);
    }
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = Vec::new();
    for name in p.input_names() {
        let t = match given.remove(name) {
            Some(t) => t,
            None => {
                let (dtype, decl) = p.input_type(name)?;
                let dims = match shape_of.get(name) {
                    Some(d) => d.clone(),
                    None => decl
                        .dims()
                        .iter()
                        .enumerate()
                        .map(|(i, d)| match d {
                            Dim::Known(n) => Ok(*n),
                            _ if i == 0 => Ok(1),
                            _ => Err(anyhow!("input `{name}` has dynamic shape {decl}: give --shape {name}=... or --input {name}=FILE.npy")),
                        })
                        .collect::<Result<Vec<_>>>()?,
                };
                if !quiet {
                    out!("input  {name}: random {dtype}{dims:?} (seed {seed})");
                }
                random_tensor(dtype, &dims, &mut rng)
            }
        };
        out.push((name.clone(), t));
    }
    Ok(out)
}

fn run(args: RunArgs) -> Result<()> {
    let RunArgs {
        model: path,
        inputs,
        shapes,
        fetch,
        output_dir,
        threads,
        no_optimize,
        seed,
        optim_cache_dir,
        device,
    } = args;
    let mut cfg = Config::new()
        .model_path(model_file(&path)?)
        .threads(threads)
        .ir_optim(!no_optimize);
    cfg = device.apply(cfg);
    for f in &fetch {
        cfg = cfg.fetch_var(f);
    }
    if let Some(d) = &optim_cache_dir {
        cfg = cfg.optim_cache_dir(d);
    }
    let mut p = Predictor::new(cfg)?;
    if let Some(r) = p.optimization_report() {
        out!(
            "optimize: {} -> {} ops in {:.1} ms{}",
            r.ops_before,
            r.ops_after,
            r.optimize_ms,
            if r.from_cache {
                " (from the optimized-graph cache)"
            } else {
                ""
            }
        );
    }
    for (name, t) in build_inputs(&p, &inputs, &shapes, seed, false)? {
        p.input(&name)?.set(t)?;
    }
    let t0 = std::time::Instant::now();
    p.run()?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if let Some(dir) = &output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let outs: Vec<(String, Option<usize>)> = p
        .output_names()
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), Some(i)))
        .chain(p.fetch_names().iter().map(|n| (n.clone(), None)))
        .collect();
    for (name, idx) in outs {
        let t = p.output(&name)?.tensor()?.clone();
        let label = match idx {
            Some(i) => format!("output {i}"),
            None => "fetch   ".to_string(),
        };
        out!("{label} {name}: {}{:?} {}", t.dtype(), t.shape(), stats(&t));
        if let Some(dir) = &output_dir {
            let file = match idx {
                Some(i) => dir.join(format!("output_{i}.npy")),
                None => dir.join(format!("{name}.npy")),
            };
            kayak::npy::write(&file, &t)?;
        }
    }
    out!("run: {ms:.1} ms");
    Ok(())
}

fn stats(t: &Tensor) -> String {
    let v = t.to_f64_vec();
    if v.is_empty() {
        return "(empty)".into();
    }
    if v.len() <= 8 {
        return format!(
            "values {:?}",
            v.iter()
                .map(|x| (x * 1e6).round() / 1e6)
                .collect::<Vec<_>>()
        );
    }
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    format!("min {min:.6} max {max:.6} mean {mean:.6}")
}

fn optimize(args: OptimizeArgs) -> Result<()> {
    let mut model = kayak::Predictor::new(
        Config::new()
            .model_path(model_file(&args.model)?)
            .ir_optim(false),
    )?
    .model()
    .clone();
    // Fix the shape signature: given shapes (or those of given inputs) become the inputs' types.
    let mut fixed: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    for s in &args.inputs {
        let (k, v) = parse_kv(s, "--input")?;
        fixed.insert(k, kayak::npy::read(&v)?.shape().to_vec());
    }
    for s in &args.shapes {
        let (k, v) = parse_kv(s, "--shape")?;
        let dims = parse_dims(&k, &v)?;
        fixed.insert(k, dims);
    }
    for (name, dims) in &fixed {
        let v = model
            .graph
            .inputs
            .iter()
            .copied()
            .find(|&v| &model.graph.values[v].name == name)
            .ok_or_else(|| anyhow!("the model has no input named `{name}`"))?;
        std::sync::Arc::make_mut(&mut model.graph).values[v]
            .ty
            .shape = kayak::Shape::known(dims);
    }
    let mut rules = kayak_rewrite::RuleSet::builtin();
    for f in &args.rules {
        rules.add_file(f)?;
    }
    let keep = model.graph.outputs.clone();
    let o = kayak_rewrite::optimize(
        &model.graph,
        &keep,
        &rules,
        &kayak_rewrite::Limits::default(),
        &match args.cost {
            CostTable::Cpu => kayak_rewrite::CostModel::cpu(),
            CostTable::Gpu => kayak_rewrite::CostModel::gpu(),
        },
    )?;
    let r = &o.report;
    out!("model:      {}", model.model_name);
    out!("ops:        {} -> {}", r.ops_before, r.ops_after);
    out!(
        "cost:       {:.3} ms -> {:.3} ms (estimated, {} table)",
        r.cost_before * 1e3,
        r.cost_after * 1e3,
        match args.cost {
            CostTable::Cpu => "CPU",
            CostTable::Gpu => "GPU",
        }
    );
    out!(
        "e-graph:    {} nodes, {} classes, {} iterations, stop: {}",
        r.egraph_nodes,
        r.egraph_classes,
        r.iterations,
        r.stop_reason
    );
    out!("time:       {:.1} ms", r.optimize_ms);
    out!("ops after:");
    for (k, v) in &r.ops_after_by_type {
        out!("  {k:<24} {v}");
    }
    out!("rules applied:");
    for (k, v) in &r.rules_applied {
        out!("  {k:<32} {v}");
    }
    if args.cost == CostTable::Gpu {
        // Where each op of the optimized graph would run, inputs arriving and outputs
        // leaving in host memory.
        let mut g = o.graph.clone();
        g.outputs = o.keep.clone();
        let p = kayak_rewrite::place(&g, &kayak_rewrite::CostModel::gpu());
        out!(
            "placement:  {} of {} ops on the device, {} uploads, {} downloads, {:.3} ms (estimated)",
            p.on_device(),
            p.side.len(),
            p.uploads.len(),
            p.downloads.len(),
            p.cost_s() * 1e3
        );
    }
    if args.explain {
        out!("explanations:");
        for (n, e) in o.graph.nodes.iter().zip(&o.explain) {
            if !e.is_empty() {
                out!("  {:<18} {e}", n.op.name());
            }
        }
    }
    if let Some(path) = &args.dot {
        let fused: Vec<bool> = o.explain.iter().map(|e| !e.is_empty()).collect();
        std::fs::write(
            path,
            kayak_rewrite::dot::before_after(&model.graph, &o.graph, &fused),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        out!("dot:        {}", path.display());
        let svg = path.with_extension("svg");
        match std::process::Command::new("dot")
            .arg("-Tsvg")
            .arg(path)
            .arg("-o")
            .arg(&svg)
            .status()
        {
            Ok(s) if s.success() => out!("svg:        {}", svg.display()),
            _ => out!("svg:        not written (Graphviz `dot` not installed)"),
        }
    }
    if args.json {
        let map = |m: &std::collections::BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        out!(
            "{{\"model\":\"{}\",\"ops_before\":{},\"ops_after\":{},\"ops_after_by_type\":{{{}}},\"rules_applied\":{{{}}},\"egraph_nodes\":{},\"egraph_classes\":{},\"iterations\":{},\"stop_reason\":\"{}\",\"optimize_ms\":{:.3},\"cost_before\":{:e},\"cost_after\":{:e}}}",
            model.model_name.replace('\\', "/").replace('"', "'"),
            r.ops_before,
            r.ops_after,
            map(&r.ops_after_by_type),
            map(&r.rules_applied),
            r.egraph_nodes,
            r.egraph_classes,
            r.iterations,
            r.stop_reason.replace('"', "'"),
            r.optimize_ms,
            r.cost_before,
            r.cost_after
        );
    }
    Ok(())
}

/// Each rule as `name: summary` at column 0, then the rest of its documentation and the rule
/// itself, indented.
fn rules_list(files: &[PathBuf]) -> Result<()> {
    let mut rules = kayak_rewrite::RuleSet::builtin();
    for f in files {
        rules.add_file(f)?;
    }
    for r in rules.rules() {
        out!("{}: {}", r.name, r.summary());
        for line in r.doc.lines().skip(1) {
            out!("    {line}");
        }
        out!("    Rule: {} => {}", r.lhs, r.rhs);
        out!("    Defined at {}", r.at);
    }
    Ok(())
}

/// `kayak rules verify`: one line per rule, a counterexample for each wrong one.
fn rules_verify(files: &[PathBuf], cases: usize, seed: u64, only: &[String]) -> Result<()> {
    use kayak_rewrite::verify;
    let mut rules = kayak_rewrite::RuleSet::builtin();
    for f in files {
        rules.add_file(f)?;
    }
    for name in only {
        if !rules.rules().iter().any(|r| &r.name == name) {
            bail!("no rule named `{name}`");
        }
    }
    let cfg = verify::VerifyConfig {
        cases: cases.max(1),
        seed,
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let (mut ok, mut wrong, mut unverified) = (0, 0, 0);
    let names: Vec<String> = rules
        .rules()
        .iter()
        .filter(|r| rules.enabled(&r.name) && (only.is_empty() || only.contains(&r.name)))
        .map(|r| r.name.clone())
        .collect();
    for name in &names {
        let v = verify::verify_rule(&rules, name, &cfg)?;
        if let Some(f) = &v.failure {
            wrong += 1;
            out!("FAIL {name}");
            out!("{f}");
        } else if v.checked == 0 {
            unverified += 1;
            let why: Vec<String> = v
                .rejected
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect();
            out!(
                "NONE {name}: no instance met the conditions in {cases} cases ({})",
                why.join(", ")
            );
        } else {
            ok += 1;
            out!(
                "ok   {name}: {} instances ({} drawn, {} found in generated graphs)",
                v.checked,
                v.drawn,
                v.found
            );
        }
    }
    out!(
        "{ok} of {} rules verified, {wrong} wrong, {unverified} without instances ({cases} cases each, seed {seed}, {:.1} s)",
        names.len(),
        t0.elapsed().as_secs_f64()
    );
    if wrong + unverified > 0 {
        bail!("{} rules did not verify", wrong + unverified);
    }
    Ok(())
}

#[cfg(test)]
mod device_tests {
    use super::*;

    /// `--device` takes cpu, cuda and cuda:N, and names what it expected otherwise.
    #[test]
    fn device_names_parse_or_say_what_was_expected() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device("cuda").unwrap(), Device::Cuda(0));
        assert_eq!(parse_device("cuda:3").unwrap(), Device::Cuda(3));
        assert_eq!(parse_device("emulator").unwrap(), Device::Emulator);
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", ""] {
            let e = parse_device(bad).unwrap_err();
            assert!(
                e.contains("expected cpu, cuda, cuda:N or emulator"),
                "{bad}: {e}"
            );
        }
    }
}
