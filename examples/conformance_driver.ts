/**
 * The conformance driver for simp: it plays the user of a simp daemon for
 * `simp conformance --driver CMD`, on simp's client for programs
 * (`connect`). It reads one JSON request per line on stdin and writes one
 * JSON reply per line on stdout (the driver protocol, docs/CONFORMANCE.md):
 *
 * - `{"do":"reset"}`: leaves any chat or invitation; forgets what was shown;
 * - `{"do":"accept"}` / `{"do":"decline"}`: waits (up to 5 s) for the
 *   invitation to reach the user, then answers it;
 * - `{"do":"invite","ip":"…"}`: invites that daemon;
 * - `{"do":"send","text":"…"}`: sends the text; replies at once, without
 *   waiting for the ACK (the battery decides when to ACK);
 * - `{"do":"leave"}`: leaves the chat;
 * - `{"do":"shown"}`: `{"ok":true,"shown":[…]}`, the messages shown since
 *   the last reset.
 *
 * ```sh
 * deno run -A mod.ts daemon 127.0.0.5 --timeout 0.3 &
 * deno run -A mod.ts conformance 127.0.0.5 --timeout 0.3 \
 *   --driver "deno run -A examples/conformance_driver.ts 127.0.0.5"
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Chat, connect } from "../mod.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    name: { type: "string", default: "target" },
    port: { type: "string" },
  },
});
const ip = positionals[0] ?? "127.0.0.1";
const port = values.port === undefined ? undefined : Number(values.port);

type Reply =
  | { ok: true; shown?: string[] }
  | { ok: false; error?: string; unsupported?: true };

let chat: Chat;
try {
  chat = await connect(ip, { name: values.name, port });
} catch (error) {
  console.error(`conformance driver: ${errorText(error)}`);
  Deno.exit(1);
}

/** Messages shown since the last reset. */
let shown: string[] = [];
/** Whether an invitation waits for an answer. */
let invited = chat.state.phase === "invited";
let wakeInvited: (() => void) | undefined;

// The daemon's events: what the user would see.
const reading = (async () => {
  for await (const event of chat.events) {
    switch (event.type) {
      case "invitation":
        invited = true;
        wakeInvited?.();
        break;
      case "message":
        shown.push(event.text);
        break;
      case "invitation-ended":
      case "chat-started":
      case "peer-left":
      case "peer-lost":
      case "chat-closed":
        invited = false;
        break;
    }
  }
})();

/** Waits up to `ms` for an invitation to be pending. */
async function invitation(ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!invited && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, deadline - Date.now());
      wakeInvited = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  wakeInvited = undefined;
  return invited;
}

async function handle(request: Record<string, unknown>): Promise<Reply> {
  switch (request.do) {
    case "reset":
      await chat.leave().catch(() => {}); // nothing to leave is fine
      invited = false;
      shown = [];
      return { ok: true };
    case "accept":
    case "decline":
      if (!await invitation(5000)) {
        return { ok: false, error: "No invitation reached the user in 5 s" };
      }
      invited = false;
      if (request.do === "accept") await chat.accept();
      else await chat.decline();
      return { ok: true };
    case "invite":
      if (typeof request.ip !== "string") {
        return { ok: false, error: "invite needs an ip" };
      }
      await chat.invite(request.ip);
      return { ok: true };
    case "send":
      if (typeof request.text !== "string") {
        return { ok: false, error: "send needs a text" };
      }
      // Resolves only once ACKed: the battery decides when, so do not wait.
      chat.send(request.text).catch(() => {});
      return { ok: true };
    case "leave":
      await chat.leave();
      return { ok: true };
    case "shown":
      return { ok: true, shown: [...shown] };
    default:
      return { ok: false, unsupported: true };
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
let buffer = "";
for await (const chunk of Deno.stdin.readable) {
  buffer += decoder.decode(chunk, { stream: true });
  let at: number;
  while ((at = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, at);
    buffer = buffer.slice(at + 1);
    let reply: Reply;
    try {
      reply = await handle(JSON.parse(line));
    } catch (error) {
      reply = { ok: false, error: errorText(error) };
    }
    await Deno.stdout.write(encoder.encode(JSON.stringify(reply) + "\n"));
  }
}
await chat.close();
await reading;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
