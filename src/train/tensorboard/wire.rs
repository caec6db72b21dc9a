//! The protobuf wire format, the small part of it event files use: varints,
//! 64- and 32-bit fixed values and length-delimited bytes
//! (<https://protobuf.dev/programming-guides/encoding/>).

/// How a field's value is laid out after its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    Fixed32 = 5,
}

/// Appends `value` as a base-128 varint, low groups first.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: WireType) {
    put_varint(out, (u64::from(field) << 3) | wire as u64);
}

/// A `double` field.
pub(crate) fn put_double(out: &mut Vec<u8>, field: u32, value: f64) {
    put_key(out, field, WireType::Fixed64);
    out.extend_from_slice(&value.to_le_bytes());
}

/// A `float` field.
pub(crate) fn put_float(out: &mut Vec<u8>, field: u32, value: f32) {
    put_key(out, field, WireType::Fixed32);
    out.extend_from_slice(&value.to_le_bytes());
}

/// An `int64` field: negative values take ten bytes, as protobuf's two's
/// complement varint.
pub(crate) fn put_int64(out: &mut Vec<u8>, field: u32, value: i64) {
    put_key(out, field, WireType::Varint);
    put_varint(out, value as u64);
}

/// A `string`, `bytes` or embedded message field.
pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, WireType::LengthDelimited);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A packed `repeated double` field (left out when empty, as protobuf does).
pub(crate) fn put_packed_doubles(out: &mut Vec<u8>, field: u32, values: &[f64]) {
    if values.is_empty() {
        return;
    }
    put_key(out, field, WireType::LengthDelimited);
    put_varint(out, (values.len() * 8) as u64);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// One decoded field's value, by wire type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum FieldValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl FieldValue<'_> {
    /// The value of a `double` field.
    pub(crate) fn as_double(self) -> Result<f64, String> {
        match self {
            FieldValue::Fixed64(bits) => Ok(f64::from_bits(bits)),
            other => Err(format!("expected a double, found {other:?}")),
        }
    }

    /// The value of a `float` field.
    pub(crate) fn as_float(self) -> Result<f32, String> {
        match self {
            FieldValue::Fixed32(bits) => Ok(f32::from_bits(bits)),
            other => Err(format!("expected a float, found {other:?}")),
        }
    }

    /// The value of an `int64` field.
    pub(crate) fn as_int64(self) -> Result<i64, String> {
        match self {
            FieldValue::Varint(v) => Ok(v as i64),
            other => Err(format!("expected a varint, found {other:?}")),
        }
    }

    /// The bytes of a `string`, `bytes` or message field.
    pub(crate) fn as_bytes(&self) -> Result<&[u8], String> {
        match self {
            FieldValue::Bytes(b) => Ok(b),
            other => Err(format!("expected length-delimited bytes, found {other:?}")),
        }
    }

    /// The value of a `string` field.
    pub(crate) fn as_string(&self) -> Result<String, String> {
        String::from_utf8(self.as_bytes()?.to_vec()).map_err(|e| format!("invalid UTF-8: {e}"))
    }

    /// The values of a `repeated double` field, packed (what writers emit)
    /// or one element at a time (which parsers must also accept).
    pub(crate) fn extend_doubles(&self, out: &mut Vec<f64>) -> Result<(), String> {
        match self {
            FieldValue::Fixed64(bits) => out.push(f64::from_bits(*bits)),
            FieldValue::Bytes(packed) => {
                if packed.len() % 8 != 0 {
                    return Err(format!(
                        "packed doubles of {} bytes (not a multiple of 8)",
                        packed.len()
                    ));
                }
                out.extend(
                    packed
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of eight bytes"))),
                );
            }
            other => return Err(format!("expected repeated doubles, found {other:?}")),
        }
        Ok(())
    }
}

/// The fields of one message, in the order they were written: `(field
/// number, value)`, or an error saying what is malformed.
pub(crate) struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    /// The fields of the message encoded in `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Fields { bytes, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err("truncated varint".into());
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than ten bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("field of {n} bytes runs past the message's end"))?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn field(&mut self) -> Result<(u32, FieldValue<'a>), String> {
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| format!("field number {}", key >> 3))?;
        let value = match key & 7 {
            0 => FieldValue::Varint(self.varint()?),
            1 => FieldValue::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().expect("eight bytes"),
            )),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "huge length".to_string())?;
                FieldValue::Bytes(self.take(len)?)
            }
            5 => FieldValue::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("four bytes"),
            )),
            other => return Err(format!("unsupported wire type {other} (field {field})")),
        };
        Ok((field, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, FieldValue<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            // Nothing after a malformed field can be trusted.
            self.pos = self.bytes.len();
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varints_match_the_protobuf_documentation() {
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(1), [0x01]);
        assert_eq!(varint(127), [0x7f]);
        // The encoding guide's example: 150 is `96 01`.
        assert_eq!(varint(150), [0x96, 0x01]);
        assert_eq!(varint(300), [0xac, 0x02]);
        assert_eq!(varint(u64::MAX).len(), 10);
    }

    #[test]
    fn negative_int64_takes_ten_bytes() {
        let mut out = Vec::new();
        put_int64(&mut out, 2, -1);
        assert_eq!(
            out,
            [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        let (field, value) = Fields::new(&out).next().unwrap().unwrap();
        assert_eq!((field, value.as_int64().unwrap()), (2, -1));
    }

    #[test]
    fn keys_hold_the_field_number_and_wire_type() {
        let mut out = Vec::new();
        put_double(&mut out, 1, 1.0);
        put_float(&mut out, 2, 0.5);
        put_bytes(&mut out, 3, b"hi");
        put_packed_doubles(&mut out, 6, &[1.0, 2.0]);
        assert_eq!(out[0], 0x09); // field 1, fixed64
        assert_eq!(out[9], 0x15); // field 2, fixed32
        assert_eq!(&out[14..18], &[0x1a, 2, b'h', b'i']); // field 3, length-delimited
        assert_eq!(&out[18..20], &[0x32, 16]); // field 6, 16 bytes of doubles

        let fields: Vec<_> = Fields::new(&out).map(Result::unwrap).collect();
        assert_eq!(fields[0].1.as_double().unwrap(), 1.0);
        assert_eq!(fields[1].1.as_float().unwrap(), 0.5);
        assert_eq!(fields[2].1.as_string().unwrap(), "hi");
        let mut doubles = Vec::new();
        fields[3].1.extend_doubles(&mut doubles).unwrap();
        assert_eq!(doubles, [1.0, 2.0]);
    }

    #[test]
    fn malformed_messages_are_errors() {
        // A length past the end, a truncated varint, a group (wire type 3).
        assert!(Fields::new(&[0x1a, 5, b'a']).next().unwrap().is_err());
        assert!(Fields::new(&[0x10, 0x80]).next().unwrap().is_err());
        assert!(Fields::new(&[0x0b]).next().unwrap().is_err());
        let mut doubles = Vec::new();
        assert!(FieldValue::Bytes(&[0; 7])
            .extend_doubles(&mut doubles)
            .is_err());
    }
}
