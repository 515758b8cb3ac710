//! The command line's standard output. A reader that goes away early (`hoard ls HOST | head`)
//! ends the program quietly with status 0, as it does other Unix tools; `println!` would panic
//! there. Any other failure to write is reported on standard error, with status 1.

use std::io::Write;

/// Writes `text` to standard output; exits the process if that fails (see the module docs).
pub fn write(text: std::fmt::Arguments<'_>) {
    match std::io::stdout().lock().write_fmt(text) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("hoard: writing to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// `println!` for the command line's output (see the module docs).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for the command line's output (see the module docs).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};
