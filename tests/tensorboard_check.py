"""Reads a log directory written by `nn::train::TensorBoard` with TensorBoard's
own reader, prints what it finds, and checks it is what the callback writes.

The Rust test `tests/suite/tensorboard.rs` checks the files with this crate's reader;
this script checks that TensorBoard itself accepts them. To run it:

    NN_TENSORBOARD_KEEP=/tmp/nn_tb cargo test -p nn --test tensorboard
    python tests/tensorboard_check.py /tmp/nn_tb

(`pip install tensorboard` first; TensorFlow is not needed.) The directory may
hold several runs: every event file is checked. Then `tensorboard --logdir
/tmp/nn_tb` shows the same curves and histograms in the browser.

It checks:
- every record's two CRCs, with TensorBoard's record reader (which raises on
  a mismatch, where TensorBoard's loaders would log it and stop reading), and
  that every record parses as an `Event`, the first holding `brain.Event:2`;

and, as TensorBoard loads the files (`EventAccumulator`):
- `train/` has `epoch_loss`, `epoch_learning_rate`, and `validation/` has
  `epoch_loss` (its `val_` prefix dropped), at steps 0, 1, 2, … (epochs);
- `batch_` scalars, if any, are at increasing steps;
- every histogram has as many values in its buckets as it says (`num`), and
  TensorBoard's histogram plugin converts it (`data_compat`) without error;

and, as the web dashboards load them (`EventMultiplexer`, one run per
directory): the scalars and histograms plugins list the tags.
"""

import glob
import math
import os
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard import data_compat
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.tensorflow_stub import errors
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New


def read_records_strictly(path):
    """Every record's `Event`, raising `DataLossError` on a CRC mismatch."""
    reader = PyRecordReader_New(path)
    events = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return events
        events.append(event_pb2.Event.FromString(reader.record()))


def load(path):
    """All scalars and histograms of one event file, as TensorBoard reads them."""
    acc = event_accumulator.EventAccumulator(
        path,
        size_guidance={
            event_accumulator.SCALARS: 0,  # 0: keep every point
            event_accumulator.HISTOGRAMS: 0,
        },
    )
    acc.Reload()
    return acc


def check_scalars(name, acc, split):
    tags = acc.Tags()["scalars"]
    print(f"{name}: scalars {sorted(tags)}")
    for tag in sorted(tags):
        points = acc.Scalars(tag)
        steps = [p.step for p in points]
        values = ", ".join(f"{p.step}:{p.value:.6g}" for p in points)
        print(f"  {tag:24} {values}")
        assert steps == sorted(steps), f"{tag}: steps out of order {steps}"
        assert all(math.isfinite(p.value) for p in points), tag
        if tag.startswith("epoch_"):
            assert steps == list(range(len(steps))), f"{tag}: epoch steps {steps}"
    assert "epoch_loss" in tags, f"{name}: no epoch_loss"
    if split == "train":
        assert "epoch_learning_rate" in tags, f"{name}: no epoch_learning_rate"
    else:
        assert not any(t.startswith("epoch_val_") for t in tags), tags


def check_histograms(name, acc):
    tags = acc.Tags()["histograms"]
    print(f"{name}: {len(tags)} histograms")
    for tag in sorted(tags):
        for event in acc.Histograms(tag):
            h = event.histogram_value
            assert sum(h.bucket) == h.num, f"{tag}: buckets {sum(h.bucket)} != num {h.num}"
            assert h.bucket_limit[-1] >= h.max, f"{tag}: last limit below max"
            assert h.min <= h.max, tag
            # What the histogram dashboard does with it.
            value = summary_pb2.Summary.Value(
                tag=tag,
                histo=summary_pb2.HistogramProto(
                    min=h.min,
                    max=h.max,
                    num=h.num,
                    sum=h.sum,
                    sum_squares=h.sum_squares,
                    bucket_limit=h.bucket_limit,
                    bucket=h.bucket,
                ),
            )
            migrated = data_compat.migrate_value(value)
            assert migrated.metadata.plugin_data.plugin_name == "histograms", tag
        last = acc.Histograms(tag)[-1]
        h = last.histogram_value
        print(
            f"  {tag:24} steps {[e.step for e in acc.Histograms(tag)]}"
            f"  last: num {h.num:g} min {h.min:.4g} max {h.max:.4g}"
            f" mean {h.sum / h.num:.4g} buckets {len(h.bucket)}"
        )


def check_dashboards(log_dir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(log_dir)
    multiplexer.Reload()
    for plugin in ["scalars", "histograms"]:
        runs = multiplexer.PluginRunToTagToContent(plugin)
        for run in sorted(runs):
            print(f"dashboard {plugin:10} run {run:10} {sorted(runs[run])}")
    scalars = multiplexer.PluginRunToTagToContent("scalars")
    for run in ["train", "validation"]:
        assert "epoch_loss" in scalars.get(run, {}), f"{run}: epoch_loss not on the dashboard"


def main(log_dir):
    files = 0
    for split in ["train", "validation"]:
        paths = sorted(glob.glob(os.path.join(log_dir, split, "*tfevents*")))
        assert paths, f"no event files in {os.path.join(log_dir, split)}"
        for path in paths:
            name = os.path.join(split, os.path.basename(path))
            events = read_records_strictly(path)
            print(f"{name}: {len(events)} records, CRCs verified")
            assert events[0].file_version == "brain.Event:2", events[0]
            assert all(e.HasField("summary") for e in events[1:]), name
            acc = load(path)
            version = acc.file_version
            print(f"{name}: file_version {version}")
            assert version == 2.0, f"{name}: file version {version}"
            check_scalars(name, acc, split)
            check_histograms(name, acc)
            files += 1
    check_dashboards(log_dir)
    print(f"OK: {files} event files read by TensorBoard")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
