//! What a step's kernel reads and writes: the one place the CPU run turns the plan's
//! storage into slices.
//!
//! A run resolves each value to a [`Region`] (a pointer and a byte length) and hands a
//! step's kernel its inputs through [`Ins`] and its outputs and scratch through [`Outs`].
//! Every region is checked **where it is made** (it lies inside the arena, the input
//! tensor or the output tensor it names, at its element type's alignment), and every slice
//! handed out is checked against the step's others (an output never overlaps an input,
//! except the input read in place, which is never handed out as an input; outputs and
//! scratch never overlap each other; each output is handed out once). So the `unsafe`
//! here holds for any plan, whatever its storage says: a wrong plan gives an error, not a
//! wild read or write. The slices live as long as the borrow of the step's `Ins`/`Outs`,
//! so a kernel cannot keep one past its step.

use crate::plan::{Loc, Step, Storage};
use crate::{Error, Inputs, Result};
use kayak_ir::{DType, Node, Tensor};
use kayak_kernels::ops::Src;
use kayak_kernels::ThreadPool;
use std::marker::PhantomData;

/// A raw region of memory: pointer and byte length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    ptr: *mut u8,
    bytes: usize,
}

// SAFETY: a region is an address and a length; moving or sharing one between threads
// touches no memory. Only this module dereferences regions, and only those of the run in
// progress (`Ctx`), while it holds the borrows the region came from.
#[allow(unsafe_code)]
unsafe impl Send for Region {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl Sync for Region {}

impl Region {
    /// The region of a tensor's data, if the tensor is in standard (row-major, contiguous)
    /// layout — the only layout whose elements are `len` in a row from its pointer.
    pub(crate) fn of_tensor(t: &Tensor) -> Option<Region> {
        kayak_ir::with_tensor!(t, a => a.as_slice().map(|s| Region {
            ptr: s.as_ptr() as *mut u8,
            bytes: std::mem::size_of_val(s),
        }))
    }

    /// True if both describe the same bytes.
    pub(crate) fn same(&self, o: &Region) -> bool {
        self.ptr == o.ptr && self.bytes == o.bytes
    }

    fn overlaps(&self, o: &Region) -> bool {
        let (a, b) = (self.ptr as usize, o.ptr as usize);
        self.bytes > 0 && o.bytes > 0 && a < b + o.bytes && b < a + self.bytes
    }
}

/// Element types a kernel may view a region as: every bit pattern is a valid value of
/// each, so a view of any initialized bytes is a valid slice. (Bool data is viewed as
/// `u8`; this crate's kernels write bool outputs only as 0 or 1, or as copies of bool
/// bytes.)
pub(crate) trait Pod: Copy + private::Sealed {}
mod private {
    pub trait Sealed {}
}
macro_rules! pod {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl Pod for $t {}
    )*};
}
pod!(f32, f64, i64, i32, u16, u8);

/// The regions of a run's inputs and outputs, kept by its run state so that a run
/// allocates nothing (refilled at the start of every run; never read outside one).
#[derive(Debug, Default)]
pub(crate) struct RegionBufs {
    inputs: Vec<Region>,
    outputs: Vec<Region>,
}

/// Where a run's values are: the graph inputs, the arena, and the run's output tensors,
/// each borrowed for the run, their regions taken once at its start.
pub(crate) struct Ctx<'r> {
    inputs: &'r [Region],
    outputs: &'r [Region],
    arena: Region,
    _borrow: PhantomData<(&'r dyn Inputs, &'r mut [Tensor], &'r mut [u8])>,
}

