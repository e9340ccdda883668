//! Predictor configuration.

use kayak_proto::ModelSource;
use std::path::PathBuf;

/// Which device a GPU predictor runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GpuChoice {
    /// NVIDIA GPU `id`.
    Cuda(usize),
    /// The CPU emulator of a CUDA device.
    Emulator,
}

/// Where a GPU predictor runs each op (see [`Config::gpu_placement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpuPlacement {
    /// The cheapest placement under the cost model: ops the device has kernels for may
    /// still run on the host when that saves more in copies than it costs (tiny graphs
    /// run wholly on the host).
    #[default]
    Cost,
    /// Every op the device has a kernel for runs on it (as Paddle's GPU predictor does);
    /// only the others run on the host.
    Device,
}

/// How to build a [`crate::Predictor`]: which model, how many threads, which switches.
///
/// ```
/// let cfg = kayak::Config::new()
///     .model_dir("models/ppocr_cls")
///     .threads(1)
///     .fetch_var("softmax_0.tmp_0");
/// assert_eq!(cfg.thread_count(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) source: Option<ModelSource>,
    pub(crate) threads: usize,
    pub(crate) ir_optim: bool,
    pub(crate) memory_optim: bool,
    pub(crate) native_kernels: bool,
    pub(crate) fetch: Vec<String>,
    pub(crate) plan_cache: usize,
    pub(crate) adaptive_threads: bool,
    pub(crate) rules_files: Vec<PathBuf>,
    pub(crate) disabled_rules: Vec<String>,
    pub(crate) optim_cache_dir: Option<PathBuf>,
    pub(crate) gpu: Option<GpuChoice>,
    pub(crate) cost_model: Option<kayak_rewrite::CostModel>,
    pub(crate) gpu_placement: GpuPlacement,
    pub(crate) backend: Option<std::sync::Arc<dyn kayak_exec::Backend>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            source: None,
            threads: 1,
            ir_optim: true,
            memory_optim: true,
            native_kernels: true,
            fetch: vec![],
            plan_cache: 16,
            adaptive_threads: true,
            rules_files: vec![],
            disabled_rules: vec![],
            optim_cache_dir: None,
            gpu: None,
            cost_model: None,
            gpu_placement: GpuPlacement::Cost,
            backend: None,
        }
    }
}

// The builder methods are kept out of line: with rustc 1.95.0 in release mode, inlining
// them into a caller that drops a `Predictor` and then builds a new `Config` miscompiled
// into a double free of the previous model path (`tests/examples/cache_repro.rs`
// reproduces it; nightly 1.97 does not). Building a config is not on any hot path.
impl Config {
    /// A configuration with no model yet, 1 thread, optimization switches on.
    #[inline(never)]
    pub fn new() -> Config {
        Config::default()
    }

    /// A directory holding `inference.pdmodel` / `model.pdmodel` and its `.pdiparams`.
    #[inline(never)]
    pub fn model_dir(mut self, dir: impl Into<PathBuf>) -> Config {
        self.source = Some(ModelSource::Dir(dir.into()));
        self
    }

    /// A `.pdmodel` file; its params are the `.pdiparams` with the same stem.
    #[inline(never)]
    pub fn model_file(mut self, file: impl Into<PathBuf>) -> Config {
        self.source = Some(ModelSource::ModelFile(file.into()));
        self
    }

    /// A directory or a `.pdmodel` file, whichever `path` is.
    #[inline(never)]
    pub fn model_path(mut self, path: impl Into<PathBuf>) -> Config {
        self.source = Some(ModelSource::from_path(path.into()));
        self
    }

    /// Explicit program and params files.
    #[inline(never)]
    pub fn model_files(mut self, model: impl Into<PathBuf>, params: impl Into<PathBuf>) -> Config {
        self.source = Some(ModelSource::Paths {
            model: model.into(),
            params: params.into(),
        });
        self
    }

    /// A model already in memory.
    #[inline(never)]
    pub fn model_buffers(mut self, model: Vec<u8>, params: Vec<u8>) -> Config {
        self.source = Some(ModelSource::Buffers { model, params });
        self
    }

    /// The threads one run uses (at least 1), the calling thread included: each predictor
    /// (and each clone) starts `n - 1` worker threads of its own, which sleep between
    /// runs and stop when it is dropped. No pool is shared between predictors.
    #[inline(never)]
    pub fn threads(mut self, n: usize) -> Config {
        self.threads = n.max(1);
        self
    }

    /// Whether runs with more than one thread measure, now and then, dispatching their
    /// ops across the threads against running them all on the calling thread, and keep
    /// the faster (on by default; the results are the same bits either way). It pays on
    /// machines whose cores are far apart: on a VM whose two vCPUs moved between nearby
    /// and distant cores, MobileNetV3 at 2 threads ran 1.75 ms with it and 2.25 ms
    /// without in the distant periods, and alike in the near ones. Off: every op is
    /// dispatched across the threads.
    #[inline(never)]
    pub fn adaptive_threads(mut self, on: bool) -> Config {
        self.adaptive_threads = on;
        self
    }

