//! The fixed sinusoidal position table of "Attention Is All You Need".

use ndarray::{Array2, ArrayD};

use crate::Float;

/// The `[steps, dim]` table of sinusoidal positions (Vaswani et al., 2017;
/// keras-hub's `SinePositionEncoding`): `sin(p / 10000^(2i/dim))` in column
/// `2i` and `cos` of the same in column `2i + 1`. Add it to a `[batch,
/// steps, dim]` sequence, a constant on the tape: `x + tape.constant(table)`.
///
/// ```
/// use nn_core::layers::sinusoidal_positions;
///
/// let table = sinusoidal_positions::<f64>(50, 16);
/// assert_eq!(table.shape(), [50, 16]);
/// assert_eq!((table[[0, 0]], table[[0, 1]]), (0.0, 1.0)); // sin 0, cos 0
/// assert!((table[[3, 2]] - (3.0 / 10_000f64.powf(2.0 / 16.0)).sin()).abs() < 1e-15);
/// assert!((table[[3, 3]] - (3.0 / 10_000f64.powf(2.0 / 16.0)).cos()).abs() < 1e-15);
/// assert!((table[[7, 15]] - (7.0 / 10_000f64.powf(14.0 / 16.0)).cos()).abs() < 1e-15);
/// ```
pub fn sinusoidal_positions<T: Float>(steps: usize, dim: usize) -> ArrayD<T> {
    Array2::from_shape_fn((steps, dim), |(p, j)| {
        let angle = p as f64 / 10_000f64.powf((j - j % 2) as f64 / dim as f64);
        T::lit(if j % 2 == 0 { angle.sin() } else { angle.cos() })
    })
    .into_dyn()
}