impl<'r> Ctx<'r> {
    /// A run's context: its inputs (each in standard layout), the arena, and its output
    /// tensors, each borrowed for the run; their regions go in `bufs`.
    pub(crate) fn new(
        inputs: &'r dyn Inputs,
        arena: &'r mut crate::arena::Arena,
        outputs: &'r mut [Tensor],
        bufs: &'r mut RegionBufs,
    ) -> Result<Ctx<'r>> {
        bufs.inputs.clear();
        for k in 0..inputs.count() {
            let r = inputs
                .input(k)
                .and_then(Region::of_tensor)
                .ok_or_else(|| Error::Kernel(format!("input {k}: not set, or not row-major")))?;
            bufs.inputs.push(r);
        }
        bufs.outputs.clear();
        for (j, t) in outputs.iter_mut().enumerate() {
            let bytes = t.byte_len();
            let r = kayak_ir::with_tensor!(t, a => a.is_standard_layout().then(|| Region {
                bytes,
                ptr: a.as_mut_ptr().cast::<u8>(),
            }))
            .ok_or_else(|| Error::Kernel(format!("output {j} not in standard layout")))?;
            bufs.outputs.push(r);
        }
        let bufs: &'r RegionBufs = bufs;
        Ok(Ctx {
            inputs: &bufs.inputs,
            outputs: &bufs.outputs,
            arena: Region {
                bytes: arena.len(),
                ptr: arena.as_mut_ptr(),
            },
            _borrow: PhantomData,
        })
    }

    /// The data of output tensor `j`, writable.
    fn output(&self, j: usize) -> Result<Region> {
        self.outputs
            .get(j)
            .copied()
            .ok_or_else(|| Error::Kernel(format!("no output {j}")))
    }

    /// The region of a value, checked to lie inside the memory it names, at its dtype's
    /// alignment.
    pub(crate) fn region(&self, l: &Loc) -> Result<Region> {
        self.region_of(&l.storage, l.bytes(), l.dtype.size_of().max(1))
    }

    /// The region of `bytes` bytes at `storage`, checked to lie inside the memory it
    /// names, at an address that is a multiple of `align`.
    pub(crate) fn region_of(
        &self,
        storage: &Storage,
        bytes: usize,
        align: usize,
    ) -> Result<Region> {
        let inside = |r: Region, off: usize, what: &str| -> Result<Region> {
            if off.checked_add(bytes).is_none_or(|end| end > r.bytes) {
                return Err(Error::Kernel(format!(
                    "{what}: {bytes} bytes at {off} outside its {} bytes",
                    r.bytes
                )));
            }
            // SAFETY: `off + bytes <= r.bytes`, so the pointer stays inside (or one past
            // the end of) the region `r` describes.
            #[allow(unsafe_code)]
            let ptr = unsafe { r.ptr.add(off) };
            Ok(Region { ptr, bytes })
        };
        let r = match storage {
            Storage::Input(k) => inside(
                *self
                    .inputs
                    .get(*k)
                    .ok_or_else(|| Error::Kernel(format!("no input {k}")))?,
                0,
                "input",
            )?,
            Storage::Const(_, data) => inside(*data, 0, "constant")?,
            Storage::Arena(off) => inside(self.arena, *off, "arena value")?,
            Storage::Output(j) => inside(self.output(*j)?, 0, "output")?,
        };
        // Element sizes are powers of two.
        if !align.is_power_of_two() || (r.ptr as usize) & (align - 1) != 0 {
            return Err(Error::Kernel(format!(
                "a value at a misaligned address for {align}-byte elements"
            )));
        }
        Ok(r)
    }

    /// Copies the value at `src` into output tensor `j` (a kept value no step wrote
    /// there: a graph input, a constant, a view of an arena value, or another output).
    pub(crate) fn copy_to_output(&self, src: &Loc, j: usize) -> Result<()> {
        let from = self.region_of(&src.storage, src.bytes(), 1)?;
        let to = self.output(j)?;
        if from.bytes != to.bytes || from.overlaps(&to) {
            return Err(Error::Kernel(format!(
                "output {j}: a copy of {} bytes into {} (or onto itself)",
                from.bytes, to.bytes
            )));
        }
        // SAFETY: both regions lie inside live memory of the run (`region_of`, `output`),
        // have the same length and do not overlap; no slice of a step is alive between
        // steps.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(from.ptr, to.ptr, from.bytes)
        };
        Ok(())
    }
}

