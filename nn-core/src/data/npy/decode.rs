//! Decoding one `.npy` stream whatever its dtype: the header says which, the
//! data is read as that type and converted (to floats or to labels).

use std::io::{self, Read};

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use ndarray_npy::npy::header::{Header, ParseHeaderError, ReadHeaderError};
use ndarray_npy::{ReadDataError, ReadableElement};

use super::{ArrayLocation, NpyError};
use crate::Float;

/// An element type the reader accepts, and how it becomes a float or a label.
trait Element: ReadableElement + Copy {
    fn to_f64(self) -> f64;
    /// The class index, if `self` is a whole number `>= 0`.
    fn to_label(self) -> Option<usize>;
}

macro_rules! integer_elements {
    ($($t:ty),*) => {$(
        impl Element for $t {
            fn to_f64(self) -> f64 {
                // Exact up to 2^53, beyond any feature value met in practice.
                self as f64
            }
            fn to_label(self) -> Option<usize> {
                usize::try_from(self).ok()
            }
        }
    )*};
}
integer_elements!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float_elements {
    ($($t:ty),*) => {$(
        impl Element for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_label(self) -> Option<usize> {
                // Labels saved from float arrays (pandas, one-hot argmax cast to
                // float) are fine as long as they are whole.
                let v = self as f64;
                (v >= 0.0 && v.fract() == 0.0 && v < usize::MAX as f64).then_some(v as usize)
            }
        }
    )*};
}
float_elements!(f32, f64);

impl Element for bool {
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    fn to_label(self) -> Option<usize> {
        Some(usize::from(self))
    }
}

