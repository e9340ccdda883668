//! Layout ops: identity permutations and composed transposes, a squeeze undoing an unsqueeze, static reshapes, views that change nothing.

use super::*;

/// Registers this family's conditions and appliers.
pub(super) fn register(r: &mut Registry) {
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
