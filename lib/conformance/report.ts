/**
 * What `simp conformance` prints: one line per check (PASS, FAIL or SKIP
 * with its reason; for a FAIL, what was expected, what came instead and the
 * datagrams of the check with their times) and a last line
 * `N passed, M failed, K skipped`. Pure functions of the results.
 *
 * @module
 */

/** One datagram of a check's trace. */
export interface TraceLine {
  /** Milliseconds since the check began. */
  t: number;
  /** Sender, `ip:port`. */
  from: string;
  /** Receiver, `ip:port`. */
  to: string;
  /** What it is, like the daemon's wire trace (`SYN+ACK seq=0 user="bob"`). */
  what: string;
  /** Its bytes in hex (at most the first 1024). */
  hex: string;
}

/** The verdict of one check. */
export type Verdict = "PASS" | "FAIL" | "SKIP";

/** The result of one check. */
export interface CheckResult {
  /** The check's id, e.g. `chat.retransmit`. */
  id: string;
  /** The SPEC sections it checks. */
  spec: string;
  /** What it checks. */
  title: string;
  /** The verdict. */
  verdict: Verdict;
  /** For a SKIP, why; for a FAIL, what happened instead of `expected`. */
  reason?: string;
  /** For a FAIL, what was expected. */
  expected?: string;
  /** Remarks: what a PASS could not look at. */
  notes: string[];
  /** How long the check took, in ms (without the reset after it). */
  durationMs: number;
  /** Every datagram sent and received during the check. */
  trace: TraceLine[];
}

/** The whole run, as written by `--json FILE`. */
export interface ConformanceReport {
  /** The target, `ip:port`. */
  target: string;
  /** The battery's addresses. */
  peer: string;
  /** The third address. */
  third: string;
  /** The target's timeout and the tolerance, in ms. */
  timeoutMs: number;
  /** How far a retransmission may be from the timeout, in ms. */
  toleranceMs: number;
  /** Who played the target's user. */
  driver: string;
  /** When the run started (ISO 8601). */
  startedAt: string;
  /** How long it took, in ms. */
  durationMs: number;
  /** Number of PASS. */
  passed: number;
  /** Number of FAIL. */
  failed: number;
  /** Number of SKIP. */
  skipped: number;
  /** How many datagrams the battery received in all (0: nothing answered). */
  received: number;
  /** Every check's result, in the order run. */
  results: CheckResult[];
}

/**
 * The lines printed for one result: one line, and for a FAIL the expected
 * outcome, what came instead and the datagrams seen.
 *
 * @example
 * ```ts
 * import { formatResult } from "./report.ts";
 * const lines = formatResult({
 *   id: "chat.duplicate", spec: "§5.3", title: "shown once", verdict: "SKIP",
 *   reason: "needs a driver", notes: [], durationMs: 1, trace: [],
 * });
 * console.log(lines[0]); // SKIP chat.duplicate (§5.3): shown once — needs a driver
 * ```
 */
export function formatResult(result: CheckResult): string[] {
  const head =
    `${result.verdict} ${result.id} (${result.spec}): ${result.title}`;
  switch (result.verdict) {
    case "PASS":
      return [
        result.notes.length > 0 ? `${head} (${result.notes.join("; ")})` : head,
      ];
    case "SKIP":
      return [`${head} — ${result.reason}`];
    case "FAIL":
      return [
        head,
        `     expected: ${result.expected}`,
        `     instead:  ${result.reason}`,
        ...(result.trace.length > 0
          ? [
            "     datagrams (time since the check began):",
            ...result.trace.map(formatTraceLine),
          ]
          : ["     no datagram was sent or received"]),
      ];
  }
}

/** `       +0.012 s  127.0.95.11:7777 → 127.0.95.10:7777  SYN seq=0 …`. */
export function formatTraceLine(line: TraceLine): string {
  return `       +${
    (line.t / 1000).toFixed(3)
  } s  ${line.from} → ${line.to}  ${line.what}`;
}

/** The last line: `N passed, M failed, K skipped`. */
export function formatSummary(
  counts: { passed: number; failed: number; skipped: number },
): string {
  return `${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`;
}
