/** The driver protocol (lib/conformance/driver.ts): replies, a driver process, the interactive driver. */

import { deepStrictEqual, ok, rejects, throws } from "node:assert/strict";
import {
  InteractiveDriver,
  parseDriverReply,
  ProcessDriver,
  type Terminal,
} from "../../lib/conformance/driver.ts";

Deno.test("driver replies: ok, shown, error, unsupported; anything else is a clear error", () => {
  deepStrictEqual(parseDriverReply('{"ok":true}', "accept"), { ok: true });
  deepStrictEqual(parseDriverReply('{"ok":true,"shown":["a","b"]}', "shown"), {
    ok: true,
    shown: ["a", "b"],
  });
  deepStrictEqual(parseDriverReply('{"ok":false,"error":"no"}', "send"), {
    ok: false,
    error: "no",
  });
  deepStrictEqual(
    parseDriverReply('{"ok":false,"unsupported":true}', "invite"),
    { ok: false, unsupported: true },
  );
  throws(() => parseDriverReply("yes", "reset"), /not JSON/);
  throws(() => parseDriverReply("[1]", "reset"), /not a JSON object/);
  throws(() => parseDriverReply('{"ok":1}', "reset"), /needs "ok"/);
  throws(() => parseDriverReply('{"ok":true}', "shown"), /array of strings/);
  throws(
    () => parseDriverReply('{"ok":true,"shown":[1]}', "shown"),
    /array of strings/,
  );
});

Deno.test("ProcessDriver: one request line in, one reply line out; a driver that ends or stays silent is a clear error", async () => {
  const echo = new ProcessDriver(
    `while read -r line; do case "$line" in *shown*) echo '{"ok":true,"shown":["hi"]}';; *send*) echo '{"ok":false,"unsupported":true}';; *) echo '{"ok":true}';; esac; done`,
  );
  try {
    deepStrictEqual(await echo.request({ do: "reset" }), { ok: true });
    deepStrictEqual(await echo.request({ do: "shown" }), {
      ok: true,
      shown: ["hi"],
    });
    deepStrictEqual(await echo.request({ do: "send", text: "x" }), {
      ok: false,
      unsupported: true,
    });
  } finally {
    await echo.close();
  }
  const quitter = new ProcessDriver("read -r line; exit 3");
  try {
    await rejects(
      quitter.request({ do: "reset" }),
      /driver ended \(exit code 3/,
    );
    // It says what to do: the driver's own error is on stderr, above.
    await rejects(
      quitter.request({ do: "reset" }),
      /its error output is above: check that the command runs on its own/,
    );
    await rejects(quitter.request({ do: "reset" }), /driver ended/);
  } finally {
    await quitter.close();
  }
  const silent = new ProcessDriver("cat > /dev/null", { replyTimeoutMs: 200 });
  try {
    await rejects(
      silent.request({ do: "accept" }),
      /did not answer \{"do":"accept"\} within 200 ms/,
    );
  } finally {
    await silent.close();
  }
});

Deno.test("ProcessDriver: a driver that dies at start (module not found) is reported with what to do", async () => {
  const dead = new ProcessDriver("echo 'error: Module not found' >&2; exit 1");
  try {
    await rejects(
      dead.request({ do: "reset" }),
      /^Error: The driver (ended|stopped reading its stdin) \(exit code 1\): its error output is above: check that the command runs on its own$/,
    );
  } finally {
    await dead.close();
  }
});

Deno.test("InteractiveDriver: tells the person what to do; Enter is done, s is unsupported; shown is typed line by line", async () => {
  const input = ["", "s", "hello", "world", ""];
  const prompts: string[] = [];
  const terminal: Terminal = {
    write: (text) => prompts.push(text),
    readLine: () => Promise.resolve(input.shift()),
  };
  const driver = new InteractiveDriver(terminal, {
    peerIp: "127.0.0.77",
    peerName: "tester",
  });
  deepStrictEqual(await driver.request({ do: "accept" }), { ok: true });
  ok(
    prompts[0].includes(
      'Accept the invitation from 127.0.0.77 (user "tester") now',
    ),
    prompts[0],
  );
  deepStrictEqual(await driver.request({ do: "send", text: "m1" }), {
    ok: false,
    unsupported: true,
  });
  // Quoted: the sentence's own period is not taken as part of the message
  // (a tester who typed "last words." failed teardown.leave).
  ok(
    prompts[1].includes('Send this message now, exactly as quoted: "m1".'),
    prompts[1],
  );
  deepStrictEqual(await driver.request({ do: "shown" }), {
    ok: true,
    shown: ["hello", "world"],
  });
  // End of input: nothing more can be done.
  deepStrictEqual(await driver.request({ do: "leave" }), {
    ok: false,
    unsupported: true,
  });
});
