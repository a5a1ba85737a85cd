/**
 * Makes the ladder diagrams of docs/PROTOCOL.md from real captures:
 * `deno run -A tools/ladder_docs.ts` (needs 127.0.89.1–4 and 127.0.89.11–13,
 * ports 7777/7778).
 *
 * - `docs/ladder-chat.pcap` / `.svg`: the demo's exchange. Daemons on
 *   127.0.89.1 (alice, `--pcap`) and 127.0.89.2 (bob) and two scripted
 *   clients: bob waits, alice invites, bob accepts, two messages each way,
 *   alice leaves.
 * - `docs/ladder-lossy.pcap` / `.svg`: bob's daemon on 127.0.89.4
 *   (`--pcap`, `--timeout 1`) with a scripted client, and a raw UDP peer on
 *   127.0.89.3 playing alice that loses things on purpose: it withholds the
 *   handshake ACK (bob retransmits SYN+ACK), sends a message twice as if
 *   bob's ACK had been lost (bob ACKs again and shows it once), and ignores
 *   bob's first copy of his message (bob retransmits it); then it leaves.
 * - `docs/ladder-relay.jsonl` / `.svg`: a chat through `simp relay` (25 %
 *   loss, 10 % duplicates, 5 ms delay, seed {@linkcode RELAY_SEED}) between
 *   daemons on 127.0.89.11 (alice) and 127.0.89.12 (bob), both
 *   `--timeout 0.5`, drawn from the relay's log. Skipped in a tree without
 *   `simp relay`.
 *
 * `deno run -A tools/ladder_docs.ts chat lossy relay` makes only the named
 * ones (all by default); `relay --log-only` writes the log without drawing it.
 *
 * The SVGs are drawn by `simp ladder` from the captures (and laid out by
 * `deno fmt`), so that tests/ladder/run_test.ts can check they are what the
 * committed captures say.
 *
 * @module
 */

import {
  decodeDatagram,
  describeDatagram,
  encodeDatagram,
  Op,
  Type,
} from "../lib/wire/datagram.ts";
import { type Proc, ProcessGroup, ROOT } from "./_processes.ts";

const CHAT = "? chat: type a message, /leave = leave the chat, q = quit";
const MENU = "? menu: 1 = start a new chat, 2 = wait for invitations, q = quit";

function daemon(
  procs: ProcessGroup,
  ip: string,
  args: string[],
): Promise<string> {
  const proc = procs.spawn(`daemon ${ip}`, [
    "run",
    "-A",
    "mod.ts",
    "daemon",
    ip,
    ...args,
  ], { stdin: false });
  return proc.expect(/^simp daemon listening on /, { stream: "stderr" });
}

function client(procs: ProcessGroup, ip: string, name: string): Proc {
  return procs.spawn(name, [
    "run",
    "-A",
    "mod.ts",
    "client",
    ip,
    "--name",
    name,
  ], { stdin: true });
}

