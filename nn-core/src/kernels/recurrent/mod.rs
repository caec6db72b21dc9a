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
//! The products are batched over time wherever the recurrence allows: the
//! input projection `x W_ihᵀ` of every step is one GEMM before the loop; in
//! backward the gate gradients of every step are collected first, then `dx`
//! and `dW_ih` are one GEMM each and `dW_hh` one per step over the batch.
//! Only `h_{t-1} W_hhᵀ` (and its transpose in backward) is a GEMM per step
//! inside the recurrence, which runs on each core for its part of the batch.

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
