//! The `.npy`/`.npz` and CSV loaders on the fixtures in `tests/fixtures/data/`.
//! The `.npy`/`.npz` files and their values come from `make_fixtures.py`
//! there (numpy's `np.save`, `np.savez`, `np.savez_compressed`); the CSV
//! files, `corrupt.npy` and `not_a_zip.npz` are written by hand, their values
//! read off the files. Every error must be the right variant and its message
//! must name the file (and the array, or the row and column).

use std::fmt::Display;
use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use nn_core::data::csv::{dataset_from_csv, CsvColumn, CsvError, CsvOptions};
use nn_core::data::npy::{self, NpyError};
use nn_core::data::{Data, TargetKind, TargetsAs};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/data")
        .join(name)
}

fn array<T: Clone>(shape: &[usize], values: &[T]) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap()
}

/// Asserts that the message of `err` holds every one of `parts`.
fn says(err: &impl Display, parts: &[&str]) {
    let message = err.to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "message {message:?} does not mention {part:?}"
        );
    }
}

// ---------------------------------------------------------------- .npy arrays

#[test]
fn float32_npy_reads_as_f32_and_f64() {
    // make_fixtures.py: arange(12) / 4 - 1, shape (4, 3).
    let expected: Vec<f64> = (0..12).map(|i| i as f64 / 4.0 - 1.0).collect();
    let a = npy::read_array::<f64>(fixture("inputs_f32.npy")).unwrap();
    assert_eq!(a, array(&[4, 3], &expected));
    let b = npy::read_array::<f32>(fixture("inputs_f32.npy")).unwrap();
    assert_eq!(b, a.mapv(|v| v as f32));
}

#[test]
fn fortran_order_reads_in_logical_order() {
    // make_fixtures.py: asfortranarray(arange(6).reshape(2, 3) + 0.5).
    let a = npy::read_array::<f64>(fixture("fortran_f64.npy")).unwrap();
    assert_eq!(a, array(&[2, 3], &[0.5, 1.5, 2.5, 3.5, 4.5, 5.5]));
    assert!(a.is_standard_layout());
}

#[test]
fn big_endian_integers_read_as_floats() {
    // make_fixtures.py: [[-300, -1], [0, 7]] as '>i2'.
    let a = npy::read_array::<f32>(fixture("big_endian_i16.npy")).unwrap();
    assert_eq!(a, array(&[2, 2], &[-300.0, -1.0, 0.0, 7.0]));
}

#[test]
fn every_supported_dtype_reads_as_floats_and_labels() {
    // make_fixtures.py: one array per dtype holding [0, 1, 2, 100] (bool:
    // [False, True, True, False]), in this order, np.savez_compressed.
    let path = fixture("every_dtype.npz");
    let names = npy::npz_names(&path).unwrap();
    let dtypes = [
        "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
        "uint64", "bool",
    ];
    assert_eq!(names, dtypes);
    for name in dtypes {
        let (floats, labels) = if name == "bool" {
            (vec![0.0, 1.0, 1.0, 0.0], vec![0, 1, 1, 0])
        } else {
            (vec![0.0, 1.0, 2.0, 100.0], vec![0, 1, 2, 100])
        };
        let a = npy::read_npz_array::<f64>(&path, name).unwrap();
        assert_eq!(a, array(&[4], &floats), "{name}");
        assert_eq!(npy::read_npz_labels(&path, name).unwrap(), labels, "{name}");
    }
}

// ---------------------------------------------------------------- labels

#[test]
fn labels_read_from_integers_whole_floats_and_columns() {
    // make_fixtures.py: int64 [0, 2, 1, 2]; float32 [[1], [0], [2], [1]].
    assert_eq!(
        npy::read_labels(fixture("labels_i64.npy")).unwrap(),
        [0, 2, 1, 2]
    );
    assert_eq!(
        npy::read_labels(fixture("labels_f32_column.npy")).unwrap(),
        [1, 0, 2, 1]
    );
}

