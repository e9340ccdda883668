//! The seam between the predictor and the executors.
//!
//! A [`Backend`] turns an optimized graph into an [`Executable`] for one input-shape
//! signature; an executable runs with a per-predictor [`ExecState`] (threads and arena on
//! the CPU; a stream and device arena on a GPU) and leaves the kept values in it. The
//! predictor holds one cache of executables per shape signature and one state, whatever
//! the backend: the CPU ([`CpuBackend`]), a GPU (`kayak-gpu`), or any other that
//! implements these traits.

use crate::{Inputs, MemoryReport, Plan, PlanOptions, Result, RunState};
use kayak_ir::{Graph, Tensor, ValueId};
use std::any::Any;
use std::sync::Arc;

/// An executor: compiles graphs for shape signatures and makes run states.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// What it runs on (`cpu`, `cuda:0`, `emulator`, ...).
    fn name(&self) -> String;

    /// Rewrites the (optimized) graph once, before any plan is made: lowering that only
    /// this backend wants (the CPU packs constant matmul weights for its GEMM). Returns
    /// how many nodes it changed. The graph's outputs must not change.
    fn prepare(&self, graph: &mut Graph, keep: &[ValueId]) -> usize {
        let _ = (graph, keep);
        0
    }

    /// Compiles `graph` for inputs of `shapes`, producing `keep` (graph outputs and
    /// fetched variables) in that order.
    ///
    /// # Errors
    /// The shapes do not type-check, or the backend cannot compile the graph.
    fn compile(
        &self,
        graph: &Arc<Graph>,
        keep: &[ValueId],
        shapes: &[Vec<usize>],
    ) -> Result<Arc<dyn Executable>>;

    /// A fresh run state for one predictor (each clone has its own).
    ///
    /// # Errors
    /// The backend cannot make one (a device that fails to open a stream).
    fn new_state(&self) -> Result<Box<dyn ExecState>>;
}

/// A graph compiled for one shape signature: immutable, shared by predictor clones.
pub trait Executable: Send + Sync + std::fmt::Debug + Any {
    /// The input shapes it runs.
    fn input_shapes(&self) -> &[Vec<usize>];

    /// Runs on `inputs` (in the graph's input order) with `state`, which holds the kept
    /// values afterwards ([`ExecState::outputs`]). With `times`, adds each step's wall
    /// time in nanoseconds to `times[step]` (one entry per [`Executable::step_count`]),
    /// where the backend can time steps.
    ///
    /// # Errors
    /// Inputs that do not match, a state of another backend, an op failing.
    fn run(
        &self,
        inputs: &dyn Inputs,
        state: &mut dyn ExecState,
        times: Option<&mut [u64]>,
    ) -> Result<()>;

    /// How many steps a run takes (for [`Executable::run`]'s `times`).
    fn step_count(&self) -> usize;

    /// Memory figures of a run: its arena and what lives in it.
    fn memory(&self) -> &MemoryReport;
}

/// A predictor's side of running executables: what one run needs besides the executable,
/// reused run after run.
pub trait ExecState: Send + Any {
    /// The kept values of the last run, in the executable's order.
    fn outputs(&self) -> &[Tensor];

    /// Of the runs made with more than one thread, how many ran all their steps on the
    /// calling thread, and how many there were (`(0, 0)` where the backend does not
    /// choose; see [`RunState::inline_runs`]).
    fn inline_runs(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// The CPU: plans with native kernels ([`Plan`]) run with a [`RunState`].
#[derive(Debug, Clone)]
pub struct CpuBackend {
    options: PlanOptions,
    adaptive: bool,
    prepack: bool,
}

impl CpuBackend {
    /// Plans made with `options`; runs choosing dispatched or inline steps by measuring
    /// (`adaptive`, see [`RunState::with_adaptive`]); constant matmul weights packed for
    /// the GEMM before planning when `prepack` ([`crate::prepack_weights`]).
    pub fn new(options: PlanOptions, adaptive: bool, prepack: bool) -> CpuBackend {
        CpuBackend {
            options,
            adaptive,
            prepack,
        }
    }

    /// The options plans are made with.
    pub fn options(&self) -> PlanOptions {
        self.options
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn prepare(&self, graph: &mut Graph, keep: &[ValueId]) -> usize {
        if self.prepack && self.options.native {
            crate::prepack_weights(graph, keep)
        } else {
            0
        }
    }

    fn compile(
        &self,
        graph: &Arc<Graph>,
        keep: &[ValueId],
        shapes: &[Vec<usize>],
    ) -> Result<Arc<dyn Executable>> {
        Ok(Arc::new(Plan::new(
            graph.clone(),
            shapes,
            keep,
            self.options,
        )?))
    }

    fn new_state(&self) -> Result<Box<dyn ExecState>> {
        Ok(Box::new(RunState::with_adaptive(
            self.options.threads,
            self.adaptive,
        )))
    }
}

impl Executable for Plan {
    fn input_shapes(&self) -> &[Vec<usize>] {
        Plan::input_shapes(self)
    }

    fn run(
        &self,
        inputs: &dyn Inputs,
        state: &mut dyn ExecState,
        times: Option<&mut [u64]>,
    ) -> Result<()> {
        let state = (state as &mut dyn Any)
            .downcast_mut::<RunState>()
            .ok_or_else(|| crate::Error::State("a CPU plan runs with a CPU run state".into()))?;
        self.run_timed(inputs, state, times)
    }

    fn step_count(&self) -> usize {
        Plan::step_count(self)
    }

    fn memory(&self) -> &MemoryReport {
        Plan::memory(self)
    }
}

impl ExecState for RunState {
    fn outputs(&self) -> &[Tensor] {
        RunState::outputs(self)
    }
    fn inline_runs(&self) -> (u64, u64) {
        RunState::inline_runs(self)
    }
}
