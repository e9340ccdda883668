//! The predictor: load → optimize → plan (per shape signature, cached) → run, on whichever
//! backend the configuration asks for (`crate::backend`), all through one seam
//! ([`kayak_exec::Backend`]).

use crate::{Config, Error, Result};
use kayak_exec::{Backend, ExecState, Executable};
use kayak_ir::{DType, Dim, Elem, Graph, Shape, Tensor, ValueId};
use kayak_proto::Model;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// What predictor clones share: the model (weights held once), the backend and the plan
/// cache.
struct Shared {
    /// The model; its `graph` is the graph that runs (the optimized one when optimization
    /// is on: the imported graph is dropped, so every weight is held once).
    model: Model,
    report: Option<kayak_rewrite::Report>,
    /// Graph outputs then fetched variables.
    keep: Vec<ValueId>,
    output_names: Vec<String>,
    fetch_names: Vec<String>,
    input_names: Vec<String>,
    backend: Arc<dyn Backend>,
    plans: Mutex<PlanCache>,
    /// Held while a plan is made (never while one runs), so clones asking for the same
    /// new shapes at once make it once.
    planning: Mutex<()>,
    /// For a model whose ops take attributes from input values: its plans, by input
    /// shapes and those values (then `model.graph` holds only the declared inputs).
    spec: Option<crate::specialize::Specializer>,
    config: Config,
}

/// A shape signature: one shape per input.
type Shapes = Vec<Vec<usize>>;

/// The plans of the most recent shape signatures.
struct PlanCache {
    cap: usize,
    entries: VecDeque<(Shapes, Arc<dyn Executable>)>,
}

impl PlanCache {
    fn new(cap: usize) -> Mutex<PlanCache> {
        Mutex::new(PlanCache {
            cap,
            entries: VecDeque::new(),
        })
    }

    /// The plan whose key matches `same(key)`, moved to the front. Allocates nothing.
    fn get(&mut self, same: impl Fn(&[Vec<usize>]) -> bool) -> Option<Arc<dyn Executable>> {
        let i = self.entries.iter().position(|(k, _)| same(k))?;
        let e = self.entries.remove(i).expect("index from position");
        let p = e.1.clone();
        self.entries.push_front(e);
        Some(p)
    }
    fn insert(&mut self, key: Vec<Vec<usize>>, p: Arc<dyn Executable>) {
        self.entries.push_front((key, p));
        self.entries.truncate(self.cap);
    }
}

/// Runs one model. `Send`: move it to another thread, or [`Predictor::clone`] it — clones
/// share the weights and cached plans, each has its own inputs, outputs and run state.
pub struct Predictor {
    shared: Arc<Shared>,
    inputs: Vec<Option<Tensor>>,
    /// The plan of the last successful run (its outputs are in `state`).
    last: Option<Arc<dyn Executable>>,
    /// This predictor's run state (made on its first run: a clone gets its own).
    state: Option<Box<dyn ExecState>>,
}

impl Clone for Predictor {
    fn clone(&self) -> Predictor {
        Predictor {
            shared: self.shared.clone(),
            inputs: vec![None; self.inputs.len()],
            last: None,
            state: None,
        }
    }
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor")
            .field("model", &self.shared.model.model_name)
            .field("backend", &self.shared.backend.name())
            .field("inputs", &self.shared.input_names)
            .field("outputs", &self.shared.output_names)
            .finish()
    }
}

