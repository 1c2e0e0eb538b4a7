//! The `ha-lb` binary: its command line lives in the library ([`ha_lb::cli`]), so that the
//! library's internals can stay private to it.

fn main() -> std::process::ExitCode {
    ha_lb::cli::main()
}
