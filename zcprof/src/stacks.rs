//! The stacks layer in user space: where in the program the bytes are moved. The kernel
//! samples a thread's user stack as its process's bytes cross each period; here the raw
//! frames are named ([`symbolize`]), each stack reduced to the call site the report shows
//! ([`callsite`]), and the stacks drawn as flame graphs ([`flame`]).

pub mod callsite;
pub mod flame;
pub mod symbolize;
