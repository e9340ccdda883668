//! E-class analysis: the type of every class, its value when it is a constant, and the
//! attributes of attribute leaves. Rule conditions read only this data.

use crate::language::{param_free, Node};
use egg::{Analysis, DidMerge, EGraph, Id};
use kayak_ir::{InferInput, Op, Tensor, TypeInfo};
use std::sync::Arc;

/// The e-graph type used by the optimizer.
pub type KGraph = EGraph<Node, KAnalysis>;

/// Largest constant (in elements) the analysis folds from non-constant-looking ops; folds
/// of weights-only subgraphs (conv+bn weights, ...) are not limited.
pub const FOLD_LIMIT: usize = 1 << 24;

/// What the optimizer knows about an e-class.
#[derive(Debug, Clone)]
pub enum Data {
    /// An attribute leaf.
    Attr(Arc<Op>),
    /// A tensor value: its type, and its value when constant.
    Tensor {
        /// Static type (symbolic shape).
        ty: TypeInfo,
        /// Value, when the class is a constant (a weight or folded).
        value: Option<Arc<Tensor>>,
    },
    /// The outputs of a multi-output op.
    Tuple(Vec<TypeInfo>),
    /// A node whose types do not check (never extracted).
    Invalid(String),
}

impl Data {
    /// The tensor type, if a tensor.
    pub fn ty(&self) -> Option<&TypeInfo> {
        match self {
            Data::Tensor { ty, .. } => Some(ty),
            _ => None,
        }
    }
    /// The constant value, if known.
    pub fn value(&self) -> Option<&Arc<Tensor>> {
        match self {
            Data::Tensor { value, .. } => value.as_ref(),
            _ => None,
        }
    }
    /// The attributes, if an attribute leaf.
    pub fn op(&self) -> Option<&Op> {
        match self {
            Data::Attr(o) => Some(o),
            _ => None,
        }
    }
}

/// The analysis: graph input types and the constant table.
#[derive(Debug, Default)]
pub struct KAnalysis {
    /// Types of the graph inputs.
    pub inputs: Vec<TypeInfo>,
    /// Constants: the model's weights, then values folded during saturation.
    pub consts: Vec<Arc<Tensor>>,
    /// Fold constants (off only for tests that look at unfolded graphs).
    pub fold: bool,
    /// Which rule made each e-node (the node as created) and from which matched nodes.
    pub provenance: std::collections::HashMap<Node, (String, Vec<Node>)>,
    /// Constants by content, so an equal value is one constant (and one e-node).
    pub const_index: std::collections::HashMap<(kayak_ir::DType, Vec<usize>, u64), Vec<u32>>,
    /// Results of `let` appliers by (applier, canonical argument classes): a rule matches
    /// the same classes again on every iteration, and an applier's result (a folded
    /// weight, say) depends only on its arguments' values, which never change once known.
    /// Only successes are kept, so an applier that declined is asked again later.
    pub applier_memo: std::collections::HashMap<(usize, Vec<Id>), Id>,
}

/// A hash of a tensor's contents from at most 256 evenly spaced elements (FNV-1a over
/// their little-endian bytes): cheap on big weights; equal tensors hash equal, and
/// `intern` compares contents in full on a hash match.
fn content_hash(t: &Tensor) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut mix = |x: u64| {
        h ^= x;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    kayak_ir::with_tensor!(t, a => {
        let n = a.len();
        mix(n as u64);
        let step = n.div_ceil(256).max(1);
        for v in a.iter().step_by(step) {
            let mut buf = [0u8; 8];
            kayak_ir::Elem::write_le(*v, &mut buf);
            mix(u64::from_le_bytes(buf));
        }
    });
    h
}

impl KAnalysis {
    /// The index of a constant equal to `t`, adding it if new.
    pub fn intern(&mut self, t: Arc<Tensor>) -> u32 {
        let key = (t.dtype(), t.shape().to_vec(), content_hash(&t));
        if let Some(ks) = self.const_index.get(&key) {
            for &k in ks {
                let c = &self.consts[k as usize];
                // Compared in place (a constant holding NaN never equals another; it is
                // then kept twice, which is harmless).
                if Arc::ptr_eq(c, &t) || **c == *t {
                    return k;
                }
            }
        }
        let k = self.consts.len() as u32;
        self.consts.push(t);
        self.const_index.entry(key).or_default().push(k);
        k
    }
}

