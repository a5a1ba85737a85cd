/** What `simp conformance` prints (lib/conformance/report.ts). */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import {
  type CheckResult,
  formatResult,
  formatSummary,
} from "../../lib/conformance/report.ts";

Deno.test("report: one line per PASS and SKIP; a FAIL adds expected, instead and the datagrams with times; the summary line", () => {
  const base: CheckResult = {
    id: "chat.retransmit",
    spec: "§5.2",
    title: "resent",
    verdict: "PASS",
    notes: [],
    durationMs: 5,
    trace: [],
  };
  deepStrictEqual(formatResult(base), ["PASS chat.retransmit (§5.2): resent"]);
  deepStrictEqual(formatResult({ ...base, notes: ["n1", "n2"] }), [
    "PASS chat.retransmit (§5.2): resent (n1; n2)",
  ]);
  deepStrictEqual(formatResult({ ...base, verdict: "SKIP", reason: "why" }), [
    "SKIP chat.retransmit (§5.2): resent — why",
  ]);
  deepStrictEqual(
    formatResult({
      ...base,
      verdict: "FAIL",
      expected: "CHAT again",
      reason: "nothing came",
      trace: [{
        t: 1.5,
        from: "127.0.0.5:7777",
        to: "127.0.0.77:7777",
        what: 'CHAT seq=0 user="a" "x"',
        hex: "",
      }],
    }),
    [
      "FAIL chat.retransmit (§5.2): resent",
      "     expected: CHAT again",
      "     instead:  nothing came",
      "     datagrams (time since the check began):",
      '       +0.002 s  127.0.0.5:7777 → 127.0.0.77:7777  CHAT seq=0 user="a" "x"',
    ],
  );
  strictEqual(
    formatSummary({ passed: 3, failed: 1, skipped: 2 }),
    "3 passed, 1 failed, 2 skipped",
  );
});
