//! The AVX-512 depthwise plane: `conv::geom::Depthwise`'s stride phases and tap
//! offsets, with output vectors 16 lanes wide (half the loads and FMAs of the AVX2
//! plane on rows of 14 and more) and up to 8 of them accumulating together. The last
//! vector of the plane is stored with a lane mask; a row's last vector otherwise spills
//! into the next row's start, which a later vector (in this order) writes again.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::consts::LANES;
use crate::conv::geom::{Depthwise, Walk};

/// Lanes per vector.
const L: usize = LANES;

/// One plane (`conv::geom::DwPlane`) from its scattered phases, 16 lanes wide.
///
/// # Safety
/// AVX-512F present; the slices as long as `conv::geom::DwPlane` says.
#[target_feature(enable = "avx512f,avx2")]
#[allow(clippy::int_plus_one)] // `t + $u <= total` reads the same for every group size
pub(crate) unsafe fn plane(k: &Depthwise, w: &[f32], bias: f32, o: &mut [f32], phases: &[f32]) {
    let p = &k.p;
    let wq = k.wq;
    let taps = p.kh * p.kw;
    let (off, wv) = (&k.off[..taps], &w[..taps]);
    let mut walk = Walk::new(p, wq, L);
    let total = walk.total();
    let mut next = || walk.advance();
    let olen = o.len();
    let pp = phases.as_ptr();
    let op = o.as_mut_ptr();
    let store = |at: usize, v: __m512| {
        // SAFETY: a whole vector when it fits in `o`; else only the lanes inside it.
        unsafe {
            if at + L <= olen {
                _mm512_storeu_ps(op.add(at), v);
            } else {
                let mask: __mmask16 = (1u16 << (olen - at)) - 1;
                _mm512_mask_storeu_ps(op.add(at), mask, v);
            }
        }
    };
    let b0 = _mm512_set1_ps(bias);
    let mut t = 0;
    macro_rules! group {
        ($u:literal) => {
            while t + $u <= total {
                let mut j = [(0usize, 0usize); $u];
                j.iter_mut().for_each(|j| *j = next());
                let mut acc = [b0; $u];
                // SAFETY: reads are at phase rows oy + ⌊ky·dh/s⌋ < hq of one phase,
                // columns from 16c + ⌊kx·dw/s⌋ on, 16 floats: inside the
                // `s²·hq·wq + 16` floats of `phases`.
                unsafe {
                    let mut base = [pp; $u];
                    for u in 0..$u {
                        base[u] = pp.add(j[u].1);
                    }
                    for (&q, &wq) in off.iter().zip(wv) {
                        let w = _mm512_set1_ps(wq);
                        for u in 0..$u {
                            acc[u] = _mm512_fmadd_ps(w, _mm512_loadu_ps(base[u].add(q)), acc[u]);
                        }
                    }
                }
                for u in 0..$u {
                    store(j[u].0, acc[u]);
                }
                t += $u;
            }
        };
    }
    group!(8);
    match total - t {
        7 => group!(7),
        6 => group!(6),
        5 => group!(5),
        4 => group!(4),
        3 => group!(3),
        2 => group!(2),
        1 => group!(1),
        _ => {}
    }
}
