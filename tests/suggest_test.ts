/** Tests of lib/suggest.ts: "did you mean …?". */

import { strictEqual } from "node:assert/strict";
import { closestWord, didYouMean, editDistance } from "../lib/suggest.ts";

const DAEMON = [
  "--port",
  "--client-port",
  "--timeout",
  "--retries",
  "--invite-limit",
  "--auto-accept",
  "--name",
  "--log-level",
  "--log-format",
  "--help",
];

Deno.test("edit distance counts inserts, deletes, replacements and swaps", () => {
  strictEqual(editDistance("", ""), 0);
  strictEqual(editDistance("abc", ""), 3);
  strictEqual(editDistance("timout", "timeout"), 1);
  strictEqual(editDistance("kitten", "sitting"), 3);
  strictEqual(editDistance("nmae", "name"), 1);
});

Deno.test("a misspelled option finds the option meant", () => {
  strictEqual(closestWord("--timout", DAEMON), "--timeout");
  strictEqual(closestWord("--retires", DAEMON), "--retries");
  strictEqual(closestWord("--nmae", DAEMON), "--name");
  strictEqual(closestWord("--PORT", DAEMON), "--port");
});

Deno.test("a prefix of exactly one option finds it", () => {
  strictEqual(closestWord("--invite", DAEMON), "--invite-limit");
  strictEqual(closestWord("--log", DAEMON), undefined, "two options start so");
});

Deno.test("nothing close: no suggestion", () => {
  strictEqual(closestWord("--colour", DAEMON), undefined);
  strictEqual(closestWord("--", DAEMON), undefined);
  strictEqual(didYouMean("--verbose", DAEMON), "");
});

Deno.test("didYouMean is ready to append to a message", () => {
  strictEqual(
    didYouMean("clinet", ["daemon", "client"]),
    ": did you mean client?",
  );
});
