/**
 * The client's end of the link (SPEC §9), sans-I/O and small: it builds
 * request lines with increasing ids, parses the daemon's lines, matches
 * each reply to its request (replies come in request order: first in,
 * first out, checked with `re`), tracks the hello exchange and counts the
 * `send`s that are not settled yet (for `limits.queue`). The dialogue,
 * rendering and sockets are elsewhere (`lib/user/`, `client.ts`).
 *
 * @module
 */

import {
  type Command,
  type DaemonState,
  encodeRequest,
  type ErrorReply,
  type HelloReply,
  LINK_VERSION,
  LinkError,
  type LinkEvent,
  type LinkLimits,
  parseDaemonMessage,
  type Reply,
  type Request,
  type SendReply,
} from "./protocol.ts";

/**
 * Where the hello exchange is: `new` (nothing sent), `greeting` (hello sent,
 * no reply yet), `ready` (the daemon said ok), `refused` (it answered the
 * hello with an error: another client is connected, another version, a bad
 * name; the daemon closes the connection after `busy` and `version`).
 */
export type HelloPhase = "new" | "greeting" | "ready" | "refused";

/** What a line from the daemon was, as {@linkcode ClientEnd.receive} returns it. */
export type ClientEndInput =
  /**
   * The reply to `request` (ok or error; for `hello`, the ok reply is a
   * {@linkcode HelloReply}, and {@linkcode ClientEnd.phase} has moved on).
   */
  | { type: "reply"; request: Request; reply: Reply }
  /** An event. */
  | { type: "event"; event: LinkEvent }
  /**
   * An error reply that answers no request (`re` null with nothing
   * outstanding): e.g. the daemon refusing a connection before the hello.
   */
  | { type: "refusal"; reply: ErrorReply }
  /**
   * The daemon broke the protocol (a line that does not parse, a reply out
   * of order or of the wrong kind): show the error, and close the
   * connection.
   */
  | { type: "violation"; error: LinkError };

/**
 * The client's end of the link.
 *
 * Outputs: {@linkcode hello} and {@linkcode request} return the lines to
 * write. Input: {@linkcode receive} takes each line the daemon sent (from
 * a `LineSplitter`) and says what it was. It never throws on what the
 * daemon sends.
 *
 * @example
 * ```ts
 * import { ClientEnd } from "./client_end.ts";
 * const end = new ClientEnd();
 * const line = end.hello("alice"); // '{"id":1,"cmd":"hello","v":2,"name":"alice"}\n'
 * const input = end.receive(
 *   '{"re":1,"ok":true,"v":2,"state":{"phase":"idle"},"limits":{"queue":64,"text":65468}}',
 * );
 * console.log(input.type, end.phase); // "reply" "ready"
 * ```
 */
export class ClientEnd {
  #nextId = 1;
  #pending: Request[] = [];
  #phase: HelloPhase = "new";
  #hello: HelloReply | undefined;
  /** Sends replied to with their msgId and not yet delivered or undelivered. */
  #unsettled = new Set<number>();

  /** Where the hello exchange is. */
  get phase(): HelloPhase {
    return this.#phase;
  }

  /** The daemon's state as of its hello reply, once it came. */
  get state(): DaemonState | undefined {
    return this.#hello?.state;
  }

  /** The daemon's limits, once the hello reply came. */
  get limits(): LinkLimits | undefined {
    return this.#hello?.limits;
  }

  /** How many requests wait for their reply. */
  get outstanding(): number {
    return this.#pending.length;
  }

  /**
   * How many `send`s are not settled: not yet replied to, or replied to
   * with a msgId that no `delivered` or `undelivered` has named yet. Keep
   * it below `limits.queue` and `queue-full` never comes.
   */
  get unsettledSends(): number {
    let count = this.#unsettled.size;
    for (const request of this.#pending) if (request.cmd === "send") count++;
    return count;
  }

  /** Whether one more `send` keeps within `limits.queue` (false before the hello reply). */
  get maySend(): boolean {
    const limits = this.limits;
    return limits !== undefined && this.unsettledSends < limits.queue;
  }

  /**
   * The hello line (the first request), with the user's name.
   * @throws {LinkError} when hello was already sent.
   */
  hello(name: string): string {
    if (this.#phase !== "new") throw new LinkError("Hello was already sent");
    this.#phase = "greeting";
    return this.#line({ cmd: "hello", v: LINK_VERSION, name });
  }

  /**
   * The line for another request, which may follow the hello at once
   * (the daemon answers in order); returns its id too.
   * @throws {LinkError} before {@linkcode hello}, or for a second hello.
   */
  request(command: Command): { id: number; line: string } {
    if (command.cmd === "hello") {
      throw new LinkError("Hello is sent once, with hello()");
    }
    if (this.#phase === "new") {
      throw new LinkError(
        "Say hello first: the daemon answers nothing else before it",
      );
    }
    const id = this.#nextId;
    return { id, line: this.#line(command) };
  }

  /** Takes one line the daemon sent (without its `\n`) and says what it was. */
  receive(line: string): ClientEndInput {
    let message;
    try {
      message = parseDaemonMessage(line);
    } catch (error) {
      return { type: "violation", error: asLinkError(error) };
    }
    if ("event" in message) {
      this.#settle(message.event);
      return { type: "event", event: message.event };
    }
    const request = this.#pending[0];
    if (request === undefined) {
      if (!message.ok && message.re === null) {
        return { type: "refusal", reply: message };
      }
      return violation(`A reply to request ${message.re} that was not asked`);
    }
    if (message.re !== null && message.re !== request.id) {
      return violation(
        `A reply to request ${message.re} where ${request.id} was expected`,
      );
    }
    if (message.ok) {
      const problem = kindProblem(request, message);
      if (problem !== undefined) return violation(problem);
    }
    this.#pending.shift();
    if (request.cmd === "hello") {
      if (message.ok) {
        this.#hello = message as HelloReply;
        this.#phase = "ready";
      } else {
        this.#phase = "refused";
      }
    }
    if (request.cmd === "send" && message.ok && "msgId" in message) {
      this.#unsettled.add((message as SendReply).msgId);
    }
    return { type: "reply", request, reply: message };
  }

  #line(command: Command): string {
    const request = { id: this.#nextId++, ...command } as Request;
    this.#pending.push(request);
    return encodeRequest(request);
  }

  #settle(event: LinkEvent): void {
    if (event.type === "delivered" || event.type === "undelivered") {
      this.#unsettled.delete(event.id);
    }
  }
}

/** What is wrong with an ok reply for `request`, if anything. */
function kindProblem(request: Request, reply: Reply): string | undefined {
  const isHello = "state" in reply;
  const isSend = "msgId" in reply;
  if (request.cmd === "hello") {
    if (!isHello) return "The daemon answered hello without its state";
    const version = (reply as HelloReply).v;
    return version === LINK_VERSION
      ? undefined
      : `The daemon answered hello with version ${version}, but this client speaks ${LINK_VERSION}`;
  }
  if (request.cmd === "send") {
    return isSend ? undefined : "The daemon answered send without a message id";
  }
  return isHello || isSend
    ? `The daemon answered ${request.cmd} like another command`
    : undefined;
}

function violation(message: string): ClientEndInput {
  return { type: "violation", error: new LinkError(message) };
}

function asLinkError(error: unknown): LinkError {
  return error instanceof LinkError
    ? error
    : new LinkError(`Unreadable daemon message: ${String(error)}`);
}