/// A step's inputs, read-only. Copied freely; slices live as long as the step's borrow.
#[derive(Clone, Copy)]
pub(crate) struct Ins<'a> {
    ctx: &'a Ctx<'a>,
    step: &'a Step,
    locs: &'a [Option<Loc>],
    node: &'a Node,
    pool: &'a ThreadPool,
}

fn view<'a, T: Pod>(r: Region) -> &'a [T] {
    // SAFETY: callers pass a region checked to lie inside live memory of the run at `T`'s
    // alignment (`Ctx::region_of` with the element size of `T`, `size_of::<T>()` bytes
    // being its dtype's size, or 1 for bytes) and overlapping no mutable slice of the step;
    // every bit pattern is a `T` (`Pod`).
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts(r.ptr as *const T, r.bytes / size_of::<T>())
    }
}

fn check_type<T: Pod>(l: &Loc, what: &str) -> Result<()> {
    if l.dtype.size_of() != size_of::<T>() {
        return Err(Error::Kernel(format!(
            "{what} holds {}, read as {}-byte elements",
            l.dtype,
            size_of::<T>()
        )));
    }
    Ok(())
}

/// The region of a step's scratch, if it has one.
fn scratch_region(ctx: &Ctx<'_>, step: &Step) -> Result<Option<Region>> {
    step.scratch
        .map(|(off, floats)| ctx.region_of(&Storage::Arena(off), floats * 4, 4))
        .transpose()
}

impl<'a> Ins<'a> {
    /// Step `step`'s inputs, its values' places in `locs`.
    pub(crate) fn new(
        ctx: &'a Ctx<'a>,
        step: &'a Step,
        locs: &'a [Option<Loc>],
        node: &'a Node,
        pool: &'a ThreadPool,
    ) -> Ins<'a> {
        Ins {
            ctx,
            step,
            locs,
            node,
            pool,
        }
    }

    fn value(&self, v: usize) -> Result<&'a Loc> {
        self.locs
            .get(v)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::Kernel(format!("value {v} has no place")))
    }

    /// The thread pool the step's kernel splits its work over.
    pub(crate) fn pool(&self) -> &'a ThreadPool {
        self.pool
    }

    /// The node the step runs (its op, for the reference fallback; its origin, for errors).
    pub(crate) fn node(&self) -> &'a Node {
        self.node
    }

    /// How many inputs the step has.
    pub(crate) fn len(&self) -> usize {
        self.step.inputs.len()
    }

    /// Input `k`'s dtype and shape.
    pub(crate) fn loc(&self, k: usize) -> Result<&'a Loc> {
        let v = *self
            .step
            .inputs
            .get(k)
            .ok_or_else(|| Error::Kernel(format!("no input {k}")))?;
        self.value(v)
    }

    /// Input `k`'s dtype.
    pub(crate) fn dtype(&self, k: usize) -> Result<DType> {
        Ok(self.loc(k)?.dtype)
    }

    /// Input `k` as elements of `T` (its dtype's size). Not the input read in place: that
    /// one is in the output buffer ([`Ins::src`]).
    pub(crate) fn get<T: Pod>(&self, k: usize) -> Result<&'a [T]> {
        let l = self.loc(k)?;
        check_type::<T>(l, "an input")?;
        Ok(view(self.checked(k, l, size_of::<T>())?))
    }

    /// Input `k`'s bytes, whatever its dtype.
    pub(crate) fn bytes(&self, k: usize) -> Result<&'a [u8]> {
        let l = self.loc(k)?;
        Ok(view(self.checked(k, l, 1)?))
    }

    /// Input `k`'s region (aligned to `align`), checked to overlap no output or scratch.
    fn checked(&self, k: usize, l: &Loc, align: usize) -> Result<Region> {
        if self.step.in_place == Some(k) {
            return Err(Error::Kernel(format!(
                "input {k} is read in place, from the output"
            )));
        }
        let r = self.ctx.region_of(&l.storage, l.bytes(), align)?;
        for &o in &self.step.outputs {
            if self.ctx.region(self.value(o)?)?.overlaps(&r) {
                return Err(Error::Kernel(format!("input {k} overlaps an output")));
            }
        }
        if scratch_region(self.ctx, self.step)?.is_some_and(|s| s.overlaps(&r)) {
            return Err(Error::Kernel(format!("input {k} overlaps the scratch")));
        }
        Ok(r)
    }

    /// Input `k` as f32s.
    pub(crate) fn f32(&self, k: usize) -> Result<&'a [f32]> {
        self.get(k)
    }

    /// Input `k` as f32s, or [`Src::Out`] when the step reads it in place from its output.
    pub(crate) fn src(&self, k: usize) -> Result<Src<'a>> {
        if self.step.in_place == Some(k) {
            check_type::<f32>(self.loc(k)?, "an in-place input")?;
            Ok(Src::Out)
        } else {
            Ok(Src::Slice(self.f32(k)?))
        }
    }

    /// An error of this step's node: its origin, and what failed.
    pub(crate) fn error(&self, source: kayak_ir::Error) -> Error {
        Error::Node {
            origin: self.node.origin.clone(),
            source,
        }
    }
}

