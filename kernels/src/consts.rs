//! Constants more than one module builds on, defined once.

/// Floats per AVX-512 vector, and the lane count the portable reductions accumulate in (16
/// independent sums, so they vectorize without reassociation): the AVX-512 kernels' vector
/// width, the channels per block of the blocked depthwise layout, and the slack a plane's
/// last vector may read past its end.
pub(crate) const LANES: usize = 16;

/// Most taps (`kh·kw`) a depthwise kernel with intrinsics takes (the AVX2 / AVX-512 plane
/// kernels keep their tap offsets, the blocked kernel its kernel rows' pointers, on the
/// stack); larger kernels take the portable path.
pub(crate) const MAX_TAPS: usize = 64;