impl Predictor {
    /// Loads the configured model.
    pub fn new(config: Config) -> Result<Predictor> {
        let backend = crate::backend::open(&config)?;
        let src = config.source.clone().ok_or_else(|| {
            Error::Config(
                "no model given (use model_dir, model_file, model_files or model_buffers)".into(),
            )
        })?;
        let bytes = src.load()?;
        match kayak_proto::import(&bytes) {
            Ok(model) => Predictor::build(model, config, Some(&bytes), backend),
            Err(kayak_proto::Error::NeedsInputValues { inputs, .. }) => {
                Predictor::specializing(bytes, &inputs, config, backend)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A predictor for a model that imports only with some inputs' values known
    /// (`value_inputs`): its graph holds the declared inputs and nothing else; each run's
    /// shapes and values pick a specialized plan ([`crate::specialize`]).
    fn specializing(
        bytes: kayak_proto::ModelBytes,
        value_inputs: &[String],
        config: Config,
        (backend, cost): (Arc<dyn Backend>, kayak_rewrite::CostModel),
    ) -> Result<Predictor> {
        let (model, output_names) = kayak_proto::onnx::interface(&bytes)?;
        let graph = &model.graph;
        let input_names: Vec<String> = graph.inputs.iter().map(|&v| var_name(graph, v)).collect();
        let spec = crate::specialize::Specializer::new(
            bytes,
            &input_names,
            value_inputs,
            cost,
            config.plan_cache,
        )?;
        Ok(Predictor::over(Shared {
            model,
            report: None,
            keep: Vec::new(),
            output_names,
            fetch_names: config.fetch.clone(),
            input_names,
            plans: PlanCache::new(config.plan_cache),
            planning: Mutex::new(()),
            backend,
            spec: Some(spec),
            config,
        }))
    }

    /// A fresh predictor (no inputs set, no state yet) over `shared`.
    fn over(shared: Shared) -> Predictor {
        let n_in = shared.input_names.len();
        Predictor {
            shared: Arc::new(shared),
            inputs: vec![None; n_in],
            last: None,
            state: None,
        }
    }

    /// Builds a predictor for an already imported model.
    pub fn from_model(model: Model, config: Config) -> Result<Predictor> {
        let backend = crate::backend::open(&config)?;
        Predictor::build(model, config, None, backend)
    }

    /// `bytes` (the model and params files) key the optimized-graph cache.
    fn build(
        model: Model,
        config: Config,
        bytes: Option<&kayak_proto::ModelBytes>,
        (backend, cost): (Arc<dyn Backend>, kayak_rewrite::CostModel),
    ) -> Result<Predictor> {
        let graph = &model.graph;
        let output_names = output_names(graph);
        let input_names: Vec<String> = graph.inputs.iter().map(|&v| var_name(graph, v)).collect();
        let keep = kept(&model, &config)?;
        let fetch_names = config.fetch.clone();
        let (graph, keep, report) = optimized(&model, keep, &config, bytes, &cost)?;
        let mut model = model;
        // The imported graph goes: weights that folding replaced are freed, the rest are
        // shared (`Arc`) with the graph that runs. The backend's own lowering (the CPU
        // packs constant matmul weights for its GEMM, replacing the originals, which
        // nothing else holds now) happens before the graph is shared.
        let mut graph = graph;
        let lowered = backend.prepare(&mut graph, &keep);
        log::debug!("{lowered} nodes lowered for {}", backend.name());
        model.graph = Arc::new(graph);
        Ok(Predictor::over(Shared {
            model,
            report,
            keep,
            output_names,
            fetch_names,
            input_names,
            plans: PlanCache::new(config.plan_cache),
            planning: Mutex::new(()),
            backend,
            spec: None,
            config,
        }))
    }

    /// The model: its op histogram and parameter sizes describe the imported program; its
    /// `graph` is the graph that runs (with optimization on, the imported graph is not
    /// kept, so that weights replaced by folded ones are not held twice).
    pub fn model(&self) -> &Model {
        &self.shared.model
    }

    /// What the optimizer did (`None` with optimization off).
    pub fn optimization_report(&self) -> Option<&kayak_rewrite::Report> {
        self.shared.report.as_ref()
    }

    /// The graph that runs (optimized unless switched off). For a model whose ops take
    /// attributes from input values (an ONNX graph that feeds `axes` or a shape as an
    /// input) it holds only the declared inputs: each run's plan is made from an import
    /// specialized on those values.
    pub fn graph(&self) -> &Arc<Graph> {
        &self.shared.model.graph
    }

    /// The values of [`Predictor::graph`] a run returns: the outputs, then the fetched
    /// variables, in that order.
    pub fn kept_values(&self) -> &[ValueId] {
        &self.shared.keep
    }

    /// The configuration this predictor was built with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Input names, in feed order.
    pub fn input_names(&self) -> &[String] {
        &self.shared.input_names
    }

    /// Output names, in fetch order.
    pub fn output_names(&self) -> &[String] {
        &self.shared.output_names
    }

    /// Names of the extra variables fetched after each run ([`Config::fetch_var`]).
    pub fn fetch_names(&self) -> &[String] {
        &self.shared.fetch_names
    }

    /// Declared dtype and (possibly symbolic) shape of an input.
    pub fn input_type(&self, name: &str) -> Result<(DType, Shape)> {
        let k = self.input_index(name)?;
        let ty = &self.shared.model.graph.values[self.shared.model.graph.inputs[k]].ty;
        Ok((ty.dtype, ty.shape.clone()))
    }

    fn input_index(&self, name: &str) -> Result<usize> {
        self.shared
            .input_names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| Error::UnknownInput {
                name: name.to_string(),
                known: self.shared.input_names.clone(),
            })
    }

    fn output_index(&self, name: &str) -> Result<usize> {
        let s = &self.shared;
        s.output_names
            .iter()
            .chain(&s.fetch_names)
            .position(|n| n == name)
            .ok_or_else(|| Error::UnknownVariable {
                name: name.to_string(),
            })
    }

    /// A handle to set an input.
    pub fn input(&mut self, name: &str) -> Result<InputHandle<'_>> {
        let index = self.input_index(name)?;
        Ok(InputHandle { pred: self, index })
    }

    /// A handle to read an output or fetched variable after [`Predictor::run`].
    pub fn output(&self, name: &str) -> Result<OutputHandle<'_>> {
        let index = self.output_index(name)?;
        Ok(OutputHandle { pred: self, index })
    }

