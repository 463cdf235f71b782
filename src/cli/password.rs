//! Reads a new user's password from the terminal without echoing it, twice.

use std::io::{BufRead, Write};

pub fn prompt(user: &str) -> std::io::Result<String> {
    let first = read_hidden(&format!("password for {user}: "))?;
    let again = read_hidden("again: ")?;
    if first != again {
        return Err(std::io::Error::other("the two passwords differ"));
    }
    Ok(first)
}

fn read_hidden(label: &str) -> std::io::Result<String> {
    eprint!("{label}");
    std::io::stderr().flush()?;
    let fd = libc::STDIN_FILENO;
    // SAFETY: tcgetattr/tcsetattr only read and write the termios struct we own.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let tty = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if tty {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if tty {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
