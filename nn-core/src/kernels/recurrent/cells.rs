//! The three cells' steps, each forward beside its backward.

use crate::kernels::activation::sigmoid;
use crate::Float;

/// The step of a recurrent cell, forward beside backward, over one sequence
/// of the batch and every hidden unit. The driver ([`recurrent_forward_into`],
/// [`recurrent_backward_into`]) does the products and the bookkeeping; a cell
/// only combines the projections and differentiates that.
pub trait Cell: Clone + Send + Sync + 'static {
    /// Gates per hidden unit: the row blocks of `W_ih`, `W_hh` and the biases.
    const GATES: usize;
    /// Whether the state holds a memory cell `c` beside `h` (the LSTM).
    const CELL_STATE: bool;
    /// Values per hidden unit a step caches for backward (the gates, and for
    /// the GRU the hidden part of its candidate).
    const CACHED: usize = Self::GATES;
    /// Whether the gradient of the hidden projection `h W_hhᵀ + b_hh` differs
    /// from that of the input projection (the GRU's `r ⊙ (W_hn h + b_hn)`).
    const SPLIT_GRAD: bool = false;

    /// The layer's name, Keras's (`"SimpleRNN"`, `"LSTM"`, `"GRU"`): what
    /// summaries show and misuse panics name.
    fn name(&self) -> &'static str;

    /// One step. On entry `cache` (`CACHED·H`) begins with the input
    /// projection `x_t W_ihᵀ + b_ih` (`G·H`), `hp` is the hidden projection
    /// `h_{t-1} W_hhᵀ + b_hh` (`G·H`) and `prev` the previous state (`S`);
    /// writes the new state into `next` and what backward needs into `cache`.
    fn forward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &mut [T],
        hp: &[T],
        prev: &[T],
        next: &mut [T],
    );

    /// Backward of [`Cell::forward_step`]. On entry `dstate` (`S`) holds the
    /// gradient of the step's state `cur`; on exit, the part of the previous
    /// state's gradient that does not pass through `W_hh`. Writes the
    /// gradient of the input projection into `dgates[..G·H]` and, when
    /// [`Cell::SPLIT_GRAD`], that of the hidden projection into
    /// `dgates[G·H..2·G·H]`.
    fn backward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &[T],
        prev: &[T],
        cur: &[T],
        dstate: &mut [T],
        dgates: &mut [T],
    );

    /// Width `S` of a step's state: `2H` with a memory cell, else `H`.
    fn state_width(hidden: usize) -> usize {
        hidden * if Self::CELL_STATE { 2 } else { 1 }
    }

    /// Width of a step's cache.
    fn cache_width(hidden: usize) -> usize {
        hidden * Self::CACHED
    }

    /// Width of a step's gate gradients (see [`Cell::backward_step`]).
    fn grad_width(hidden: usize) -> usize {
        hidden * Self::GATES * if Self::SPLIT_GRAD { 2 } else { 1 }
    }
}

/// The Elman RNN cell, `h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)`:
/// PyTorch's `nn.RNN` `nonlinearity`, Keras's `SimpleRNN` activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RnnCell {
    /// `tanh` (the default of both).
    #[default]
    Tanh,
    /// `relu`.
    Relu,
}

impl Cell for RnnCell {
    const GATES: usize = 1;
    const CELL_STATE: bool = false;

    fn name(&self) -> &'static str {
        "SimpleRNN"
    }

    /// Caches `h_t`, from which both derivatives follow.
    fn forward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &mut [T],
        hp: &[T],
        _prev: &[T],
        next: &mut [T],
    ) {
        for j in 0..hidden {
            let z = cache[j] + hp[j];
            let h = match self {
                RnnCell::Tanh => z.tanh_fast(),
                // `max` would turn NaN into 0; PyTorch's relu keeps it.
                RnnCell::Relu => {
                    if z < T::zero() {
                        T::zero()
                    } else {
                        z
                    }
                }
            };
            cache[j] = h;
            next[j] = h;
        }
    }

    fn backward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &[T],
        _prev: &[T],
        _cur: &[T],
        dstate: &mut [T],
        dgates: &mut [T],
    ) {
        for j in 0..hidden {
            let h = cache[j];
            let slope = match self {
                RnnCell::Tanh => T::one() - h * h,
                // PyTorch's `threshold_backward`: the gradient passes where the output is positive.
                RnnCell::Relu => {
                    if h > T::zero() {
                        T::one()
                    } else {
                        T::zero()
                    }
                }
            };
            dgates[j] = dstate[j] * slope;
            dstate[j] = T::zero();
        }
    }
}