    /// Checks a tensor against an input's declaration.
    fn check_input(&self, k: usize, t: &Tensor) -> Result<()> {
        let name = &self.shared.input_names[k];
        let ty = &self.shared.model.graph.values[self.shared.model.graph.inputs[k]].ty;
        if t.dtype() != ty.dtype {
            return Err(Error::InputDType {
                name: name.clone(),
                expected: ty.dtype,
                got: t.dtype(),
            });
        }
        check_shape(name, &ty.shape, t.shape())
    }

    /// Runs the model on the inputs set through [`Predictor::input`]. Results are read
    /// through [`Predictor::output`]. Once a plan for these input shapes is cached and this
    /// predictor has run it, a run allocates nothing on the heap.
    pub fn run(&mut self) -> Result<()> {
        self.run_inner(None)
    }

    fn run_inner(&mut self, times: Option<&mut Vec<u64>>) -> Result<()> {
        for (k, t) in self.inputs.iter().enumerate() {
            if t.is_none() {
                return Err(Error::MissingInput {
                    name: self.shared.input_names[k].clone(),
                });
            }
        }
        self.last = None;
        let spec = self.shared.spec.as_ref();
        let plan = match spec.map_or_else(
            || Ok(self.cached_plan()),
            |s| {
                s.plan(&self.inputs, &self.shared.backend, &self.shared.config)
                    .map(Some)
            },
        )? {
            Some(p) => p,
            None => {
                let shapes: Vec<Vec<usize>> = self
                    .inputs
                    .iter()
                    .map(|t| t.as_ref().map_or_else(Vec::new, |t| t.shape().to_vec()))
                    .collect();
                self.plan_for(&shapes)?
            }
        };
        if self.state.is_none() {
            self.state = Some(self.shared.backend.new_state()?);
        }
        let state = self.state.as_deref_mut().expect("made above");
        match times {
            Some(t) => {
                t.resize(plan.step_count(), 0);
                plan.run(&self.inputs, state, Some(t))?
            }
            None => plan.run(&self.inputs, state, None)?,
        }
        self.last = Some(plan);
        Ok(())
    }

    /// [`Predictor::run`], adding each plan step's wall time (ns) to `times` (resized to
    /// the plan's step count): `kayak bench --profile`.
    pub fn run_profiled(&mut self, times: &mut Vec<u64>) -> Result<()> {
        self.run_inner(Some(times))
    }

    /// Bytes of the weights the running graph holds (each tensor once, folded weights
    /// included; the imported graph's replaced weights are not kept).
    pub fn weights_bytes(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        self.graph()
            .values
            .iter()
            .filter_map(|v| match &v.def {
                kayak_ir::ValueDef::Const(t) if seen.insert(Arc::as_ptr(t)) => Some(t.byte_len()),
                _ => None,
            })
            .sum()
    }

    /// The cached plan for the current inputs' shapes, if any (allocates nothing).
    fn cached_plan(&self) -> Option<Arc<dyn Executable>> {
        let inputs = &self.inputs;
        self.shared
            .plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(|key| {
                key.len() == inputs.len()
                    && key
                        .iter()
                        .zip(inputs)
                        .all(|(k, t)| t.as_ref().is_some_and(|t| t.shape() == k.as_slice()))
            })
    }