async function say(from: Proc, to: Proc, text: string): Promise<void> {
  await from.write(text);
  await to.expect(`${from.label}: ${text}`);
  await from.expect(/^delivered #\d+$/);
}

async function chatCapture(pcap: string): Promise<void> {
  const procs = new ProcessGroup();
  try {
    await daemon(procs, "127.0.89.1", ["--pcap", pcap]);
    await daemon(procs, "127.0.89.2", []);
    const alice = client(procs, "127.0.89.1", "alice");
    const bob = client(procs, "127.0.89.2", "bob");
    await Promise.all([alice.expect(MENU), bob.expect(MENU)]);
    await bob.write("2");
    await bob.expect("waiting for invitations");
    await alice.write("1");
    await alice.expect(/^\? ip: /);
    await alice.write("127.0.89.2");
    await bob.expect(/^\? answer: /);
    await bob.write("y");
    await Promise.all([alice.expect(CHAT), bob.expect(CHAT)]);
    await say(alice, bob, "hi bob");
    await say(bob, alice, "hi alice");
    await say(alice, bob, "how is the weather?");
    await say(bob, alice, "sunny, and no packets lost");
    await alice.write("/leave");
    await bob.expect("alice left the chat");
    await alice.write("q");
    await bob.write("q");
  } catch (error) {
    console.error(procs.report());
    throw error;
  } finally {
    await procs.close();
  }
}

async function lossyCapture(pcap: string): Promise<void> {
  const procs = new ProcessGroup();
  const peer = Deno.listenDatagram({
    hostname: "127.0.89.3",
    port: 7777,
    transport: "udp",
  });
  const bobAt = {
    hostname: "127.0.89.4",
    port: 7777,
    transport: "udp" as const,
  };
  const send = (op: number, seq: 0 | 1, payload = "") =>
    peer.send(
      encodeDatagram(
        op === Op.CHAT && payload !== ""
          ? { type: Type.CHAT, op: Op.CHAT, seq, user: "alice", payload }
          : {
            type: Type.CONTROL,
            op: op as typeof Op.ACK,
            seq,
            user: "alice",
            payload: "",
          },
      ),
      bobAt,
    );
  const receive = async (want: string) => {
    const [bytes] = await peer.receive();
    const got = describeDatagram(decodeDatagram(bytes));
    if (got !== want) throw new Error(`Expected ${want}, got ${got}`);
  };
  try {
    await daemon(procs, "127.0.89.4", ["--pcap", pcap, "--timeout", "1"]);
    const bob = client(procs, "127.0.89.4", "bob");
    await bob.expect(MENU);
    await bob.write("2");
    await bob.expect("waiting for invitations");
    await send(Op.SYN, 0);
    await bob.expect(/^\? answer: /);
    await bob.write("y");
    await receive("SYN+ACK seq=0 user=bob");
    // The handshake ACK is "lost": bob retransmits SYN+ACK after 1 s.
    await receive("SYN+ACK seq=0 user=bob");
    await send(Op.ACK, 0);
    await bob.expect(CHAT);
    await send(Op.CHAT, 0, "hi bob, can you hear me?");
    await receive("ACK seq=0 user=bob");
    await bob.expect("alice: hi bob, can you hear me?");
    // As if that ACK had been lost: the same datagram again, after 1 s.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await send(Op.CHAT, 0, "hi bob, can you hear me?");
    await receive("ACK seq=0 user=bob");
    await bob.write("yes, once");
    // Bob's first copy is "lost": no ACK until the retransmission.
    await receive('CHAT seq=0 user=bob "yes, once"');
    await receive('CHAT seq=0 user=bob "yes, once"');
    await send(Op.ACK, 0);
    await bob.expect(/^delivered #\d+$/);
    await send(Op.FIN, 1);
    await receive("ACK seq=1 user=bob");
    await bob.expect("alice left the chat");
    await bob.write("q");
  } catch (error) {
    console.error(procs.report());
    throw error;
  } finally {
    peer.close();
    await procs.close();
  }
}

/** The titles of the diagrams (tests/ladder/run_test.ts draws them again). */
export const CHAT_TITLE =
  "A chat, captured at alice's daemon (simp daemon --pcap)";
/** See {@linkcode CHAT_TITLE}. */
export const LOSSY_TITLE =
  "Losses and retransmissions, captured at bob's daemon (--timeout 1)";
/** See {@linkcode CHAT_TITLE}. */
export const RELAY_TITLE =
  "A chat through simp relay (25% loss, 10% duplicates, 5 ms delay), from its log";
/** The relay's seed for the committed log. */
export const RELAY_SEED = 7;

async function ladder(pcap: string, svg: string, title: string) {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "mod.ts", "ladder", pcap, "-o", svg, "--title", title],
    cwd: ROOT,
  }).output();
  if (!success) throw new Error(new TextDecoder().decode(stderr));
}

/** The relay's options for the relay log: its seed makes the run repeatable. */
export const RELAY_ARGS = [
  "--loss",
  "25%",
  "--dup",
  "10%",
  "--delay",
  "5",
  "--seed",
];

