//! GPU plans: a concrete graph, its nodes' sides, its kernels compiled as one module, its
//! weights on the device, and its steps.

use crate::lower::{self, lower, DevOp, Operand};
use crate::{gpu_err, Error, Result};
use kayak_exec::memory::{assign_offsets, Lifetime};
use kayak_exec::Inputs;
use kayak_gpu::{Arg, DevPtr, Device, Gemm, LaunchDims, Module, Source};
use kayak_ir::{DType, Graph, Tensor, ValueDef, ValueId};
use std::collections::HashMap;
use std::sync::Arc;

/// A device allocation, freed on drop.
struct Buffer {
    dev: Arc<dyn Device>,
    ptr: DevPtr,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.dev.free(self.ptr);
    }
}

/// One step of a run.
#[derive(Debug, Clone)]
enum GStep {
    Launch {
        kernel: usize,
        dims: LaunchDims,
        /// Scalars, or where a tensor is.
        args: Vec<Result<Arg, Addr>>,
    },
    /// The GEMM's `a`, `b`, `c` are added to these.
    Gemm(Gemm, [Addr; 3]),
    Upload {
        value: ValueId,
        at: Addr,
    },
    Download {
        value: ValueId,
        at: Addr,
    },
    Host {
        node: usize,
    },
}

/// A device address: in the plan's weight buffer, or an offset in the run's arena.
#[derive(Debug, Clone, Copy)]
enum Addr {
    Abs(DevPtr),
    Arena(u64),
}

impl Addr {
    fn at(self, arena: DevPtr) -> DevPtr {
        match self {
            Addr::Abs(p) => p,
            Addr::Arena(off) => arena + off,
        }
    }
}

/// A predictor's own side of running GPU plans: a device handle with its own stream, and
/// the arena its runs use (grown to the largest plan it has run). Clones each have one, so
/// their runs proceed independently on one device, sharing the plans' kernels and weights.
pub struct GpuState {
    dev: Arc<dyn Device>,
    arena: Option<Buffer>,
    arena_bytes: usize,
    /// The kept values of the last run.
    outputs: Vec<Tensor>,
}

impl std::fmt::Debug for GpuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuState")
            .field("device", &self.dev.name())
            .field("arena_bytes", &self.arena_bytes)
            .finish()
    }
}

impl GpuState {
    /// A state running on `dev`: a handle of the device the plans were made on (from its
    /// [`Device::new_stream`], for a stream of its own).
    pub fn new(dev: Arc<dyn Device>) -> GpuState {
        GpuState {
            dev,
            arena: None,
            arena_bytes: 0,
            outputs: Vec::new(),
        }
    }

    /// The kept values of the last run.
    pub fn outputs(&self) -> &[Tensor] {
        &self.outputs
    }

    /// The arena's address, grown to at least `bytes`.
    fn arena(&mut self, bytes: usize) -> Result<DevPtr> {
        if bytes > self.arena_bytes || self.arena.is_none() {
            self.arena = None;
            self.arena = Some(Buffer {
                ptr: self
                    .dev
                    .alloc(bytes.max(self.arena_bytes).max(256))
                    .map_err(gpu_err)?,
                dev: self.dev.clone(),
            });
            self.arena_bytes = bytes.max(self.arena_bytes);
        }
        Ok(self.arena.as_ref().map_or(0, |a| a.ptr))
    }
}

/// What a plan does where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuReport {
    /// Nodes run on the device (views included).
    pub device_nodes: usize,
    /// Nodes run on the host.
    pub host_nodes: usize,
    /// The op kinds run on the host, with their counts.
    pub host_ops: std::collections::BTreeMap<String, usize>,
    /// Copies host → device per run.
    pub uploads: usize,
    /// Copies device → host per run.
    pub downloads: usize,
    /// Kernel launches and GEMMs per run.
    pub launches: usize,
    /// Distinct kernels compiled.
    pub kernels: usize,
    /// The device arena's size.
    pub arena_bytes: usize,
    /// Weights and index tables held on the device.
    pub weight_bytes: usize,
}

