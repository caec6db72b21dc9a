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
//! Each step is one product on each core's part of the batch: the step's
//! operand rows `[x_t, 1, h_{t-1}]` (kept in the cache) by the joined weights
//! `[W_ih, b_ih + b_hh, W_hh]ᵀ`, written straight into the rows the cell then
//! reads; the GRU, whose two projections must stay apart, projects every
//! input before the loop and takes `[1, h_{t-1}] [b_hh, W_hh]ᵀ` per step.
//! Backward runs the cells and `dh_{t-1} += dg_t W_hh` per step; the
//! parameter gradients are `Σ dg_tᵀ [x_t, 1, h_{t-1}]` (the operands' 1
//! gives the biases' sums). From a batch of 64 on they are added per step
//! into blocks of 32 batch rows while the step's rows are still in cache;
//! smaller batches take them after the loop in one product over every step.
//! The blocks are fixed by the batch size and summed in order, so the
//! gradients are the same bits on any number of threads. The cache and the
//! gate gradients are time first, so a step's rows are contiguous.

mod cells;
mod owned;
mod sequence;
mod shapes;
mod step;
#[cfg(test)]
mod tests;

pub use cells::{Cell, GruCell, LstmCell, RnnCell};
pub use owned::{recurrent_backward, recurrent_forward, OwnedGrads, Recorded};
pub use sequence::{
    recurrent_backward_into, recurrent_forward_into, BackwardScratch, ForwardScratch, Grads, Run,
    StateGrads,
};
pub use shapes::{check_shapes, Dims, Shapes};
