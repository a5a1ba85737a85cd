/** The battery's list of checks and `--only` (lib/conformance/runner.ts); the battery itself runs in simp_test.ts and mutants_test.ts. */

import { ok, strictEqual } from "node:assert/strict";
import { listChecks, selects } from "../../lib/conformance/runner.ts";

Deno.test("--only selects ids, groups and * patterns; every check id is unique and cites a §", () => {
  ok(selects(undefined, "chat.retransmit"));
  ok(selects("chat", "chat.retransmit"));
  ok(!selects("cha", "chat.retransmit"));
  ok(selects("busy.responder, chat.retransmit", "chat.retransmit"));
  ok(selects("*retransmit", "handshake.syn-retransmit"));
  ok(selects("*.retransmit", "chat.retransmit"));
  ok(!selects("*.retransmit", "handshake.syn-retransmit"));
  const ids = listChecks().map((c) => c.id);
  strictEqual(new Set(ids).size, ids.length);
  ok(listChecks().every((c) => /^§\d/.test(c.spec)));
});
