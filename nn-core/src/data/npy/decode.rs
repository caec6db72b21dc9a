//! Decoding one `.npy` stream whatever its dtype: the header says which, the
//! data is read as that type and converted (to floats or to labels).

use std::io::{self, Read};

use ndarray::{ArrayD, IxDyn, ShapeBuilder};

use super::header::{self, Header, HeaderError};
use super::{ArrayLocation, NpyError};
use crate::Float;

/// An element type the reader accepts, and how it becomes a float or a label.
trait Element: Copy {
    /// Bytes per element.
    const SIZE: usize;
    /// The element stored in `bytes` (`SIZE` of them), or `None` if they
    /// hold no value of the type (a bool byte other than 0 or 1).
    fn from_bytes(bytes: &[u8], big_endian: bool) -> Option<Self>;
    fn to_f64(self) -> f64;
    /// The class index, if `self` is a whole number `>= 0`.
    fn to_label(self) -> Option<usize>;
}

/// `from_bytes` of a number type, in either byte order.
macro_rules! number_from_bytes {
    ($t:ty) => {
        const SIZE: usize = size_of::<$t>();
        fn from_bytes(bytes: &[u8], big_endian: bool) -> Option<Self> {
            let bytes = bytes.try_into().expect("SIZE bytes");
            Some(if big_endian {
                <$t>::from_be_bytes(bytes)
            } else {
                <$t>::from_le_bytes(bytes)
            })
        }
    };
}

