//! The command supervisor: a small process between the node and each `command` step, so
//! that nothing a command starts can outlive its node.
//!
//! A command's process group is not enough: a grandchild may start its own session, and
//! a node killed with SIGKILL signals nobody. So the node starts `dwsched __supervise
//! PROGRAM ARGS…` instead of the program. The supervisor
//!
//! - holds one end of a socket pair as its standard input; the node holds the other end
//!   and never writes to it, so the socket reads end-of-file exactly when the node has
//!   closed it: when the node dies, however it dies, or when it wants the command gone;
//! - is a child subreaper (Linux), so descendants whose parents die are re-parented to
//!   it instead of to init, and the whole tree stays below it;
//! - starts the program in a process group of its own, passes a SIGTERM it gets on to
//!   every descendant, and exits with the program's status (re-raising its signal);
//! - kills every remaining descendant, found by walking `/proc` (elsewhere than Linux:
//!   the program's process group), when the program ends and when the socket closes.
//!
//! A program that cannot be started is reported on the socket, and the supervisor exits
//! with [`SPAWN_FAILED`].

use std::ffi::OsString;
use std::io::Write as _;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The first argument that puts the `dwsched` binary into supervisor mode.
pub const SUPERVISOR_ARG: &str = "__supervise";

/// The supervisor's exit status when it could not start the program; the reason is on
/// the socket.
pub const SPAWN_FAILED: i32 = 125;

/// The program the node runs as the supervisor: its own executable. `/proc/self/exe`
/// stays valid when the installed binary is replaced while the node runs.
pub fn this_executable() -> std::path::PathBuf {
    if cfg!(target_os = "linux") {
        std::path::PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().unwrap_or_else(|_| std::path::PathBuf::from("dwsched"))
    }
}

/// How often the supervisor looks at its program when no signal wakes it.
const TICK: Duration = Duration::from_millis(200);

static TERM_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: nix::libc::c_int) {
    TERM_REQUESTED.store(true, Ordering::SeqCst);
}

/// Only there to interrupt `poll` when a child changes state.
extern "C" fn on_child(_: nix::libc::c_int) {}

/// Runs `command` (program and arguments) under supervision and returns the exit code
/// to leave with; a program killed by a signal is mirrored by re-raising that signal.
pub fn supervise(command: &[OsString]) -> i32 {
    let Some((program, args)) = command.split_first() else {
        eprintln!("dwsched {SUPERVISOR_ARG}: no program given");
        return 2;
    };
    // SAFETY: fd 0 is the socket the node handed over; it stays open for our lifetime.
    let node = unsafe { BorrowedFd::borrow_raw(0) };
    become_subreaper();
    install_handlers();

    let child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            let mut socket = UnixStream::from(node.try_clone_to_owned().expect("fd 0"));
            let _ = write!(socket, "{err}");
            return SPAWN_FAILED;
        }
    };
    let program = Pid::from_raw(child.id() as i32);
    let status = loop {
        if node_is_gone(node) {
            kill_descendants(program);
            return 137;
        }
        if TERM_REQUESTED.swap(false, Ordering::SeqCst) {
            // The node asks the command to stop: each of its processes hears it once.
            signal_descendants(program, Signal::SIGTERM);
        }
        if let Some(status) = reap_children(Some(program)) {
            break status;
        }
    };
    // The program is done; whatever it left running goes with it.
    kill_descendants(program);
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => mirror_signal(signal),
        _ => 1,
    }
}

/// Waits up to one tick for the node's socket; true when it has closed.
fn node_is_gone(node: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(node, PollFlags::POLLIN)];
    match poll(
        &mut fds,
        PollTimeout::try_from(TICK).unwrap_or(PollTimeout::MAX),
    ) {
        Ok(0) | Err(Errno::EINTR) => false,
        Ok(_) => {
            let revents = fds[0].revents().unwrap_or(PollFlags::POLLHUP);
            if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                return true;
            }
            // Readable: the node never writes, so this is the end of the stream.
            let mut byte = [0u8; 64];
            !matches!(nix::unistd::read(node, &mut byte), Ok(n) if n > 0)
        }
        Err(_) => true,
    }
}

/// Reaps every child that has ended (adopted orphans included) and returns the
/// program's status once it has ended.
fn reap_children(program: Option<Pid>) -> Option<ExitStatus> {
    let mut ended = None;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if Some(pid) == program => {
                ended = Some(ExitStatus::from_raw((code & 0xff) << 8));
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if Some(pid) == program => {
                ended = Some(ExitStatus::from_raw(signal as i32));
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return ended,
            Ok(_) => {}
        }
    }
}

/// Kills every descendant, again until none is left (one may fork meanwhile; its
/// orphans come to this subreaper), reaping them as they end.
fn kill_descendants(program: Pid) {
    loop {
        let _ = reap_children(None);
        if !signal_descendants(program, Signal::SIGKILL) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = reap_children(None);
}

/// Sends `signal` to every descendant; false when there was none. Without `/proc`
/// (not Linux), the program's process group stands for them.
fn signal_descendants(program: Pid, signal: Signal) -> bool {
    if cfg!(target_os = "linux") {
        let pids = descendants();
        for pid in &pids {
            let _ = kill(*pid, signal);
        }
        !pids.is_empty()
    } else {
        let _ = nix::sys::signal::killpg(program, signal);
        false
    }
}

/// Exits the way the program did: by the same signal, with its default action.
fn mirror_signal(signal: i32) -> i32 {
    if let Ok(signal) = Signal::try_from(signal) {
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: restoring the default action has no handler to be unsafe about.
        unsafe {
            let _ = sigaction(signal, &default);
        }
        let _ = nix::sys::signal::raise(signal);
    }
    128 + signal
}

fn install_handlers() {
    let term = SigAction::new(
        SigHandler::Handler(on_term),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let child = SigAction::new(
        SigHandler::Handler(on_child),
        SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handlers only store to an atomic or do nothing. Handlers (unlike
    // ignored signals) are reset to the default in the program at exec.
    unsafe {
        for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            let _ = sigaction(signal, &term);
        }
        let _ = sigaction(Signal::SIGCHLD, &child);
    }
}

#[cfg(target_os = "linux")]
fn become_subreaper() {
    if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("dwsched {SUPERVISOR_ARG}: cannot become a child subreaper: {err}");
    }
}

#[cfg(not(target_os = "linux"))]
fn become_subreaper() {}

/// Every process below this one, found through the parent links in `/proc`.
#[cfg(target_os = "linux")]
fn descendants() -> Vec<Pid> {
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|stat| parent_in_stat(&stat))
            {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut found = vec![std::process::id() as i32];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        next += 1;
    }
    found.into_iter().skip(1).map(Pid::from_raw).collect()
}

/// Without `/proc`, descendants are not found one by one (see `signal_descendants`).
#[cfg(not(target_os = "linux"))]
fn descendants() -> Vec<Pid> {
    Vec::new()
}

/// The parent pid in a `/proc/<pid>/stat` line: the second field after the command
/// name, which is in parentheses and may itself hold spaces and parentheses.
fn parent_in_stat(stat: &str) -> Option<i32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parent_in_stat;

    #[test]
    fn the_parent_is_read_after_the_command_name() {
        assert_eq!(parent_in_stat("42 (sh) S 7 42 42 0"), Some(7));
        assert_eq!(parent_in_stat("42 (a (b) c) R 9 1 1"), Some(9));
        assert_eq!(parent_in_stat("42 (sh"), None);
    }
}
