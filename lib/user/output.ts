/**
 * What the client shows its user, as data: the one vocabulary the client
 * core ({@linkcode ClientCore} in `client_core.ts`) produces and the
 * renderers (`render.ts`) print as text lines, JSON lines or terminal lines.
 * Nothing here prints.
 *
 * @module
 */

/** What the client is waiting for the user to type, when it is. */
export type Ask =
  /** The user name (§8.1). */
  | "name"
  /** `1` = start a new chat, `2` = wait for invitations, `q` (§8.3). */
  | "menu"
  /** The IPv4 address (optionally `:port`) of the user to invite. */
  | "ip"
  /** `y` = accept, `n` = decline the pending invitation, `q` (§8.2). */
  | "answer"
  /** Chat messages, `/leave` or `q` (§8.4, §8.5). */
  | "chat";

/** The other daemon's SIMP address. */
export interface PeerAddress {
  /** Its IPv4 address. */
  ip: string;
  /** Its UDP port (7777 unless overridden). */
  port: number;
}

/** The other daemon's address and its user's name (empty when unknown). */
export interface PeerUser extends PeerAddress {
  /** The user name from its datagrams. */
  name: string;
}

/**
 * One thing to show the user: one line of output, in scripted mode exactly
 * `renderText` or `renderJson` of it (see `render.ts`). Texts are as
 * received: the renderers make them harmless. The variants:
 *
 * - `prompt` — a question: the client now reads an answer of kind `ask`;
 * - `connected` — to the daemon at `ip:port` (its client port) as `name`;
 * - `waiting` — waiting for invitations; `inviting` — inviting `ip:port`;
 * - `invitation` — one is pending; `invitation-ended` — the inviter withdrew
 *   it or it expired; `invitation-declined` — we declined it;
 * - `chat-started` — a chat began (or was going on when we connected);
 * - `answered-at-once` — follows `chat-started` when our invitation was
 *   answered too soon for a user to have read it: the other daemon was
 *   still in a chat with us (ours restarted: the chat goes on, messages may
 *   have been missed), or it or its program accepts by itself;
 * - `invite-retry` — our invitation is sent again, no answer yet: `attempt`
 *   retransmissions so far, `leftMs` until the daemon gives up (§4.5, §4.6);
 * - `busy-answered` — `name` at ip:port tried to invite us while we were
 *   busy, and was answered busy (§4.8);
 * - `peer-reconnected` — the partner's daemon restarted and invited us
 *   again during the chat: messages may have been missed (§4.5);
 * - `declined`, `busy` (with the other daemon's error `text`, §4.8),
 *   `no-answer` (§4.6), `invitation-cancelled` — our invitation's ends;
 * - `message` — from `name`; `sent` — our message went to the daemon, and
 *   is message `id` of this chat (numbered from 1 in each chat, whatever
 *   `msgId` the daemon gave it); `not-sent` — it did not, `reason` says why
 *   (nothing is dropped silently);
 * - `held` — the daemon refused a message for a full send queue although
 *   the client kept to the daemon's limit: the next messages wait in the
 *   client and are sent as earlier ones are delivered (shown once per
 *   backlog);
 * - `delivered` (§5.3), `retransmitted` (`attempt` as in the daemon's
 *   event: 1 is the first retransmission, §5.2), `undelivered` (§5.5) —
 *   news of message `id` of this chat; without `id`, of a message an
 *   earlier client sent (the daemon kept the news for the next client);
 * - `peer-left` (§6.1), `peer-lost` (§5.5) — the chat is over, followed by
 *   one `undelivered` per message that did not make it;
 * - `leaving` — we left; `chat-closed` — the chat we left is over (the other
 *   side acknowledged, or the daemon ended it at once), followed by one
 *   `undelivered` per message that did not make it;
 * - `peer-error` — the other daemon sent ERR during the chat;
 * - `daemon-stopping` — the daemon shuts down, the client exits (code 1);
 * - `error` — a request failed or an answer was not understood; `fatal`
 *   when the client stops because of it (code 1);
 * - `in-flight` — quit at once (interactive `q`, Ctrl+C, a signal) with
 *   `count` messages sent and still without news when the daemon answered
 *   `quit` (nothing is read after it): the daemon goes on trying (SPEC §6.1);
 *   just before `bye`;
 * - `summary` — at the end of input (or a scripted `q`): `failed` of the
 *   `total` messages typed were not sent or not delivered (shown only when
 *   some were; exit code 1);
 * - `bye` — the last line of a session that began with `connected` (a
 *   client that never connected ends with its fatal error alone).
 */
export type Output =
  | { type: "prompt"; ask: Ask; text: string }
  | { type: "connected"; ip: string; port: number; name: string }
  | { type: "waiting" }
  | ({ type: "inviting" } & PeerAddress)
  | ({ type: "invitation" } & PeerUser)
  | ({ type: "invitation-ended"; reason: "withdrawn" | "expired" } & PeerUser)
  | ({ type: "invitation-declined" } & PeerUser)
  | ({ type: "chat-started" } & PeerUser)
  | ({ type: "answered-at-once" } & PeerUser)
  | ({
    type: "invite-retry";
    /** Retransmissions of the invitation so far (1 = sent twice). */
    attempt: number;
    /** Milliseconds left until the daemon gives up (the invitation limit). */
    leftMs: number;
  } & PeerAddress)
  | ({ type: "busy-answered" } & PeerUser)
  | ({ type: "peer-reconnected" } & PeerUser)
  | ({ type: "declined" } & PeerUser)
  | ({ type: "busy"; text: string } & PeerAddress)
  | ({ type: "no-answer" } & PeerAddress)
  | ({ type: "invitation-cancelled" } & PeerAddress)
  | {
    type: "message";
    name: string;
    text: string;
    /** When it was shown (ISO 8601, UTC): set by the shell for `--json`. */
    time?: string;
  }
  | { type: "sent"; id: number; text: string }
  | { type: "not-sent"; text: string; reason: string }
  | { type: "held" }
  | {
    type: "delivered";
    /** The message's number in this chat; absent for one an earlier client sent. */
    id?: number;
  }
  | {
    type: "retransmitted";
    /** The message's number in this chat; absent for one an earlier client sent. */
    id?: number;
    /** Which retransmission: 1 = the first (the second sending), as in the daemon's event. */
    attempt: number;
  }
  | {
    type: "undelivered";
    /** The message's number in this chat; absent for one an earlier client sent. */
    id?: number;
    text: string;
  }
  | ({ type: "peer-left" } & PeerUser)
  | ({ type: "peer-lost" } & PeerUser)
  | { type: "leaving" }
  | ({ type: "chat-closed" } & PeerUser)
  | ({ type: "peer-error"; text: string } & PeerAddress)
  | { type: "daemon-stopping" }
  | { type: "error"; message: string; fatal?: true }
  | { type: "in-flight"; count: number }
  | { type: "summary"; failed: number; total: number }
  | { type: "bye" };

/** The prompt texts of scripted mode (after `? <ask>: `). */
export const PROMPTS: Readonly<Record<Ask, string>> = Object.freeze({
  name: "your user name (q = quit)",
  menu: "1 = start a new chat, 2 = wait for invitations, q = quit",
  ip:
    "IPv4 address of the user to invite, e.g. 127.0.0.2 (empty = back to menu, q = quit)",
  answer: "y = accept, n = decline, q = quit",
  chat: "type a message, /leave = leave the chat, q = quit",
});
