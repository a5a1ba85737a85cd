/**
 * `simp conformance` as a program against a real `simp daemon` process:
 * through the driver built on the client API (examples/conformance_driver.ts)
 * every check passes; without a driver the checks that need the target's
 * user are skipped, saying why; a FAIL says what was expected and shows the
 * datagrams, and the exit code is 1.
 *
 * Addresses: 127.0.99.x (daemon .10/.20/.30, the battery on the next two).
 */

import { ok, strictEqual } from "node:assert/strict";
import { ProcessGroup } from "../../tools/_processes.ts";
import { listChecks } from "../../lib/conformance/runner.ts";
import type { ConformanceReport } from "../../lib/conformance/report.ts";

const NET = "127.0.99.";
/** The daemon's retransmission timeout, in seconds. */
const TIMEOUT = "0.3";

async function withDaemon(
  base: number,
  daemonArgs: string[],
  body: (procs: ProcessGroup, ip: string) => Promise<void>,
): Promise<void> {
  const procs = new ProcessGroup();
  const ip = NET + base;
  try {
    const daemon = procs.spawn(`daemon ${ip}`, [
      "run",
      "-A",
      "mod.ts",
      "daemon",
      ip,
      "--timeout",
      TIMEOUT,
      ...daemonArgs,
    ], { stdin: false });
    await daemon.expect(/^simp daemon listening on /, {
      stream: "stderr",
      timeoutMs: 15_000,
    });
    await body(procs, ip);
  } catch (error) {
    if (error instanceof Error) error.message += `\n${procs.report(40)}`;
    throw error;
  } finally {
    await procs.close();
  }
}

/** Runs `simp conformance ip` with the battery on the two next addresses. */
async function conformance(
  procs: ProcessGroup,
  base: number,
  args: string[],
) {
  const battery = procs.spawn("conformance", [
    "run",
    "-A",
    "mod.ts",
    "conformance",
    NET + base,
    "--peer-ip",
    NET + (base + 1),
    "--third-ip",
    NET + (base + 2),
    ...args,
  ], { stdin: false });
  const status = await battery.exit(180_000);
  return { status, stdout: battery.lines.stdout };
}

Deno.test("simp daemon through the driver on connect(): every check passes, --json holds every result with its datagrams", async () => {
  // The test task may not write files: the battery (run with -A) writes
  // the report, this test reads it and has `rm` remove it.
  const json = `/tmp/simp-conformance-test-${crypto.randomUUID()}.json`;
  try {
    await withDaemon(10, [], async (procs, ip) => {
      const driver =
        `"${Deno.execPath()}" run -A examples/conformance_driver.ts ${ip}`;
      const { status, stdout } = await conformance(procs, 10, [
        "--timeout",
        TIMEOUT,
        "--tolerance",
        "0.25",
        "--driver",
        driver,
        "--json",
        json,
      ]);
      const checks = listChecks();
      strictEqual(
        stdout.at(-1),
        `${checks.length} passed, 0 failed, 0 skipped`,
      );
      strictEqual(status.code, 0);
      for (const { id } of checks) {
        ok(stdout.some((l) => l.startsWith(`PASS ${id} `)), `PASS ${id}`);
      }
      const report: ConformanceReport = JSON.parse(
        await Deno.readTextFile(json),
      );
      strictEqual(report.results.length, checks.length);
      strictEqual(report.passed, checks.length);
      ok(report.results.every((r) => r.verdict === "PASS"));
      ok(report.results.every((r) => r.trace.length > 0), "every trace");
      ok(
        report.results[0].trace.some((t) => t.what.startsWith("SYN ")),
        JSON.stringify(report.results[0].trace),
      );
    });
  } finally {
    await new Deno.Command("rm", { args: ["-f", json] }).output();
  }
});

Deno.test("without a driver: the checks needing no user pass against an auto-accepting daemon, the others are SKIP saying why", async () => {
  await withDaemon(20, ["--auto-accept"], async (procs) => {
    const { status, stdout } = await conformance(procs, 20, [
      "--timeout",
      TIMEOUT,
      "--tolerance",
      "0.25",
      "--only",
      "handshake.syn-answered,handshake.decline,busy.responder,chat.outbound,malformed.short",
    ]);
    strictEqual(status.code, 0, stdout.join("\n"));
    strictEqual(stdout.at(-1), "3 passed, 0 failed, 2 skipped");
    for (const id of ["handshake.decline", "chat.outbound"]) {
      const line = stdout.find((l) => l.startsWith(`SKIP ${id} `));
      ok(line?.endsWith("give --driver CMD or --interactive"), line);
    }
  });
});

Deno.test("a FAIL says what was expected and shows the datagrams with times; the exit code is 1", async () => {
  await withDaemon(30, ["--auto-accept"], async (procs) => {
    // The daemon resends its SYN+ACK after 0.3 s; the battery is told 1 s.
    const { status, stdout } = await conformance(procs, 30, [
      "--timeout",
      "1",
      "--tolerance",
      "0.2",
      "--only",
      "handshake.synack-retransmit",
    ]);
    strictEqual(status.code, 1, stdout.join("\n"));
    strictEqual(stdout.at(-1), "0 passed, 1 failed, 0 skipped");
    const at = stdout.findIndex((l) =>
      l.startsWith("FAIL handshake.synack-retransmit (§4.5): ")
    );
    ok(at >= 0, stdout.join("\n"));
    ok(
      stdout[at + 1].includes("expected: SYN+ACK sent again 1.000 s ± 0.200 s"),
      stdout[at + 1],
    );
    ok(
      /instead: +it came again after 0\.[0-9]{3} s/.test(stdout[at + 2]),
      stdout[at + 2],
    );
    const trace = stdout.slice(at + 4).filter((l) => /^ +\+[0-9.]+ s /.test(l));
    ok(
      trace.some((l) =>
        l.includes(`${NET}31:7777 → ${NET}30:7777  SYN seq=0 user="tester"`)
      ),
      trace.join("\n"),
    );
    ok(
      trace.filter((l) => l.includes("SYN+ACK seq=0")).length >= 2,
      trace.join("\n"),
    );
  });
});
