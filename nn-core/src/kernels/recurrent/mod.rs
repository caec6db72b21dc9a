//! Recurrent layers over whole sequences, with PyTorch's definitions and
//! parameter layouts: the Elman RNN (tanh or relu), the LSTM and the GRU.
//! Each cell's step sits beside its backward; one sequence driver serves the
//! three, forward over time and back-propagation through time (BPTT).
//!
//! Shapes are batch first: `x: [B, T, I]`, hidden size `H`, `G` gates per
//! unit (RNN 1, LSTM 4, GRU 3), `W_ih: [G·H, I]`, `W_hh: [G·H, H]`,
//! `b_ih, b_hh: [G·H]`. A step's state is `[h, c]` for an LSTM (width
//! `S = 2H`) and `h` otherwise (`S = H`); the driver records every step's
//! state in `states: [B, T, S]`, from which the tape and the layers read the
//! outputs and the final states.
//!
//! Each core runs the recurrence on its part of the batch. A step writes its
//! operand rows `[x_t, 1, h_{t-1}]` into the cache; while the joined weights
//! are small ([`Dims::joins_input`]) one product by `[W_ih, b_ih + b_hh,
//! W_hh]ᵀ` gives the gates' pre-activations straight in the rows the cell
//! then reads. Larger layers, and the GRU (whose two projections must stay
//! apart), project every step's input before the loop and take `[1,
//! h_{t-1}] [b, W_hh]ᵀ` per step. Backward runs the cells and `dh_{t-1} +=
//! dg_t W_hh` per step; the parameter gradients are `Σ dg_tᵀ [x_t, 1,
//! h_{t-1}]` (the operands' 1 gives the biases' sums), added per step into
//! blocks of 32 batch rows while the step's rows are still in cache where
//! that pays ([`Dims::grad_block`]: a batch of 64 and a large enough
//! gradient), otherwise in one product over every step after the loop. The
//! blocks are fixed by the sizes and summed in order, so the gradients are
//! the same bits on any number of threads. The cache and the gate gradients
//! are time first, so a step's rows are contiguous.

mod cells;
mod operands;
mod owned;
mod sequence;
mod shapes;
mod step;
#[cfg(test)]
mod tests;

pub use cells::{Cell, GruCell, LstmCell, RnnCell};
pub use owned::{
    recurrent_backward, recurrent_forward, recurrent_forward_for, OwnedGrads, Recorded,
};
pub use sequence::{
    recurrent_backward_into, recurrent_forward_into, BackwardScratch, ForwardScratch, Grads, Run,
    StateGrads,
};
pub use shapes::{check_shapes, CacheFor, Dims, Shapes};