    /// Of this predictor's runs with more than one thread, how many ran all their ops on
    /// the calling thread, and how many there were ([`Config::adaptive_threads`]; `(0, 0)`
    /// before the first run and on backends that do not choose).
    pub fn inline_runs(&self) -> (u64, u64) {
        self.state.as_ref().map_or((0, 0), |s| s.inline_runs())
    }

    /// The backend this predictor runs on.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.shared.backend
    }

    /// The plan of the last successful run (memory figures, steps; the backend's own plan
    /// type through [`Predictor::last_plan_as`]).
    pub fn last_plan(&self) -> Option<&Arc<dyn Executable>> {
        self.last.as_ref()
    }

    /// The plan of the last successful run as the backend's own plan type (a
    /// [`crate::exec::Plan`] for the built-in CPU backend), if it is one.
    pub fn last_plan_as<T: Executable>(&self) -> Option<&T> {
        self.last
            .as_deref()
            .and_then(|p| (p as &dyn std::any::Any).downcast_ref::<T>())
    }

    /// The plan for these input shapes: cached, or made by the backend and cached (a
    /// bounded LRU shared by clones). Making a plan never disturbs a concurrent run; clones
    /// asking for the same new shapes at once make it once.
    pub fn plan_for(&self, shapes: &[Vec<usize>]) -> Result<Arc<dyn Executable>> {
        let cached = |s: &Shared| {
            s.plans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(|k| k == shapes)
        };
        if let Some(p) = cached(&self.shared) {
            return Ok(p);
        }
        if self.shared.spec.is_some() {
            return Err(Error::Config(format!(
                "{}: its plans depend on the values of the inputs {:?}, not only on shapes: run it",
                self.shared.model.model_name,
                self.shared
                    .spec
                    .as_ref()
                    .map(|s| s.value_inputs())
                    .unwrap_or_default()
            )));
        }
        let _planning = self
            .shared
            .planning
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cached(&self.shared) {
            return Ok(p);
        }
        if shapes.len() != self.inputs.len() {
            return Err(Error::Config(format!(
                "{} input shapes given, the model takes {} ({:?})",
                shapes.len(),
                self.inputs.len(),
                self.shared.input_names
            )));
        }
        for (k, s) in shapes.iter().enumerate() {
            let decl = &self.graph().values[self.graph().inputs[k]].ty.shape;
            check_shape(&self.shared.input_names[k], decl, s)?;
        }
        let p = self
            .shared
            .backend
            .compile(&self.shared.model.graph, &self.shared.keep, shapes)?;
        self.shared
            .plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(shapes.to_vec(), p.clone());
        Ok(p)
    }

    /// [`Predictor::plan_for`] as the backend's own plan type, if it is one.
    pub fn plan_as<T: Executable>(&self, shapes: &[Vec<usize>]) -> Result<Option<Arc<T>>> {
        let p = self.plan_for(shapes)?;
        let any: Arc<dyn std::any::Any + Send + Sync> = p;
        Ok(any.downcast::<T>().ok())
    }

    /// Convenience: sets every input (in [`Predictor::input_names`] order), runs, and
    /// returns the outputs followed by the fetched variables.
    pub fn run_with(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::Config(format!(
                "{} inputs given, the model takes {} ({:?})",
                inputs.len(),
                self.inputs.len(),
                self.shared.input_names
            )));
        }
        for (k, t) in inputs.iter().enumerate() {
            self.check_input(k, t)?;
            self.inputs[k] = Some(t.clone());
        }
        self.run()?;
        Ok(self
            .state
            .as_ref()
            .map_or_else(Vec::new, |s| s.outputs().to_vec()))
    }
}

/// The values a run of `model` returns: its outputs, then the configured fetch variables.
pub(crate) fn kept(model: &Model, config: &Config) -> Result<Vec<ValueId>> {
    let mut keep = model.graph.outputs.clone();
    for f in &config.fetch {
        let v = *model
            .vars
            .get(f)
            .ok_or_else(|| Error::UnknownVariable { name: f.clone() })?;
        keep.push(v);
    }
    Ok(keep)
}

