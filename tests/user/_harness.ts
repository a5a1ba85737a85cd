/**
 * A fake daemon for the real {@linkcode ClientCore}, in virtual time: it
 * reads the lines the core writes (parsing them as the daemon would) and
 * answers with reply and event lines, fed to the core through the same
 * `receive` the shell uses. Everything the core does is kept as readable
 * lines: requests as `→ {json without id}`, outputs as their scripted text
 * lines, the exit as `exit N`.
 */

import {
  type DaemonState,
  encodeDaemonMessage,
  type LinkEvent,
  parseRequest,
  type Request,
} from "../../lib/link/protocol.ts";
import type { LineItem } from "../../lib/link/lines.ts";
import {
  type ClientAction,
  ClientCore,
  type ClientCoreOptions,
  type UnreachableCause,
} from "../../lib/user/client_core.ts";
import type { Output } from "../../lib/user/output.ts";
import { renderText } from "../../lib/user/render.ts";

/** The scripted prompts of the menu, a chat and an invitation (§8). */
export { ANSWER, CHAT, MENU } from "../support/processes.ts";
/** The scripted name prompt (§8.1). */
export const NAME = "? name: your user name (q = quit)";
/** Bob, at 127.0.0.2. */
export const BOB = { ip: "127.0.0.2", port: 7777, name: "bob" };

/** A client core and the fake daemon it talks to. */
export class Harness {
  readonly core: ClientCore;
  /** Virtual time, in ms. */
  now = 0;
  /** Every action so far, raw. */
  readonly actions: ClientAction[] = [];
  /** Every output so far. */
  readonly outputs: Output[] = [];
  /** Requests written and not answered yet, oldest first. */
  readonly pending: Request[] = [];
  /** Every request written. */
  readonly requests: Request[] = [];
  /** The exit code, once the core exited. */
  exitCode: number | undefined;
  #shown: string[] = [];

  /** A core for the daemon at 127.0.0.1:7778, as alice unless `options` say otherwise; connecting begins. */
  constructor(options: Partial<ClientCoreOptions> = {}) {
    this.core = new ClientCore({
      ip: "127.0.0.1",
      port: 7778,
      name: "alice",
      ...options,
    });
    this.core.start(this.now);
    this.#collect();
  }

  /** The connection opens. */
  open(): this {
    this.core.opened(this.now);
    return this.#collect();
  }

  /** What happened since the last call, as readable lines. */
  take(): string[] {
    const shown = this.#shown;
    this.#shown = [];
    return shown;
  }

  /** The user types `line` (interactive); returns whether it was taken. */
  line(line: string): boolean {
    const taken = this.core.typed(line, this.now);
    this.#collect();
    return taken;
  }

  /** Scripted input: the lines, then perhaps `null` for the end of input. */
  input(...lines: (string | null)[]): this {
    for (const line of lines) {
      if (line === null) this.core.inputEnd(this.now);
      else this.core.input(line, this.now);
      this.#collect();
    }
    return this;
  }

  /** Ctrl+C or a signal. */
  interrupt(): this {
    this.core.interrupt(this.now);
    return this.#collect();
  }

  /** The daemon answers the oldest pending request with ok and `fields`. */
  reply(fields: Record<string, unknown> = {}): this {
    const request = this.pending[0];
    if (request === undefined) throw new Error("No request to answer");
    return this.raw(JSON.stringify({ re: request.id, ok: true, ...fields }));
  }

  /** The daemon answers hello: ok with `state` and a queue limit. */
  hello(state: DaemonState = { phase: "idle" }, queue = 64): this {
    return this.reply({ v: 2, state, limits: { queue, text: 65468 } });
  }

  /** The daemon answers a send: ok with message id `msgId`. */
  sent(msgId: number): this {
    return this.reply({ msgId });
  }

  /** The daemon refuses the oldest pending request. */
  refuse(error: string, code?: string): this {
    const request = this.pending[0];
    if (request === undefined) throw new Error("No request to answer");
    return this.raw(
      JSON.stringify({
        re: request.id,
        ok: false,
        error,
        ...(code === undefined ? {} : { code }),
      }),
    );
  }

  /** The daemon sends `event`. */
  event(event: LinkEvent): this {
    return this.raw(encodeDaemonMessage({ event }).slice(0, -1));
  }

  /** The daemon sends the line `text` (without `\n`), whatever it is. */
  raw(text: string): this {
    const before = this.pending.length;
    this.core.receive({ type: "line", text }, this.now);
    // A reply the core took answers the oldest request.
    if (before > 0 && /"re":\d/.test(text)) this.pending.shift();
    return this.#collect();
  }

  /** The framing reports `item` (a line, or what is wrong with one). */
  item(item: LineItem): this {
    this.core.receive(item, this.now);
    return this.#collect();
  }

  /** The connection could not be opened. */
  unreachable(cause?: UnreachableCause): this {
    this.core.unreachable(this.now, cause);
    return this.#collect();
  }

  /** The connection ends (EOF or reset). */
  close(): this {
    this.core.closed(this.now);
    return this.#collect();
  }

  /** Virtual time passes: `ms` later, the core's timers run. */
  advance(ms: number): this {
    const until = this.now + ms;
    for (;;) {
      const next = this.core.nextTimeout();
      if (next === undefined || next > until) break;
      this.now = Math.max(this.now, next);
      this.core.tick(this.now);
      this.#collect();
    }
    this.now = until;
    return this;
  }

  #collect(): this {
    for (const action of this.core.takeActions()) {
      this.actions.push(action);
      switch (action.type) {
        case "write": {
          const request = parseRequest(action.line.slice(0, -1));
          this.pending.push(request);
          this.requests.push(request);
          const { id: _, ...command } = request;
          this.#shown.push(`→ ${JSON.stringify(command)}`);
          break;
        }
        case "output":
          this.outputs.push(action.output);
          this.#shown.push(renderText(action.output));
          break;
        case "exit":
          this.exitCode = action.code;
          this.#shown.push(`exit ${action.code}`);
          break;
      }
    }
    return this;
  }
}

/** A core that said hello as alice and got `state`; what it showed is taken. */
export function connected(
  state: DaemonState = { phase: "idle" },
  options: Partial<ClientCoreOptions> = {},
  queue = 64,
): Harness {
  const client = new Harness(options).open();
  client.hello(state, queue);
  client.take();
  return client;
}

/** A core in a chat with bob (alice invited him). */
export function inChat(
  options: Partial<ClientCoreOptions> = {},
  queue = 64,
): Harness {
  const client = connected({ phase: "idle" }, options, queue);
  client.line("1");
  client.line("127.0.0.2");
  client.reply();
  client.event({ type: "chat-started", ...BOB });
  client.take();
  return client;
}

/** The texts of the `send` requests among `lines` (as {@linkcode Harness.take} shows them). */
export function sends(lines: string[]): string[] {
  return lines.flatMap((line) => {
    const match = /^→ (\{"cmd":"send".*\})$/.exec(line);
    return match ? [JSON.parse(match[1]).text] : [];
  });
}
