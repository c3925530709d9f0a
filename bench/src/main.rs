//! testpmd-style performance runs (see issue: bench). Placeholder until the data plane lands.
fn main() {
    eprintln!("bench: not built yet");
    std::process::exit(2);
}