#[test]
fn negative_fractional_and_matrix_labels_are_errors() {
    // make_fixtures.py: int32 [0, 1, -1, 2]; float64 [0, 1.5, 2]; zeros (2, 2).
    let err = npy::read_labels(fixture("labels_negative.npy")).unwrap_err();
    assert!(
        matches!(err, NpyError::InvalidLabel { sample: 2, value, .. } if value == -1.0),
        "{err:?}"
    );
    says(&err, &["labels_negative.npy", "label -1 of sample 2"]);

    let err = npy::read_labels(fixture("labels_fractional.npy")).unwrap_err();
    assert!(
        matches!(err, NpyError::InvalidLabel { sample: 1, value, .. } if value == 1.5),
        "{err:?}"
    );
    says(&err, &["labels_fractional.npy", "label 1.5 of sample 1"]);

    let err = npy::read_labels(fixture("labels_2d.npy")).unwrap_err();
    assert!(
        matches!(&err, NpyError::LabelShape { shape, .. } if shape == &[2, 2]),
        "{err:?}"
    );
    says(&err, &["labels_2d.npy", "[2, 2]"]);
}

// ---------------------------------------------------------------- bad files

#[test]
fn unsupported_dtypes_are_named_as_numpy_names_them() {
    for (file, dtype, descr) in [
        ("complex.npy", "complex128", "<c16"),
        ("strings.npy", "str", "<U2"),
        ("float16.npy", "float16", "<f2"),
    ] {
        let err = npy::read_array::<f32>(fixture(file)).unwrap_err();
        match &err {
            NpyError::UnsupportedDtype {
                dtype: d, descr: s, ..
            } => {
                assert_eq!(d, dtype);
                assert!(s.contains(descr), "{s}");
            }
            other => panic!("{file}: {other:?}"),
        }
        says(&err, &[file, dtype]);
    }
}

#[test]
fn corrupt_and_truncated_files_are_errors_not_panics() {
    for (file, problem) in [
        ("corrupt.npy", "magic string"),
        ("truncated_header.npy", "truncated"),
        ("truncated_data.npy", "truncated"),
        // The header claims 10^12 float64 values: refused before allocating.
        ("huge_shape.npy", "8000000000000 data bytes"),
    ] {
        let err = npy::read_array::<f32>(fixture(file)).unwrap_err();
        assert!(matches!(err, NpyError::NotNpy { .. }), "{file}: {err:?}");
        says(&err, &[file, problem]);
    }
    let err = npy::read_array::<f32>(fixture("no_such_file.npy")).unwrap_err();
    assert!(matches!(err, NpyError::Missing { .. }), "{err:?}");
    says(&err, &["no_such_file.npy", "no such file"]);
}

#[test]
fn bad_archives_and_missing_arrays_are_errors() {
    let err = npy::read_npz_array::<f32>(fixture("not_a_zip.npz"), "x").unwrap_err();
    assert!(matches!(err, NpyError::NotNpz { .. }), "{err:?}");
    says(&err, &["not_a_zip.npz", "not a valid .npz"]);

    let err = npy::read_npz_array::<f32>(fixture("not_npy_inside.npz"), "x").unwrap_err();
    assert!(matches!(err, NpyError::NotNpy { .. }), "{err:?}");
    says(&err, &["not_npy_inside.npz, array 'x'"]);

    let err = npy::read_npz_array::<f32>(fixture("classes.npz"), "z").unwrap_err();
    assert!(
        matches!(&err, NpyError::NoSuchArray { name, names, .. } if name == "z" && names == &["x", "y"]),
        "{err:?}"
    );
    says(&err, &["classes.npz", "'z'", "x, y"]);
}

// ---------------------------------------------------------------- datasets

