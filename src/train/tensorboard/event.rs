//! What an event file holds, decoded: [`Event`]s carrying tagged scalars and
//! histograms.

use super::histogram::Histogram;

/// One record of an event file: TensorFlow's `Event` message, the part of it
/// that TensorBoard's scalars and histograms use.
///
/// ```no_run
/// # fn main() -> Result<(), nn::train::EventFileError> {
/// let events = nn::train::read_events("logs/train/events.out.tfevents.1700000000.nn.1.0")?;
/// let losses: Vec<(i64, f32)> = events
///     .iter()
///     .filter_map(|e| Some((e.step, e.scalar("epoch_loss")?)))
///     .collect();
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When it was written, in seconds since the Unix epoch.
    pub wall_time: f64,
    /// Where it goes on TensorBoard's x-axis: the epoch (from 0, as Keras)
    /// for `epoch_` scalars and histograms, the optimizer step (from 0) for
    /// `batch_` scalars.
    pub step: i64,
    /// `Some("brain.Event:2")` in a file's first event, which holds nothing else.
    pub file_version: Option<String>,
    /// The tagged values (empty for the file-version event).
    pub summary: Vec<SummaryValue>,
}

impl Event {
    /// The scalar tagged `tag`, if this event has one.
    pub fn scalar(&self, tag: &str) -> Option<f32> {
        self.summary.iter().find_map(|v| match &v.data {
            SummaryData::Scalar(x) if v.tag == tag => Some(*x),
            _ => None,
        })
    }

    /// The histogram tagged `tag`, if this event has one.
    pub fn histogram(&self, tag: &str) -> Option<&Histogram> {
        self.summary.iter().find_map(|v| match &v.data {
            SummaryData::Histogram(h) if v.tag == tag => Some(h),
            _ => None,
        })
    }
}

/// One tagged value of an [`Event`] (TensorFlow's `Summary.Value`).
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryValue {
    /// The name TensorBoard shows (`epoch_loss`, `dense.weight`, …).
    pub tag: String,
    /// The value.
    pub data: SummaryData,
}

/// The kinds of value an event can carry.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SummaryData {
    /// A number (the protobuf's `simple_value`, a 32-bit float).
    Scalar(f32),
    /// A histogram (the protobuf's `histo`).
    Histogram(Histogram),
    /// A kind this reader does not decode (images, audio, tensors — which is
    /// how TensorFlow 2 itself writes scalars).
    Unsupported,
}