/// The graph that runs for `model` and the values a run returns: optimized with the
/// configured rules under `cost` (through the on-disk cache when `bytes` key it), or the
/// imported graph as it is with optimization off.
pub(crate) fn optimized(
    model: &Model,
    keep: Vec<ValueId>,
    config: &Config,
    bytes: Option<&kayak_proto::ModelBytes>,
    cost: &kayak_rewrite::CostModel,
) -> Result<(Graph, Vec<ValueId>, Option<kayak_rewrite::Report>)> {
    let graph = &model.graph;
    let output_names: Vec<String> = output_names(graph);
    let fetch_names = &config.fetch;
    Ok(if config.ir_optim {
        let mut rules = kayak_rewrite::RuleSet::builtin();
        for f in &config.rules_files {
            rules.add_file(f)?;
        }
        for r in &config.disabled_rules {
            rules.disable(r)?;
        }
        let cache = match (&config.optim_cache_dir, bytes) {
            (Some(dir), Some(b)) => match crate::optim_cache::params_digest(b) {
                Ok(digest) => {
                    let kept: Vec<String> =
                        output_names.iter().chain(fetch_names).cloned().collect();
                    let key = crate::optim_cache::key(
                        &b.model,
                        digest,
                        &format!("{}\u{1}{cost:?}", rules.fingerprint()),
                        &kept,
                    );
                    Some((crate::optim_cache::path(dir, key), key))
                }
                Err(e) => {
                    log::warn!("optimized-graph cache off: cannot read the params: {e}");
                    None
                }
            },
            _ => None,
        };
        let t0 = std::time::Instant::now();
        let hit =
            cache
                .as_ref()
                .and_then(|(path, key)| match crate::optim_cache::load(path, *key) {
                    Ok(e) => Some(e),
                    Err(crate::optim_cache::Miss::Absent) => None,
                    Err(crate::optim_cache::Miss::Invalid(why)) => {
                        log::warn!("optimized-graph cache entry rebuilt: {why}");
                        None
                    }
                });
        match hit {
            Some(mut e) => {
                e.report.from_cache = true;
                e.report.optimize_ms = t0.elapsed().as_secs_f64() * 1e3;
                e.graph
                    .validate()
                    .map_err(|err| Error::Config(format!("cached graph invalid: {err}")))?;
                (e.graph, e.keep, Some(e.report))
            }
            None => {
                let o = kayak_rewrite::optimize(
                    graph,
                    &keep,
                    &rules,
                    &kayak_rewrite::Limits::default(),
                    cost,
                )?;
                log::info!(
                    "optimized {}: {} ops -> {} in {:.1} ms ({})",
                    model.model_name,
                    o.report.ops_before,
                    o.report.ops_after,
                    o.report.optimize_ms,
                    o.report.stop_reason
                );
                if let Some((path, key)) = &cache {
                    let e = crate::optim_cache::Entry {
                        graph: o.graph.clone(),
                        keep: o.keep.clone(),
                        report: o.report.clone(),
                    };
                    if let Err(err) = crate::optim_cache::store(path, *key, &e) {
                        log::warn!(
                            "cannot write the optimized-graph cache {}: {err}",
                            path.display()
                        );
                    }
                }
                (o.graph, o.keep, Some(o.report))
            }
        }
    } else {
        ((**graph).clone(), keep, None)
    })
}

/// A graph's output names: the model's own variable names (in-place rewrites carry an
/// `@k` suffix in the graph).
fn output_names(graph: &Graph) -> Vec<String> {
    graph.outputs.iter().map(|&v| var_name(graph, v)).collect()
}

fn var_name(graph: &Graph, v: ValueId) -> String {
    let n = &graph.values[v].name;
    n.split('@').next().unwrap_or(n).to_string()
}

fn check_shape(name: &str, decl: &Shape, got: &[usize]) -> Result<()> {
    let ok = decl.rank() == got.len()
        && decl.dims().iter().zip(got).all(|(d, &g)| match d {
            Dim::Known(n) => *n == g,
            _ => true,
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InputShape {
            name: name.to_string(),
            expected: decl.clone(),
            got: got.to_vec(),
        })
    }
}

/// Sets one input: [`InputHandle::reshape`] then [`InputHandle::copy_from_cpu`], or
/// [`InputHandle::set`] with a whole tensor.
pub struct InputHandle<'a> {
    pred: &'a mut Predictor,
    index: usize,
}

