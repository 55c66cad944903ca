//! Measuring a child process: CPU seconds (user + system) from `/proc/<pid>/stat`, peak RSS
//! (`VmHWM`) from `/proc/<pid>/status` sampled every 100 ms, and exact exit timing.
//!
//! The final CPU figures are read after the process has exited but before it is reaped:
//! `waitid(P_PID, pid, WEXITED | WNOWAIT)` leaves a zombie whose `stat` still holds its total
//! `utime`/`stime` (proc(5)). `VmHWM` is gone by then (the address space is released first), so
//! the peak RSS is the last 100 ms sample: it misses growth in the final 100 ms at most.

use anyhow::{bail, Context, Result};
use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// CPU time of a process in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cpu {
    /// User-mode seconds.
    pub user: f64,
    /// Kernel-mode seconds.
    pub sys: f64,
}

impl Cpu {
    /// user + sys.
    pub fn total(self) -> f64 {
        self.user + self.sys
    }

    /// `self - earlier`.
    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user - earlier.user,
            sys: self.sys - earlier.sys,
        }
    }
}

/// Reads utime and stime of `pid` (running or zombie) in seconds.
///
/// # Errors
/// `/proc/<pid>/stat` is unreadable or malformed (the process was reaped).
pub fn cpu(pid: u32) -> Result<Cpu> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("failed to read /proc/{pid}/stat"))?;
    parse_stat_cpu(&text).with_context(|| format!("malformed /proc/{pid}/stat"))
}

/// utime (field 14) and stime (field 15) of a `/proc/<pid>/stat` line, in seconds. `comm` may hold
/// spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat_cpu(text: &str) -> Result<Cpu> {
    let after = &text[text.rfind(')').context("no ')' in stat")? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After comm: state is field 3, so utime (14) is index 11 and stime (15) index 12.
    if fields.len() < 13 {
        bail!("stat has {} fields after comm", fields.len());
    }
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    Ok(Cpu {
        user: fields[11].parse::<u64>()? as f64 / ticks,
        sys: fields[12].parse::<u64>()? as f64 / ticks,
    })
}

/// `VmHWM` and `VmRSS` of `pid` in bytes, if the process still has an address space.
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// What a monitored process used, up to its exit (or up to now).
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Seconds from spawn to exit.
    pub wall_seconds: f64,
    /// CPU used.
    pub cpu: Cpu,
    /// Highest `VmHWM` seen, bytes.
    pub peak_rss_bytes: u64,
    /// Last `VmRSS` seen, bytes.
    pub last_rss_bytes: u64,
}

/// Samples a child's memory every 100 ms on a background thread.
pub struct Monitor {
    pid: u32,
    started: Instant,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<()>>,
    peak: Arc<std::sync::atomic::AtomicU64>,
    last: Arc<std::sync::atomic::AtomicU64>,
}

impl Monitor {
    /// Starts sampling `child` (spawned at `started`).
    pub fn start(child: &Child, started: Instant) -> Monitor {
        let pid = child.id();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let last = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sampler = {
            let (stop, peak, last) = (stop.clone(), peak.clone(), last.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some((hwm, rss)) = memory(pid) {
                        peak.fetch_max(hwm, Ordering::Relaxed);
                        last.store(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Monitor {
            pid,
            started,
            stop,
            sampler: Some(sampler),
            peak,
            last,
        }
    }

    /// Usage so far, for a process that is still running.
    ///
    /// # Errors
    /// The process is gone.
    pub fn snapshot(&self) -> Result<Usage> {
        if let Some((hwm, rss)) = memory(self.pid) {
            self.peak.fetch_max(hwm, Ordering::Relaxed);
            self.last.store(rss, Ordering::Relaxed);
        }
        Ok(Usage {
            wall_seconds: self.started.elapsed().as_secs_f64(),
            cpu: cpu(self.pid)?,
            peak_rss_bytes: self.peak.load(Ordering::Relaxed),
            last_rss_bytes: self.last.load(Ordering::Relaxed),
        })
    }

    /// Waits for the child to exit, reads its final CPU times from the zombie, then reaps it.
    ///
    /// # Errors
    /// `waitid` or the final `/proc` read fails.
    pub fn wait(mut self, child: &mut Child) -> Result<(Usage, ExitStatus)> {
        let pid = Pid::from_child(child);
        loop {
            match waitid(
                WaitId::Pid(pid),
                WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
            ) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e).context("waitid on the measured process"),
            }
        }
        let wall_seconds = self.started.elapsed().as_secs_f64();
        let final_cpu = cpu(self.pid)?;
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = self.sampler.take() {
            let _ = s.join();
        }
        let status = child.wait().context("reaping the measured process")?;
        Ok((
            Usage {
                wall_seconds,
                cpu: final_cpu,
                peak_rss_bytes: self.peak.load(Ordering::Relaxed),
                last_rss_bytes: self.last.load(Ordering::Relaxed),
            },
            status,
        ))
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line = "1234 (we ird) name)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0";
        let c = parse_stat_cpu(line).unwrap();
        let hz = rustix::param::clock_ticks_per_second() as f64;
        assert_eq!(
            c,
            Cpu {
                user: 250.0 / hz,
                sys: 50.0 / hz
            }
        );
    }

    #[test]
    fn measures_a_real_busy_child() {
        // A shell loop that burns CPU for a moment, then exits 3.
        let started = Instant::now();
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exit 3",
            ])
            .spawn()
            .unwrap();
        let monitor = Monitor::start(&child, started);
        let (usage, status) = monitor.wait(&mut child).unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(usage.cpu.total() > 0.0, "{usage:?}");
        assert!(usage.cpu.total() <= usage.wall_seconds + 0.05, "{usage:?}");
        assert!(usage.peak_rss_bytes > 0, "{usage:?}");
    }
}
