//! Running a plan.

use crate::{Error, Plan, Result, Source};
use kayak_ir::{Graph, Op, Shape, Tensor};

/// Runs ops. Implementations choose kernels; every result must equal the reference
/// semantics within the tolerance the tests hold them to.
pub trait Backend: Send + Sync {
    /// A short name (`reference-cpu`, ...).
    fn name(&self) -> &'static str;
    /// Runs one op.
    fn run_op(&self, op: &Op, inputs: &[&Tensor]) -> kayak_ir::Result<Vec<Tensor>>;
}

/// The CPU backend that runs `kayak-ir`'s reference semantics, single-threaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceCpu;

impl Backend for ReferenceCpu {
    fn name(&self) -> &'static str {
        "reference-cpu"
    }
    fn run_op(&self, op: &Op, inputs: &[&Tensor]) -> kayak_ir::Result<Vec<Tensor>> {
        op.eval(inputs)
    }
}

/// Per-run buffers: one slot per graph value. Reused across runs of one predictor.
#[derive(Debug, Default)]
pub struct RunState {
    slots: Vec<Option<Tensor>>,
}

impl RunState {
    /// Empty state.
    pub fn new() -> RunState {
        RunState::default()
    }
}

fn fetch<'a>(src: &'a Source, inputs: &[&'a Tensor], slots: &'a [Option<Tensor>]) -> &'a Tensor {
    match src {
        Source::Input(k) => inputs[*k],
        Source::Const(t) | Source::Folded(t) => t,
        Source::Computed(v) => slots[*v]
            .as_ref()
            .expect("plan order guarantees the value exists"),
    }
}

impl Plan {
    /// Runs the plan on `inputs` (in graph input order) and returns the kept values, in the
    /// order they were asked for.
    pub fn run(
        &self,
        graph: &Graph,
        backend: &dyn Backend,
        inputs: &[&Tensor],
        state: &mut RunState,
    ) -> Result<Vec<Tensor>> {
        if inputs.len() != self.input_shapes.len() {
            return Err(Error::Input {
                index: inputs.len(),
                reason: format!(
                    "{} inputs given, {} expected",
                    inputs.len(),
                    self.input_shapes.len()
                ),
            });
        }
        for (k, (t, s)) in inputs.iter().zip(&self.input_shapes).enumerate() {
            if t.shape() != s.as_slice() {
                return Err(Error::Input {
                    index: k,
                    reason: format!("shape {:?}, the plan is for {:?}", t.shape(), s),
                });
            }
        }
        state.slots.clear();
        state.slots.resize_with(graph.values.len(), || None);
        for step in &self.steps {
            let node = &graph.nodes[step.node];
            let args: Vec<&Tensor> = step
                .inputs
                .iter()
                .map(|s| fetch(s, inputs, &state.slots))
                .collect();
            let outs = backend
                .run_op(&node.op, &args)
                .map_err(|source| Error::Node {
                    origin: node.origin.clone(),
                    source,
                })?;
            for (&v, t) in node.outputs.iter().zip(outs) {
                let want = &self.types[v];
                // Dims that depend on run-time data are Unknown in the plan; the rest must match.
                let shape_ok = want.shape.rank() == t.shape().len()
                    && want
                        .shape
                        .dims()
                        .iter()
                        .zip(t.shape())
                        .all(|(d, &n)| d.known().is_none_or(|k| k == n));
                if t.dtype() != want.dtype || !shape_ok {
                    return Err(Error::OutputMismatch {
                        origin: node.origin.clone(),
                        got_dtype: t.dtype(),
                        got_shape: Shape::known(t.shape()),
                        want_dtype: want.dtype,
                        want_shape: want.shape.clone(),
                    });
                }
                state.slots[v] = Some(t);
            }
            for &v in &step.frees {
                state.slots[v] = None;
            }
        }
        let out = self
            .outputs
            .iter()
            .map(|s| fetch(s, inputs, &state.slots).clone())
            .collect();
        state.slots.iter_mut().for_each(|s| *s = None);
        Ok(out)
    }
}
