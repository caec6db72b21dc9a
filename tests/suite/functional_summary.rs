//! `functional!`'s `summary()`: Keras 3's table for a functional model, with
//! its "Connected to" column, rows in Keras's order (by depth from the
//! outputs), cells wrapped as Keras prints them.
//!
//! The expected tables were printed by Keras 3 (torch backend, outside a
//! terminal) for the same models, declared in Python as shown above each.

use nn::prelude::*;

functional! {
    pub struct Siamese(a: input(4), b: input(4)) -> (out, aux) {
        let dense = Dense(8, activation = tanh);
        let ha = dense(a);
        let hb = dense(b);
        let d = Subtract(ha, hb);
        let s = Add(ha, hb);
        let c = Concatenate(s, d);
        let out = Dense(2)(c);
        let aux = Dense(1, activation = sigmoid)(ha);
    }
}

/// ```python
/// a = keras.Input((4,), name="a"); b = keras.Input((4,), name="b")
/// shared = layers.Dense(8, activation="tanh")
/// ha = shared(a); hb = shared(b)
/// d = layers.Subtract()([ha, hb])
/// s = layers.Add()([ha, hb])
/// c = layers.Concatenate()([s, d])
/// out = layers.Dense(2)(c)
/// aux = layers.Dense(1, activation="sigmoid")(ha)
/// keras.Model([a, b], [out, aux], name="siamese").summary()
/// ```
const KERAS_SIAMESE: &str = "\
Model: \"siamese\"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ a (InputLayer)      │ (None, 4)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ b (InputLayer)      │ (None, 4)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense (Dense)       │ (None, 8)         │         40 │ a[0][0], b[0][0]  │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ add (Add)           │ (None, 8)         │          0 │ dense[0][0],      │
│                     │                   │            │ dense[1][0]       │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ subtract (Subtract) │ (None, 8)         │          0 │ dense[0][0],      │
│                     │                   │            │ dense[1][0]       │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ concatenate         │ (None, 16)        │          0 │ add[0][0],        │
│ (Concatenate)       │                   │            │ subtract[0][0]    │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense_1 (Dense)     │ (None, 2)         │         34 │ concatenate[0][0] │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense_2 (Dense)     │ (None, 1)         │          9 │ dense[0][0]       │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 83 (332.00 B)
 Trainable params: 83 (332.00 B)
 Non-trainable params: 0 (0.00 B)";

#[test]
fn a_shared_layer_and_two_outputs_print_as_keras_does() {
    assert_eq!(Siamese::with_seed(0).summary().to_string(), KERAS_SIAMESE);
}

functional! {
    pub struct TwoBranch(image: input(1, 28, 28), meta: input(4)) -> (out) {
        let x = Conv2d(16, kernel = 3, activation = relu)(image);
        let x = GlobalAvgPool(x);
        let m = Dense(16)(meta);
        let m = Activation("relu")(m);
        let h = Concatenate(x, m);
        let out = Dense(10, activation = softmax)(h);
    }
}

/// ```python
/// image = keras.Input((1, 28, 28), name="image"); meta = keras.Input((4,), name="meta")
/// x = layers.Conv2D(16, 3, activation="relu", data_format="channels_first")(image)
/// x = layers.GlobalAveragePooling2D(data_format="channels_first")(x)
/// m = layers.Dense(16)(meta); m = layers.Activation("relu")(m)
/// h = layers.Concatenate()([x, m])
/// out = layers.Dense(10, activation="softmax")(h)
/// keras.Model([image, meta], out, name="two_branch").summary()
/// ```
///
/// Keras's output, except where our layers' names differ from Keras's:
/// `conv2d (Conv2d)` for `conv2d (Conv2D)`, and `global_avg_pool
/// (GlobalAvgPool)` for Keras's `global_average_poo… / (GlobalAveragePool…`
/// (wrapped and cut the way Keras cuts its own), also where `concatenate`
/// names it.
const KERAS_TWO_BRANCH: &str = "\
Model: \"two_branch\"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ image (InputLayer)  │ (None, 1, 28, 28) │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ meta (InputLayer)   │ (None, 4)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d (Conv2d)     │ (None, 16, 26,    │        160 │ image[0][0]       │
│                     │ 26)               │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense (Dense)       │ (None, 16)        │         80 │ meta[0][0]        │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ global_avg_pool     │ (None, 16)        │          0 │ conv2d[0][0]      │
│ (GlobalAvgPool)     │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ activation          │ (None, 16)        │          0 │ dense[0][0]       │
│ (Activation)        │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ concatenate         │ (None, 32)        │          0 │ global_avg_pool[… │
│ (Concatenate)       │                   │            │ activation[0][0]  │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense_1 (Dense)     │ (None, 10)        │        330 │ concatenate[0][0] │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 570 (2.23 KB)
 Trainable params: 570 (2.23 KB)
 Non-trainable params: 0 (0.00 B)";

#[test]
fn the_two_branch_model_prints_as_keras_does() {
    assert_eq!(
        TwoBranch::with_seed(0).summary().to_string(),
        KERAS_TWO_BRANCH
    );
}
