//! Dense tensors of any [`DType`], held as ndarray arrays.

use crate::{DType, Error, Result, Shape};
use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};

/// A dense, row-major tensor.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub enum Tensor {
    /// f32 data.
    F32(ArrayD<f32>),
    /// f16 data.
    F16(ArrayD<f16>),
    /// bf16 data.
    BF16(ArrayD<bf16>),
    /// f64 data.
    F64(ArrayD<f64>),
    /// i8 data.
    I8(ArrayD<i8>),
    /// u8 data.
    U8(ArrayD<u8>),
    /// i32 data.
    I32(ArrayD<i32>),
    /// i64 data.
    I64(ArrayD<i64>),
    /// bool data.
    Bool(ArrayD<bool>),
}

/// Applies a type-generic expression to the array inside a tensor and wraps the result
/// back into the same variant: `map_tensor!(t, a => a.t().to_owned())`.
#[macro_export]
macro_rules! map_tensor {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::Tensor::F32($a) => $crate::Tensor::F32($body),
            $crate::Tensor::F16($a) => $crate::Tensor::F16($body),
            $crate::Tensor::BF16($a) => $crate::Tensor::BF16($body),
            $crate::Tensor::F64($a) => $crate::Tensor::F64($body),
            $crate::Tensor::I8($a) => $crate::Tensor::I8($body),
            $crate::Tensor::U8($a) => $crate::Tensor::U8($body),
            $crate::Tensor::I32($a) => $crate::Tensor::I32($body),
            $crate::Tensor::I64($a) => $crate::Tensor::I64($body),
            $crate::Tensor::Bool($a) => $crate::Tensor::Bool($body),
        }
    };
}

/// Applies a type-generic expression to the array inside a tensor, returning its value.
#[macro_export]
macro_rules! with_tensor {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::Tensor::F32($a) => $body,
            $crate::Tensor::F16($a) => $body,
            $crate::Tensor::BF16($a) => $body,
            $crate::Tensor::F64($a) => $body,
            $crate::Tensor::I8($a) => $body,
            $crate::Tensor::U8($a) => $body,
            $crate::Tensor::I32($a) => $body,
            $crate::Tensor::I64($a) => $body,
            $crate::Tensor::Bool($a) => $body,
        }
    };
}

/// An element type a [`Tensor`] can hold.
pub trait Elem: Copy + Default + PartialOrd + std::fmt::Debug + Send + Sync + 'static {
    /// Its dtype.
    const DTYPE: DType;
    /// Wraps an array as a tensor.
    fn wrap(a: ArrayD<Self>) -> Tensor;
    /// The array, if the tensor holds this type.
    fn unwrap_ref(t: &Tensor) -> Option<&ArrayD<Self>>;
    /// The array, mutably, if the tensor holds this type.
    fn unwrap_mut(t: &mut Tensor) -> Option<&mut ArrayD<Self>>;
    /// Conversion to f64 (bool: 0/1).
    fn to_f64(self) -> f64;
    /// Conversion from f64 as a C cast would do it (truncation toward zero for ints).
    fn from_f64(v: f64) -> Self;
    /// Reads one little-endian element.
    fn read_le(b: &[u8]) -> Self;
    /// Writes one little-endian element.
    fn write_le(self, out: &mut [u8]);
}

