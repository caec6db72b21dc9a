//! BatchNorm's running statistics are buffers, as in PyTorch: saved and
//! loaded with the parameters, counted as non-trainable, and never seen by
//! optimizers or gradient clipping.

use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;

sequential! {
    #[dtype(f64)]
    pub struct Normed: input(2, 4, 4) {
        Conv2d(3, kernel = 3, padding = "same"),
        bn: BatchNorm,
        Flatten,
        Dense(2),
        head_norm: BatchNorm,
    }
}

fn input() -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[4, 2, 4, 4]), |i| {
        ((i[0] * 5 + i[1] * 3 + i[2] * 7 + i[3]) % 11) as f64 / 5.0 - 1.0
    })
}

fn names(state: &[(String, Param<f64>)]) -> Vec<&str> {
    state.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn running_statistics_are_buffers_in_state_dict_order() {
    let m = Normed::with_seed(0);
    let params = m.named_params();
    assert!(
        names(&params).iter().all(|n| !n.contains("running")),
        "optimizers would see {:?}",
        names(&params)
    );
    assert_eq!(
        names(&m.named_buffers()),
        [
            "bn.running_mean",
            "bn.running_var",
            "head_norm.running_mean",
            "head_norm.running_var"
        ]
    );
    // PyTorch's state_dict: each module's parameters, then its buffers.
    assert_eq!(
        names(&m.named_state()),
        [
            "conv2d.weight",
            "conv2d.bias",
            "bn.weight",
            "bn.bias",
            "bn.running_mean",
            "bn.running_var",
            "dense.weight",
            "dense.bias",
            "head_norm.weight",
            "head_norm.bias",
            "head_norm.running_mean",
            "head_norm.running_var",
        ]
    );
    // Conv 3·2·3·3 + 3 = 57, BN 2·3, dense 2·48 + 2 = 98, BN 2·2: trainable;
    // the running statistics (2·3 + 2·2) are not.
    let s = m.summary();
    assert_eq!((s.trainable, s.non_trainable), (57 + 6 + 98 + 4, 10));
}

#[test]
fn optimizers_with_weight_decay_leave_buffers_alone() {
    let mut m = Normed::with_seed(1);
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.5,
        ..Default::default()
    })
    .unwrap();
    let x = input();
    for _ in 0..3 {
        m.zero_grad();
        let y = m.forward_train(x.view()).to_owned();
        m.backward(y.mapv(|v| v * 0.1).view());
        // What the forward pass left in the running statistics…
        let before: Vec<ArrayD<f64>> = m
            .named_buffers()
            .iter()
            .map(|(_, b)| b.value().clone())
            .collect();
        sgd.step(&m);
        // …is exactly what the optimizer leaves there.
        for ((name, b), old) in m.named_buffers().iter().zip(&before) {
            assert_eq!(&*b.value(), old, "{name} changed by the optimizer");
            assert!(b.grad().is_none(), "{name} has a gradient");
        }
    }
}

#[test]
fn save_and_load_carry_the_buffers() {
    let mut trained = Normed::with_seed(2);
    let x = input();
    trained.forward_train(x.view());
    trained.eval();
    let expected = trained.predict(x.view());
    let dir = std::env::temp_dir().join(format!("nn-buffers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("normed.safetensors");
    trained.save(&path).unwrap();

    let mut fresh = Normed::with_seed(3);
    fresh.load(&path).unwrap();
    fresh.eval();
    for ((name, a), (_, b)) in trained
        .named_buffers()
        .iter()
        .zip(fresh.named_buffers().iter())
    {
        assert_eq!(*a.value(), *b.value(), "{name}");
    }
    // Evaluation reads the running statistics, so the outputs agree only if
    // the buffers came along.
    assert_eq!(fresh.predict(x.view()), expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes `state` as PyTorch would save it, `rename`d, with each BatchNorm's
/// `num_batches_tracked` (an int64 scalar) after its buffers.
fn save_like_pytorch(
    state: &[(String, Param<f64>)],
    rename: impl Fn(&str) -> String,
    norms: &[&str],
    path: &std::path::Path,
) {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = state
        .iter()
        .map(|(n, p)| {
            let v = p.value();
            let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (rename(n), data, v.shape().to_vec())
        })
        .collect();
    let counter = 7i64.to_le_bytes().to_vec();
    let mut views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, d, s)| {
            (
                n.clone(),
                TensorView::new(Dtype::F64, s.clone(), d).unwrap(),
            )
        })
        .collect();
    for bn in norms {
        views.push((
            format!("{bn}.num_batches_tracked"),
            TensorView::new(Dtype::I64, vec![], &counter).unwrap(),
        ));
    }
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn pytorch_num_batches_tracked_is_skipped_when_loading() {
    // A PyTorch state_dict also holds `<bn>.num_batches_tracked`, an int64
    // counter this project does not keep: loading by name and by position
    // skip it rather than failing on an unexpected or extra tensor.
    let trained = Normed::with_seed(5);
    let state = trained.named_state();
    let dir = std::env::temp_dir().join(format!("nn-nbt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // By name, as our own module tree names things.
    let named = dir.join("named.safetensors");
    save_like_pytorch(&state, |n| n.to_string(), &["bn", "head_norm"], &named);
    let mut by_name = Normed::with_seed(6);
    by_name.load(&named).unwrap();

    // By position, as the equivalent nn.Sequential names them: conv 0, bn 1,
    // flatten 2 (no tensors), linear 3, bn 4.
    let index = |n: &str| match n.split('.').next().unwrap() {
        "conv2d" => "0",
        "bn" => "1",
        "dense" => "3",
        _ => "4",
    };
    let positional = dir.join("positional.safetensors");
    save_like_pytorch(
        &state,
        |n| format!("{}.{}", index(n), n.rsplit('.').next().unwrap()),
        &["1", "4"],
        &positional,
    );
    let mut by_position = Normed::with_seed(7);
    by_position.load_pytorch(&positional).unwrap();

    // Named modules have no position: loading them positionally is refused
    // rather than risking two same-shaped tensors swapping.
    let err = Normed::with_seed(8)
        .load_pytorch(&named)
        .unwrap_err()
        .to_string();
    assert!(err.contains("belongs to a named module"), "{err}");

    for m in [&by_name, &by_position] {
        for ((name, a), (_, b)) in state.iter().zip(m.named_state().iter()) {
            assert_eq!(*a.value(), *b.value(), "{name}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_batch_of_one_leaves_the_running_statistics_alone() {
    // `head_norm` normalizes a flat [1, 2]: one value per channel, no
    // variance (PyTorch refuses such a batch in training). `bn` sees 16
    // values per channel even then, and still averages them in.
    let one = input()
        .slice_move(nn::ndarray::s![..1, .., .., ..])
        .into_dyn();
    let state = |m: &Normed| -> Vec<ArrayD<f64>> {
        m.named_buffers()
            .iter()
            .map(|(_, p)| p.value().clone())
            .collect()
    };
    for tape in [false, true] {
        let mut m = Normed::with_seed(3);
        let before = state(&m);
        let out = if tape {
            let t = Tape::new();
            m.forward(&t.constant(one.clone())).value()
        } else {
            m.forward_train(one.view()).to_owned()
        };
        // β (zero) in every channel.
        assert!(out.iter().all(|&v| v == 0.0), "{out}");
        let after = state(&m);
        assert_ne!(after[0], before[0], "bn's running mean moved");
        assert_eq!(after[2..], before[2..], "head_norm's statistics stayed");
    }
}