/// The dtypes read, by the descriptor's kind and size.
#[derive(Clone, Copy, Debug)]
enum Dtype {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

/// Runs `$body` with `$x` a type alias for the element type of `$dtype`: one
/// monomorphized reader per dtype.
macro_rules! with_element {
    ($dtype:expr, $x:ident => $body:expr) => {
        match $dtype {
            Dtype::Bool => {
                type $x = bool;
                $body
            }
            Dtype::I8 => {
                type $x = i8;
                $body
            }
            Dtype::I16 => {
                type $x = i16;
                $body
            }
            Dtype::I32 => {
                type $x = i32;
                $body
            }
            Dtype::I64 => {
                type $x = i64;
                $body
            }
            Dtype::U8 => {
                type $x = u8;
                $body
            }
            Dtype::U16 => {
                type $x = u16;
                $body
            }
            Dtype::U32 => {
                type $x = u32;
                $body
            }
            Dtype::U64 => {
                type $x = u64;
                $body
            }
            Dtype::F32 => {
                type $x = f32;
                $body
            }
            Dtype::F64 => {
                type $x = f64;
                $body
            }
        }
    };
}

impl Dtype {
    /// The dtype the header declares, or an error naming it as NumPy does.
    fn of(header: &Header, at: &ArrayLocation) -> Result<Dtype, NpyError> {
        let descr = header.type_descriptor.to_string();
        let unsupported = |dtype: String| NpyError::UnsupportedDtype {
            at: at.clone(),
            dtype,
            descr: descr.clone(),
        };
        // Structured dtypes have a list as descriptor, not a string.
        let Some(s) = header.type_descriptor.as_string() else {
            return Err(unsupported("a structured dtype".into()));
        };
        // The byte order ('<', '>', '|') is the element reader's business.
        let code = s.trim_start_matches(['<', '>', '|', '=']);
        Ok(match code {
            "b1" => Dtype::Bool,
            "i1" | "b" => Dtype::I8,
            "i2" => Dtype::I16,
            "i4" => Dtype::I32,
            "i8" => Dtype::I64,
            "u1" | "B" => Dtype::U8,
            "u2" => Dtype::U16,
            "u4" => Dtype::U32,
            "u8" => Dtype::U64,
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            _ => return Err(unsupported(numpy_name(code))),
        })
    }
}

/// NumPy's name for a descriptor code such as `c16` (`complex128`).
fn numpy_name(code: &str) -> String {
    let (kind, size) = code.split_at(code.chars().next().map_or(0, char::len_utf8));
    let bits = size.parse::<usize>().map(|b| b * 8);
    match (kind, bits) {
        ("f", Ok(bits)) => format!("float{bits}"),
        ("c", Ok(bits)) => format!("complex{bits}"),
        ("i", Ok(bits)) => format!("int{bits}"),
        ("u", Ok(bits)) => format!("uint{bits}"),
        ("U", _) => "str".into(),
        ("S", _) => "bytes".into(),
        ("O", _) => "object".into(),
        ("V", _) => "void".into(),
        ("M", _) => "datetime64".into(),
        ("m", _) => "timedelta64".into(),
        _ => code.into(),
    }
}

/// Counts the bytes read through it, to know where the header ended.
struct Counted<'a> {
    inner: &'a mut dyn Read,
    count: u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Reads an array of any supported dtype from `reader` (`len` bytes long,
/// header included) as `T`, in row-major order.
pub(super) fn read_floats<T: Float>(
    reader: &mut dyn Read,
    len: u64,
    at: &ArrayLocation,
) -> Result<ArrayD<T>, NpyError> {
    let (header, data_len) = read_header(reader, len, at)?;
    with_element!(Dtype::of(&header, at)?, X => {
        let a = read_data::<X>(reader, &header, data_len, at)?;
        // Iterating in logical order also turns Fortran order into row-major.
        let values = a.iter().map(|&v| T::lit(v.to_f64())).collect();
        Ok(ArrayD::from_shape_vec(a.raw_dim(), values).expect("same element count"))
    })
}

/// Reads labels (`[n]` or `[n, 1]`, whole numbers `>= 0` of any dtype).
pub(super) fn read_labels(
    reader: &mut dyn Read,
    len: u64,
    at: &ArrayLocation,
) -> Result<Vec<usize>, NpyError> {
    let (header, data_len) = read_header(reader, len, at)?;
    let dtype = Dtype::of(&header, at)?;
    if !matches!(header.shape.as_slice(), [_] | [_, 1]) {
        return Err(NpyError::LabelShape {
            at: at.clone(),
            shape: header.shape,
        });
    }
    with_element!(dtype, X => {
        let a = read_data::<X>(reader, &header, data_len, at)?;
        a.iter()
            .enumerate()
            .map(|(sample, &v)| {
                v.to_label().ok_or_else(|| NpyError::InvalidLabel {
                    at: at.clone(),
                    sample,
                    value: v.to_f64(),
                })
            })
            .collect()
    })
}

/// The header, and how many data bytes follow it.
fn read_header(
    reader: &mut dyn Read,
    len: u64,
    at: &ArrayLocation,
) -> Result<(Header, u64), NpyError> {
    let not_npy = |problem: String| NpyError::NotNpy {
        at: at.clone(),
        problem,
    };
    let mut counted = Counted {
        inner: reader,
        count: 0,
    };
    match Header::from_reader(&mut counted) {
        Ok(header) => Ok((header, len.saturating_sub(counted.count))),
        Err(ReadHeaderError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Err(not_npy(
            format!("truncated: the header is cut at byte {len}"),
        )),
        Err(ReadHeaderError::Io(source)) => Err(NpyError::Io {
            at: at.clone(),
            source,
        }),
        Err(ReadHeaderError::Parse(ParseHeaderError::MagicString)) => Err(not_npy(
            "it does not start with the .npy magic string \\x93NUMPY".into(),
        )),
        Err(ReadHeaderError::Parse(e)) => Err(not_npy(format!("bad header: {e}"))),
    }
}

/// The data as stored, after checking that the shape fits in the `data_len`
/// bytes left: a corrupt shape must be an error, not a huge allocation.
fn read_data<X: Element>(
    reader: &mut dyn Read,
    header: &Header,
    data_len: u64,
    at: &ArrayLocation,
) -> Result<ArrayD<X>, NpyError> {
    let not_npy = |problem: String| NpyError::NotNpy {
        at: at.clone(),
        problem,
    };
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d));
    let needed = count.and_then(|n| n.checked_mul(size_of::<X>()));
    let (count, needed) = match (count, needed) {
        (Some(c), Some(b)) if b as u64 <= data_len => (c, b),
        _ => {
            return Err(not_npy(format!(
                "truncated or corrupt: shape {:?} needs {} data bytes, only {data_len} follow the header",
                header.shape,
                needed.map_or("more than 2^64".into(), |b| b.to_string()),
            )))
        }
    };
    let data =
        X::read_to_end_exact_vec(reader, &header.type_descriptor, count).map_err(|e| match e {
            ReadDataError::Io(source) => NpyError::Io {
                at: at.clone(),
                source,
            },
            ReadDataError::MissingData => not_npy(format!(
                "truncated: shape {:?} needs {needed} data bytes",
                header.shape
            )),
            ReadDataError::ExtraBytes(extra) => not_npy(format!(
                "{extra} bytes after the {needed} data bytes of shape {:?}",
                header.shape
            )),
            other => not_npy(format!("bad data: {other}")),
        })?;
    let shape = IxDyn(&header.shape);
    let array = if header.layout.is_fortran() {
        ArrayD::from_shape_vec(shape.f(), data)
    } else {
        ArrayD::from_shape_vec(shape, data)
    };
    Ok(array.expect("element count checked against the shape"))
}
