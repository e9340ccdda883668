//! Squeeze-and-excitation blocks: per-channel means, two small projections, the gates
//! applied to the planes.

use super::{par_ranges, reduce_planes, Src};
use crate::act::Act;
use crate::isa::table;
use crate::pool::{SharedMut, ThreadPool};

/// `out = x · act2(w2 · act1(w1 · mean_hw(x) + b1) + b2)` per channel, over `[n, c, hw]`.
/// `w1` is `[c1, c]`, `w2` is `[c, c1]`; `scratch` holds `c + c1` floats. With `means`
/// (`[n, c]`, the op before computed them as it wrote `x`: see
/// [`crate::conv::depthwise_means`]) the pass over `x` for them is skipped.
#[allow(clippy::too_many_arguments)]
pub fn se_block(
    pool: &ThreadPool,
    (n, c, hw): (usize, usize, usize),
    x: Src<'_>,
    (w1, b1, w2, b2): (&[f32], &[f32], &[f32], &[f32]),
    (act1, act2): (Act, Act),
    out: &mut [f32],
    scratch: &mut [f32],
    means: Option<&[f32]>,
) {
    let c1 = b1.len();
    assert!(means.is_none_or(|m| m.len() >= n * c), "SE means too short");
    let (mean, hidden) = scratch[..c + c1].split_at_mut(c);
    for b in 0..n {
        let img = b * c * hw..(b + 1) * c * hw;
        if let Some(m) = means {
            mean.copy_from_slice(&m[b * c..(b + 1) * c]);
        } else {
            let src: &[f32] = match x {
                Src::Slice(s) => &s[img.clone()],
                Src::Out => &out[img.clone()],
            };
            let mp = SharedMut::new(&mut *mean);
            par_ranges(pool, c, hw, &|r| {
                // SAFETY: disjoint channel ranges of `mean`.
                #[allow(unsafe_code)]
                let ms = unsafe { mp.slice(r.start, r.len()) };
                reduce_planes(&src[r.start * hw..r.end * hw], hw, false, ms);
                ms.iter_mut().for_each(|m| *m /= hw as f32);
            });
        }
        // The tasks above are done: `mean` (only reborrowed for the raw pointer) holds the
        // means. The two projections are matrix-vector products, rows split over the pool
        // (one thread below ~32K multiply-adds), each range's bias and activation in one
        // pass; the gates go back into `mean`'s place.
        let project = |w: &[f32], v: &[f32], bias: &[f32], act: Act, y: &mut [f32]| {
            let k = v.len();
            let yp = SharedMut::new(y);
            par_ranges(pool, bias.len(), k, &|r| {
                // SAFETY: disjoint row ranges of `y`.
                #[allow(unsafe_code)]
                let ys = unsafe { yp.slice(r.start, r.len()) };
                crate::gemm::gemv_rows(w, k, v, r.clone(), ys);
                ys.iter_mut().zip(&bias[r]).for_each(|(y, b)| *y += b);
                act.apply_slice(ys);
            });
        };
        project(w1, mean, b1, act1, hidden);
        project(w2, hidden, b2, act2, mean);
        let gates: &[f32] = mean;
        let o = SharedMut::new(&mut out[img.clone()]);
        par_ranges(pool, c, hw, &|r| {
            // SAFETY: disjoint channel planes of this image.
            #[allow(unsafe_code)]
            let planes = unsafe { o.slice(r.start * hw, r.len() * hw) };
            let src = match x {
                Src::Slice(s) => Some(&s[img.start + r.start * hw..img.start + r.end * hw]),
                Src::Out => None,
            };
            scale_planes(planes, src, &gates[r], hw);
        });
    }
}

/// `planes[i] = src[i] · gates[i / hw]` (`src` absent: `planes` itself), one call for
/// all the planes: on AVX-512 a plane's whole vectors and then its tail under a lane
/// mask (a 7×7 plane is 3 vectors and 1 float, which a loop unrolled by 64 ran mostly
/// in its 8-wide and scalar remainders: 576 such planes took 4 µs), else compiled for
/// the best instruction set.
fn scale_planes(planes: &mut [f32], src: Option<&[f32]>, gates: &[f32], hw: usize) {
    let n = planes.len() / hw.max(1);
    assert!(gates.len() >= n && src.is_none_or(|s| s.len() >= n * hw));
    if let Some(vector) = table().ops.scale_planes {
        // SAFETY: the planes and the source hold n·hw floats (asserted), the gates n; the
        // kernel is the dispatch table's, which is private to this crate and built once
        // from detection, so its features are present.
        #[allow(unsafe_code)]
        unsafe {
            vector(planes.as_mut_ptr(), src.map(|s| s.as_ptr()), gates, n, hw)
        };
        return;
    }
    #[inline(always)]
    fn body(planes: &mut [f32], src: Option<&[f32]>, gates: &[f32], hw: usize) {
        for (k, (plane, &g)) in planes.chunks_exact_mut(hw).zip(gates).enumerate() {
            match src {
                Some(s) => plane
                    .iter_mut()
                    .zip(&s[k * hw..(k + 1) * hw])
                    .for_each(|(v, x)| *v = x * g),
                None => plane.iter_mut().for_each(|v| *v *= g),
            }
        }
    }
    crate::simd!(body(planes: &mut [f32], src: Option<&[f32]>, gates: &[f32], hw: usize))
}