/// A step's outputs and scratch, writable, each handed out once.
pub(crate) struct Outs<'a> {
    ins: Ins<'a>,
    taken: u64,
    scratch_taken: bool,
}

impl<'a> Outs<'a> {
    pub(crate) fn new(ins: Ins<'a>) -> Outs<'a> {
        Outs {
            ins,
            taken: 0,
            scratch_taken: false,
        }
    }

    /// How many outputs the step has.
    pub(crate) fn len(&self) -> usize {
        self.ins.step.outputs.len()
    }

    /// Output `j`'s dtype and shape.
    pub(crate) fn loc(&self, j: usize) -> Result<&'a Loc> {
        let v = *self
            .ins
            .step
            .outputs
            .get(j)
            .ok_or_else(|| Error::Kernel(format!("no output {j}")))?;
        self.ins.value(v)
    }

    /// A region of this step's written memory, checked against everything else the step
    /// touches: inputs (but the one read in place), the other outputs, the scratch.
    fn writable(&self, r: Region, skip_out: Option<usize>, is_scratch: bool) -> Result<Region> {
        let ins = &self.ins;
        let step = ins.step;
        for (k, &v) in step.inputs.iter().enumerate() {
            if step.in_place != Some(k) && ins.ctx.region(ins.value(v)?)?.overlaps(&r) {
                return Err(Error::Kernel(format!("an output overlaps input {k}")));
            }
        }
        for (j, &v) in step.outputs.iter().enumerate() {
            if Some(j) != skip_out && ins.ctx.region(ins.value(v)?)?.overlaps(&r) {
                return Err(Error::Kernel("two outputs overlap".into()));
            }
        }
        if !is_scratch && scratch_region(ins.ctx, step)?.is_some_and(|s| s.overlaps(&r)) {
            return Err(Error::Kernel("an output overlaps the scratch".into()));
        }
        Ok(r)
    }

