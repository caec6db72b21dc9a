//! A point the compiler does not move loads across, for kernels whose
//! unrolled loops it would otherwise schedule badly.
//!
//! LLVM's scheduler gathers the loads of several unrolled iterations ahead
//! of their multiply-adds; in a kernel that already holds its accumulators
//! in most of the vector registers, the early values are spilled to the
//! stack and read back. An empty `asm!` block may, as far as the compiler
//! knows, read and write memory, so no load is hoisted above it, and it
//! emits no instruction.

/// Keeps the loads that follow after the code before: place it at the top
/// of each unrolled iteration that should load only its own operands.
#[inline(always)]
pub(crate) fn loads_after() {
    // SAFETY: an empty template runs no instruction and touches neither
    // registers nor the stack; `nomem` is left out on purpose (see above).
    unsafe { std::arch::asm!("", options(nostack, preserves_flags)) }
}