    /// Runs on NVIDIA GPU `device_id` (Paddle's `EnableUseGpu`). The predictor checks,
    /// before anything touches CUDA, that the CUDA libraries load and the device exists,
    /// and fails with [`crate::Error::Gpu`] saying why not: in a build without the `cuda`
    /// feature, on a machine without a driver or the CUDA libraries, or without that
    /// device. Graph optimization then extracts with [`crate::CostModel::gpu`] (unless
    /// [`Config::cost_model`] says otherwise); each shape signature gets a GPU plan
    /// (`kayak_exec_gpu::GpuPlan`): the ops the device has kernels for run there, the
    /// others on the host where the placement puts them, with the fewest-cost copies
    /// between.
    #[inline(never)]
    pub fn enable_gpu(mut self, device_id: usize) -> Config {
        self.gpu = Some(GpuChoice::Cuda(device_id));
        self
    }

    /// Runs the GPU backend on its CPU emulator ([`kayak_gpu::Emulator`]): the same
    /// generated kernels, compiled by the host's C++ compiler, run one thread at a time.
    /// For testing the GPU path on machines without a GPU — slow, and never for serving.
    #[inline(never)]
    pub fn enable_gpu_emulator(mut self) -> Config {
        self.gpu = Some(GpuChoice::Emulator);
        self
    }

    /// Runs on a backend of the caller's own (any [`kayak_exec::Backend`]): the predictor
    /// compiles a plan per shape signature with it and runs them with its states, as it
    /// does the built-in ones. The graph is optimized with [`Config::cost_model`]'s model
    /// (the CPU's by default). Overrides [`Config::enable_gpu`].
    #[inline(never)]
    pub fn backend(mut self, backend: std::sync::Arc<dyn kayak_exec::Backend>) -> Config {
        self.backend = Some(backend);
        self
    }

    /// With a GPU: where each op runs ([`GpuPlacement::Cost`] by default).
    #[inline(never)]
    pub fn gpu_placement(mut self, p: GpuPlacement) -> Config {
        self.gpu_placement = p;
        self
    }

    /// The backend cost model graph optimization extracts with (default: the CPU's,
    /// [`crate::CostModel::cpu`]). With [`crate::CostModel::gpu`] (and, through
    /// [`crate::CostModel::with_native`], the device's kernel set), a CPU predictor runs
    /// the graph the optimizer would choose for that device: to see what it chooses
    /// (`kayak optimize --cost gpu`) and to check that graph's outputs against the
    /// references. The model is part of the optimized-graph cache key.
    #[inline(never)]
    pub fn cost_model(mut self, model: kayak_rewrite::CostModel) -> Config {
        self.cost_model = Some(model);
        self
    }

    /// The thread bound.
    pub fn thread_count(&self) -> usize {
        self.threads
    }

    /// Graph optimization switch (Paddle's `switch_ir_optim`): on by default, the e-graph
    /// optimizer rewrites the graph with its rules before planning.
    #[inline(never)]
    pub fn ir_optim(mut self, on: bool) -> Config {
        self.ir_optim = on;
        self
    }

    /// Memory-reuse switch (Paddle's `enable_memory_optim`), on by default: intermediate
    /// tensors share one arena by liveness, views alias, elementwise ops run in place.
    /// Off: every intermediate gets its own arena slot (for debugging).
    #[inline(never)]
    pub fn memory_optim(mut self, on: bool) -> Config {
        self.memory_optim = on;
        self
    }

    /// Native kernels switch, on by default. Off: every op runs its reference
    /// implementation (slow, allocating; the oracle, for debugging a wrong result).
    #[inline(never)]
    pub fn native_kernels(mut self, on: bool) -> Config {
        self.native_kernels = on;
        self
    }

    /// Also fetch this model variable after each run (for debugging precision); it is kept
    /// whatever the optimizer does.
    #[inline(never)]
    pub fn fetch_var(mut self, name: impl Into<String>) -> Config {
        self.fetch.push(name.into());
        self
    }

    /// Also apply the rules of this file (loaded at run time; see `kayak rules list` for
    /// the grammar and the built-ins).
    #[inline(never)]
    pub fn rules_file(mut self, path: impl Into<PathBuf>) -> Config {
        self.rules_files.push(path.into());
        self
    }

    /// Turns off a rule by name (like Paddle's `DeletePass`).
    #[inline(never)]
    pub fn disable_rule(mut self, name: impl Into<String>) -> Config {
        self.disabled_rules.push(name.into());
        self
    }

    /// Keep optimized graphs (with folded weights) in this directory, so a second load of
    /// the same model with the same rules skips saturation. Bad entries are rebuilt.
    #[inline(never)]
    pub fn optim_cache_dir(mut self, dir: impl Into<PathBuf>) -> Config {
        self.optim_cache_dir = Some(dir.into());
        self
    }

    /// How many input-shape signatures keep their plan cached (at least 1).
    #[inline(never)]
    pub fn plan_cache_size(mut self, n: usize) -> Config {
        self.plan_cache = n.max(1);
        self
    }
}