/// A graph planned for one device and one input-shape signature.
pub struct GpuPlan {
    dev: Arc<dyn Device>,
    module: Option<Box<dyn Module>>,
    graph: Graph,
    /// The input shapes it runs.
    shapes: Vec<Vec<usize>>,
    steps: Vec<GStep>,
    arena_bytes: usize,
    _weights: Option<Buffer>,
    report: GpuReport,
    /// The device arena, as an executor's memory figures.
    memory: kayak_exec::MemoryReport,
}

impl std::fmt::Debug for GpuPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPlan")
            .field("device", &self.dev.name())
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

/// Where an operand's bytes will be, before the arena and weight buffer exist.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Arena buffer `k`, plus a byte offset.
    Arena(usize, usize),
    /// The weight buffer, at a byte offset.
    Weight(usize),
}

/// A step before addresses are known.
enum Pending {
    Launch {
        kernel: usize,
        dims: LaunchDims,
        args: Vec<Result<Arg, Slot>>,
    },
    Gemm(Gemm, [Slot; 3]),
    Upload(ValueId, Slot),
    Download(ValueId, Slot),
    Host(usize),
}

/// What a buffer in the arena holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// A value (by the root of its view chain).
    Value(ValueId),
    /// Scratch `id` of node `node`.
    Scratch(usize, usize),
}

/// A plan in the making: kernels, weights, arena buffers and steps.
struct Builder<'a> {
    g: &'a Graph,
    on_device: &'a [bool],
    source: Source,
    /// Kernels, deduplicated by their text.
    kernel_index: HashMap<(Vec<kayak_gpu::Param>, String), usize>,
    /// Weights and index tables: one buffer.
    weight_bytes: Vec<u8>,
    weight_at: HashMap<ValueId, usize>,
    /// Arena buffers and their lifetimes over `pending`'s steps.
    buffers: Vec<Lifetime>,
    buffer_of: HashMap<Key, usize>,
    pending: Vec<Pending>,
}

impl Builder<'_> {
    /// A view's output lives in its input's bytes: the value whose bytes `v` uses.
    fn root(&self, mut v: ValueId) -> ValueId {
        let g = self.g;
        while let ValueDef::Node { node, .. } = g.values[v].def {
            let n = &g.nodes[node];
            if self.on_device[node] && n.op.is_view() && g.const_value(n.inputs[0]).is_none() {
                v = n.inputs[0];
            } else {
                break;
            }
        }
        v
    }

    /// The arena buffer `key` of `bytes`, alive at the step about to be pushed.
    fn touch(&mut self, key: Key, bytes: usize) -> Slot {
        let step = self.pending.len();
        let buffers = &mut self.buffers;
        let b = *self.buffer_of.entry(key).or_insert_with(|| {
            buffers.push(Lifetime {
                first: step,
                last: step,
                bytes: bytes.max(4),
            });
            buffers.len() - 1
        });
        self.buffers[b].last = self.buffers[b].last.max(step);
        Slot::Arena(b, 0)
    }

    /// The arena slot of a device value.
    fn value_slot(&mut self, v: ValueId) -> Slot {
        let r = self.root(v);
        let t = &self.g.values[r].ty;
        let bytes = t.shape.numel().known().unwrap_or(0) * t.dtype.size_of();
        self.touch(Key::Value(r), bytes)
    }

    /// Bytes in the weight buffer, at their offset.
    fn place_weight(&mut self, bytes: &[u8]) -> usize {
        let at = self.weight_bytes.len().div_ceil(256) * 256;
        self.weight_bytes.resize(at, 0);
        self.weight_bytes.extend_from_slice(bytes);
        at
    }

    /// A kernel's index in the module (the same text compiled once).
    fn kernel(&mut self, params: &[kayak_gpu::Param], body: &str) -> usize {
        let next = self.source.kernels.len();
        let kernels = &mut self.source.kernels;
        *self
            .kernel_index
            .entry((params.to_vec(), body.to_string()))
            .or_insert_with(|| {
                kernels.push(kayak_gpu::KernelSpec {
                    name: format!("k{next}"),
                    params: params.to_vec(),
                    body: body.to_string(),
                });
                next
            })
    }

    /// An operand of node `node`: a scalar argument now, or where its bytes will be.
    fn operand(&mut self, o: &Operand, node: usize) -> Result<Arg, Slot> {
        match o {
            Operand::I32(v) => Ok(Arg::I32(*v)),
            Operand::F32(v) => Ok(Arg::F32(*v)),
            Operand::Value(v) => Err(match self.g.const_value(*v) {
                Some(t) => {
                    let at = match self.weight_at.get(v) {
                        Some(&at) => at,
                        None => {
                            let at = self.place_weight(&t.cast(DType::F32).to_le_bytes());
                            self.weight_at.insert(*v, at);
                            at
                        }
                    };
                    Slot::Weight(at)
                }
                None => self.value_slot(*v),
            }),
            Operand::Table(t) => {
                let bytes: Vec<u8> = t.iter().flat_map(|x| x.to_le_bytes()).collect();
                Err(Slot::Weight(self.place_weight(&bytes)))
            }
            Operand::FTable(t) => {
                let bytes: Vec<u8> = t.iter().flat_map(|x| x.to_le_bytes()).collect();
                Err(Slot::Weight(self.place_weight(&bytes)))
            }
            Operand::ScratchOf(id, floats) => Err(self.touch(Key::Scratch(node, *id), 4 * floats)),
        }
    }
}