impl InputHandle<'_> {
    /// The input's name.
    pub fn name(&self) -> &str {
        &self.pred.shared.input_names[self.index]
    }

    /// Declared dtype.
    pub fn dtype(&self) -> DType {
        self.pred.shared.model.graph.values[self.pred.shared.model.graph.inputs[self.index]]
            .ty
            .dtype
    }

    /// Current shape (the declared one, with symbols, until set).
    pub fn shape(&self) -> Vec<usize> {
        self.pred.inputs[self.index]
            .as_ref()
            .map(|t| t.shape().to_vec())
            .unwrap_or_default()
    }

    /// Sets the input's shape; the data is zeroed until copied in. The buffer is reused
    /// when the shape does not change.
    pub fn reshape(&mut self, shape: &[usize]) -> Result<()> {
        let dtype = self.dtype();
        let shared = &self.pred.shared;
        let decl = &shared.model.graph.values[shared.model.graph.inputs[self.index]]
            .ty
            .shape;
        check_shape(&shared.input_names[self.index], decl, shape)?;
        let slot = &mut self.pred.inputs[self.index];
        if slot.as_ref().map(|t| t.shape()) != Some(shape) {
            *slot = Some(Tensor::zeros(dtype, shape));
        }
        Ok(())
    }

    /// Copies data in (row-major); the element type must be the input's dtype and the
    /// length must match the shape set by [`InputHandle::reshape`].
    pub fn copy_from_cpu<T: Elem>(&mut self, data: &[T]) -> Result<()> {
        // Names are formatted only on the error paths: a copy allocates nothing.
        if T::DTYPE != self.dtype() {
            return Err(Error::InputDType {
                name: self.name().to_string(),
                expected: self.dtype(),
                got: T::DTYPE,
            });
        }
        let index = self.index;
        let Some(t) = self.pred.inputs[index].as_mut() else {
            return Err(Error::Config(format!(
                "input `{}`: call reshape before copy_from_cpu",
                self.name()
            )));
        };
        if t.len() != data.len() {
            let expected = t.len();
            return Err(Error::BufferSize {
                name: self.name().to_string(),
                expected,
                got: data.len(),
            });
        }
        // The buffer made by `reshape` has the input's dtype (checked above) and is
        // row-major: copy into it without allocating.
        let got = t.dtype();
        match T::unwrap_mut(t) {
            Some(a) => match a.as_slice_mut() {
                Some(dst) => dst.copy_from_slice(data),
                None => a.iter_mut().zip(data).for_each(|(d, s)| *d = *s),
            },
            None => {
                return Err(Error::InputDType {
                    name: self.name().to_string(),
                    expected: T::DTYPE,
                    got,
                })
            }
        }
        Ok(())
    }

    /// Sets the input to a whole tensor (checked against the declaration).
    pub fn set(&mut self, t: Tensor) -> Result<()> {
        self.pred.check_input(self.index, &t)?;
        self.pred.inputs[self.index] = Some(t);
        Ok(())
    }
}

/// Reads one output (or fetched variable) after a run.
pub struct OutputHandle<'a> {
    pred: &'a Predictor,
    index: usize,
}

impl OutputHandle<'_> {
    fn name(&self) -> String {
        let s = &self.pred.shared;
        s.output_names
            .iter()
            .chain(&s.fetch_names)
            .nth(self.index)
            .cloned()
            .unwrap_or_default()
    }

    /// The tensor from the last run.
    pub fn tensor(&self) -> Result<&Tensor> {
        match (&self.pred.last, &self.pred.state) {
            (Some(_), Some(s)) => s
                .outputs()
                .get(self.index)
                .ok_or_else(|| Error::NotRun { name: self.name() }),
            _ => Err(Error::NotRun { name: self.name() }),
        }
    }

    /// Shape from the last run.
    pub fn shape(&self) -> Result<Vec<usize>> {
        Ok(self.tensor()?.shape().to_vec())
    }

    /// Dtype.
    pub fn dtype(&self) -> Result<DType> {
        Ok(self.tensor()?.dtype())
    }

    /// Copies the data (row-major) into the caller's buffer, which must have exactly the
    /// output's element count and dtype.
    pub fn copy_to_cpu<T: Elem>(&self, out: &mut [T]) -> Result<()> {
        let t = self.tensor()?;
        let a = T::unwrap_ref(t).ok_or_else(|| Error::InputDType {
            name: self.name(),
            expected: t.dtype(),
            got: T::DTYPE,
        })?;
        if a.len() != out.len() {
            return Err(Error::BufferSize {
                name: self.name(),
                expected: a.len(),
                got: out.len(),
            });
        }
        match a.as_slice() {
            Some(s) => out.copy_from_slice(s),
            None => out.iter_mut().zip(a.iter()).for_each(|(o, v)| *o = *v),
        }
        Ok(())
    }
}
