/**
 * The target's user, as seen by `simp conformance`: some checks need the
 * person at the target to accept, decline, invite, send, leave, or say what
 * they were shown. A {@linkcode Driver} does it for them, one request at a
 * time:
 *
 * - {@linkcode ProcessDriver} (`--driver CMD`): a long-lived program that
 *   speaks the driver protocol, one JSON request per line on its stdin and
 *   one JSON reply per line on its stdout (docs/CONFORMANCE.md);
 * - {@linkcode InteractiveDriver} (`--interactive`): asks the person at the
 *   terminal;
 * - {@linkcode NO_DRIVER}: nobody; every request is unsupported, so the
 *   checks that need one are skipped.
 *
 * @module
 */

/** A request to the target's user (the driver protocol). */
export type DriverRequest =
  | {
    /** Make the target idle, its user ready for an invitation. */
    do: "reset";
  }
  | {
    /** Accept the pending invitation. */
    do: "accept";
  }
  | {
    /** Decline the pending invitation. */
    do: "decline";
  }
  | {
    /** Invite the daemon at `ip`. */
    do: "invite";
    /** Its IPv4 address. */
    ip: string;
  }
  | {
    /** Send `text` in the chat. */
    do: "send";
    /** The message. */
    text: string;
  }
  | {
    /** Leave the chat. */
    do: "leave";
  }
  | {
    /** Say which messages the user was shown since the last reset. */
    do: "shown";
  };

/** What a request may be: `reset`, `accept`, … */
export type DriverCommand = DriverRequest["do"];

/** The reply to a {@linkcode DriverRequest}. */
export type DriverReply =
  | {
    /** Done. */
    ok: true;
    /** For `shown`: the texts shown as messages, in order. */
    shown?: string[];
  }
  | {
    /** Not done. */
    ok: false;
    /** Why, for the report. */
    error?: string;
    /** The driver cannot do this at all: the checks that need it are skipped. */
    unsupported?: boolean;
  };

/** The target's user, driven by the battery. */
export interface Driver {
  /** What the report calls it, e.g. `driver "deno run …"`. */
  readonly label: string;
  /**
   * Whether a person answers: then `shown` is asked once per check, not
   * polled.
   */
  readonly person?: boolean;
  /** Carries out one request; rejects only when the driver itself broke. */
  request(request: DriverRequest): Promise<DriverReply>;
  /** Releases it (ends the driver's process). */
  close(): Promise<void>;
}

/** The commands of the driver protocol. */
export const DRIVER_COMMANDS: readonly DriverCommand[] = [
  "reset",
  "accept",
  "decline",
  "invite",
  "send",
  "leave",
  "shown",
];

/** No driver: every request is unsupported. */
export const NO_DRIVER: Driver = {
  label: "no driver",
  request() {
    return Promise.resolve({ ok: false, unsupported: true });
  },
  close() {
    return Promise.resolve();
  },
};

/**
 * Reads one line of a driver's stdout as a {@linkcode DriverReply}.
 *
 * @throws {Error} saying what is wrong with the line.
 * @example
 * ```ts
 * import { parseDriverReply } from "./driver.ts";
 * const reply = parseDriverReply('{"ok":true,"shown":["hi"]}', "shown");
 * console.log(reply.ok); // true
 * ```
 */
export function parseDriverReply(
  line: string,
  command: DriverCommand,
): DriverReply {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new Error(`The driver's reply is not JSON: ${clip(line)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`The driver's reply is not a JSON object: ${clip(line)}`);
  }
  const reply = value as Record<string, unknown>;
  if (reply.ok === true) {
    if (command !== "shown") return { ok: true };
    const shown = reply.shown;
    if (!Array.isArray(shown) || shown.some((s) => typeof s !== "string")) {
      throw new Error(
        `The driver's reply to shown needs "shown": an array of strings, got ${
          clip(line)
        }`,
      );
    }
    return { ok: true, shown: shown as string[] };
  }
  if (reply.ok === false) {
    if (reply.unsupported === true) return { ok: false, unsupported: true };
    return {
      ok: false,
      error: typeof reply.error === "string"
        ? reply.error
        : "(the driver gave no error text)",
    };
  }
  throw new Error(
    `The driver's reply needs "ok": true or false, got ${clip(line)}`,
  );
}

