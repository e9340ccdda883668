//! The instruction set the kernels use, detected once ([`isa`]), and the dispatch table
//! built from it ([`table`]): the best implementation of every routine that exists with
//! intrinsics (`crate::x86_64`), as function pointers, and the tuning values that depend
//! on the instruction set. The public API modules read the table; the ISA modules never
//! do (they sit below it, on the types of `gemm::types`, `conv::geom` and
//! `act::portable`), and no ISA module calls another's: where the AVX-512 table uses an
//! AVX2 kernel (narrow GEMM tails, the transcendental activations, the depthwise phases),
//! it is this table that puts it there, or hands it to the AVX-512 kernel as an argument.
//!
//! Portable loops compiled for each instruction set (`crate::simd!`) read [`isa`] itself.
//!
//! Soundness: a [`Table`] is built only here, once, from detection (its private field
//! keeps any other code from building one), and it is never mutated, so every kernel it
//! holds has its instruction set present on this CPU. Calling one through the table is
//! then sound wherever the kernel's other (length, aliasing) conditions hold; the kernels
//! themselves stay `unsafe fn`, so none can be called safely without the table's word.

#![allow(unsafe_code)]

use std::sync::OnceLock;

use crate::act::portable::{ExpSum, VectorAct};
use crate::conv::geom::{BlockedItem, DirectRow, DwPlane, DwScatter, Evens};
use crate::gemm::generic;
use crate::gemm::types::{Gemv, NnKernel, PackedRow, PackedTiles, Panel};
#[cfg(target_arch = "x86_64")]
use crate::{
    act::portable::Act,
    gemm::types::{Block, Epilogue, RowPass},
    x86_64::{avx2, avx512},
};

/// The instruction-set path the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable code.
    Generic,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512F.
    Avx512,
}

/// The best path this CPU supports, detected once. `KAYAK_ISA=generic|avx2|avx512` lowers
/// it (never raises it past what the CPU has), so tests can run every path.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let best = detect();
        match std::env::var("KAYAK_ISA").as_deref() {
            Ok("generic") => Isa::Generic,
            Ok("avx2") if best != Isa::Generic => Isa::Avx2,
            _ => best,
        }
    })
}

/// [`Isa::Avx512`] where AVX-512F is there (with AVX2 and FMA, which every AVX-512F CPU
/// has and the AVX-512 table's AVX2 kernels use), else [`Isa::Avx2`] with AVX2 and FMA.
fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        if std::is_x86_feature_detected!("avx512f") && avx2 {
            return Isa::Avx512;
        }
        if avx2 {
            return Isa::Avx2;
        }
    }
    Isa::Generic
}

/// The dispatch table of this CPU ([`isa`]'s instruction set), built on first use.
pub(crate) fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| match isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Table::avx512(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Table::avx2(),
        _ => Table::generic(),
    })
}

/// Every routine with intrinsics, at its best for this CPU (`None`: the caller's portable
/// code runs), and the tuning that depends on the instruction set. Only [`table`] builds
/// one (see the module's soundness note).
pub(crate) struct Table {
    /// The GEMM's.
    pub(crate) gemm: GemmTable,
    /// The activations'.
    pub(crate) act: ActTable,
    /// The convolutions'.
    pub(crate) conv: ConvTable,
    /// The other ops'.
    pub(crate) ops: OpsTable,
    /// Private: no table but [`table`]'s.
    _detected: (),
}