macro_rules! elem_num {
    ($t:ty, $v:ident, $d:expr) => {
        impl Elem for $t {
            const DTYPE: DType = $d;
            fn wrap(a: ArrayD<Self>) -> Tensor {
                Tensor::$v(a)
            }
            fn unwrap_ref(t: &Tensor) -> Option<&ArrayD<Self>> {
                match t {
                    Tensor::$v(a) => Some(a),
                    _ => None,
                }
            }
            fn unwrap_mut(t: &mut Tensor) -> Option<&mut ArrayD<Self>> {
                match t {
                    Tensor::$v(a) => Some(a),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn read_le(b: &[u8]) -> Self {
                let mut buf = [0u8; std::mem::size_of::<$t>()];
                buf.copy_from_slice(&b[..std::mem::size_of::<$t>()]);
                <$t>::from_le_bytes(buf)
            }
            #[inline]
            fn write_le(self, out: &mut [u8]) {
                out[..std::mem::size_of::<$t>()].copy_from_slice(&self.to_le_bytes());
            }
        }
    };
}
elem_num!(f32, F32, DType::F32);
elem_num!(f64, F64, DType::F64);
elem_num!(i8, I8, DType::I8);
elem_num!(u8, U8, DType::U8);
elem_num!(i32, I32, DType::I32);
elem_num!(i64, I64, DType::I64);

macro_rules! elem_half {
    ($t:ty, $v:ident, $d:expr) => {
        impl Elem for $t {
            const DTYPE: DType = $d;
            fn wrap(a: ArrayD<Self>) -> Tensor {
                Tensor::$v(a)
            }
            fn unwrap_ref(t: &Tensor) -> Option<&ArrayD<Self>> {
                match t {
                    Tensor::$v(a) => Some(a),
                    _ => None,
                }
            }
            fn unwrap_mut(t: &mut Tensor) -> Option<&mut ArrayD<Self>> {
                match t {
                    Tensor::$v(a) => Some(a),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                self.to_f64()
            }
            fn from_f64(v: f64) -> Self {
                <$t>::from_f64(v)
            }
            #[inline]
            fn read_le(b: &[u8]) -> Self {
                <$t>::from_le_bytes([b[0], b[1]])
            }
            #[inline]
            fn write_le(self, out: &mut [u8]) {
                out[..2].copy_from_slice(&self.to_le_bytes());
            }
        }
    };
}
elem_half!(f16, F16, DType::F16);
elem_half!(bf16, BF16, DType::BF16);

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn wrap(a: ArrayD<Self>) -> Tensor {
        Tensor::Bool(a)
    }
    fn unwrap_ref(t: &Tensor) -> Option<&ArrayD<Self>> {
        match t {
            Tensor::Bool(a) => Some(a),
            _ => None,
        }
    }
    fn unwrap_mut(t: &mut Tensor) -> Option<&mut ArrayD<Self>> {
        match t {
            Tensor::Bool(a) => Some(a),
            _ => None,
        }
    }
    fn to_f64(self) -> f64 {
        if self {
            1.0
        } else {
            0.0
        }
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    #[inline]
    fn read_le(b: &[u8]) -> Self {
        b[0] != 0
    }
    #[inline]
    fn write_le(self, out: &mut [u8]) {
        out[0] = self as u8;
    }
}

fn array_from_le<T: Elem>(shape: &[usize], bytes: &[u8]) -> ArrayD<T> {
    let n = std::mem::size_of::<T>();
    let v: Vec<T> = bytes.chunks_exact(n).map(T::read_le).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("length checked by caller")
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        let s = IxDyn(shape);
        match dtype {
            DType::F32 => Tensor::F32(ArrayD::zeros(s)),
            DType::F16 => Tensor::F16(ArrayD::from_elem(s, f16::ZERO)),
            DType::BF16 => Tensor::BF16(ArrayD::from_elem(s, bf16::ZERO)),
            DType::F64 => Tensor::F64(ArrayD::zeros(s)),
            DType::I8 => Tensor::I8(ArrayD::zeros(s)),
            DType::U8 => Tensor::U8(ArrayD::zeros(s)),
            DType::I32 => Tensor::I32(ArrayD::zeros(s)),
            DType::I64 => Tensor::I64(ArrayD::zeros(s)),
            DType::Bool => Tensor::Bool(ArrayD::from_elem(s, false)),
        }
    }

    /// A tensor filled with `value` (converted as a C cast would).
    pub fn full(dtype: DType, shape: &[usize], value: f64) -> Tensor {
        let s = IxDyn(shape);
        match dtype {
            DType::F32 => Tensor::F32(ArrayD::from_elem(s, value as f32)),
            DType::F16 => Tensor::F16(ArrayD::from_elem(s, f16::from_f64(value))),
            DType::BF16 => Tensor::BF16(ArrayD::from_elem(s, bf16::from_f64(value))),
            DType::F64 => Tensor::F64(ArrayD::from_elem(s, value)),
            DType::I8 => Tensor::I8(ArrayD::from_elem(s, value as i8)),
            DType::U8 => Tensor::U8(ArrayD::from_elem(s, value as u8)),
            DType::I32 => Tensor::I32(ArrayD::from_elem(s, value as i32)),
            DType::I64 => Tensor::I64(ArrayD::from_elem(s, value as i64)),
            DType::Bool => Tensor::Bool(ArrayD::from_elem(s, value != 0.0)),
        }
    }

    /// Builds a tensor from little-endian raw bytes; the length must match exactly.
    pub fn from_le_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
        let expected = shape
            .iter()
            .try_fold(dtype.size_of(), |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                crate::error::shape_err("tensor", format!("shape {shape:?} overflows"))
            })?;
        if bytes.len() != expected {
            return Err(Error::DataSize {
                got: bytes.len(),
                expected,
                dtype,
                shape: Shape::known(shape),
            });
        }
        Ok(match dtype {
            DType::F32 => Tensor::F32(array_from_le(shape, bytes)),
            DType::F16 => Tensor::F16(array_from_le(shape, bytes)),
            DType::BF16 => Tensor::BF16(array_from_le(shape, bytes)),
            DType::F64 => Tensor::F64(array_from_le(shape, bytes)),
            DType::I8 => Tensor::I8(array_from_le(shape, bytes)),
            DType::U8 => Tensor::U8(array_from_le(shape, bytes)),
            DType::I32 => Tensor::I32(array_from_le(shape, bytes)),
            DType::I64 => Tensor::I64(array_from_le(shape, bytes)),
            DType::Bool => Tensor::Bool(array_from_le(shape, bytes)),
        })
    }

    /// Writes the elements, row-major, little-endian, into `out` (exactly `byte_len()` long).
    pub fn write_le_bytes(&self, out: &mut [u8]) -> Result<()> {
        let n = self.dtype().size_of();
        if out.len() != self.len() * n {
            return Err(Error::DataSize {
                got: out.len(),
                expected: self.len() * n,
                dtype: self.dtype(),
                shape: Shape::known(self.shape()),
            });
        }
        with_tensor!(self, a => {
            for (v, o) in a.iter().zip(out.chunks_exact_mut(n)) {
                v.write_le(o);
            }
        });
        Ok(())
    }

    /// The elements as little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.byte_len()];
        self.write_le_bytes(&mut out).expect("sized above");
        out
    }

    /// The same tensor with its elements in standard (row-major, contiguous) layout: a
    /// copy if it is in another one.
    pub fn to_standard_layout(&self) -> Tensor {
        macro_rules! standard {
            ($($v:ident),*) => {
                match self {
                    $(Tensor::$v(a) => Tensor::$v(a.as_standard_layout().into_owned()),)*
                }
            };
        }
        standard!(F32, F16, BF16, F64, I8, U8, I32, I64, Bool)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::F16(_) => DType::F16,
            Tensor::BF16(_) => DType::BF16,
            Tensor::F64(_) => DType::F64,
            Tensor::I8(_) => DType::I8,
            Tensor::U8(_) => DType::U8,
            Tensor::I32(_) => DType::I32,
            Tensor::I64(_) => DType::I64,
            Tensor::Bool(_) => DType::Bool,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        with_tensor!(self, a => a.shape())
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        with_tensor!(self, a => a.len())
    }

    /// True if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the data in bytes.
    pub fn byte_len(&self) -> usize {
        self.len() * self.dtype().size_of()
    }

    /// The static type of this tensor.
    pub fn type_info(&self) -> crate::TypeInfo {
        crate::TypeInfo::known(self.dtype(), self.shape())
    }

    /// The f32 array, if that is the dtype.
    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match self {
            Tensor::F32(a) => Some(a),
            _ => None,
        }
    }

    /// Converts to another dtype as a C cast does (float → int truncates toward zero).
    pub fn cast(&self, dtype: DType) -> Tensor {
        if self.dtype() == dtype {
            return self.clone();
        }
        with_tensor!(self, a => cast_array(a, dtype))
    }

    /// All elements as f64, row-major.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        with_tensor!(self, a => a.iter().map(|v| v.to_f64()).collect())
    }

    /// All elements as i64 (floats truncated), row-major: for shape-like tensors.
    pub fn to_i64_vec(&self) -> Vec<i64> {
        with_tensor!(self, a => a.iter().map(|v| v.to_f64() as i64).collect())
    }

    /// Reshapes to `shape` (same element count), keeping row-major order.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != self.len() {
            return Err(crate::error::shape_err(
                "reshape",
                format!("cannot reshape {:?} to {:?}", self.shape(), shape),
            ));
        }
        Ok(map_tensor!(self, a => {
            let v: Vec<_> = a.iter().copied().collect();
            ArrayD::from_shape_vec(IxDyn(shape), v).expect("count checked")
        }))
    }

    /// A 1-D i64 tensor.
    pub fn from_i64s(v: &[i64]) -> Tensor {
        Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).expect("1-D"))
    }

    /// A 1-D i32 tensor.
    pub fn from_i32s(v: &[i32]) -> Tensor {
        Tensor::I32(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).expect("1-D"))
    }

    /// An f32 tensor from a shape and row-major data.
    pub fn from_f32s(shape: &[usize], v: Vec<f32>) -> Result<Tensor> {
        if shape.iter().product::<usize>() != v.len() {
            return Err(Error::DataSize {
                got: v.len() * 4,
                expected: shape.iter().product::<usize>() * 4,
                dtype: DType::F32,
                shape: Shape::known(shape),
            });
        }
        Ok(Tensor::F32(
            ArrayD::from_shape_vec(IxDyn(shape), v).expect("count checked"),
        ))
    }
}