/// The IR op an op node stands for, and its tensor children.
pub fn node_op<'a>(
    egraph: &'a KGraph,
    kind: &str,
    children: &'a [Id],
) -> Option<(std::borrow::Cow<'a, Op>, &'a [Id])> {
    if let Some(op) = param_free(kind) {
        return Some((std::borrow::Cow::Owned(op), children));
    }
    let (first, rest) = children.split_first()?;
    match &egraph[*first].data {
        Data::Attr(op) if op.name() == kind => {
            Some((std::borrow::Cow::Borrowed(op.as_ref()), rest))
        }
        _ => None,
    }
}

/// Type-checks an op node against its children's data; with `fold`, also evaluates it
/// when every input is a constant.
pub fn check_node(egraph: &KGraph, node: &Node, fold: bool) -> Data {
    match node {
        Node::Input(k) => match egraph.analysis.inputs.get(*k as usize) {
            Some(ty) => Data::Tensor {
                ty: ty.clone(),
                value: None,
            },
            None => Data::Invalid(format!("no input {k}")),
        },
        Node::Const(k) => match egraph.analysis.consts.get(*k as usize) {
            Some(t) => Data::Tensor {
                ty: t.type_info(),
                value: Some(t.clone()),
            },
            None => Data::Invalid(format!("no constant {k}")),
        },
        Node::Attr(a) => Data::Attr(a.op.clone()),
        Node::Get(k, [c]) => match &egraph[*c].data {
            Data::Tuple(ts) => match ts.get(*k as usize) {
                Some(ty) => Data::Tensor {
                    ty: ty.clone(),
                    value: None,
                },
                None => Data::Invalid(format!("get{k} of a {}-tuple", ts.len())),
            },
            _ => Data::Invalid("get of a non-tuple".into()),
        },
        Node::Op(kind, children) => {
            let Some((op, tensors)) = node_op(egraph, kind.as_str(), children) else {
                return Data::Invalid(format!("{kind}: missing or wrong attribute leaf"));
            };
            let datas: Vec<&Data> = tensors.iter().map(|&c| &egraph[c].data).collect();
            let mut ins = Vec::with_capacity(datas.len());
            for d in &datas {
                match d {
                    Data::Tensor { ty, value } => ins.push(InferInput {
                        ty,
                        value: value.as_deref(),
                    }),
                    _ => return Data::Invalid(format!("{kind}: an input is not a tensor")),
                }
            }
            let tys = match op.infer(&ins) {
                Ok(t) => t,
                Err(e) => return Data::Invalid(e.to_string()),
            };
            if tys.len() != 1 {
                return Data::Tuple(tys);
            }
            let ty = tys.into_iter().next().expect("one output");
            let small = ty.shape.numel().known().is_some_and(|n| n <= FOLD_LIMIT);
            let value = if fold && small {
                op.fold(&ins)
                    .and_then(|r| r.ok())
                    .and_then(|mut v| v.pop())
                    .map(Arc::new)
            } else {
                None
            };
            Data::Tensor { ty, value }
        }
    }
}

impl Analysis<Node> for KAnalysis {
    type Data = Data;

    fn make(egraph: &mut KGraph, enode: &Node) -> Data {
        let fold = egraph.analysis.fold;
        check_node(egraph, enode, fold)
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        match (&mut *a, b) {
            (Data::Invalid(_), b @ (Data::Tensor { .. } | Data::Tuple(_) | Data::Attr(_))) => {
                *a = b;
                DidMerge(true, false)
            }
            (_, Data::Invalid(_)) => DidMerge(false, true),
            (Data::Tensor { ty, value }, Data::Tensor { ty: ty2, value: v2 }) => {
                let mut changed_a = false;
                let mut changed_b = false;
                // Prefer the more precise shape.
                let known_a = ty
                    .shape
                    .dims()
                    .iter()
                    .filter(|d| d.known().is_some())
                    .count();
                let known_b = ty2
                    .shape
                    .dims()
                    .iter()
                    .filter(|d| d.known().is_some())
                    .count();
                if known_b > known_a && ty2.shape.rank() == ty.shape.rank() {
                    *ty = ty2;
                    changed_a = true;
                } else if known_a > known_b {
                    changed_b = true;
                }
                match (value.is_some(), v2) {
                    (false, Some(v)) => {
                        *value = Some(v);
                        changed_a = true;
                    }
                    (true, None) => changed_b = true,
                    _ => {}
                }
                DidMerge(changed_a, changed_b)
            }
            _ => DidMerge(false, false),
        }
    }

    fn modify(egraph: &mut KGraph, id: Id) {
        // A class with a known value gets a constant leaf, so extraction can pick it.
        let Some(v) = egraph[id].data.value().cloned() else {
            return;
        };
        if egraph[id].nodes.iter().any(|n| matches!(n, Node::Const(_))) {
            return;
        }
        let k = egraph.analysis.intern(v);
        let c = egraph.add(Node::Const(k));
        egraph.union(id, c);
    }
}
