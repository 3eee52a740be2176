//! Many producing connections driven from one thread with epoll. A thread
//! per connection costs a context switch per response (the thread sleeps
//! in `recv` and is woken for it), which on a small machine costs more CPU
//! than the broker spends on the send; one thread per core, each polling
//! its share of the sockets, reads whatever responses arrived in one go.

use std::os::fd::RawFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rocketcore_protocol::client::blocking::RESPONSE_TIMEOUT;

use crate::args::LoadArgs;
use crate::route::Mq;
use crate::workload::{Control, Interval, Producer, WorkerResult};

/// Longest epoll wait, so a stop or a deadline is noticed promptly.
const MAX_WAIT: Duration = Duration::from_millis(50);

/// An epoll instance, closed when dropped.
struct Epoll(RawFd);

impl Epoll {
    fn new() -> std::io::Result<Epoll> {
        // SAFETY: no pointers; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64) -> std::io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `event` outlives the call.
        if unsafe { libc::epoll_ctl(self.0, op, fd, &mut event) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Tokens of the sockets with something to read, into `ready`.
    fn wait(
        &self,
        events: &mut [libc::epoll_event],
        timeout: Duration,
        ready: &mut Vec<u64>,
    ) -> std::io::Result<()> {
        ready.clear();
        let ms = timeout.as_millis().clamp(0, i32::MAX as u128) as i32;
        // SAFETY: the kernel writes at most `events.len()` entries.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::Interrupted => Ok(()),
                _ => Err(e),
            };
        }
        ready.extend(events[..n as usize].iter().map(|e| e.u64));
        Ok(())
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// Runs the producing connections `workers` (worker index, its queues) on
/// this thread until every one is done; one result per connection.
pub fn produce_group(
    args: &LoadArgs,
    workers: &[(usize, Vec<Mq>)],
    ctl: &Control,
    intervals: &[Mutex<Interval>],
    per_conn_rate: Option<f64>,
) -> Vec<WorkerResult> {
    let mut results = Vec::new();
    let mut producers = Vec::new();
    for (worker, mqs) in workers {
        match Producer::new(args, *worker, mqs, ctl, &intervals[*worker], per_conn_rate) {
            Ok(p) => producers.push(p),
            Err(res) => results.push(res),
        }
    }
    let epoll = match Epoll::new() {
        Ok(e) => e,
        Err(e) => {
            for p in &mut producers {
                p.fail(format!("epoll: {e}"));
            }
            results.extend(producers.into_iter().map(Producer::finish));
            return results;
        }
    };
    for (token, p) in producers.iter_mut().enumerate() {
        let added = match p.conn.raw_fd() {
            Some(fd) => epoll.ctl(libc::EPOLL_CTL_ADD, fd, token as u64),
            None => Err(std::io::Error::other("TLS connections cannot be polled")),
        };
        if let Err(e) = added {
            p.fail(format!("epoll: {e}"));
        }
    }
    // When each paced connection may send next (None: when answered).
    let mut due: Vec<Option<Instant>> = producers.iter_mut().map(|p| p.fill()).collect();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; producers.len().max(1)];
    let mut ready = Vec::with_capacity(producers.len());
    let mut last_answer = Instant::now();
    loop {
        let now = Instant::now();
        // Read once per wake-up, not once per connection: with paced sends
        // a wake-up serves about one message.
        let stopping = ctl.stopping();
        let mut next = now + MAX_WAIT;
        let mut live = 0;
        for (p, due) in producers.iter_mut().zip(due.iter_mut()) {
            if due.is_some_and(|d| d <= now) || (p.in_flight() == 0 && due.is_none()) {
                *due = p.fill();
            }
            if let Some(d) = *due {
                next = next.min(d);
            }
            if !p.done_if_stopping(stopping) {
                live += 1;
            }
        }
        if live == 0 {
            break;
        }
        if let Err(e) = epoll.wait(&mut events, next.saturating_duration_since(now), &mut ready) {
            for p in &mut producers {
                p.fail(format!("epoll: {e}"));
            }
            break;
        }
        if ready.is_empty() && last_answer.elapsed() > RESPONSE_TIMEOUT {
            // Nothing answered for as long as a blocking receive waits.
            for p in producers.iter_mut().filter(|p| p.in_flight() > 0) {
                p.fail("receive: no response in time".into());
            }
        }
        for &token in &ready {
            let p = &mut producers[token as usize];
            last_answer = Instant::now();
            loop {
                match p.conn.try_recv() {
                    Ok(Some(r)) => p.on_response(r),
                    Ok(None) => break,
                    Err(e) => {
                        p.fail(format!("receive: {e}"));
                        if let Some(fd) = p.conn.raw_fd() {
                            let _ = epoll.ctl(libc::EPOLL_CTL_DEL, fd, token);
                        }
                        break;
                    }
                }
            }
            due[token as usize] = p.fill();
        }
    }
    results.extend(producers.into_iter().map(Producer::finish));
    results
}
