/**
 * Summarises V8 CPU profiles (`.cpuprofile`, as written by
 * `deno run --cpu-prof`; `deno task bench:e2e --cpu-prof DIR` writes one per
 * process): self time by function and by file, highest first, so that where
 * a process spends its time can be read at a glance.
 *
 * ```sh
 * deno run --allow-read bench/profile_summary.ts DIR/*.cpuprofile [--top 25] [--per MESSAGES]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function shortUrl(url: string): string {
  if (url === "") return "(native)";
  const lib = url.indexOf("/lib/");
  if (url.startsWith("file://") && lib !== -1) return url.slice(lib + 1);
  const base = url.split("/");
  if (url.includes("node_modules") || url.startsWith("npm:")) {
    const nm = url.lastIndexOf("node_modules/");
    return nm === -1 ? url : url.slice(nm + 13);
  }
  return base.slice(-2).join("/");
}

/** Self time in µs per function key and per file, and the total. */
export function summarise(profile: Profile): {
  total: number;
  byFunction: Map<string, number>;
  byFile: Map<string, number>;
} {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = nodes.get(profile.samples[i]);
    const dt = profile.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    const frame = node.callFrame;
    if (frame.functionName === "(idle)") continue;
    total += dt;
    const file = shortUrl(frame.url);
    const key = `${frame.functionName || "(anonymous)"}  ${file}:${
      frame.lineNumber + 1
    }`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
  }
  return { total, byFunction, byFile };
}

function top(
  map: Map<string, number>,
  total: number,
  n: number,
  per: number | undefined,
): string[] {
  return [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map((
    [key, us],
  ) =>
    `${(us / 1000).toFixed(1).padStart(8)} ms ${
      (100 * us / total).toFixed(1).padStart(5)
    } %${
      per === undefined ? "" : ` ${(us / per).toFixed(1).padStart(6)} µs/msg`
    }  ${key}`
  );
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      top: { type: "string", default: "25" },
      // Divide by this many messages to show µs per message too.
      per: { type: "string" },
    },
  });
  const per = values.per === undefined ? undefined : Number(values.per);
  for (const path of positionals) {
    const profile = JSON.parse(Deno.readTextFileSync(path)) as Profile;
    const { total, byFunction, byFile } = summarise(profile);
    console.log(
      `\n== ${path}: ${(total / 1000).toFixed(1)} ms busy (idle excluded)`,
    );
    console.log("-- by file (self time)");
    for (const line of top(byFile, total, 12, per)) console.log(line);
    console.log("-- by function (self time)");
    for (const line of top(byFunction, total, Number(values.top), per)) {
      console.log(line);
    }
  }
}