/**
 * A chat through `simp relay` (127.0.89.13, between alice's daemon on
 * 127.0.89.11 and bob's on 127.0.89.12, both `--timeout 0.5`), with the
 * relay's log written to `log`: it loses and duplicates datagrams, and the
 * daemons retransmit.
 */
async function relayCapture(log: string, seed: number): Promise<void> {
  const procs = new ProcessGroup();
  try {
    await daemon(procs, "127.0.89.11", ["--timeout", "0.5"]);
    await daemon(procs, "127.0.89.12", ["--timeout", "0.5"]);
    const relay = procs.spawn("relay", [
      "run",
      "-A",
      "mod.ts",
      "relay",
      "127.0.89.13",
      "--between",
      "127.0.89.11",
      "127.0.89.12",
      "--log",
      log,
      ...RELAY_ARGS,
      String(seed),
    ], { stdin: false });
    await relay.expect(/^simp relay listening on /, { stream: "stderr" });
    const alice = client(procs, "127.0.89.11", "alice");
    const bob = client(procs, "127.0.89.12", "bob");
    await Promise.all([alice.expect(MENU), bob.expect(MENU)]);
    await bob.write("2");
    await bob.expect("waiting for invitations");
    await alice.write("1");
    await alice.expect(/^\? ip: /);
    await alice.write("127.0.89.13");
    await bob.expect(/^\? answer: /, { timeoutMs: 15_000 });
    await bob.write("y");
    const until = { timeoutMs: 15_000 };
    await Promise.all([alice.expect(CHAT, until), bob.expect(CHAT, until)]);
    for (
      const [from, to, text] of [
        [alice, bob, "hi bob"],
        [bob, alice, "hi alice"],
        [alice, bob, "lossy today"],
      ] as const
    ) {
      await from.write(text);
      await to.expect(`${from.label}: ${text}`, until);
      await from.expect(/^delivered #\d+$/, until);
    }
    await alice.write("/leave");
    await bob.expect("alice left the chat", until);
    await alice.write("q");
    await bob.write("q");
    await Promise.all([alice.expect("bye", until), bob.expect("bye", until)]);
  } catch (error) {
    console.error(procs.report());
    throw error;
  } finally {
    await procs.close();
  }
}

/** Whether this tree has `simp relay`. */
async function haveRelay(): Promise<boolean> {
  const { success } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "mod.ts", "relay", "--help"],
    cwd: ROOT,
    stdout: "null",
    stderr: "null",
  }).output();
  return success;
}

if (import.meta.main) {
  const docs = new URL("docs/", ROOT).pathname;
  const only = Deno.args;
  const svgs: string[] = [];
  if (only.length === 0 || only.includes("chat")) {
    await chatCapture(`${docs}ladder-chat.pcap`);
    await ladder(
      "docs/ladder-chat.pcap",
      "docs/ladder-chat.svg",
      CHAT_TITLE,
    );
    svgs.push("docs/ladder-chat.svg");
  }
  if (only.length === 0 || only.includes("lossy")) {
    await lossyCapture(`${docs}ladder-lossy.pcap`);
    await ladder(
      "docs/ladder-lossy.pcap",
      "docs/ladder-lossy.svg",
      LOSSY_TITLE,
    );
    svgs.push("docs/ladder-lossy.svg");
  }
  if (only.length === 0 || only.includes("relay")) {
    if (await haveRelay()) {
      await relayCapture(`${docs}ladder-relay.jsonl`, RELAY_SEED);
      if (!only.includes("--log-only")) {
        await ladder(
          "docs/ladder-relay.jsonl",
          "docs/ladder-relay.svg",
          RELAY_TITLE,
        );
        svgs.push("docs/ladder-relay.svg");
      }
    } else {
      console.error("skipped the relay diagram: this tree has no simp relay");
    }
  }
  // The committed files are laid out by `deno fmt`, like every file here.
  if (svgs.length > 0) {
    await new Deno.Command(Deno.execPath(), {
      args: ["fmt", ...svgs],
      cwd: ROOT,
    }).output();
  }
  console.log(`wrote ${svgs.join(", ") || "nothing"}`);
}
