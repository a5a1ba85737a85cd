/**
 * Makes the ladder diagrams of docs/PROTOCOL.md from real captures:
 * `deno run -A tools/ladder_docs.ts` (needs 127.0.89.1–4, ports 7777/7778).
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

async function ladder(pcap: string, svg: string, title: string) {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "mod.ts", "ladder", pcap, "-o", svg, "--title", title],
    cwd: ROOT,
  }).output();
  if (!success) throw new Error(new TextDecoder().decode(stderr));
}

if (import.meta.main) {
  const docs = new URL("docs/", ROOT).pathname;
  await chatCapture(`${docs}ladder-chat.pcap`);
  await ladder(
    "docs/ladder-chat.pcap",
    "docs/ladder-chat.svg",
    "A chat, captured at alice's daemon (simp daemon --pcap)",
  );
  await lossyCapture(`${docs}ladder-lossy.pcap`);
  await ladder(
    "docs/ladder-lossy.pcap",
    "docs/ladder-lossy.svg",
    "Losses and retransmissions, captured at bob's daemon (--timeout 1)",
  );
  // The committed files are laid out by `deno fmt`, like every file here.
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "docs/ladder-chat.svg", "docs/ladder-lossy.svg"],
    cwd: ROOT,
  }).output();
  console.log(
    "wrote docs/ladder-chat.{pcap,svg} and docs/ladder-lossy.{pcap,svg}",
  );
}
