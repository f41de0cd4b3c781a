//! The `ironic` binary (being written).

fn main() {
    eprintln!("ironic: the reference deployment is being written");
    std::process::exit(2);
}
