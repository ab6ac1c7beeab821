pub mod placeholder {}
pub mod granule;
pub mod memory;
pub mod structures;
pub mod tables;
pub mod traverse;
pub mod walk;