/// The LSTM cell, gates in PyTorch's order `i, f, g, o`:
/// `i = σ(·), f = σ(·), g = tanh(·), o = σ(·)` of the summed projections,
/// `c_t = f ⊙ c_{t-1} + i ⊙ g`, `h_t = o ⊙ tanh(c_t)`. The state is `[h, c]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LstmCell;

impl Cell for LstmCell {
    const GATES: usize = 4;
    const CELL_STATE: bool = true;

    fn name(&self) -> &'static str {
        "LSTM"
    }

    /// Caches the activated gates `[i, f, g, o]`.
    fn forward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &mut [T],
        hp: &[T],
        prev: &[T],
        next: &mut [T],
    ) {
        let h = hidden;
        for j in 0..h {
            let i = sigmoid(cache[j] + hp[j]);
            let f = sigmoid(cache[h + j] + hp[h + j]);
            let g = (cache[2 * h + j] + hp[2 * h + j]).tanh_fast();
            let o = sigmoid(cache[3 * h + j] + hp[3 * h + j]);
            let c = f * prev[h + j] + i * g;
            next[j] = o * c.tanh_fast();
            next[h + j] = c;
            [cache[j], cache[h + j], cache[2 * h + j], cache[3 * h + j]] = [i, f, g, o];
        }
    }

    /// `tanh(c_t)` is recomputed from the state rather than cached.
    fn backward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &[T],
        prev: &[T],
        cur: &[T],
        dstate: &mut [T],
        dgates: &mut [T],
    ) {
        let (h, one) = (hidden, T::one());
        for j in 0..h {
            let [i, f, g, o] = [cache[j], cache[h + j], cache[2 * h + j], cache[3 * h + j]];
            let tc = cur[h + j].tanh_fast();
            let dh = dstate[j];
            let dc = dstate[h + j] + dh * o * (one - tc * tc);
            dgates[j] = dc * g * i * (one - i);
            dgates[h + j] = dc * prev[h + j] * f * (one - f);
            dgates[2 * h + j] = dc * i * (one - g * g);
            dgates[3 * h + j] = dh * tc * o * (one - o);
            dstate[j] = T::zero();
            dstate[h + j] = dc * f;
        }
    }
}

/// The GRU cell, gates in PyTorch's order `r, z, n`:
/// `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z` alike,
/// `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))` (the hidden bias inside
/// the product, as PyTorch and Keras's `reset_after`),
/// `h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GruCell;

impl Cell for GruCell {
    const GATES: usize = 3;
    const CELL_STATE: bool = false;
    const CACHED: usize = 4;
    const SPLIT_GRAD: bool = true;

    fn name(&self) -> &'static str {
        "GRU"
    }

    /// Caches `[r, z, n, W_hn h + b_hn]`.
    fn forward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &mut [T],
        hp: &[T],
        prev: &[T],
        next: &mut [T],
    ) {
        let h = hidden;
        for j in 0..h {
            let r = sigmoid(cache[j] + hp[j]);
            let z = sigmoid(cache[h + j] + hp[h + j]);
            let hn = hp[2 * h + j];
            let n = (cache[2 * h + j] + r * hn).tanh_fast();
            next[j] = (T::one() - z) * n + z * prev[j];
            [cache[j], cache[h + j], cache[2 * h + j], cache[3 * h + j]] = [r, z, n, hn];
        }
    }

    fn backward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &[T],
        prev: &[T],
        _cur: &[T],
        dstate: &mut [T],
        dgates: &mut [T],
    ) {
        let (h, one) = (hidden, T::one());
        for j in 0..h {
            let [r, z, n, hn] = [cache[j], cache[h + j], cache[2 * h + j], cache[3 * h + j]];
            let dh = dstate[j];
            let dn = dh * (one - z) * (one - n * n);
            let dr = dn * hn * r * (one - r);
            let dz = dh * (prev[j] - n) * z * (one - z);
            [dgates[j], dgates[h + j], dgates[2 * h + j]] = [dr, dz, dn];
            // The hidden projection's candidate part reaches n through r.
            [dgates[3 * h + j], dgates[4 * h + j], dgates[5 * h + j]] = [dr, dz, dn * r];
            dstate[j] = dh * z;
        }
    }
}
