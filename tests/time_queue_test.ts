/** The shared queue of things due at times (lib/_time_queue.ts). */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { TimeQueue } from "../lib/_time_queue.ts";

Deno.test("TimeQueue: earliest first, ties in the order pushed", () => {
  const queue = new TimeQueue<string>();
  strictEqual(queue.nextTime, undefined);
  strictEqual(queue.pop(), undefined);
  const pushed: [number, string][] = [
    [5, "a"],
    [1, "b"],
    [5, "c"],
    [3, "d"],
    [1, "e"],
    [5, "f"],
  ];
  for (const [time, item] of pushed) queue.push(time, item);
  strictEqual(queue.size, 6);
  strictEqual(queue.nextTime, 1);
  strictEqual(queue.peek(), "b");
  const out: string[] = [];
  while (queue.size > 0) out.push(queue.pop()!);
  deepStrictEqual(out, ["b", "e", "d", "a", "c", "f"]);
});

Deno.test("TimeQueue: many items with equal times keep their order", () => {
  const queue = new TimeQueue<number>();
  for (let i = 0; i < 1000; i++) queue.push(i % 7, i);
  const out: number[] = [];
  while (queue.size > 0) out.push(queue.pop()!);
  const want = Array.from({ length: 1000 }, (_, i) => i)
    .sort((x, y) => x % 7 - y % 7 || x - y);
  deepStrictEqual(out, want);
});
