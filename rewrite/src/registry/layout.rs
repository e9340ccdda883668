//! Layout ops: identity permutations and composed transposes, a squeeze undoing an unsqueeze, static reshapes, views that change nothing.

use super::*;

/// Registers this family's conditions and appliers.
pub(super) fn register(r: &mut Registry) {
    r.condition(
        "cast_to_i32",
        1,
        |eg, a| matches!(op(eg, a[0]), Some(Op::Cast(c)) if c.to == kayak_ir::DType::I32),
    );
    r.condition("squeeze_drops_slice", 3, |eg, a| {
        // a = [squeeze attrs, slice attrs, the sliced tensor]
        let (Some(Op::Squeeze(q)), Some(Op::Slice(s)), Some(x)) =
            (op(eg, a[0]), op(eg, a[1]), shape(eg, a[2]))
        else {
            return false;
        };
        let rank = x.rank() as i64;
        let norm = |v: &[i64]| -> Vec<i64> {
            let mut v: Vec<i64> = v
                .iter()
                .map(|&a| if a < 0 { a + rank } else { a })
                .collect();
            v.sort_unstable();
            v
        };
        let unit = s
            .starts
            .iter()
            .zip(&s.ends)
            .all(|(&b, &e)| e == b + 1 && (b >= 0 || e < 0));
        s.starts_input == kayak_ir::ops::ListInput::Attr
            && s.ends_input == kayak_ir::ops::ListInput::Attr
            && s.decrease_axis.is_empty()
            && unit
            && !q.axes.is_empty()
            && norm(&q.axes) == norm(&s.axes)
    });
    r.applier("slice_decreased", 1, |eg, a| {
        let Some(Op::Slice(s)) = op(eg, a[0]) else {
            return None;
        };
        let t = kayak_ir::ops::Slice {
            decrease_axis: s.axes.clone(),
            ..s.clone()
        };
        Some(attr_leaf(eg, Op::Slice(t)))
    });
    r.condition(
        "cast_to_i64",
        1,
        |eg, a| matches!(op(eg, a[0]), Some(Op::Cast(c)) if c.to == kayak_ir::DType::I64),
    );
    r.condition("identity_perm", 1, |eg, a| {
        perm_of(eg, a[0]).is_some_and(|p| p.iter().enumerate().all(|(i, &x)| i == x))
    });
    r.condition("squeeze_undoes_unsqueeze", 2, |eg, a| {
        match (op(eg, a[0]), op(eg, a[1])) {
            (Some(Op::Squeeze(s)), Some(Op::Unsqueeze(u))) => {
                !s.axes.is_empty()
                    && s.axes == u.axes
                    && u.axes.iter().all(|&x| x >= 0)
                    && u.axes.len() == 1
            }
            _ => false,
        }
    });
    r.condition("reshape_static", 1, |eg, a| matches!(op(eg, a[0]), Some(Op::Reshape(kayak_ir::ops::Reshape { shape, shape_input: kayak_ir::ops::ListInput::Attr })) if shape.iter().all(|&d| d != 0)));
    r.condition("view_noop", 2, |eg, a| {
        // The view op (attributes a[0]) leaves x (a[1]) exactly as it is.
        let (Some(o), Some(ty)) = (op(eg, a[0]), eg[a[1]].data.ty()) else {
            return false;
        };
        o.is_view()
            && ty.shape.is_known()
            && o.infer(&[kayak_ir::InferInput { ty, value: None }])
                .is_ok_and(|t| t.len() == 1 && t[0] == *ty)
    });
    r.applier("compose_perm", 2, |eg, a| {
        // outer(inner(x)): out axis i = inner axis outer[i] = x axis inner[outer[i]]
        let (o, i) = (perm_of(eg, a[0])?.to_vec(), perm_of(eg, a[1])?.to_vec());
        (o.len() == i.len()).then_some(())?;
        let perm: Vec<usize> = o.iter().map(|&k| i[k]).collect();
        Some(attr_leaf(
            eg,
            Op::Transpose(kayak_ir::ops::Transpose { perm }),
        ))
    });
}
