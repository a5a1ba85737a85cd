/**
 * `simp daemon --pcap` end to end, and the Wireshark dissector
 * (contrib/wireshark/simp.lua) run by tshark on that capture and on crafted
 * malformed datagrams.
 *
 * A real daemon (`--auto-accept`) and a raw UDP peer on 127.0.88.x go
 * through a handshake, a chat message and a FIN; the capture must hold each
 * datagram with its real addresses and ports as soon as it was sent or
 * received (read while the daemon still runs: one write per record), and
 * tshark must name every SIMP field of each. The tshark tests are skipped,
 * saying so in their name, only when tshark is not installed
 * (`apt-get install tshark`; .ci/run installs it).
 *
 * The test task grants no --allow-write: the capture goes to a folder made
 * with `mktemp -d` and removed with `rm -rf`; crafted captures reach tshark
 * on its stdin.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  decodeDatagram,
  describeDatagram,
  Op,
} from "../../lib/wire/datagram.ts";
import {
  type CapturedDatagram,
  decodePcap,
  encodePcapHeader,
  encodePcapRecord,
  type Endpoint,
} from "../../lib/wire/pcap.ts";
import { ROOT } from "../../tools/_processes.ts";
import { chat, control } from "../support/datagrams.ts";
import { Processes } from "../support/processes.ts";

const DISSECTOR = new URL("contrib/wireshark/simp.lua", ROOT).pathname;

/** Whether `tshark` runs here. */
const HAVE_TSHARK = await (async () => {
  try {
    const { success } = await new Deno.Command("tshark", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
})();

const SKIPPED = " (skipped: tshark is not installed — apt-get install tshark)";

/** Runs a command to its end; its stdout as text, or an error with stderr. */
async function run(
  command: string,
  args: string[],
  stdin?: Uint8Array,
): Promise<string> {
  const child = new Deno.Command(command, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(stdin);
    await writer.close();
  }
  const { success, stdout, stderr } = await child.output();
  const text = new TextDecoder();
  if (!success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${text.decode(stderr)}`,
    );
  }
  return text.decode(stdout);
}

/** tshark with the SIMP dissector on `file` (or the pcap bytes on stdin). */
function tshark(file: string | Uint8Array, args: string[]): Promise<string> {
  const input = typeof file === "string" ? file : "-";
  return run(
    "tshark",
    ["-n", "-X", `lua_script:${DISSECTOR}`, "-r", input, ...args],
    typeof file === "string" ? undefined : file,
  );
}

/** The fields every SIMP datagram shows, as `tshark -T fields` prints them. */
const FIELDS = [
  "ip.src",
  "udp.srcport",
  "ip.dst",
  "udp.dstport",
  "simp.type",
  "simp.op",
  "simp.op_name",
  "simp.seq",
  "simp.user",
  "simp.length",
  "simp.payload",
  "_ws.col.Info",
];

/** One row per packet, one cell per field of {@linkcode FIELDS}. */
async function fieldRows(file: string | Uint8Array): Promise<string[][]> {
  const out = await tshark(file, [
    "-T",
    "fields",
    ...FIELDS.flatMap((field) => ["-e", field]),
  ]);
  return out.split("\n").filter((line) => line !== "").map((line) =>
    line.split("\t")
  );
}

/** Waits up to `ms` for one datagram on `conn`. */
async function receive(
  conn: Deno.DatagramConn,
  ms = 5000,
): Promise<[Uint8Array, Endpoint]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`No datagram within ${ms} ms`)),
      ms,
    );
  });
  try {
    const [bytes, addr] = await Promise.race([conn.receive(), timeout]);
    const { hostname, port } = addr as Deno.NetAddr;
    return [bytes, { ip: hostname, port }];
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh folder from `mktemp -d` (the test task cannot write itself). */
async function tempDir(): Promise<string> {
  return (await run("mktemp", ["-d", "/tmp/simp-pcap-XXXXXX"])).trim();
}

Deno.test(
  "daemon --pcap: each datagram sent and received is in the capture as it happens, with real addresses and ports",
  async () => {
    const dir = await tempDir();
    const pcap = `${dir}/chat.pcap`;
    const procs = new Processes();
    const peer = Deno.listenDatagram({
      hostname: "127.0.88.2",
      port: 0,
      transport: "udp",
    });
    try {
      await procs.daemon("127.0.88.1", [
        "--auto-accept",
        "--name",
        "bob",
        "--pcap",
        pcap,
      ]);
      const { hostname, port } = peer.addr as Deno.NetAddr;
      const me = { ip: hostname, port };
      const daemon = { ip: "127.0.88.1", port: 7777 };
      const to = {
        hostname: daemon.ip,
        port: daemon.port,
        transport: "udp" as const,
      };
      const exchange: [Uint8Array, string][] = [
        [control(Op.SYN, 0, "alice"), "SYN+ACK seq=0 user=bob"],
        [control(Op.ACK, 0, "alice"), ""],
        [chat(0, "alice", "hello bob"), "ACK seq=0 user=bob"],
        [control(Op.FIN, 1, "alice"), "ACK seq=1 user=bob"],
      ];
      const expected: Omit<CapturedDatagram, "timeMs">[] = [];
      for (const [bytes, answer] of exchange) {
        await peer.send(bytes, to);
        expected.push({ from: me, to: daemon, payload: bytes });
        if (answer === "") continue;
        const [reply, from] = await receive(peer);
        strictEqual(describeDatagram(decodeDatagram(reply)), answer);
        deepStrictEqual(from, daemon);
        expected.push({ from: daemon, to: me, payload: reply });
      }
      // Read while the daemon still runs: every record is already written.
      let captured: CapturedDatagram[] = [];
      for (let i = 0; i < 50; i++) {
        captured = decodePcap(await Deno.readFile(pcap));
        if (captured.length >= expected.length) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      deepStrictEqual(
        captured.map(({ from, to, payload }) => ({ from, to, payload })),
        expected,
      );
      for (let i = 1; i < captured.length; i++) {
        ok(captured[i].timeMs >= captured[i - 1].timeMs, "in time order");
      }
      ok(Math.abs(captured[0].timeMs - Date.now()) < 60_000, "wall clock");
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      throw new Error(`${error.message}\n${procs.report()}`, { cause: error });
    } finally {
      peer.close();
      await procs.close();
      await run("rm", ["-rf", "--", dir]);
    }
  },
);

Deno.test("daemon --pcap: a file that cannot be written stops the start with a clear message", async () => {
  const procs = new Processes();
  try {
    const daemon = procs.spawn("daemon", [
      "run",
      "-A",
      "mod.ts",
      "daemon",
      "127.0.88.3",
      "--pcap",
      "/nonexistent-simp-dir/chat.pcap",
    ], { stdin: false });
    strictEqual((await daemon.status).code, 1);
    await daemon.expect(
      "simp: Cannot write the capture file /nonexistent-simp-dir/chat.pcap: its folder does not exist — create it or choose another path",
      { stream: "stderr" },
    );
    // As `deno task daemon` runs it: no --allow-write.
    const unwritable = procs.spawn("daemon without --allow-write", [
      "run",
      "--allow-net",
      "--allow-env",
      "mod.ts",
      "daemon",
      "127.0.88.3",
      "--pcap",
      "chat.pcap",
    ], { stdin: false });
    strictEqual((await unwritable.status).code, 1);
    // (Under `deno task` a hint on how to run it follows: tests/daemon_test.ts.)
    await unwritable.expect(
      /^simp: Cannot write the capture file chat\.pcap: write access not granted — run with --allow-write/,
      { stream: "stderr" },
    );
  } finally {
    await procs.close();
  }
});

Deno.test({
  name: "tshark names every SIMP field of a capture written by daemon --pcap" +
    (HAVE_TSHARK ? "" : SKIPPED),
  ignore: !HAVE_TSHARK,
  async fn() {
    const dir = await tempDir();
    const pcap = `${dir}/chat.pcap`;
    const procs = new Processes();
    const peer = Deno.listenDatagram({
      hostname: "127.0.88.4",
      port: 7777,
      transport: "udp",
    });
    try {
      const daemon = await procs.daemon("127.0.88.5", [
        "--auto-accept",
        "--name",
        "bob",
        "--pcap",
        pcap,
      ]);
      const to = {
        hostname: "127.0.88.5",
        port: 7777,
        transport: "udp" as const,
      };
      await peer.send(control(Op.SYN, 0, "alice"), to);
      await receive(peer);
      await peer.send(control(Op.ACK, 0, "alice"), to);
      await peer.send(chat(0, "alice", 'hello "bob"'), to);
      await receive(peer);
      await peer.send(control(Op.FIN, 1, "alice"), to);
      await receive(peer);
      await daemon.stop();
      const a = ["127.0.88.4", "7777", "127.0.88.5", "7777"];
      const b = ["127.0.88.5", "7777", "127.0.88.4", "7777"];
      deepStrictEqual(await fieldRows(pcap), [
        [
          ...a,
          "0x01",
          "0x02",
          "SYN",
          "0",
          "alice",
          "0",
          "",
          "SYN seq=0 user=alice",
        ],
        [
          ...b,
          "0x01",
          "0x06",
          "SYN+ACK",
          "0",
          "bob",
          "0",
          "",
          "SYN+ACK seq=0 user=bob",
        ],
        [
          ...a,
          "0x01",
          "0x04",
          "ACK",
          "0",
          "alice",
          "0",
          "",
          "ACK seq=0 user=alice",
        ],
        [
          ...a,
          "0x02",
          "0x01",
          "CHAT",
          "0",
          "alice",
          "11",
          'hello "bob"',
          'CHAT seq=0 user=alice "hello \\"bob\\""',
        ],
        [
          ...b,
          "0x01",
          "0x04",
          "ACK",
          "0",
          "bob",
          "0",
          "",
          "ACK seq=0 user=bob",
        ],
        [
          ...a,
          "0x01",
          "0x08",
          "FIN",
          "1",
          "alice",
          "0",
          "",
          "FIN seq=1 user=alice",
        ],
        [
          ...b,
          "0x01",
          "0x04",
          "ACK",
          "1",
          "bob",
          "0",
          "",
          "ACK seq=1 user=bob",
        ],
      ]);
      const verbose = await tshark(pcap, [
        "-V",
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
      ]);
      for (
        const line of [
          "Simple IMC Messaging Protocol, SYN+ACK seq=0 user=bob",
          "    Type: Control (0x01)",
          "    Type: Chat (0x02)",
          "    Operation: 0x06 (SYN+ACK)",
          "    Sequence: 1",
          "    User: alice",
          "    Length: 11",
          '    Payload: hello "bob"',
        ]
      ) {
        ok(verbose.split("\n").includes(line), `tshark -V shows ${line}`);
      }
      strictEqual(
        verbose.match(/Header Checksum: 0x[0-9a-f]{4} \[correct\]/gm)?.length,
        7,
      );
      strictEqual(
        verbose.match(/^ {4}Checksum: 0x[0-9a-f]{4} \[correct\]/gm)?.length,
        7,
      );
      ok(!verbose.includes("Expert Info"), "no expert info on a good chat");
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      throw new Error(`${error.message}\n${procs.report()}`, { cause: error });
    } finally {
      peer.close();
      await procs.close();
      await run("rm", ["-rf", "--", dir]);
    }
  },
});

/** A pcap file holding `payloads`, each from 127.0.88.6:`port` to 127.0.88.7:`port`. */
function crafted(payloads: Uint8Array[], port = 7777): Uint8Array {
  const parts = [
    encodePcapHeader(),
    ...payloads.map((payload, i) =>
      encodePcapRecord({
        timeMs: 1_000_000 + i,
        from: { ip: "127.0.88.6", port },
        to: { ip: "127.0.88.7", port },
        payload,
      })
    ),
  ];
  return new Uint8Array(parts.flatMap((part) => [...part]));
}

/** Per packet: the SIMP expert info abbreviations tshark reports, sorted. */
async function expertInfos(pcap: Uint8Array): Promise<string[][]> {
  const packets = JSON.parse(await tshark(pcap, ["-T", "json", "-J", "simp"]));
  return (packets as { _source: { layers: unknown } }[]).map((packet) => {
    const found: string[] = [];
    (function walk(value: unknown, inExpert: boolean): void {
      if (value === null || typeof value !== "object") return;
      for (const [key, child] of Object.entries(value)) {
        if (inExpert && key.startsWith("simp.")) found.push(key);
        walk(child, key === "_ws.expert");
      }
    })(packet._source.layers, false);
    return found.sort();
  });
}

/** `bytes` with the byte at `at` set to `value`. */
function patched(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = bytes.slice();
  copy[at] = value;
  return copy;
}

/** `bytes` with `extra` appended (the Length field left as it was). */
function appended(bytes: Uint8Array, extra: number[]): Uint8Array {
  return new Uint8Array([...bytes, ...extra]);
}

Deno.test({
  name:
    "tshark shows an expert info for each broken rule of §2 (and none for valid datagrams)" +
    (HAVE_TSHARK ? "" : SKIPPED),
  ignore: !HAVE_TSHARK,
  async fn() {
    const syn = control(Op.SYN, 0, "alice");
    const withPayload = (op: number) => {
      const bytes = appended(control(op as typeof Op.ACK, 0, "alice"), [
        0x68,
        0x69,
      ]);
      bytes[38] = 2; // Length matches: only the payload is wrong
      return bytes;
    };
    const cases: [string, Uint8Array, string[]][] = [
      ["valid SYN", syn, []],
      [
        "valid ERR with text",
        control(Op.ERR, 0, "bob", "User already in another chat"),
        [],
      ],
      ["valid chat", chat(1, "alice", "hi"), []],
      ["10 bytes", syn.slice(0, 10), ["simp.malformed.too_short"]],
      ["Length 0 with 2 bytes after", appended(syn, [1, 2]), [
        "simp.malformed.length",
        "simp.payload_ignored",
      ]],
      ["Length 5 with none after", patched(syn, 38, 5), [
        "simp.malformed.length",
      ]],
      ["Type 0x03", patched(syn, 0, 0x03), ["simp.malformed.type"]],
      ["control Operation 0x03", patched(syn, 1, 0x03), ["simp.malformed.op"]],
      ["chat Operation 0x02", patched(chat(0, "alice", "x"), 1, 0x02), [
        "simp.malformed.op",
      ]],
      ["Sequence 2", patched(syn, 2, 2), ["simp.malformed.seq"]],
      ["chat without a user", chat(0, "alice", "x").fill(0, 3, 35), [
        "simp.malformed.user",
      ]],
      ["payload on SYN", withPayload(Op.SYN), ["simp.payload_ignored"]],
      ["payload on ACK", withPayload(Op.ACK), ["simp.payload_ignored"]],
      ["payload on FIN", withPayload(Op.FIN), ["simp.payload_ignored"]],
      ["payload on SYN+ACK", withPayload(Op.SYN_ACK), ["simp.payload_ignored"]],
    ];
    const infos = await expertInfos(crafted(cases.map(([, bytes]) => bytes)));
    deepStrictEqual(
      infos.map((found, i) => [cases[i][0], found]),
      cases.map(([name, , want]) => [name, want]),
    );
    const rows = await fieldRows(crafted(cases.map(([, bytes]) => bytes)));
    const info = rows.map((row) => row[FIELDS.length - 1]);
    deepStrictEqual(info.slice(3, 11), [
      "Malformed: 10 bytes, too short",
      "SYN seq=0 user=alice [Length mismatch, payload ignored]",
      "SYN seq=0 user=alice [Length mismatch]",
      "type=0x03 op=0x02 seq=0 user=alice [unknown Type]",
      "type=0x01 op=0x03 seq=0 user=alice [unknown Operation]",
      'type=0x02 op=0x02 seq=0 user=alice "x" [unknown Operation]',
      "SYN seq=2 user=alice [bad Sequence]",
      'CHAT seq=0 user= "x" [no user]',
    ]);
    strictEqual(info[1], 'ERR seq=0 user=bob "User already in another chat"');
  },
});

Deno.test({
  name:
    "tshark finds SIMP on other ports by its heuristic, and leaves other UDP alone" +
    (HAVE_TSHARK ? "" : SKIPPED),
  ignore: !HAVE_TSHARK,
  async fn() {
    const pcap = crafted([
      chat(0, "alice", "on another port"),
      new TextEncoder().encode("just some UDP payload, not SIMP at all, no"),
    ], 40_000);
    const rows = await fieldRows(pcap);
    deepStrictEqual(rows.map((row) => row[FIELDS.indexOf("simp.op_name")]), [
      "CHAT",
      "",
    ]);
  },
});

Deno.test({
  name:
    "tshark decodes a port the heuristic passes over when told to (Decode As: -d udp.port==N,simp)" +
    (HAVE_TSHARK ? "" : SKIPPED),
  ignore: !HAVE_TSHARK,
  async fn() {
    // A Length mismatch: the heuristic does not take it as SIMP.
    const pcap = crafted(
      [appended(control(Op.SYN, 0, "alice"), [1, 2])],
      40_000,
    );
    const info = (args: string[]) =>
      tshark(pcap, [
        ...args,
        "-T",
        "fields",
        "-e",
        "_ws.col.Protocol",
        "-e",
        "_ws.col.Info",
      ]);
    strictEqual(await info([]), "UDP\t40000 → 40000 Len=41\n");
    strictEqual(
      await info(["-d", "udp.port==40000,simp"]),
      "SIMP\tSYN seq=0 user=alice [Length mismatch, payload ignored]\n",
    );
  },
});

Deno.test({
  name:
    "tshark's Info column is the daemon's wire trace (describeDatagram) for every kind of datagram" +
    (HAVE_TSHARK ? "" : SKIPPED),
  ignore: !HAVE_TSHARK,
  async fn() {
    const datagrams = [
      control(Op.SYN, 0, "alice"),
      control(Op.SYN_ACK, 0, "bob"),
      control(Op.ACK, 1, ""),
      control(Op.FIN, 1, "x y"),
      control(Op.ERR, 0, "bob", "User already in another chat"),
      chat(1, "alice", 'tab\there "quoted" back\\slash \x01\x08\x0c\n\r'),
      chat(0, "a", ""),
      // Bytes ≥ 0x80 are shown as U+FFFD (§2.3).
      new Uint8Array([
        2,
        1,
        0,
        0x61,
        0xe9,
        ...new Uint8Array(30),
        0,
        0,
        0,
        2,
        0x68,
        0xff,
      ]),
    ];
    const rows = await fieldRows(crafted(datagrams));
    deepStrictEqual(
      rows.map((row) => row[FIELDS.length - 1]),
      datagrams.map((bytes) => describeDatagram(decodeDatagram(bytes))),
    );
  },
});
