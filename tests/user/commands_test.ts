/** Tests of lib/user/commands.ts: what a line typed in a chat means. */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { CHAT_HELP, parseChatInput } from "../../lib/user/commands.ts";

Deno.test("a plain line is a message, exactly as typed", () => {
  deepStrictEqual(parseChatInput("  hello  "), {
    type: "message",
    text: "  hello  ",
  });
});

Deno.test("q alone quits (§8.4), blanks around it too; /quit as well", () => {
  for (const line of ["q", " q ", "/quit", "/QUIT", "/quit  "]) {
    deepStrictEqual(parseChatInput(line), { type: "command", command: "quit" });
  }
});

Deno.test("/leave and /help are commands", () => {
  deepStrictEqual(parseChatInput("/leave"), {
    type: "command",
    command: "leave",
  });
  deepStrictEqual(parseChatInput("/help"), {
    type: "command",
    command: "help",
  });
});

Deno.test("/say sends its text as it is: the way to send exactly q", () => {
  deepStrictEqual(parseChatInput("/say q"), { type: "message", text: "q" });
  deepStrictEqual(parseChatInput("/say /leave"), {
    type: "message",
    text: "/leave",
  });
  deepStrictEqual(parseChatInput("/say  two spaces"), {
    type: "message",
    text: " two spaces",
  });
});

Deno.test("/say with nothing after it is refused with an example", () => {
  const input = parseChatInput("/say");
  strictEqual(input.type, "refused");
  if (input.type === "refused") ok(input.message.includes("/say q"));
});

Deno.test("//text sends /text", () => {
  deepStrictEqual(parseChatInput("//me waves"), {
    type: "message",
    text: "/me waves",
  });
  deepStrictEqual(parseChatInput("//"), { type: "message", text: "/" });
});

Deno.test("an unknown /command is refused, not sent, with a hint", () => {
  const input = parseChatInput("/me waves");
  strictEqual(input.type, "refused");
  if (input.type !== "refused") return;
  ok(input.message.startsWith("Unknown command /me"), input.message);
  ok(input.message.includes("/help"), input.message);
  ok(input.message.includes("//me"), input.message);
  ok(!input.message.endsWith("."), input.message);
});

Deno.test("a misspelled command gets did you mean", () => {
  const input = parseChatInput("/leav");
  strictEqual(input.type, "refused");
  if (input.type === "refused") {
    ok(input.message.includes("did you mean /leave?"), input.message);
  }
});

Deno.test("a command with something after it is refused, not taken as the command", () => {
  strictEqual(parseChatInput("/leave now").type, "refused");
  strictEqual(parseChatInput("/quit please").type, "refused");
});

Deno.test("a blank line is empty: nothing to send", () => {
  deepStrictEqual(parseChatInput(""), { type: "empty" });
  deepStrictEqual(parseChatInput("   "), { type: "empty" });
});

Deno.test("controls in an unknown command are not echoed raw", () => {
  const input = parseChatInput("/\x1b[2Jx");
  strictEqual(input.type, "refused");
  if (input.type === "refused") ok(!input.message.includes("\x1b"));
});

Deno.test("the help names every command and the ASCII-only rule", () => {
  const text = CHAT_HELP.join("\n");
  for (const word of ["/leave", "/quit", "/say", "//", "/help", "ASCII"]) {
    ok(text.includes(word), word);
  }
});
