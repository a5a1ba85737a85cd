/**
 * What the end-to-end benchmark (bench/e2e.ts) reads off the processes it
 * starts: CPU time and resident memory from `/proc`, placement on a CPU with
 * `taskset`, and percentiles of a sample. Linux only.
 *
 * @module
 */

/** Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * The CPU time (user + system) that process `pid` has used so far, all its
 * threads together, in µs (with the resolution of a clock tick, 10 ms).
 */
export function cpuMicros(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/**
 * The user and system CPU time that process `pid` has used so far, all its
 * threads together, in µs (resolution: a clock tick, 10 ms).
 */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name (field 2) may contain spaces; fields after it are
  // counted from its closing parenthesis: utime is field 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const tick = 1_000_000 / CLOCK_TICKS_PER_SECOND;
  return { user: Number(fields[11]) * tick, system: Number(fields[12]) * tick };
}

/** The resident set size of process `pid` now, in bytes. */
export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`No VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** The CPUs this process may run on (from `/proc/self/status`). */
export function allowedCpus(): number[] {
  const status = Deno.readTextFileSync("/proc/self/status");
  const match = /^Cpus_allowed_list:\s+(\S+)$/m.exec(status);
  if (match === null) return [0];
  const cpus: number[] = [];
  for (const part of match[1].split(",")) {
    const [from, to] = part.split("-").map(Number);
    for (let cpu = from; cpu <= (to ?? from); cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** Whether `taskset` (util-linux) can be run. */
export async function hasTaskset(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("taskset", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/**
 * Pins every thread of process `pid` to `cpu` (`taskset -a -p -c`); threads
 * it starts later inherit the placement. Throws when taskset fails.
 */
export async function pin(pid: number, cpu: number): Promise<void> {
  const { success, stderr } = await new Deno.Command("taskset", {
    args: ["-a", "-p", "-c", String(cpu), String(pid)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(
      `taskset could not pin process ${pid} to CPU ${cpu}: ${
        new TextDecoder().decode(stderr).trim()
      }`,
    );
  }
}

/** The `p`-th percentile (0–100) of `sorted` (ascending), nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(p / 100 * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** A wall-clock time in ms with sub-ms resolution, comparable across processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
