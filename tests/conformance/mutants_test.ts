/**
 * `simp conformance` against simp's own engine with single rules broken on
 * purpose (tests/support/mutant_daemon.ts): each broken rule must fail the
 * check named for it in `MUTATIONS` and no other, and the unbroken engine
 * must pass every check. The daemons run in this process, on 127.0.95.20
 * and up (three addresses each: daemon, peer, third), several at once: the
 * battery mostly waits. The machine is shared and noisy, and a daemon in
 * this process shares its event loop with the battery, so a stall can push
 * one retransmission out of its window: a battery whose verdicts are not
 * the expected ones runs once more, alone, and that run is what counts (a
 * broken rule is caught again; a stall is not repeated).
 */

import { deepStrictEqual } from "node:assert/strict";
import { runConformance } from "../../lib/conformance/runner.ts";
import type { ConformanceReport } from "../../lib/conformance/report.ts";
import {
  MutantDaemon,
  type Mutation,
  MUTATIONS,
} from "../support/mutant_daemon.ts";

const TIMEOUT_MS = 250;
const TOLERANCE_MS = 200;
/** How many batteries run at once. */
const AT_ONCE = 11;

async function battery(
  n: number,
  mutation: Mutation | undefined,
): Promise<ConformanceReport> {
  const base = 20 + 3 * n;
  const ip = (k: number) => `127.0.95.${base + k}`;
  const daemon = new MutantDaemon(ip(0), { mutation, timeoutMs: TIMEOUT_MS });
  try {
    return await runConformance({
      target: ip(0),
      port: 7777,
      peerIp: ip(1),
      thirdIp: ip(2),
      timeoutMs: TIMEOUT_MS,
      toleranceMs: TOLERANCE_MS,
    }, { driver: daemon });
  } finally {
    await daemon.close();
  }
}

function failures(report: ConformanceReport): string[] {
  return report.results.filter((r) => r.verdict === "FAIL").map((r) => r.id);
}

/**
 * Exactly `want` failed; without a mutation nothing was skipped either (the
 * driver does everything). A mutant may make a check SKIP whose premise it
 * breaks (one that accepts by itself leaves no invitation pending).
 */
function expected(
  report: ConformanceReport,
  mutation: Mutation | undefined,
  want: string[],
): boolean {
  return JSON.stringify(failures(report)) === JSON.stringify(want) &&
    (mutation !== undefined ||
      report.results.every((r) => r.verdict !== "SKIP"));
}

function explain(report: ConformanceReport): string {
  return report.results.filter((r) => r.verdict !== "PASS").map((r) =>
    `  ${r.verdict} ${r.id}: ${
      r.expected ? `expected ${r.expected}; ` : ""
    }${r.reason}`
  ).join("\n");
}

Deno.test("every broken rule fails its own check and no other; the unbroken engine passes all", async (t) => {
  const runs: (Mutation | undefined)[] = [
    undefined,
    ...Object.keys(MUTATIONS) as Mutation[],
  ];
  const reports = new Map<Mutation | undefined, ConformanceReport>();
  for (let i = 0; i < runs.length; i += AT_ONCE) {
    const batch = runs.slice(i, i + AT_ONCE);
    const done = await Promise.all(
      batch.map((mutation, k) => battery(i + k, mutation)),
    );
    batch.forEach((mutation, k) => reports.set(mutation, done[k]));
  }
  for (const [mutation, first] of reports) {
    const want = mutation === undefined ? [] : [MUTATIONS[mutation]];
    const name = mutation === undefined
      ? "the unbroken engine passes every check"
      : `${mutation}: only ${want[0]} fails`;
    await t.step(name, async () => {
      let report = first;
      if (!expected(report, mutation, want)) {
        console.log(`${mutation ?? "(no mutation)"}: once more, alone`);
        report = await battery(0, mutation);
      }
      deepStrictEqual(
        { failed: failures(report), ok: expected(report, mutation, want) },
        { failed: want, ok: true },
        explain(report),
      );
    });
  }
});
