//! Conditions on any value: constness, one-element constants, shapes and types alike, an order of classes, a vector along the last axis, the numpy broadcast of an elementwise op.

use super::*;

/// Registers this family's conditions and appliers.
pub(super) fn register(r: &mut Registry) {
    r.condition("is_const", 1, |eg, a| val(eg, a[0]).is_some());
    r.condition("not_const", 1, |eg, a| val(eg, a[0]).is_none());
    r.condition("scalar_const", 1, |eg, a| scalar(eg, a[0]).is_some());
    r.condition(
        "same_shape",
        2,
        |eg, a| matches!((shape(eg, a[0]), shape(eg, a[1])), (Some(x), Some(y)) if x == y),
    );
    r.condition("same_type_tensors", 2, |eg, a| {
        match (eg[a[0]].data.ty(), eg[a[1]].data.ty()) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    });
    r.condition("ordered3", 3, |eg, a| {
        let (p, q, r) = (eg.find(a[0]), eg.find(a[1]), eg.find(a[2]));
        p < q && q < r
    });
    r.condition("last_dim_vector", 2, |eg, a| {
        // a = [vector, x]
        let (Some(v), Some(s)) = (val(eg, a[0]), shape(eg, a[1])) else {
            return false;
        };
        v.shape().len() == 1
            && v.dtype() == DType::F32
            && s.dims().last().and_then(|d| d.known()) == Some(v.len())
    });
    r.condition("numpy_axis", 1, |eg, a| {
        matches!(op(eg, a[0]), Some(Op::Binary(Binary { op: _, axis: -1 })))
    });
    r.condition("elementwise_axis_ok", 1, |eg, a| {
        matches!(op(eg, a[0]), Some(Op::Binary(Binary { op: _, axis: -1 })))
    });
}
