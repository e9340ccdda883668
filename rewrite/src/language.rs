//! The e-graph language, derived from `kayak-ir`'s op set.
//!
//! An op node is `(kind [attrs] inputs...)`: its kind is the IR op name (`conv2d`,
//! `fused_conv`, `relu`, ...); kinds with attributes take an **attribute leaf** as their
//! first child, so a pattern can bind the attributes (`(conv2d ?a ?x ?w)`) and a condition
//! or applier can read them (the leaf holds the typed `ir::Op`). Kinds without parameters
//! (`relu`, `sigmoid`, `shape`, ...) have no attribute child.

use egg::{Id, Language, Symbol};
use kayak_ir::Op;
use std::fmt;
use std::sync::Arc;

/// Typed attributes as an e-graph leaf: the full IR op, compared by a canonical key.
#[derive(Clone)]
pub struct Attrs {
    /// The op, with its attributes.
    pub op: Arc<Op>,
    key: Arc<str>,
}

impl Attrs {
    /// Wraps an op's attributes.
    pub fn new(op: Op) -> Attrs {
        // Debug output of the typed attributes is canonical: floats print in their
        // shortest round-trip form, so equal keys mean equal attributes.
        let key: Arc<str> = format!("{op:?}").into();
        Attrs {
            op: Arc::new(op),
            key,
        }
    }
}

impl PartialEq for Attrs {
    fn eq(&self, o: &Attrs) -> bool {
        self.key == o.key
    }
}
impl Eq for Attrs {}
impl std::hash::Hash for Attrs {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.key.hash(h)
    }
}
impl PartialOrd for Attrs {
    fn partial_cmp(&self, o: &Attrs) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Attrs {
    fn cmp(&self, o: &Attrs) -> std::cmp::Ordering {
        self.key.cmp(&o.key)
    }
}
impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// One e-node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// Graph input `k`.
    Input(u32),
    /// Constant `k` of the optimizer's constant table (weights and folded values).
    Const(u32),
    /// An attribute leaf.
    Attr(Attrs),
    /// Output `k` of a multi-output node.
    Get(u32, [Id; 1]),
    /// An op: kind and children (attribute leaf first when the kind has attributes).
    Op(Symbol, Vec<Id>),
}

impl Language for Node {
    type Discriminant = (u8, Option<Symbol>, usize);

    fn discriminant(&self) -> Self::Discriminant {
        match self {
            Node::Input(_) => (0, None, 0),
            Node::Const(_) => (1, None, 0),
            Node::Attr(_) => (2, None, 0),
            Node::Get(k, _) => (3, None, *k as usize),
            Node::Op(s, c) => (4, Some(*s), c.len()),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Node::Op(a, x), Node::Op(b, y)) => a == b && x.len() == y.len(),
            (Node::Get(a, _), Node::Get(b, _)) => a == b,
            (a, b) => a == b,
        }
    }

    fn children(&self) -> &[Id] {
        match self {
            Node::Op(_, c) => c,
            Node::Get(_, c) => c,
            _ => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Node::Op(_, c) => c,
            Node::Get(_, c) => c,
            _ => &mut [],
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Input(k) => write!(f, "input{k}"),
            Node::Const(k) => write!(f, "const{k}"),
            Node::Attr(a) => write!(f, "attrs<{}>", a.op.name()),
            Node::Get(k, _) => write!(f, "get{k}"),
            Node::Op(s, _) => write!(f, "{s}"),
        }
    }
}

/// Parse error for a pattern's operator.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown op `{0}` (not in the op set)")]
pub struct UnknownKind(pub String);

impl egg::FromOp for Node {
    type Error = UnknownKind;
    fn from_op(op: &str, children: Vec<Id>) -> Result<Node, UnknownKind> {
        if let Some(k) = op.strip_prefix("get") {
            if let (Ok(k), [c]) = (k.parse::<u32>(), children.as_slice()) {
                return Ok(Node::Get(k, [*c]));
            }
        }
        if is_kind(op) {
            Ok(Node::Op(Symbol::from(op), children))
        } else {
            Err(UnknownKind(op.to_string()))
        }
    }
}

/// Every op kind of the IR, by name: derived from the op table (`kayak_ir::ops`), never
/// kept by hand beside it.
pub fn kinds() -> &'static [&'static str] {
    Op::kinds()
}

/// True if `name` is an op kind of the IR (the language parses it).
pub fn is_kind(name: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| Op::kinds().iter().copied().collect())
        .contains(name)
}

/// The op of a kind that has no parameters (so its nodes carry no attribute leaf).
pub fn param_free(kind: &str) -> Option<Op> {
    Op::param_free(kind)
}

/// True if nodes of this op carry an attribute leaf.
pub fn has_attrs(op: &Op) -> bool {
    param_free(op.name()).is_none()
}
