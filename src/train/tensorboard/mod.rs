//! TensorBoard logging: the [`TensorBoard`] callback writes event files as
//! TensorFlow does, and [`read_events`] reads them back.
//!
//! An event file is a sequence of TFRecord-framed records (`record`, with
//! `crc32c` checksums), each a protobuf `Event` message (`codec`, on the
//! wire format of `wire`) carrying tagged scalars and [`Histogram`]s.
//! Everything is written by hand: the subset of protobuf needed is small,
//! and no dependency has to follow TensorFlow's.

mod callback;
mod codec;
mod crc32c;
mod event;
mod histogram;
mod parameters;
mod reader;
mod record;
mod wire;
mod writer;

pub use callback::TensorBoard;
pub use event::{Event, SummaryData, SummaryValue};
pub use histogram::Histogram;
pub use reader::{event_files, read_events, EventFileError};
