//! `ironic-agent`: the agent that runs in the deploy ramdisk (work in progress).

fn main() {
    eprintln!("ironic-agent: not wired yet");
    std::process::exit(2);
}
