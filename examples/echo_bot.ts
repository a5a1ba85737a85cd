/**
 * An echo bot on simp's client for programs: it connects to a daemon, waits
 * for an invitation, accepts it, and sends back every message it receives,
 * unchanged; when the chat ends it waits for the next invitation. It exits
 * 0 on SIGINT/SIGTERM (leaving a chat cleanly) and 1 when its daemon goes
 * away.
 *
 * ```sh
 * deno run -A mod.ts daemon 127.0.0.2 &          # the bot's daemon
 * deno run --allow-net examples/echo_bot.ts 127.0.0.2 --name echo
 * deno run -A mod.ts client 127.0.0.1 --name me   # then invite 127.0.0.2
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Chat, type ChatError, connect } from "../mod.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    name: { type: "string", default: "echo" },
    port: { type: "string" },
  },
});
const ip = positionals[0] ?? "127.0.0.1";
const port = values.port === undefined ? undefined : Number(values.port);

let chat: Chat;
try {
  chat = await connect(ip, { name: values.name, port });
} catch (error) {
  console.error(`echo bot: ${error instanceof Error ? error.message : error}`);
  Deno.exit(1);
}

let stopping = false;
function stop(): void {
  stopping = true;
  chat.close();
}
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);

console.log(`echo bot ${values.name} waiting for an invitation at ${ip}`);
for await (const event of chat.events) {
  switch (event.type) {
    case "invitation":
      console.log(`invitation from ${event.name} at ${event.ip}: accepting`);
      await chat.accept().catch((error: ChatError) =>
        console.log(`could not accept: ${error.message}`)
      );
      break;
    case "chat-started":
      console.log(`chat with ${event.name} at ${event.ip}`);
      break;
    case "message":
      // Not awaited: the next messages are echoed while this one is on its
      // way; the client keeps them in order.
      chat.send(event.text).then(
        () => console.log(`echoed ${JSON.stringify(event.text)}`),
        (error: ChatError) => console.log(`not echoed: ${error.message}`),
      );
      break;
    case "peer-left":
    case "peer-lost":
    case "chat-closed":
      console.log(`chat ended (${event.type}); waiting for an invitation`);
      break;
  }
}
if (!stopping) {
  console.error("echo bot: the daemon went away");
  Deno.exit(1);
}
console.log("echo bot stopped");
