//! [`RecurrentConfig`]: the sizes and options of a recurrent layer.

/// What a [`Recurrent`](super::Recurrent) layer is: PyTorch's constructor
/// arguments (`input_size`, `hidden_size`, `num_layers`, `bidirectional`,
/// `dropout`; always `batch_first`, always with biases) and Keras's
/// `return_sequences`.
///
/// ```
/// use nn_core::layers::RecurrentConfig;
///
/// let c = RecurrentConfig::new(16, 32).num_layers(2).bidirectional(true);
/// assert_eq!((c.input_size, c.hidden_size, c.num_layers), (16, 32, 2));
/// assert!(c.bidirectional && c.return_sequences);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RecurrentConfig {
    /// Features per time step of the input.
    pub input_size: usize,
    /// `H`: features of the hidden state, per direction.
    pub hidden_size: usize,
    /// Stacked layers: layer `l > 0` reads the output of layer `l - 1`.
    pub num_layers: usize,
    /// Whether each layer also runs from the last step to the first, its
    /// output concatenated after the forward direction's on the feature axis.
    pub bidirectional: bool,
    /// Whether [`Layer::forward`](crate::layers::Layer::forward) returns
    /// every step's output `[T, dirs·H]` (PyTorch's `output`; the default
    /// of [`RecurrentConfig::new`]) or only the last one `[dirs·H]`: the top
    /// layer's final hidden state of each direction. (`LSTM(64)` in
    /// `sequential!` defaults to the last one, as Keras's does.)
    pub return_sequences: bool,
    /// PyTorch's `dropout`: the probability of dropping each output of
    /// every layer but the last, in training, before the next layer reads it
    /// (not Keras's dropout of the layer's input: put a `Dropout` before the
    /// layer for that).
    pub dropout: f64,
}

impl RecurrentConfig {
    /// One unidirectional layer returning every step's output, as PyTorch's
    /// `nn.LSTM(input_size, hidden_size, batch_first=True)` does.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RecurrentConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            return_sequences: true,
            dropout: 0.0,
        }
    }

    /// Stacks `n` layers.
    pub fn num_layers(self, n: usize) -> Self {
        RecurrentConfig {
            num_layers: n,
            ..self
        }
    }

    /// Runs each layer in both directions.
    pub fn bidirectional(self, b: bool) -> Self {
        RecurrentConfig {
            bidirectional: b,
            ..self
        }
    }

    /// Returns every step's output (`true`) or the last one.
    pub fn return_sequences(self, b: bool) -> Self {
        RecurrentConfig {
            return_sequences: b,
            ..self
        }
    }

    /// Drops each output of every layer but the last with probability `p`
    /// in training (PyTorch's `dropout`).
    pub fn dropout(self, p: f64) -> Self {
        RecurrentConfig { dropout: p, ..self }
    }

    /// 2 when bidirectional, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Features of each step's output: `directions · hidden_size`.
    pub fn output_size(&self) -> usize {
        self.directions() * self.hidden_size
    }

    /// Features of layer `l`'s input.
    pub(super) fn layer_input(&self, l: usize) -> usize {
        if l == 0 {
            self.input_size
        } else {
            self.output_size()
        }
    }

    /// Checks that every size is positive, naming the layer.
    #[track_caller]
    pub(super) fn check(&self, name: &str) {
        assert!(
            self.input_size > 0 && self.hidden_size > 0 && self.num_layers > 0,
            "{name}: input_size, hidden_size and num_layers must be positive, got {self:?}"
        );
        crate::kernels::dropout::check_probability(name, self.dropout);
    }
}
