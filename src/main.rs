//! The guardsh binary: everything lives in the library; see `guardsh::main`.

fn main() -> std::process::ExitCode {
    guardsh::main()
}
