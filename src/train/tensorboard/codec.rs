//! [`Event`]s to protobuf bytes and back.
//!
//! The field numbers are TensorFlow's, from `tensorflow/core/util/event.proto`
//! (`Event`), `tensorflow/core/framework/summary.proto` (`Summary`,
//! `Summary.Value`) and the `HistogramProto` it imports (TensorBoard keeps
//! copies under `tensorboard/compat/proto/`); checked against the message
//! descriptors of the `tensorboard` 2.21 Python package. As protobuf 3 does,
//! fields at their default value are left out, except members of a `oneof`
//! (`file_version`, `summary`, `simple_value`, `histo`), whose presence is
//! what they say.

use super::event::{Event, SummaryData, SummaryValue};
use super::histogram::Histogram;
use super::wire::{
    put_bytes, put_double, put_float, put_int64, put_packed_doubles, FieldValue, Fields,
};

/// `Event`'s fields.
mod event_field {
    pub const WALL_TIME: u32 = 1;
    pub const STEP: u32 = 2;
    pub const FILE_VERSION: u32 = 3;
    pub const SUMMARY: u32 = 5;
}

/// `Summary`'s one field: `repeated Value value = 1`.
const SUMMARY_VALUE: u32 = 1;

/// `Summary.Value`'s fields.
mod value_field {
    pub const TAG: u32 = 1;
    pub const SIMPLE_VALUE: u32 = 2;
    pub const OBSOLETE_OLD_STYLE_HISTOGRAM: u32 = 3;
    pub const IMAGE: u32 = 4;
    pub const HISTO: u32 = 5;
    pub const AUDIO: u32 = 6;
    pub const TENSOR: u32 = 8;
}

/// `HistogramProto`'s fields.
mod histogram_field {
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 2;
    pub const NUM: u32 = 3;
    pub const SUM: u32 = 4;
    pub const SUM_SQUARES: u32 = 5;
    pub const BUCKET_LIMIT: u32 = 6;
    pub const BUCKET: u32 = 7;
}

/// A double left out when zero (protobuf 3's implicit presence; `-0.0` is
/// not the default, so it is written).
fn put_nonzero_double(out: &mut Vec<u8>, field: u32, value: f64) {
    if value.to_bits() != 0 {
        put_double(out, field, value);
    }
}

/// `event` as a serialized `Event` message.
pub(crate) fn encode_event(event: &Event) -> Vec<u8> {
    let mut out = Vec::new();
    put_nonzero_double(&mut out, event_field::WALL_TIME, event.wall_time);
    if event.step != 0 {
        put_int64(&mut out, event_field::STEP, event.step);
    }
    // `file_version` and `summary` share a `oneof`: an event is one or the other.
    match &event.file_version {
        Some(version) => put_bytes(&mut out, event_field::FILE_VERSION, version.as_bytes()),
        None => put_bytes(
            &mut out,
            event_field::SUMMARY,
            &encode_summary(&event.summary),
        ),
    }
    out
}

fn encode_summary(values: &[SummaryValue]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        put_bytes(&mut out, SUMMARY_VALUE, &encode_value(value));
    }
    out
}

fn encode_value(value: &SummaryValue) -> Vec<u8> {
    let mut out = Vec::new();
    if !value.tag.is_empty() {
        put_bytes(&mut out, value_field::TAG, value.tag.as_bytes());
    }
    match &value.data {
        SummaryData::Scalar(x) => put_float(&mut out, value_field::SIMPLE_VALUE, *x),
        SummaryData::Histogram(h) => {
            put_bytes(&mut out, value_field::HISTO, &encode_histogram(h));
        }
        SummaryData::Unsupported => {}
    }
    out
}

fn encode_histogram(h: &Histogram) -> Vec<u8> {
    use histogram_field::*;
    let mut out = Vec::new();
    put_nonzero_double(&mut out, MIN, h.min);
    put_nonzero_double(&mut out, MAX, h.max);
    put_nonzero_double(&mut out, NUM, h.num);
    put_nonzero_double(&mut out, SUM, h.sum);
    put_nonzero_double(&mut out, SUM_SQUARES, h.sum_squares);
    put_packed_doubles(&mut out, BUCKET_LIMIT, &h.bucket_limits);
    put_packed_doubles(&mut out, BUCKET, &h.bucket_counts);
    out
}

/// Decodes a serialized `Event`; fields outside the subset above are skipped.
pub(crate) fn decode_event(bytes: &[u8]) -> Result<Event, String> {
    let mut event = Event {
        wall_time: 0.0,
        step: 0,
        file_version: None,
        summary: Vec::new(),
    };
    for field in Fields::new(bytes) {
        let (number, value) = field?;
        let context = |e: String| format!("Event field {number}: {e}");
        match number {
            event_field::WALL_TIME => event.wall_time = value.as_double().map_err(context)?,
            event_field::STEP => event.step = value.as_int64().map_err(context)?,
            event_field::FILE_VERSION => {
                event.file_version = Some(value.as_string().map_err(context)?);
            }
            event_field::SUMMARY => {
                // A repeated message field's occurrences concatenate.
                event
                    .summary
                    .extend(decode_summary(value.as_bytes().map_err(context)?)?);
            }
            _ => {}
        }
    }
    Ok(event)
}

