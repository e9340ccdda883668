//! Kayak's GPU backend: graphs planned onto a [`kayak_gpu::Device`] (an NVIDIA GPU, or the
//! CPU emulator that runs the same kernels in tests), a [`GpuPlan`] per input-shape
//! signature, run through the executor seam ([`kayak_exec::Backend`]).
//!
//! A plan takes a graph whose types are concrete ([`concretize`]) and a side per node
//! (device or host, chosen by the [`Placer`] the backend was made with — the facade gives
//! it `kayak_rewrite::place_with`, which minimizes op times plus copies). Every device
//! node is lowered ([`lower`]) to kernels generated as CUDA C for its exact shapes and
//! attributes (elementwise chains with their activations, direct convolutions with their
//! whole epilogue, pooling, softmax, layer norms, SE blocks, gathers for data movement)
//! or to a GEMM and its epilogue kernel; all the plan's kernels are compiled as one
//! module. A node with no lowering runs on the host with its reference op. Values cross
//! between the sides once per direction: uploaded before the first device reader,
//! downloaded before the first host reader or at the end for an output.
//!
//! Memory: weights and index tables read on the device are uploaded once, into one
//! allocation; every device intermediate, upload and scratch buffer gets an offset in one
//! device arena from the same liveness planner as the CPU's ([`kayak_exec::memory`]),
//! views aliasing their input.
//!
//! Architecture invariant: this crate plans graphs onto devices; the devices themselves
//! (`kayak-gpu`) never see a graph, and the CPU executor (`kayak-exec`) never sees this.
#![warn(missing_docs)]

mod concretize;
pub mod lower;
mod plan;

pub use concretize::{concretize, device_support};
pub use plan::{GpuPlan, GpuReport, GpuState};

use kayak_exec::{Backend, Error, ExecState, Executable, Inputs, MemoryReport, Result};
use kayak_gpu::{Device, GpuError};
use kayak_ir::{Graph, Tensor, ValueId};
use std::any::Any;
use std::sync::Arc;

/// A device failure as an executor error.
pub(crate) fn gpu_err(e: GpuError) -> Error {
    Error::Backend {
        backend: "gpu".into(),
        source: Box::new(e),
    }
}

/// Which side each node of a concrete graph runs on: given the graph and, per node,
/// whether the device has a kernel for it, `true` for the device. A placer may put only
/// supported nodes on the device.
pub type Placer = dyn Fn(&Graph, &[bool]) -> Vec<bool> + Send + Sync;

/// The GPU backend: a device and how nodes are placed on it.
pub struct GpuBackend {
    dev: Arc<dyn Device>,
    placer: Arc<Placer>,
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuBackend")
            .field("device", &self.dev.name())
            .finish_non_exhaustive()
    }
}

impl GpuBackend {
    /// Plans on `dev`, nodes placed by `placer`.
    pub fn new(dev: Arc<dyn Device>, placer: Arc<Placer>) -> GpuBackend {
        GpuBackend { dev, placer }
    }

    /// Every node with a device kernel on the device (as Paddle's GPU predictor places
    /// them).
    pub fn device_placer() -> Arc<Placer> {
        Arc::new(|_: &Graph, support: &[bool]| support.to_vec())
    }

    /// The device.
    pub fn device(&self) -> &Arc<dyn Device> {
        &self.dev
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> String {
        self.dev.name()
    }

    fn compile(
        &self,
        graph: &Arc<Graph>,
        keep: &[ValueId],
        shapes: &[Vec<usize>],
    ) -> Result<Arc<dyn Executable>> {
        let (g, _) = concretize(graph, keep, shapes)?;
        let support = device_support(&g);
        let mut sides = (self.placer)(&g, &support);
        if sides.len() != support.len() {
            return Err(Error::Invalid(format!(
                "the placer gave {} sides for {} nodes",
                sides.len(),
                support.len()
            )));
        }
        // A node without a device kernel runs on the host, whatever the placer said.
        for (s, &ok) in sides.iter_mut().zip(&support) {
            *s &= ok;
        }
        log::info!(
            "GPU plan for {shapes:?}: {} of {} ops on {}",
            sides.iter().filter(|&&s| s).count(),
            sides.len(),
            self.dev.name()
        );
        Ok(Arc::new(GpuPlan::new(self.dev.clone(), g, &sides)?))
    }

    fn new_state(&self) -> Result<Box<dyn ExecState>> {
        Ok(Box::new(GpuState::new(
            self.dev.new_stream().map_err(gpu_err)?,
        )))
    }
}

impl Executable for GpuPlan {
    fn input_shapes(&self) -> &[Vec<usize>] {
        self.shapes()
    }

    fn run(
        &self,
        inputs: &dyn Inputs,
        state: &mut dyn ExecState,
        _times: Option<&mut [u64]>,
    ) -> Result<()> {
        let state = (state as &mut dyn Any)
            .downcast_mut::<GpuState>()
            .ok_or_else(|| Error::State("a GPU plan runs with a GPU state".into()))?;
        GpuPlan::run(self, state, inputs)
    }

    fn step_count(&self) -> usize {
        self.steps()
    }

    fn memory(&self) -> &MemoryReport {
        self.memory_report()
    }
}

impl ExecState for GpuState {
    fn outputs(&self) -> &[Tensor] {
        GpuState::outputs(self)
    }
}
