/** `simp conformance` on the command line (lib/cli.ts). */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { parseCommandLine, UsageError } from "../../lib/cli.ts";

Deno.test("command line: simp conformance TARGET_IP with its options, defaults off 127.0.0.1/2, and clear errors", () => {
  const command = parseCommandLine(["conformance", "127.0.0.5"]);
  strictEqual(command.kind, "conformance");
  if (command.kind !== "conformance") return;
  deepStrictEqual(command.options, {
    target: "127.0.0.5",
    port: 7777,
    peerIp: "127.0.0.77",
    thirdIp: "127.0.0.78",
    timeoutMs: 5000,
    toleranceMs: 1050,
    interactive: false,
  });
  const full = parseCommandLine([
    "conformance",
    "127.0.95.10",
    "--port=7000",
    "--peer-ip",
    "127.0.95.11",
    "--third-ip",
    "127.0.95.12",
    "--timeout",
    "0.3",
    "--tolerance",
    "0.2",
    "--retries",
    "3",
    "--driver",
    "./drive",
    "--json",
    "out.json",
    "--only",
    "chat",
  ]);
  deepStrictEqual(full.kind === "conformance" && full.options, {
    target: "127.0.95.10",
    port: 7000,
    peerIp: "127.0.95.11",
    thirdIp: "127.0.95.12",
    timeoutMs: 300,
    toleranceMs: 200,
    interactive: false,
    retries: 3,
    driver: "./drive",
    json: "out.json",
    only: "chat",
  });
  const help = parseCommandLine(["conformance", "--help"]);
  ok(help.kind === "help" && help.text.includes("--driver CMD"));
  ok(
    (parseCommandLine(["--help"]) as { text: string }).text.includes(
      "simp conformance TARGET_IP",
    ),
  );
  const bad: [string[], RegExp][] = [
    [[], /Missing TARGET_IP/],
    [["127.0.0.5", "--peer-ip", "127.0.0.5"], /three different addresses/],
    [["127.0.0.5", "--third-ip", "nope"], /--third-ip must be an IPv4/],
    [["127.0.0.5", "--driver", "x", "--interactive"], /not both/],
    [["127.0.0.5", "--driver", " "], /needs a command/],
    [["127.0.0.5", "--timeout", "0"], /--timeout must be a number/],
    [["127.0.0.5", "--frob"], /Unknown option --frob/],
    [["127.0.0.5", "--retries", "two"], /--retries must be a whole number/],
  ];
  for (const [args, want] of bad) {
    throws(
      () => parseCommandLine(["conformance", ...args]),
      (e: unknown) =>
        e instanceof UsageError && want.test(e.message) &&
        e.message.endsWith("(see simp conformance --help)"),
      args.join(" "),
    );
  }
});

Deno.test("command line: a --json FILE that cannot be written is refused before any check runs (exit 2)", async () => {
  // A full battery takes minutes at the default timeout: finding out at the
  // end that the report cannot be written would throw the whole run away.
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "mod.ts",
      "conformance",
      "127.0.105.250",
      "--peer-ip",
      "127.0.105.251",
      "--third-ip",
      "127.0.105.252",
      "--timeout",
      "0.3",
      "--only",
      "malformed.short",
      "--json",
      "/nonexistent-dir/report.json",
    ],
    cwd: new URL("../../", import.meta.url),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  const err = new TextDecoder().decode(stderr);
  strictEqual(code, 2, out + err);
  strictEqual(/PASS|FAIL|passed/.test(out), false, out);
  ok(err.includes("Cannot write /nonexistent-dir/report.json"), err);
  ok(err.includes("give a writable path to --json"), err);
});
