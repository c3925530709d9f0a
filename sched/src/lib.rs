//! IPVS schedulers with the kernel's semantics.
