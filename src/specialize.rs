//! Models whose ops take attributes from run-time input values.
//!
//! An ONNX graph may feed an op's shape, axes, pads, sizes or bounds from a graph input
//! (`ReduceSum(x, axes)` with `axes` an input) rather than a constant. Kayak's ops take
//! such operands as attributes, so the importer reports which inputs they come from
//! ([`kayak_proto::Error::NeedsInputValues`]) and the predictor specializes: for each
//! distinct pair (every input's shape, those inputs' values) the model is imported with
//! the shapes bound and the values as constants, optimized, prepared and compiled once,
//! and the plan is cached (a bounded LRU shared by clones) — as TensorRT does with shape
//! tensors. A specialized import that needs still more inputs' values adds them to the
//! set. The values are small (axes, shapes): an input holding more than
//! [`MAX_VALUE_ELEMENTS`] is refused with an error naming it.

use crate::{Config, Error, Result};
use kayak_exec::{Backend, Executable};
use kayak_ir::Tensor;
use kayak_proto::onnx::Binding;
use kayak_proto::ModelBytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Most elements an input whose value a model is specialized on may hold.
pub const MAX_VALUE_ELEMENTS: usize = 4096;

/// One specialization: its key and plan.
struct Entry {
    shapes: Vec<Vec<usize>>,
    values: Vec<Tensor>,
    plan: Arc<dyn Executable>,
}

/// The plans of a model specialized on input values.
pub(crate) struct Specializer {
    bytes: ModelBytes,
    input_names: Vec<String>,
    /// Indices of the inputs whose values key a plan (grows when a specialized import
    /// asks for more).
    value_inputs: Mutex<Vec<usize>>,
    entries: Mutex<VecDeque<Entry>>,
    /// Held while a specialization is made, so clones needing the same one make it once.
    making: Mutex<()>,
    cost: kayak_rewrite::CostModel,
    cap: usize,
}

impl Specializer {
    pub fn new(
        bytes: ModelBytes,
        input_names: &[String],
        value_inputs: &[String],
        cost: kayak_rewrite::CostModel,
        cap: usize,
    ) -> Result<Specializer> {
        let mut idx = Vec::new();
        for n in value_inputs {
            idx.push(index_of(input_names, n)?);
        }
        Ok(Specializer {
            bytes,
            input_names: input_names.to_vec(),
            value_inputs: Mutex::new(idx),
            entries: Mutex::new(VecDeque::new()),
            making: Mutex::new(()),
            cost,
            cap: cap.max(1),
        })
    }

    /// The names of the inputs whose values key the plans.
    pub fn value_inputs(&self) -> Vec<String> {
        let vi = self.value_inputs.lock().unwrap_or_else(|e| e.into_inner());
        vi.iter().map(|&k| self.input_names[k].clone()).collect()
    }

    fn lookup(&self, inputs: &[&Tensor], vi: &[usize]) -> Option<Arc<dyn Executable>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let i = entries.iter().position(|e| {
            e.shapes.len() == inputs.len()
                && e.shapes.iter().zip(inputs).all(|(s, t)| s == t.shape())
                && e.values.len() == vi.len()
                && e.values.iter().zip(vi).all(|(v, &k)| v == inputs[k])
        })?;
        let e = entries.remove(i).expect("index from position");
        let p = e.plan.clone();
        entries.push_front(e);
        Some(p)
    }

    /// The plan for these inputs (all set): cached, or made from a specialized import.
    pub fn plan(
        &self,
        inputs: &[Option<Tensor>],
        backend: &Arc<dyn Backend>,
        config: &Config,
    ) -> Result<Arc<dyn Executable>> {
        let inputs: Vec<&Tensor> = inputs
            .iter()
            .zip(&self.input_names)
            .map(|(t, n)| {
                t.as_ref()
                    .ok_or_else(|| Error::MissingInput { name: n.clone() })
            })
            .collect::<Result<_>>()?;
        {
            // The cached path: no copy of the key set.
            let vi = self.value_inputs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = self.lookup(&inputs, &vi) {
                return Ok(p);
            }
        }
        let _making = self.making.lock().unwrap_or_else(|e| e.into_inner());
        let mut vi = self
            .value_inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(p) = self.lookup(&inputs, &vi) {
            return Ok(p);
        }
        loop {
            let mut binding = Binding::default();
            for (n, t) in self.input_names.iter().zip(&inputs) {
                binding.shapes.insert(n.clone(), t.shape().to_vec());
            }
            for &k in &vi {
                let t = inputs[k];
                if t.len() > MAX_VALUE_ELEMENTS {
                    return Err(Error::Config(format!(
                        "input `{}` gives an op's attributes (the model is specialized on its \
                         value), and holds {} elements: at most {MAX_VALUE_ELEMENTS}",
                        self.input_names[k],
                        t.len()
                    )));
                }
                binding
                    .values
                    .insert(self.input_names[k].clone(), Arc::new(t.clone()));
            }
            let model = match kayak_proto::import_specialized(&self.bytes, &binding) {
                Ok(m) => m,
                Err(kayak_proto::Error::NeedsInputValues {
                    inputs: more,
                    what,
                    at,
                }) => {
                    let mut grew = false;
                    for n in &more {
                        let k = index_of(&self.input_names, n)?;
                        if !vi.contains(&k) {
                            vi.push(k);
                            grew = true;
                        }
                    }
                    if !grew {
                        // Every input it comes from is bound already: nothing more to
                        // specialize on.
                        return Err(kayak_proto::Error::Unsupported {
                            what: format!("{what}, computed at run time even with the inputs' shapes and values {:?} known", more),
                            at,
                        }
                        .into());
                    }
                    *self.value_inputs.lock().unwrap_or_else(|e| e.into_inner()) = vi.clone();
                    // The key changed: the plans cached under the old one cannot be found.
                    self.entries
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear();
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let keep = crate::predictor::kept(&model, config)?;
            let (mut graph, keep, _) =
                crate::predictor::optimized(&model, keep, config, None, &self.cost)?;
            backend.prepare(&mut graph, &keep);
            let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
            let plan = backend.compile(&Arc::new(graph), &keep, &shapes)?;
            log::info!(
                "{}: specialized on {:?}",
                self.bytes.model_name,
                vi.iter().map(|&k| &self.input_names[k]).collect::<Vec<_>>()
            );
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.push_front(Entry {
                shapes,
                values: vi.iter().map(|&k| inputs[k].clone()).collect(),
                plan: plan.clone(),
            });
            entries.truncate(self.cap);
            return Ok(plan);
        }
    }
}

fn index_of(names: &[String], n: &str) -> Result<usize> {
    names
        .iter()
        .position(|m| m == n)
        .ok_or_else(|| Error::UnknownInput {
            name: n.to_string(),
            known: names.to_vec(),
        })
}