/// The GEMM's part of the [`Table`].
pub(crate) struct GemmTable {
    /// Rows and columns of the NN micro-kernel's full tile: the unit `gemm`'s task split
    /// cuts blocks in (AVX-512 12 × 32, AVX2 6 × 16, portable 4 × 8).
    pub(crate) tile: (usize, usize),
    /// Rows of C per parallel task: a multiple of the micro-kernel's rows (12 for AVX-512,
    /// 6 for AVX2, 4 portable), so that only a product's last block can end in a partial
    /// row tile. 60 for AVX2 also divides most channel counts (96, 120, 240, 480, …)
    /// into whole tiles, where 56 left a 2-row tile in every block.
    pub(crate) task_rows: usize,
    /// The NN micro-kernel (B's rows contiguous).
    pub(crate) nn: NnKernel,
    /// The BLIS-style packed path's A packing and tiles (with intrinsics only: the
    /// portable path reads B in place).
    pub(crate) panel: Option<Panel>,
    /// Tiles against a packed B that apply piecewise epilogues in registers (AVX-512).
    pub(crate) packed: Option<PackedTiles>,
    /// A row at a time against a packed B, four strips per step: rows fewer than a tile.
    pub(crate) packed_row: Option<PackedRow>,
    /// Matrix-vector rows, eight at a time (AVX-512).
    pub(crate) gemv: Option<Gemv>,
}

/// The activations' part of the [`Table`].
pub(crate) struct ActTable {
    /// Vector forms of the transcendental activations.
    pub(crate) vector: Option<VectorAct>,
    /// Softmax's `e^{x − shift}` and sum.
    pub(crate) exp_sum: Option<ExpSum>,
}

/// The convolutions' part of the [`Table`].
pub(crate) struct ConvTable {
    /// A depthwise plane into its stride phases (the plane kernels' input).
    pub(crate) dw_scatter: Option<DwScatter>,
    /// The depthwise plane kernel, 8 lanes wide.
    pub(crate) dw_plane: Option<DwPlane>,
    /// The depthwise plane kernel 16 lanes wide, for rows of 14 and more (AVX-512).
    pub(crate) dw_plane_wide: Option<DwPlane>,
    /// The blocked depthwise kernel's item (AVX-512).
    pub(crate) dw_blocked: Option<BlockedItem>,
    /// The direct few-tap kernel's output row (AVX-512).
    pub(crate) direct: Option<DirectRow>,
    /// A stride-2 row's even elements.
    pub(crate) evens: Option<Evens>,
}

/// `n` planes of `hw` floats at `o` times their gates (read from `src`, else from `o`): an
/// SE block's last step.
///
/// # Safety
/// `o` (and `src`) valid for `n·hw` floats, `gates` for `n`; the kernel's instruction set
/// present.
pub(crate) type ScalePlanes = unsafe fn(*mut f32, Option<*const f32>, &[f32], usize, usize);

/// The other ops' part of the [`Table`].
pub(crate) struct OpsTable {
    /// The SE gating of planes (AVX-512: whole vectors, then the tail masked).
    pub(crate) scale_planes: Option<ScalePlanes>,
}

impl Table {
    /// Portable code only.
    fn generic() -> Table {
        Table {
            gemm: GemmTable {
                tile: generic::TILE,
                task_rows: 56,
                nn: generic::nn_generic,
                panel: None,
                packed: None,
                packed_row: None,
                gemv: None,
            },
            act: ActTable {
                vector: None,
                exp_sum: None,
            },
            conv: ConvTable {
                dw_scatter: None,
                dw_plane: None,
                dw_plane_wide: None,
                dw_blocked: None,
                direct: None,
                evens: None,
            },
            ops: OpsTable { scale_planes: None },
            _detected: (),
        }
    }