    /// Output `j` as elements of `T` (its dtype's size), once.
    pub(crate) fn get<T: Pod>(&mut self, j: usize) -> Result<&'a mut [T]> {
        let l = self.loc(j)?;
        check_type::<T>(l, "an output")?;
        let r = self.take(j, l, size_of::<T>())?;
        // SAFETY: `r` lies inside live memory of the run at `T`'s alignment
        // (`Ctx::region_of`), overlaps no input slice, other output or the scratch of this
        // step and is handed out once (`take`), so this is the only reference to it while
        // the step runs; every bit pattern is a `T`.
        #[allow(unsafe_code)]
        Ok(unsafe { std::slice::from_raw_parts_mut(r.ptr as *mut T, r.bytes / size_of::<T>()) })
    }

    /// Output `j`'s bytes, whatever its dtype, once. (A bool output must receive only 0, 1
    /// or copies of bool bytes.)
    pub(crate) fn bytes(&mut self, j: usize) -> Result<&'a mut [u8]> {
        let l = self.loc(j)?;
        let r = self.take(j, l, 1)?;
        // SAFETY: as for `get`, with `u8` elements.
        #[allow(unsafe_code)]
        Ok(unsafe { std::slice::from_raw_parts_mut(r.ptr, r.bytes) })
    }

    /// Marks output `j` taken and returns its region, checked (see `writable`).
    fn take(&mut self, j: usize, l: &Loc, align: usize) -> Result<Region> {
        if j >= 64 || self.taken & (1 << j) != 0 {
            return Err(Error::Kernel(format!("output {j} asked for twice")));
        }
        let r = self.ins.ctx.region_of(&l.storage, l.bytes(), align)?;
        let r = self.writable(r, Some(j), false)?;
        self.taken |= 1 << j;
        Ok(r)
    }

    /// Output `j` as f32s.
    pub(crate) fn f32(&mut self, j: usize) -> Result<&'a mut [f32]> {
        self.get(j)
    }

    /// The step's scratch (empty if it has none), once.
    pub(crate) fn scratch(&mut self) -> Result<&'a mut [f32]> {
        if self.scratch_taken {
            return Err(Error::Kernel("scratch asked for twice".into()));
        }
        let Some(r) = scratch_region(self.ins.ctx, self.ins.step)? else {
            return Ok(&mut []);
        };
        let r = self.writable(r, None, true)?;
        self.scratch_taken = true;
        // SAFETY: as for `get`: inside the arena, aligned, disjoint from every other slice
        // of the step, handed out once.
        #[allow(unsafe_code)]
        Ok(unsafe { std::slice::from_raw_parts_mut(r.ptr as *mut f32, r.bytes / 4) })
    }
}

#[cfg(test)]
mod tests {
    //! The checks that keep a step's slices sound whatever the plan says: every region
    //! inside its memory, no output overlapping an input (but the one read in place) or
    //! another output or the scratch, each output handed out once. These run under Miri in
    //! CI (`.ci/run`), which would flag any out-of-bounds or aliasing access.
    use super::*;
    use crate::arena::Arena;
    use crate::cpu::StepKernel;
    use kayak_ir::ops::Identity;
    use kayak_ir::Op;

    fn loc(storage: Storage, dtype: DType, n: usize) -> Option<Loc> {
        Some(Loc {
            storage,
            dtype,
            shape: vec![n],
            len: n,
        })
    }

    fn step(inputs: Vec<usize>, outputs: Vec<usize>, in_place: Option<usize>) -> Step {
        Step {
            node: 0,
            inputs,
            outputs,
            kernel: StepKernel::Alias,
            in_place,
            scratch: None,
        }
    }

    fn node() -> Node {
        Node {
            op: Op::Identity(Identity),
            inputs: vec![],
            outputs: vec![],
            origin: "test".into(),
        }
    }

