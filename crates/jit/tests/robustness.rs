//! The robustness tests of crates/cpu/tests/robustness.rs (random code and states: no panic,
//! no hang, a prompt stop) with the translator as the engine: that file is compiled here as a
//! module and creates every engine through `crate::new_engine`, defined below.

use cetbox_cpu::Engine;

/// The engine the shared tests run: the translator, translating every block at once (the
/// default waits until a block is hot, which random code rarely becomes).
pub fn new_engine() -> Box<dyn Engine> {
    Box::new(cetbox_jit::Translator::translate_everything())
}

#[path = "../../cpu/tests/robustness.rs"]
mod robustness;