    /// AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    fn avx2() -> Table {
        Table {
            gemm: GemmTable {
                tile: avx2::gemm::TILE,
                task_rows: 60,
                nn: avx2::gemm::nn,
                panel: Some(Panel {
                    pack: generic::pack_a::<{ avx2::gemm::MR }>,
                    tiles: avx2::gemm::panel_tiles,
                }),
                packed: None,
                packed_row: Some(avx2::gemm::packed_row),
                gemv: None,
            },
            act: ActTable {
                vector: Some(VectorAct {
                    covers: avx2::act::covers,
                    apply: avx2::act::apply,
                }),
                exp_sum: Some(avx2::act::exp_sum),
            },
            conv: ConvTable {
                dw_scatter: Some(avx2::depthwise::scatter),
                dw_plane: Some(avx2::depthwise::plane),
                dw_plane_wide: None,
                dw_blocked: None,
                direct: None,
                evens: Some(avx2::im2col::evens),
            },
            ops: OpsTable { scale_planes: None },
            _detected: (),
        }
    }

    /// AVX-512F (with AVX2 and FMA: some AVX2 kernels are still the best here).
    #[cfg(target_arch = "x86_64")]
    fn avx512() -> Table {
        Table {
            gemm: GemmTable {
                tile: avx512::gemm::TILE,
                task_rows: 60,
                nn: avx512_nn,
                panel: Some(Panel {
                    pack: generic::pack_a::<{ avx512::gemm::MR }>,
                    tiles: avx512::gemm::panel_tiles,
                }),
                packed: Some(avx512::gemm::packed),
                packed_row: Some(avx2::gemm::packed_row),
                gemv: Some(avx512::gemm::gemv_rows),
            },
            act: ActTable {
                vector: Some(VectorAct {
                    covers: gelus,
                    apply: avx2::act::apply,
                }),
                exp_sum: None,
            },
            conv: ConvTable {
                dw_scatter: Some(avx2::depthwise::scatter),
                dw_plane: Some(avx2::depthwise::plane),
                dw_plane_wide: Some(avx512::depthwise::plane),
                dw_blocked: Some(avx512::blocked::run_item),
                direct: Some(avx512::direct::direct_row),
                evens: Some(avx512::im2col::evens),
            },
            ops: OpsTable {
                scale_planes: Some(avx512::se::scale_planes),
            },
            _detected: (),
        }
    }
}

/// The AVX-512 NN kernel, handed the AVX2 kernel for the up to 8 columns past a block's
/// last whole vector (where a 16-lane tile would mostly compute dropped lanes).
///
/// # Safety
/// As [`NnKernel`], with AVX-512F, AVX2 and FMA present.
#[cfg(target_arch = "x86_64")]
unsafe fn avx512_nn(blk: Block<'_>, ep: &Epilogue<'_>, row_pass: RowPass) {
    // SAFETY: the caller's contract, passed on; the AVX2 kernel's AVX2 and FMA are there
    // with AVX-512F (the caller's contract: the table holds this only where `detect`
    // found all three).
    unsafe { avx512::gemm::nn(blk, ep, row_pass, avx2::gemm::nn) }
}

/// The activations the AVX-512 table takes the AVX2 forms for: the GELUs' AVX2 forms beat
/// what the compiler makes of the plain loop at 512 bits (tanh-GELU has no vector form
/// there at all); the others are faster as 512-bit loops (`act_speed`, Zen 4).
#[cfg(target_arch = "x86_64")]
fn gelus(a: Act) -> bool {
    matches!(a, Act::Gelu | Act::GeluTanh)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each instruction set's table holds exactly its kernels (the generic one none).
    #[test]
    fn the_table_follows_the_instruction_set() {
        let (t, isa) = (table(), isa());
        let simd = isa != Isa::Generic;
        let wide = isa == Isa::Avx512;
        assert_eq!(t.gemm.panel.is_some(), simd);
        assert_eq!(t.gemm.packed_row.is_some(), simd);
        assert_eq!(t.gemm.packed.is_some(), wide);
        assert_eq!(t.gemm.gemv.is_some(), wide);
        assert_eq!(t.act.vector.is_some(), simd);
        assert_eq!(t.act.exp_sum.is_some(), isa == Isa::Avx2);
        assert_eq!(t.conv.dw_scatter.is_some(), simd);
        assert_eq!(t.conv.dw_plane.is_some(), simd);
        assert_eq!(t.conv.dw_plane_wide.is_some(), wide);
        assert_eq!(t.conv.dw_blocked.is_some(), wide);
        assert_eq!(t.conv.direct.is_some(), wide);
        assert_eq!(t.conv.evens.is_some(), simd);
        assert_eq!(t.ops.scale_planes.is_some(), wide);
        let tiles = [(4, 8), (6, 16), (12, 32)];
        assert_eq!(t.gemm.tile, tiles[isa as usize]);
        assert_eq!(t.gemm.task_rows, if simd { 60 } else { 56 });
    }
}