macro_rules! integer_elements {
    ($($t:ty),*) => {$(
        impl Element for $t {
            number_from_bytes!($t);
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
            number_from_bytes!($t);
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
    const SIZE: usize = 1;
    fn from_bytes(bytes: &[u8], _: bool) -> Option<Self> {
        match bytes[0] {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
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
    /// The dtype the header declares and whether it is stored big-endian,
    /// or an error naming it as NumPy does.
    fn of(header: &Header, at: &ArrayLocation) -> Result<(Dtype, bool), NpyError> {
        let unsupported = |dtype: String| NpyError::UnsupportedDtype {
            at: at.clone(),
            dtype,
            descr: header.descr_text.clone(),
        };
        // Structured dtypes have a list as descriptor, not a string.
        let Some(s) = header.descr.as_deref() else {
            return Err(unsupported("a structured dtype".into()));
        };
        // '|' (no order: one byte) and '=' (native) read in this machine's order.
        let big_endian = match s.chars().next() {
            Some('>') => true,
            Some('<') => false,
            _ => cfg!(target_endian = "big"),
        };
        let code = s.trim_start_matches(['<', '>', '|', '=']);
        let dtype = match code {
            "b1" | "?" => Dtype::Bool,
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
        };
        Ok((dtype, big_endian))
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

/// Reads an array of any supported dtype from `reader` (`len` bytes long,
/// header included) as `T`, in row-major order.
pub(super) fn read_floats<T: Float>(
    reader: &mut dyn Read,
    len: u64,
    at: &ArrayLocation,
) -> Result<ArrayD<T>, NpyError> {
    let (header, data_len) = read_header(reader, len, at)?;
    let (dtype, big_endian) = Dtype::of(&header, at)?;
    with_element!(dtype, X => {
        let a = read_data::<X>(reader, &header, big_endian, data_len, at)?;
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
    let (dtype, big_endian) = Dtype::of(&header, at)?;
    if !matches!(header.shape.as_slice(), [_] | [_, 1]) {
        return Err(NpyError::LabelShape {
            at: at.clone(),
            shape: header.shape,
        });
    }
    with_element!(dtype, X => {
        let a = read_data::<X>(reader, &header, big_endian, data_len, at)?;
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
    match header::read(reader) {
        Ok((header, used)) => Ok((header, len.saturating_sub(used))),
        Err(HeaderError::Truncated) => Err(not_npy(format!(
            "truncated: the header is cut at byte {len}"
        ))),
        Err(HeaderError::Io(source)) => Err(NpyError::Io {
            at: at.clone(),
            source,
        }),
        Err(HeaderError::Magic) => Err(not_npy(
            "it does not start with the .npy magic string \\x93NUMPY".into(),
        )),
        Err(HeaderError::Bad(e)) => Err(not_npy(format!("bad header: {e}"))),
    }
}

/// The data as stored, after checking that the shape fits in the `data_len`
/// bytes left: a corrupt shape must be an error, not a huge allocation.
fn read_data<X: Element>(
    reader: &mut dyn Read,
    header: &Header,
    big_endian: bool,
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
    let needed = count.and_then(|n| n.checked_mul(X::SIZE));
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
    let io_error = |source: io::Error| match source.kind() {
        io::ErrorKind::UnexpectedEof => not_npy(format!(
            "truncated: shape {:?} needs {needed} data bytes",
            header.shape
        )),
        _ => NpyError::Io {
            at: at.clone(),
            source,
        },
    };
    // Decoded a block at a time: the raw bytes are never held whole beside
    // the decoded values.
    let mut data = Vec::with_capacity(count);
    let mut block = vec![0u8; needed.min(BLOCK_ELEMENTS * X::SIZE)];
    while data.len() < count {
        let n = (count - data.len()).min(BLOCK_ELEMENTS);
        let bytes = &mut block[..n * X::SIZE];
        reader.read_exact(bytes).map_err(io_error)?;
        for chunk in bytes.chunks_exact(X::SIZE) {
            let i = data.len();
            data.push(X::from_bytes(chunk, big_endian).ok_or_else(|| {
                not_npy(format!(
                    "element {i} holds {chunk:?}, not a value of {}",
                    header.descr_text
                ))
            })?);
        }
    }
    let extra = io::copy(reader, &mut io::sink()).map_err(io_error)?;
    if extra > 0 {
        return Err(not_npy(format!(
            "{extra} bytes after the {needed} data bytes of shape {:?}",
            header.shape
        )));
    }
    let shape = IxDyn(&header.shape);
    let array = if header.fortran_order {
        ArrayD::from_shape_vec(shape.f(), data)
    } else {
        ArrayD::from_shape_vec(shape, data)
    };
    // An empty array can still declare dimensions whose product overflows
    // (`(0, 2**63)`): ndarray refuses those.
    array.map_err(|e| not_npy(format!("shape {:?}: {e}", header.shape)))
}

/// Elements decoded per block by [`read_data`].
const BLOCK_ELEMENTS: usize = 1 << 14;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The bytes `np.save` writes for `values` (row-major logical order) of
    /// `shape`, stored as `descr` in C or Fortran order; `to_bytes` encodes
    /// one value in the descriptor's byte order.
    fn npy_file(
        descr: &str,
        shape: &[usize],
        fortran: bool,
        values: &[i64],
        to_bytes: impl Fn(i64) -> Vec<u8>,
    ) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(|d| format!("{d},")).collect();
        let mut text = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': ({}), }}",
            if fortran { "True" } else { "False" },
            dims.join(" ")
        );
        // NumPy pads the whole prefix to a multiple of 64 bytes.
        while (10 + text.len() + 1) % 64 != 0 {
            text.push(' ');
        }
        text.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((text.len() as u16).to_le_bytes());
        bytes.extend(text.as_bytes());
        let logical = ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap();
        let stored: Vec<i64> = if fortran {
            logical.t().iter().copied().collect()
        } else {
            logical.iter().copied().collect()
        };
        for v in stored {
            bytes.extend(to_bytes(v));
        }
        bytes
    }

    /// A descriptor and its encoder, for the values 0..100 every dtype holds.
    fn encoder(code: usize, big: bool) -> (String, Box<dyn Fn(i64) -> Vec<u8>>) {
        macro_rules! enc {
            ($t:ty, $descr:expr) => {
                (
                    format!("{}{}", if big { '>' } else { '<' }, $descr),
                    Box::new(move |v: i64| {
                        let v = v as $t;
                        if big {
                            v.to_be_bytes().to_vec()
                        } else {
                            v.to_le_bytes().to_vec()
                        }
                    }),
                )
            };
        }
        match code {
            0 => enc!(f32, "f4"),
            1 => enc!(f64, "f8"),
            2 => enc!(i16, "i2"),
            3 => enc!(i32, "i4"),
            4 => enc!(i64, "i8"),
            5 => enc!(u16, "u2"),
            6 => enc!(u32, "u4"),
            7 => enc!(u64, "u8"),
            8 => ("|i1".into(), Box::new(|v| vec![v as u8])),
            _ => ("|u1".into(), Box::new(|v| vec![v as u8])),
        }
    }

    fn array_strategy() -> impl Strategy<Value = (Vec<usize>, Vec<i64>)> {
        prop::collection::vec(0usize..4, 0..4).prop_flat_map(|shape| {
            let n = shape.iter().product::<usize>();
            (Just(shape), prop::collection::vec(0i64..100, n))
        })
    }

    proptest! {
        /// Any shape, dtype, byte order and memory order reads back as the
        /// values written, in row-major order.
        #[test]
        fn every_layout_reads_back(
            (shape, values) in array_strategy(),
            code in 0usize..10,
            big in any::<bool>(),
            fortran in any::<bool>(),
        ) {
            let (descr, to_bytes) = encoder(code, big);
            let bytes = npy_file(&descr, &shape, fortran, &values, to_bytes);
            let at = ArrayLocation::npy("t.npy");
            let a = read_floats::<f64>(&mut bytes.as_slice(), bytes.len() as u64, &at).unwrap();
            prop_assert_eq!(a.shape(), shape.as_slice());
            let want: Vec<f64> = values.iter().map(|&v| v as f64).collect();
            prop_assert_eq!(a.iter().copied().collect::<Vec<_>>(), want);
        }

        /// Corrupting or cutting a valid file gives a value or an error,
        /// never a panic or an allocation the file cannot back.
        #[test]
        fn corrupt_files_are_errors_not_panics(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let (descr, to_bytes) = encoder(3, false);
            let mut bytes = npy_file(&descr, &[3, 2], false, &[1, 2, 3, 4, 5, 6], to_bytes);
            for (i, b) in edits {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            let at = ArrayLocation::npy("t.npy");
            let len = bytes.len() as u64;
            let _ = read_floats::<f32>(&mut bytes.as_slice(), len, &at);
            let _ = read_labels(&mut bytes.as_slice(), len, &at);
        }
    }

    #[test]
    fn bool_bytes_other_than_0_and_1_are_refused() {
        let bytes = npy_file("|b1", &[3], false, &[1, 0, 2], |v| vec![v as u8]);
        let at = ArrayLocation::npy("flags.npy");
        let err = read_floats::<f32>(&mut bytes.as_slice(), bytes.len() as u64, &at).unwrap_err();
        assert!(err.to_string().contains("element 2 holds [2]"), "{err}");
    }

    #[test]
    fn an_empty_shape_too_large_for_memory_is_an_error() {
        // No data bytes are needed, but no array can have these dimensions.
        for dims in ["0, 9223372036854775808", "0, 1099511627776, 1099511627776"] {
            let mut text =
                format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
            text.push('\n');
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            bytes.extend((text.len() as u16).to_le_bytes());
            bytes.extend(text.as_bytes());
            let at = ArrayLocation::npy("empty.npy");
            let err =
                read_floats::<f32>(&mut bytes.as_slice(), bytes.len() as u64, &at).unwrap_err();
            assert!(matches!(err, NpyError::NotNpy { .. }), "{err:?}");
            assert!(err.to_string().contains(dims), "{err}");
        }
    }

    #[test]
    fn bytes_after_the_data_are_refused() {
        let mut bytes = npy_file("<i4", &[2], false, &[1, 2], |v| {
            (v as i32).to_le_bytes().to_vec()
        });
        bytes.extend([0, 0, 0]);
        let at = ArrayLocation::npy("long.npy");
        let err = read_floats::<f32>(&mut bytes.as_slice(), bytes.len() as u64, &at).unwrap_err();
        assert!(
            err.to_string().contains("3 bytes after the 8 data bytes"),
            "{err}"
        );
    }
}