/** Options of a {@linkcode ProcessDriver}. */
export interface ProcessDriverOptions {
  /** How long a reply may take, in ms (default 15000). */
  replyTimeoutMs?: number;
}

/**
 * `--driver CMD`: runs `sh -c CMD` once and talks the driver protocol with
 * it. Its stderr goes to ours, so that its own messages stay visible.
 */
export class ProcessDriver implements Driver {
  /** What the report calls it. */
  readonly label: string;
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #timeoutMs: number;
  /** Replies still to come for requests that timed out, to be skipped. */
  #late = 0;
  #exited: Promise<Deno.CommandStatus>;
  #broken: string | undefined;

  /**
   * Starts the driver.
   * @throws {Error} when the command cannot be started.
   */
  constructor(command: string, options: ProcessDriverOptions = {}) {
    this.label = `driver ${JSON.stringify(command)}`;
    this.#timeoutMs = options.replyTimeoutMs ?? 15_000;
    this.#child = new Deno.Command("sh", {
      args: ["-c", command],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = readLines(this.#child.stdout)[Symbol.asyncIterator]();
    this.#exited = this.#child.status;
  }

  /** Sends `request` and waits for its reply line. */
  async request(request: DriverRequest): Promise<DriverReply> {
    if (this.#broken) throw new Error(this.#broken);
    const line = JSON.stringify(request) + "\n";
    try {
      await this.#writer.write(new TextEncoder().encode(line));
    } catch {
      throw this.#fail(
        `The driver stopped reading its stdin${await this.#exitText()}`,
      );
    }
    for (;;) {
      const next = await this.#nextLine();
      if (next === undefined) {
        this.#late++;
        throw new Error(
          `The driver did not answer ${
            JSON.stringify(request)
          } within ${this.#timeoutMs} ms: it must reply one line to each request`,
        );
      }
      if (next.done) {
        throw this.#fail(
          `The driver ended${await this.#exitText()}`,
        );
      }
      if (this.#late > 0) {
        this.#late--;
        continue;
      }
      return parseDriverReply(next.value, request.do);
    }
  }

  async #nextLine(): Promise<IteratorResult<string> | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.#timeoutMs);
    });
    try {
      return await Promise.race([this.#pendingLine(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #reading: Promise<IteratorResult<string>> | undefined;

  /** The line being read; a read that timed out is reused, not lost. */
  #pendingLine(): Promise<IteratorResult<string>> {
    if (this.#reading === undefined) {
      this.#reading = this.#lines.next().finally(() => {
        this.#reading = undefined;
      });
    }
    return this.#reading;
  }

  #fail(message: string): Error {
    this.#broken = message;
    return new Error(message);
  }

  async #exitText(): Promise<string> {
    const status = await Promise.race([
      this.#exited,
      new Promise<undefined>((resolve) =>
        setTimeout(() => resolve(undefined), 1000)
      ),
    ]);
    // An exit says what to do: the driver's own error is on stderr, above.
    return status === undefined
      ? " (still running)"
      : ` (exit code ${status.code}${
        status.signal ? `, ${status.signal}` : ""
      }): its error output is above: check that the command runs on its own`;
  }

  /** Closes its stdin, then ends it if it does not exit within a second. */
  async close(): Promise<void> {
    try {
      await this.#writer.close();
    } catch {
      // already gone
    }
    const status = await Promise.race([
      this.#exited,
      new Promise<undefined>((resolve) =>
        setTimeout(() => resolve(undefined), 1000)
      ),
    ]);
    if (status === undefined) {
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // exited meanwhile
      }
      await this.#exited;
    }
    // Read stdout to its end so that nothing stays open.
    for (;;) {
      const next = await this.#pendingLine().catch(() => ({ done: true }));
      if (next.done) break;
    }
  }
}