    /// A context over one input of 4 f32s, a 256-byte arena and one output of 4 f32s.
    fn with_ctx(f: impl FnOnce(&Ctx<'_>)) {
        let input = vec![Tensor::from_f32s(&[4], vec![1.0, 2.0, 3.0, 4.0]).unwrap()];
        let mut arena = Arena::new();
        arena.grow(256);
        let mut outputs = vec![Tensor::zeros(DType::F32, &[4])];
        let mut bufs = RegionBufs::default();
        let ctx = Ctx::new(&input, &mut arena, &mut outputs, &mut bufs).unwrap();
        f(&ctx);
    }

    #[test]
    fn a_step_reads_its_inputs_and_writes_its_outputs_once() {
        with_ctx(|ctx| {
            // v0: the input, v1: an arena value at 64, v2: the run's output.
            let locs = vec![
                loc(Storage::Input(0), DType::F32, 4),
                loc(Storage::Arena(64), DType::F32, 4),
                loc(Storage::Output(0), DType::F32, 4),
            ];
            let pool = ThreadPool::new(1);
            let n = node();
            let s = step(vec![0], vec![1, 2], None);
            let ins = Ins::new(ctx, &s, &locs, &n, &pool);
            let mut outs = Outs::new(ins);
            let x = ins.f32(0).unwrap();
            let a = outs.f32(0).unwrap();
            let o = outs.f32(1).unwrap();
            a.copy_from_slice(x);
            for (o, x) in o.iter_mut().zip(x) {
                *o = 2.0 * x;
            }
            assert!(outs.f32(0).is_err(), "an output handed out twice");
            assert!(
                ins.get::<i64>(0).is_err(),
                "f32 data read as 8-byte elements"
            );
            assert_eq!(a, &[1.0, 2.0, 3.0, 4.0]);
            assert_eq!(o, &[2.0, 4.0, 6.0, 8.0]);
        });
    }

    #[test]
    fn regions_outside_their_memory_are_errors() {
        with_ctx(|ctx| {
            let pool = ThreadPool::new(1);
            let n = node();
            let locs = vec![
                // Past the arena's end, at an offset near usize::MAX, past the input.
                loc(Storage::Arena(240), DType::F32, 8),
                loc(Storage::Arena(usize::MAX - 2), DType::F32, 4),
                loc(Storage::Input(0), DType::F32, 5),
                loc(Storage::Input(3), DType::F32, 4),
                loc(Storage::Output(0), DType::F32, 8),
            ];
            for v in 0..4 {
                let s = step(vec![v], vec![], None);
                let ins = Ins::new(ctx, &s, &locs, &n, &pool);
                assert!(ins.f32(0).is_err(), "value {v}");
            }
            let s = step(vec![], vec![4], None);
            let mut outs = Outs::new(Ins::new(ctx, &s, &locs, &n, &pool));
            assert!(outs.f32(0).is_err(), "an output larger than its tensor");
        });
    }

    #[test]
    fn overlapping_inputs_outputs_and_scratch_are_errors() {
        with_ctx(|ctx| {
            let pool = ThreadPool::new(1);
            let n = node();
            let locs = vec![
                loc(Storage::Arena(0), DType::F32, 8),
                loc(Storage::Arena(16), DType::F32, 8),
                loc(Storage::Arena(128), DType::F32, 4),
            ];
            // An output over an input.
            let s = step(vec![0], vec![1], None);
            let ins = Ins::new(ctx, &s, &locs, &n, &pool);
            assert!(ins.f32(0).is_err());
            assert!(Outs::new(ins).f32(0).is_err());
            // Two outputs over each other.
            let s = step(vec![], vec![0, 1], None);
            let mut outs = Outs::new(Ins::new(ctx, &s, &locs, &n, &pool));
            assert!(outs.f32(0).is_err() && outs.f32(1).is_err());
            // The scratch over an output.
            let mut s = step(vec![], vec![2], None);
            s.scratch = Some((128, 4));
            let mut outs = Outs::new(Ins::new(ctx, &s, &locs, &n, &pool));
            assert!(outs.f32(0).is_err() && outs.scratch().is_err());
            // In place: the output may cover the input read in place, never given out
            // as an input; another input over it is an error.
            let s = step(vec![2], vec![2], Some(0));
            let ins = Ins::new(ctx, &s, &locs, &n, &pool);
            assert!(ins.f32(0).is_err());
            assert!(matches!(ins.src(0), Ok(kayak_kernels::ops::Src::Out)));
            assert!(Outs::new(ins).f32(0).is_ok());
            let s = step(vec![2, 2], vec![2], Some(0));
            let ins = Ins::new(ctx, &s, &locs, &n, &pool);
            assert!(ins.f32(1).is_err());
            assert!(Outs::new(ins).f32(0).is_err());
        });
    }

    #[test]
    fn inputs_not_in_row_major_layout_are_refused() {
        let t = Tensor::F32(
            ndarray::Array2::<f32>::zeros((3, 2))
                .reversed_axes()
                .into_dyn(),
        );
        let mut arena = Arena::new();
        let mut outputs = vec![];
        let mut bufs = RegionBufs::default();
        assert!(Ctx::new(&vec![t], &mut arena, &mut outputs, &mut bufs).is_err());
    }
}