fn decode_summary(bytes: &[u8]) -> Result<Vec<SummaryValue>, String> {
    let mut values = Vec::new();
    for field in Fields::new(bytes) {
        let (number, value) = field?;
        if number == SUMMARY_VALUE {
            let message = value
                .as_bytes()
                .map_err(|e| format!("Summary.value: {e}"))?;
            values.push(decode_value(message)?);
        }
    }
    Ok(values)
}

fn decode_value(bytes: &[u8]) -> Result<SummaryValue, String> {
    use value_field::*;
    let mut tag = String::new();
    let mut data = SummaryData::Unsupported;
    for field in Fields::new(bytes) {
        let (number, value) = field?;
        let context = |e: String| format!("Summary.Value field {number}: {e}");
        match number {
            TAG => tag = value.as_string().map_err(context)?,
            SIMPLE_VALUE => data = SummaryData::Scalar(value.as_float().map_err(context)?),
            HISTO => {
                let message = value.as_bytes().map_err(context)?;
                data = SummaryData::Histogram(decode_histogram(message).map_err(context)?);
            }
            OBSOLETE_OLD_STYLE_HISTOGRAM | IMAGE | AUDIO | TENSOR => {
                data = SummaryData::Unsupported;
            }
            _ => {}
        }
    }
    Ok(SummaryValue { tag, data })
}

fn decode_histogram(bytes: &[u8]) -> Result<Histogram, String> {
    use histogram_field::*;
    let mut h = Histogram::default();
    for field in Fields::new(bytes) {
        let (number, value): (u32, FieldValue<'_>) = field?;
        let context = |e: String| format!("HistogramProto field {number}: {e}");
        match number {
            MIN => h.min = value.as_double().map_err(context)?,
            MAX => h.max = value.as_double().map_err(context)?,
            NUM => h.num = value.as_double().map_err(context)?,
            SUM => h.sum = value.as_double().map_err(context)?,
            SUM_SQUARES => h.sum_squares = value.as_double().map_err(context)?,
            BUCKET_LIMIT => value
                .extend_doubles(&mut h.bucket_limits)
                .map_err(context)?,
            BUCKET => value
                .extend_doubles(&mut h.bucket_counts)
                .map_err(context)?,
            _ => {}
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn scalar(tag: &str, x: f32) -> SummaryValue {
        SummaryValue {
            tag: tag.into(),
            data: SummaryData::Scalar(x),
        }
    }

    fn sample_event() -> Event {
        Event {
            wall_time: 1.5,
            step: 3,
            file_version: None,
            summary: vec![
                scalar("epoch_loss", 0.25),
                scalar("epoch_accuracy", 0.0),
                SummaryValue {
                    tag: "w".into(),
                    data: SummaryData::Histogram(Histogram {
                        min: -1.0,
                        max: 2.0,
                        num: 3.0,
                        sum: 1.5,
                        sum_squares: 5.25,
                        bucket_limits: vec![0.5, 2.0],
                        bucket_counts: vec![1.0, 2.0],
                    }),
                },
            ],
        }
    }

    #[test]
    fn events_encode_as_tensorboards_protobuf_does() {
        // The bytes of `event_pb2.Event(...).SerializeToString()` for the same
        // events, from the `tensorboard` Python package's generated classes.
        let version = Event {
            wall_time: 1.5,
            step: 0,
            file_version: Some("brain.Event:2".into()),
            summary: Vec::new(),
        };
        assert_eq!(encode_event(&version), hex(VERSION_EVENT_HEX));
        assert_eq!(encode_event(&sample_event()), hex(SAMPLE_EVENT_HEX));
    }

    #[test]
    fn events_round_trip() {
        let event = sample_event();
        assert_eq!(decode_event(&encode_event(&event)).unwrap(), event);
        let negative = Event { step: -7, ..event };
        assert_eq!(decode_event(&encode_event(&negative)).unwrap(), negative);
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut bytes = encode_event(&sample_event());
        // `source_metadata` (field 10), which this reader does not decode.
        put_bytes(&mut bytes, 10, b"\x0a\x03abc");
        assert_eq!(decode_event(&bytes).unwrap(), sample_event());
    }

    const VERSION_EVENT_HEX: &str = "09000000000000f83f1a0d627261696e2e4576656e743a32";
    const SAMPLE_EVENT_HEX: &str = concat!(
        "09000000000000f83f10032a82010a110a0a65706f63685f6c6f7373150000803e0a150a0e",
        "65706f63685f616363757261637915000000000a560a01772a5109000000000000f0bf1100",
        "0000000000004019000000000000084021000000000000f83f290000000000001540321000",
        "0000000000e03f00000000000000403a10000000000000f03f0000000000000040",
    );
}