#[test]
fn npz_dataset_of_labels() {
    // make_fixtures.py: x = arange(10).reshape(5, 2) float32, y = uint8 [0, 1, 2, 1, 0].
    let path = fixture("classes.npz");
    let x: Vec<f32> = (0..10).map(|i| i as f32).collect();
    let d = npy::dataset_from_npz::<f32>(&path, "x", "y", TargetsAs::labels(3)).unwrap();
    assert_eq!(d.inputs(), array(&[5, 2], &x));
    assert_eq!(d.labels(), [0, 1, 2, 1, 0]);
    assert_eq!(d.classes(), Some(3));

    let inferred = npy::dataset_from_npz::<f32>(&path, "x", "y", TargetsAs::default()).unwrap();
    assert_eq!(inferred.classes(), None);
    assert_eq!(inferred.target_kind(), TargetKind::Labels { classes: 3 });

    let err = npy::dataset_from_npz::<f32>(&path, "x", "y", TargetsAs::labels(2)).unwrap_err();
    assert!(
        matches!(
            err,
            NpyError::LabelOutOfRange {
                sample: 2,
                label: 2,
                classes: 2,
                ..
            }
        ),
        "{err:?}"
    );
    says(&err, &["classes.npz, array 'y'", "sample 2"]);
}

#[test]
fn compressed_npz_dataset_of_values() {
    // make_fixtures.py: x = [[1, 2], [3, 4], [5, 6]] / 2, y = [[10], [20], [30]].
    let d = npy::dataset_from_npz::<f64>(fixture("regression.npz"), "x", "y", TargetsAs::Values)
        .unwrap();
    assert_eq!(d.inputs(), array(&[3, 2], &[0.5, 1.0, 1.5, 2.0, 2.5, 3.0]));
    assert_eq!(
        d.targets().values().unwrap(),
        array(&[3, 1], &[10.0, 20.0, 30.0])
    );
}

#[test]
fn npy_pair_datasets_and_their_errors() {
    // make_fixtures.py: values_f64 = [0.5, -1, 2, 3.25], 1-D: becomes [4, 1].
    let inputs = fixture("inputs_f32.npy");
    let d = npy::dataset_from_npy::<f32>(&inputs, fixture("values_f64.npy"), TargetsAs::Values)
        .unwrap();
    assert_eq!(d.sample_shape(), [3]);
    assert_eq!(
        d.targets().values().unwrap(),
        array(&[4, 1], &[0.5, -1.0, 2.0, 3.25])
    );
    let d = npy::dataset_from_npy::<f32>(&inputs, fixture("labels_i64.npy"), TargetsAs::labels(3))
        .unwrap();
    assert_eq!(d.labels(), [0, 2, 1, 2]);

    // make_fixtures.py: 3 inputs, 2 labels.
    let err = npy::dataset_from_npz::<f32>(fixture("mismatch.npz"), "x", "y", TargetsAs::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            NpyError::SampleCount {
                input_count: 3,
                target_count: 2,
                ..
            }
        ),
        "{err:?}"
    );
    says(
        &err,
        &["mismatch.npz, array 'x'", "mismatch.npz, array 'y'"],
    );

    // make_fixtures.py: [[1, 2], [nan, 4]].
    let err = npy::dataset_from_npy::<f32>(
        fixture("nan_inputs.npy"),
        fixture("labels_i64.npy"),
        TargetsAs::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, NpyError::NotFinite { index, .. } if index == &[1, 0]),
        "{err:?}"
    );
    says(&err, &["nan_inputs.npy", "[1, 0]", "NaN"]);
}

// ---------------------------------------------------------------- CSV

#[test]
fn csv_with_header_and_label_column_last() {
    // iris_like.csv: 3 feature columns, then species 0, 0, 2, 1.
    let path = fixture("iris_like.csv");
    let d = dataset_from_csv::<f32>(&path, &CsvOptions::new()).unwrap();
    let x = [5.1, 3.5, 1.4, 4.9, 3.0, 1.4, 6.3, 3.3, 6.0, 5.8, 2.7, 4.1];
    assert_eq!(d.inputs(), array(&[4, 3], &x));
    assert_eq!(d.labels(), [0, 0, 2, 1]);
    assert_eq!(d.classes(), None);
    let d = dataset_from_csv::<f32>(&path, &CsvOptions::new().targets_as(TargetsAs::labels(3)))
        .unwrap();
    assert_eq!(d.classes(), Some(3));
}