impl GpuPlan {
    /// Plans `graph` (concrete types, [`concretize`]) on `dev`, node `k` on the device where
    /// `on_device[k]`; the graph's outputs are what a run returns.
    ///
    /// # Errors
    /// [`Error::Backend`] if a node placed on the device has no lowering, or the device fails
    /// (compiling, allocating, uploading weights).
    pub fn new(dev: Arc<dyn Device>, graph: Graph, on_device: &[bool]) -> Result<GpuPlan> {
        let shapes = graph
            .inputs
            .iter()
            .map(|&v| {
                graph.values[v].ty.shape.to_known().ok_or_else(|| {
                    Error::Plan(kayak_ir::Error::Graph(format!(
                        "input {} has no concrete shape",
                        graph.values[v].name
                    )))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let g = &graph;
        if on_device.len() != g.nodes.len() {
            return Err(gpu_err(kayak_gpu::GpuError::Launch(format!(
                "{} sides for {} nodes",
                on_device.len(),
                g.nodes.len()
            ))));
        }
        let mut lowered: Vec<Option<Vec<DevOp>>> = Vec::with_capacity(g.nodes.len());
        for (k, node) in g.nodes.iter().enumerate() {
            if on_device[k] {
                let l = lower(g, k).ok_or_else(|| {
                    gpu_err(kayak_gpu::GpuError::Launch(format!(
                        "{}: {} has no device kernel but was placed on the device",
                        node.origin,
                        node.op.name()
                    )))
                })?;
                lowered.push(Some(l));
            } else {
                lowered.push(None);
            }
        }

        let mut b = Builder {
            g,
            on_device,
            source: Source {
                helpers: lower::HELPERS.to_string(),
                kernels: Vec::new(),
            },
            kernel_index: HashMap::new(),
            weight_bytes: Vec::new(),
            weight_at: HashMap::new(),
            buffers: Vec::new(),
            buffer_of: HashMap::new(),
            pending: Vec::new(),
        };
        let mut on_dev = vec![false; g.values.len()];
        let mut on_host = vec![false; g.values.len()];
        for &v in &g.inputs {
            on_host[v] = true;
        }
        let mut report = GpuReport::default();
        for (k, node) in g.nodes.iter().enumerate() {
            let Some(ops) = &lowered[k] else {
                report.host_nodes += 1;
                *report
                    .host_ops
                    .entry(node.op.name().to_string())
                    .or_insert(0) += 1;
                for &v in &node.inputs {
                    if g.const_value(v).is_none() && !on_host[v] {
                        let s = b.value_slot(v);
                        b.pending.push(Pending::Download(v, s));
                        report.downloads += 1;
                        on_host[v] = true;
                    }
                }
                b.pending.push(Pending::Host(k));
                for &o in &node.outputs {
                    on_host[o] = true;
                }
                continue;
            };
            report.device_nodes += 1;
            for &v in &node.inputs {
                if g.const_value(v).is_none() && !on_dev[v] {
                    let s = b.value_slot(v);
                    b.pending.push(Pending::Upload(v, s));
                    report.uploads += 1;
                    on_dev[v] = true;
                }
            }
            for op in ops {
                match op {
                    DevOp::View => {}
                    DevOp::Kernel {
                        params,
                        body,
                        dims,
                        args,
                    } => {
                        let kernel = b.kernel(params, body);
                        let args = args.iter().map(|a| b.operand(a, k)).collect();
                        b.pending.push(Pending::Launch {
                            kernel,
                            dims: *dims,
                            args,
                        });
                        report.launches += 1;
                    }
                    DevOp::Gemm { gemm, a, b: bm, c } => {
                        let slot = |b: &mut Builder<'_>, o: &Operand| match b.operand(o, k) {
                            Err(slot) => Ok(slot),
                            Ok(_) => Err(gpu_err(kayak_gpu::GpuError::Launch(format!(
                                "{}: a GEMM operand that is not a tensor",
                                node.origin
                            )))),
                        };
                        let s = [slot(&mut b, a)?, slot(&mut b, bm)?, slot(&mut b, c)?];
                        b.pending.push(Pending::Gemm(*gemm, s));
                        report.launches += 1;
                    }
                }
            }
            for &o in &node.outputs {
                on_dev[o] = true;
            }
        }
        for &v in &g.outputs {
            if g.const_value(v).is_none() && !on_host[v] {
                let s = b.value_slot(v);
                b.pending.push(Pending::Download(v, s));
                report.downloads += 1;
                on_host[v] = true;
            }
        }
        let Builder {
            source,
            weight_bytes,
            buffers,
            pending,
            ..
        } = b;

        // Addresses.
        let (offsets, arena_bytes) = assign_offsets(&buffers);
        let buffers_len = buffers.len();
        let weights = if weight_bytes.is_empty() {
            None
        } else {
            let b = Buffer {
                ptr: dev.alloc(weight_bytes.len()).map_err(gpu_err)?,
                dev: dev.clone(),
            };
            dev.upload(b.ptr, &weight_bytes).map_err(gpu_err)?;
            // Runs read the weights from streams of their own: the upload must be done.
            dev.synchronize().map_err(gpu_err)?;
            Some(b)
        };
        let addr = |s: Slot| -> Addr {
            match s {
                Slot::Arena(b, off) => Addr::Arena((offsets[b] + off) as u64),
                Slot::Weight(off) => Addr::Abs(weights.as_ref().map_or(0, |w| w.ptr) + off as u64),
            }
        };
        let steps: Vec<GStep> = pending
            .into_iter()
            .map(|p| match p {
                Pending::Launch { kernel, dims, args } => GStep::Launch {
                    kernel,
                    dims,
                    args: args.into_iter().map(|a| a.map_err(addr)).collect(),
                },
                Pending::Gemm(gm, [a, b, c]) => GStep::Gemm(gm, [addr(a), addr(b), addr(c)]),
                Pending::Upload(value, s) => GStep::Upload { value, at: addr(s) },
                Pending::Download(value, s) => GStep::Download { value, at: addr(s) },
                Pending::Host(node) => GStep::Host { node },
            })
            .collect();
        report.kernels = source.kernels.len();
        report.arena_bytes = arena_bytes;
        report.weight_bytes = weight_bytes.len();
        let module = if source.kernels.is_empty() {
            None
        } else {
            Some(dev.compile(&source).map_err(gpu_err)?)
        };
        let memory = kayak_exec::MemoryReport {
            arena_bytes,
            intermediates: buffers_len,
            ..Default::default()
        };
        Ok(GpuPlan {
            dev,
            module,
            graph,
            shapes,
            steps,
            arena_bytes,
            _weights: weights,
            report,
            memory,
        })
    }

    /// What runs where.
    pub fn report(&self) -> &GpuReport {
        &self.report
    }

    /// The input shapes it runs.
    pub fn shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Steps a run takes (launches, GEMMs, copies, host ops).
    pub fn steps(&self) -> usize {
        self.steps.len()
    }

    /// The device arena, as an executor's memory figures.
    pub fn memory_report(&self) -> &kayak_exec::MemoryReport {
        &self.memory
    }

    /// The planned graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The device the plan was made on (its kernels and weights live there).
    pub fn device(&self) -> &Arc<dyn Device> {
        &self.dev
    }

    /// Runs the plan on `inputs` (in the graph's input order) with `state`'s stream and
    /// arena, returning its outputs.
    ///
    /// # Errors
    /// [`Error::Input`] for inputs that do not match the plan; [`Error::Node`] for a host
    /// op failing; [`Error::Backend`] for the device failing.
    pub fn run(&self, state: &mut GpuState, inputs: &dyn Inputs) -> Result<()> {
        let g = &self.graph;
        if inputs.count() != g.inputs.len() {
            return Err(Error::Input {
                index: inputs.count().min(g.inputs.len()),
                reason: format!(
                    "{} inputs given, the plan has {}",
                    inputs.count(),
                    g.inputs.len()
                ),
            });
        }
        let mut host: Vec<Option<Tensor>> = vec![None; g.values.len()];
        for (i, &v) in g.inputs.iter().enumerate() {
            let t = inputs.input(i).ok_or_else(|| Error::Input {
                index: i,
                reason: "not set".into(),
            })?;
            let want = &g.values[v].ty;
            if t.dtype() != want.dtype || Some(t.shape().to_vec()) != want.shape.to_known() {
                return Err(Error::Input {
                    index: i,
                    reason: format!("got {}{:?}, the plan is for {}", t.dtype(), t.shape(), want),
                });
            }
            host[v] = Some(t.clone());
        }
        let arena = state.arena(self.arena_bytes)?;
        let dev = state.dev.clone();
        // A value on the host: a weight where it is, or what the run put there (borrowed;
        // host ops read their inputs without copying them).
        fn value<'h>(g: &'h Graph, host: &'h [Option<Tensor>], v: ValueId) -> Result<&'h Tensor> {
            g.const_value(v)
                .or(host[v].as_ref())
                .ok_or_else(|| missing(g, v))
        }
        for step in &self.steps {
            match step {
                GStep::Launch { kernel, dims, args } => {
                    let m = self
                        .module
                        .as_ref()
                        .ok_or_else(|| gpu_err(kayak_gpu::GpuError::Launch("no module".into())))?;
                    let args: Vec<Arg> = args
                        .iter()
                        .map(|a| match a {
                            Ok(arg) => *arg,
                            Err(at) => Arg::Ptr(at.at(arena)),
                        })
                        .collect();
                    dev.launch(m.as_ref(), *kernel, *dims, &args)
                        .map_err(gpu_err)?;
                }
                GStep::Gemm(gm, [a, b, c]) => {
                    let mut gm = *gm;
                    gm.a += a.at(arena);
                    gm.b += b.at(arena);
                    gm.c += c.at(arena);
                    dev.gemm(&gm).map_err(gpu_err)?;
                }
                GStep::Upload { value: v, at } => {
                    let t = host[*v].as_ref().ok_or_else(|| missing(g, *v))?;
                    dev.upload(at.at(arena), &t.to_le_bytes())
                        .map_err(gpu_err)?;
                }
                GStep::Download { value: v, at } => {
                    let ty = &g.values[*v].ty;
                    let shape = ty.shape.to_known().ok_or_else(|| missing(g, *v))?;
                    let mut bytes = vec![0u8; shape.iter().product::<usize>() * ty.dtype.size_of()];
                    dev.download(at.at(arena), &mut bytes).map_err(gpu_err)?;
                    host[*v] =
                        Some(Tensor::from_le_bytes(ty.dtype, &shape, &bytes).map_err(Error::Plan)?);
                }
                GStep::Host { node } => {
                    let n = &g.nodes[*node];
                    let refs: Vec<&Tensor> = n
                        .inputs
                        .iter()
                        .map(|&v| value(g, &host, v))
                        .collect::<Result<_>>()?;
                    let outs = n.op.eval(&refs).map_err(|e| Error::Node {
                        origin: n.origin.clone(),
                        source: e,
                    })?;
                    for (&o, t) in n.outputs.iter().zip(outs) {
                        host[o] = Some(t);
                    }
                }
            }
        }
        state.outputs.clear();
        for &v in &g.outputs {
            let t = value(g, &host, v)?.clone();
            state.outputs.push(t);
        }
        Ok(())
    }
}

fn missing(g: &Graph, v: ValueId) -> Error {
    gpu_err(kayak_gpu::GpuError::Launch(format!(
        "value {} is not on the host when needed (a planning bug)",
        g.values[v].name
    )))
}