/// Converts an array of one element type to a tensor of `dtype`.
pub fn cast_array<T: Elem>(a: &ArrayD<T>, dtype: DType) -> Tensor {
    fn go<T: Elem, U: Elem>(a: &ArrayD<T>) -> Tensor {
        U::wrap(a.mapv(|v| U::from_f64(v.to_f64())))
    }
    match dtype {
        DType::F32 => go::<T, f32>(a),
        DType::F16 => go::<T, f16>(a),
        DType::BF16 => go::<T, bf16>(a),
        DType::F64 => go::<T, f64>(a),
        DType::I8 => go::<T, i8>(a),
        DType::U8 => go::<T, u8>(a),
        DType::I32 => go::<T, i32>(a),
        DType::I64 => go::<T, i64>(a),
        DType::Bool => go::<T, bool>(a),
    }
}

impl From<ArrayD<f32>> for Tensor {
    fn from(a: ArrayD<f32>) -> Tensor {
        Tensor::F32(a)
    }
}
impl From<ArrayD<i64>> for Tensor {
    fn from(a: ArrayD<i64>) -> Tensor {
        Tensor::I64(a)
    }
}
impl From<ArrayD<i32>> for Tensor {
    fn from(a: ArrayD<i32>) -> Tensor {
        Tensor::I32(a)
    }
}
impl From<ArrayD<bool>> for Tensor {
    fn from(a: ArrayD<bool>) -> Tensor {
        Tensor::Bool(a)
    }
}

/// A row-major `ArrayD` from a shape and data of matching length (panics otherwise: for
/// callers that computed the length from the shape).
pub fn ndarray_from<T>(shape: &[usize], data: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("data length matches the shape")
}