#[test]
fn csv_without_header_with_skipped_and_several_value_columns() {
    // regression_semicolon.csv: id;x1;x2;y1;y2 (no header). Targets asked as
    // y2 then y1, so each sample's values come in that order.
    let options = CsvOptions::new()
        .header(false)
        .delimiter(b';')
        .targets([4, 3])
        .targets_as(TargetsAs::Values)
        .skip([0]);
    let d = dataset_from_csv::<f64>(fixture("regression_semicolon.csv"), &options).unwrap();
    assert_eq!(
        d.inputs(),
        array(&[3, 2], &[0.5, 1.5, 2.5, -3.0, 1e-3, 4.0])
    );
    assert_eq!(
        d.targets().values().unwrap(),
        array(&[3, 2], &[-1.0, 10.0, -2.0, 20.0, -3.0, 30.0])
    );
}

#[test]
fn csv_target_by_name_with_spaces_and_quotes() {
    // named_target.csv: "rooms, price ,area"; quoted fields "4" and "120.5".
    let options = CsvOptions::new()
        .target("price")
        .targets_as(TargetsAs::Values);
    let d = dataset_from_csv::<f64>(fixture("named_target.csv"), &options).unwrap();
    assert_eq!(d.inputs(), array(&[2, 2], &[3.0, 80.0, 4.0, 120.5]));
    assert_eq!(
        d.targets().values().unwrap(),
        array(&[2, 1], &[250.5, 410.0])
    );
}

