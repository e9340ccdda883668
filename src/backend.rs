//! Which executor a configuration asks for: the CPU, a GPU (or its emulator), or a
//! backend of the caller's own ([`crate::Config::backend`]) — and the cost model its graphs
//! are optimized with unless the configuration names one. The one place that knows the
//! kinds of backend; the predictor runs them all through [`kayak_exec::Backend`].

use crate::config::{Config, GpuChoice};
use crate::{GpuPlacement, Result};
use kayak_exec::{Backend, CpuBackend, PlanOptions};
use kayak_exec_gpu::{GpuBackend, Placer};
use kayak_ir::Graph;
use kayak_rewrite::{CostModel, Side};
use std::sync::Arc;

/// The backend `config` asks for, and the cost model to optimize with.
pub(crate) fn open(config: &Config) -> Result<(Arc<dyn Backend>, CostModel)> {
    if let Some(b) = &config.backend {
        let cost = config.cost_model.clone().unwrap_or_else(CostModel::cpu);
        return Ok((b.clone(), cost));
    }
    let Some(choice) = config.gpu else {
        let options = PlanOptions {
            threads: config.threads,
            native: config.native_kernels,
            reuse: config.memory_optim,
        };
        // Constant matmul weights are packed for the GEMM with optimization on (the
        // unoptimized graph stays the imported one).
        let cpu = CpuBackend::new(options, config.adaptive_threads, config.ir_optim);
        let cost = config.cost_model.clone().unwrap_or_else(CostModel::cpu);
        return Ok((Arc::new(cpu), cost));
    };
    let dev: Arc<dyn kayak_gpu::Device> = match choice {
        GpuChoice::Emulator => Arc::new(kayak_gpu::Emulator::new()?),
        GpuChoice::Cuda(id) => cuda(id)?,
    };
    let cost = config.cost_model.clone().unwrap_or_else(CostModel::gpu);
    let placer: Arc<Placer> = match config.gpu_placement {
        GpuPlacement::Device => GpuBackend::device_placer(),
        GpuPlacement::Cost => {
            let cost = cost.clone();
            Arc::new(move |g: &Graph, support: &[bool]| {
                kayak_rewrite::place_with(g, &cost, support)
                    .side
                    .iter()
                    .map(|s| *s == Side::Device)
                    .collect()
            })
        }
    };
    Ok((Arc::new(GpuBackend::new(dev, placer)), cost))
}

/// NVIDIA GPU `id`, opened after the probe (cudarc would panic on a missing library).
fn cuda(id: usize) -> Result<Arc<dyn kayak_gpu::Device>> {
    #[cfg(feature = "cuda")]
    {
        Ok(Arc::new(kayak_gpu::CudaDevice::open(id)?))
    }
    #[cfg(not(feature = "cuda"))]
    {
        kayak_gpu::probe(id)?;
        Err(crate::Error::Gpu(kayak_gpu::GpuError::NotBuilt))
    }
}