/** The lines of a byte stream, without their `\n` (and `\r`). */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, at).replace(/\r$/, "");
      buffer = buffer.slice(at + 1);
    }
  }
  buffer += decoder.decode();
  if (buffer !== "") yield buffer;
}

/** Where an {@linkcode InteractiveDriver} asks and reads. */
export interface Terminal {
  /** Shows a prompt to the person. */
  write(text: string): void;
  /** Their next line, or `undefined` at the end of input. */
  readLine(): Promise<string | undefined>;
}

/** What an {@linkcode InteractiveDriver} tells the person about the battery. */
export interface InteractiveContext {
  /** The battery's peer address, which invites and is invited. */
  peerIp: string;
  /** The user name the battery sends. */
  peerName: string;
}

/**
 * `--interactive`: tells the person at the target what to do ("Accept the
 * invitation from 127.0.95.11 now"), waits for Enter, and asks what they
 * saw. Answering `s` makes a request unsupported (its checks are skipped).
 */
export class InteractiveDriver implements Driver {
  /** What the report calls it. */
  readonly label = "interactive";
  /** A person answers. */
  readonly person = true;
  #terminal: Terminal;
  #context: InteractiveContext;
  /** Messages typed in answer to `shown` since the last reset. */
  #typed: string[] = [];
  /** Whether the person did something since the last reset. */
  #involved = true;

  /** Asks on `terminal`. */
  constructor(terminal: Terminal, context: InteractiveContext) {
    this.#terminal = terminal;
    this.#context = context;
  }

  /** Asks the person to do `request`. */
  async request(request: DriverRequest): Promise<DriverReply> {
    const { peerIp, peerName } = this.#context;
    const who = `${peerIp} (user ${JSON.stringify(peerName)})`;
    if (request.do !== "reset" && request.do !== "shown") this.#involved = true;
    switch (request.do) {
      case "reset": {
        this.#typed = [];
        // The battery's FIN ends what it started; the person is asked only
        // after they did something themselves.
        if (!this.#involved) return { ok: true };
        this.#involved = false;
        return await this.#ask(
          "Make your daemon idle: leave any chat, decline any invitation; keep your client ready for a new invitation",
        );
      }
      case "accept":
        return await this.#ask(`Accept the invitation from ${who} now`);
      case "decline":
        return await this.#ask(`Decline the invitation from ${who} now`);
      case "invite":
        return await this.#ask(`Invite ${request.ip} now`);
      case "send":
        return await this.#ask(
          `Send this message now, exactly as quoted: ${
            JSON.stringify(request.text)
          }`,
        );
      case "leave":
        return await this.#ask("Leave the chat now");
      case "shown":
        return await this.#shown();
    }
  }

  async #ask(what: string): Promise<DriverReply> {
    this.#terminal.write(
      `\n>>> ${what}.\n    Press Enter when done, or type s and Enter if you cannot: `,
    );
    const line = await this.#terminal.readLine();
    if (line === undefined) return { ok: false, unsupported: true };
    if (line.trim().toLowerCase() === "s") {
      return { ok: false, unsupported: true };
    }
    return { ok: true };
  }

  async #shown(): Promise<DriverReply> {
    this.#terminal.write(
      "\n>>> Type the messages your client showed since you were last asked, one per line, then an empty line (s alone to skip):\n",
    );
    const shown = this.#typed;
    for (;;) {
      const line = await this.#terminal.readLine();
      if (line === undefined) break;
      if (line.trim().toLowerCase() === "s") {
        return { ok: false, unsupported: true };
      }
      if (line === "") break;
      shown.push(line);
    }
    return { ok: true, shown: [...shown] };
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A {@linkcode Terminal} on this process's stdin and stderr. */
export function stdioTerminal(): Terminal {
  const lines = readLines(Deno.stdin.readable)[Symbol.asyncIterator]();
  return {
    write(text) {
      Deno.stderr.writeSync(new TextEncoder().encode(text));
    },
    async readLine() {
      const next = await lines.next();
      return next.done ? undefined : next.value;
    },
  };
}

function clip(text: string): string {
  return JSON.stringify(text.length > 200 ? text.slice(0, 200) + "…" : text);
}