#[test]
fn csv_values_that_are_not_finite_are_errors_naming_the_field() {
    let path = std::env::temp_dir().join(format!("nn-csv-finite-{}.csv", std::process::id()));
    for (field, f64_too) in [("NaN", true), ("-inf", true), ("1e40", false)] {
        std::fs::write(&path, format!("a,b,label\n1,2,0\n3,{field},1\n")).unwrap();
        let err = dataset_from_csv::<f32>(&path, &CsvOptions::new()).unwrap_err();
        assert!(
            matches!(&err, CsvError::NotFinite { row: 3, column: CsvColumn::Named(c), text, .. } if c == "b" && text == field),
            "{err:?}"
        );
        says(&err, &["row 3", "column 'b'", field, "not a finite f32"]);
        // 1e40 is a finite f64.
        assert_eq!(
            dataset_from_csv::<f64>(&path, &CsvOptions::new()).is_err(),
            f64_too
        );
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn csv_a_target_named_twice_in_the_header_is_an_error() {
    let path = std::env::temp_dir().join(format!("nn-csv-twice-{}.csv", std::process::id()));
    std::fs::write(&path, "a,y,b,y\n1,0,2,1\n").unwrap();
    let err = dataset_from_csv::<f32>(&path, &CsvOptions::new().target("y")).unwrap_err();
    says(&err, &["column 'y' is named twice", "columns 1 and 3"]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn csv_bad_fields_name_row_and_column() {
    // bad_number.csv: header, a row, an empty line 3, then "3,abc,1" on line 4.
    let err = dataset_from_csv::<f32>(fixture("bad_number.csv"), &CsvOptions::new()).unwrap_err();
    assert!(
        matches!(&err, CsvError::NotANumber { row: 4, column: CsvColumn::Named(c), text, .. } if c == "b" && text == "abc"),
        "{err:?}"
    );
    says(&err, &["bad_number.csv", "row 4", "column 'b'", "'abc'"]);

    // bad_number_no_header.csv: line 3 is "5,,0": column 2 is empty.
    let options = CsvOptions::new().header(false);
    let err = dataset_from_csv::<f32>(fixture("bad_number_no_header.csv"), &options).unwrap_err();
    assert!(
        matches!(&err, CsvError::NotANumber { row: 3, column: CsvColumn::Numbered(2), text, .. } if text.is_empty()),
        "{err:?}"
    );
    says(
        &err,
        &[
            "bad_number_no_header.csv",
            "row 3",
            "column 2",
            "empty field",
        ],
    );

    // ragged.csv: line 4 is "5,0".
    let err = dataset_from_csv::<f32>(fixture("ragged.csv"), &CsvOptions::new()).unwrap_err();
    assert!(
        matches!(
            err,
            CsvError::Ragged {
                row: 4,
                fields: 2,
                expected: 3,
                first_row: 1,
                ..
            }
        ),
        "{err:?}"
    );
    says(&err, &["ragged.csv", "row 4 has 2 fields, expected 3"]);
}

#[test]
fn csv_bad_labels_name_row_and_column() {
    // bad_label.csv: line 3 is "3,4,1.5".
    let err = dataset_from_csv::<f32>(fixture("bad_label.csv"), &CsvOptions::new()).unwrap_err();
    assert!(
        matches!(&err, CsvError::InvalidLabel { row: 3, column: CsvColumn::Named(c), text, .. } if c == "label" && text == "1.5"),
        "{err:?}"
    );
    says(&err, &["bad_label.csv", "row 3", "column 'label'", "'1.5'"]);

    // label_out_of_range.csv: line 5 is "7,8,3", with 3 classes declared.
    let options = CsvOptions::new().targets_as(TargetsAs::labels(3));
    let err = dataset_from_csv::<f32>(fixture("label_out_of_range.csv"), &options).unwrap_err();
    assert!(
        matches!(
            err,
            CsvError::LabelOutOfRange {
                row: 5,
                label: 3,
                classes: 3,
                ..
            }
        ),
        "{err:?}"
    );
    says(
        &err,
        &["label_out_of_range.csv", "row 5", "column 'label'", "0..3"],
    );
}

#[test]
fn csv_empty_files_unknown_columns_and_bad_options() {
    for (file, after_header) in [("empty.csv", false), ("header_only.csv", true)] {
        let err = dataset_from_csv::<f32>(fixture(file), &CsvOptions::new()).unwrap_err();
        assert!(
            matches!(err, CsvError::Empty { after_header: a, .. } if a == after_header),
            "{file}: {err:?}"
        );
        says(&err, &[file, "no data rows"]);
    }

    let path = fixture("iris_like.csv");
    let err = dataset_from_csv::<f32>(&path, &CsvOptions::new().target("petal_width")).unwrap_err();
    assert!(
        matches!(&err, CsvError::UnknownColumn { name, header, .. } if name == "petal_width" && header.len() == 4),
        "{err:?}"
    );
    says(&err, &["iris_like.csv", "'petal_width'", "sepal_length"]);

    let two_label_columns = CsvOptions::new().targets([2, 3]);
    let err = dataset_from_csv::<f32>(&path, &two_label_columns).unwrap_err();
    assert!(matches!(err, CsvError::Options { .. }), "{err:?}");
    says(&err, &["iris_like.csv", "2 target columns"]);

    let named_without_header = CsvOptions::new().header(false).target("species");
    let err = dataset_from_csv::<f32>(&path, &named_without_header).unwrap_err();
    assert!(matches!(err, CsvError::Options { .. }), "{err:?}");

    let skipped_target = CsvOptions::new().skip([3]);
    let err = dataset_from_csv::<f32>(&path, &skipped_target).unwrap_err();
    says(&err, &["column 'species' is given twice"]);

    let err = dataset_from_csv::<f32>(fixture("no_such.csv"), &CsvOptions::new()).unwrap_err();
    assert!(matches!(err, CsvError::Missing { .. }), "{err:?}");
    says(&err, &["no_such.csv", "no such file"]);
}
