/**
 * The docs hold what the code cites: every rule cited as §N or §N.M in the
 * code, tests, tools and docs is stated in docs/PROTOCOL.md's "Rules"
 * section (issue 7: citations must resolve inside the repository).
 */

import { deepStrictEqual, ok } from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** The rules docs/PROTOCOL.md states: "§N" for each section, "§N.M" for each numbered rule. */
async function statedRules(): Promise<Set<string>> {
  const text = await Deno.readTextFile(new URL("docs/PROTOCOL.md", ROOT));
  const start = text.indexOf("\n## Rules");
  ok(start >= 0, "docs/PROTOCOL.md has a Rules section");
  const end = text.indexOf("\n## ", start + 1);
  const rules = new Set<string>();
  let section: string | undefined;
  for (const line of text.slice(start, end).split("\n")) {
    const heading = line.match(/^### §(\d+) /);
    if (heading) {
      section = heading[1];
      rules.add(`§${section}`);
      continue;
    }
    const item = line.match(/^(\d+)\. /);
    if (item && section !== undefined) rules.add(`§${section}.${item[1]}`);
  }
  return rules;
}

/** Every file of the repository that may cite a rule. */
async function* sources(dir: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(".") || entry.name === "dist") continue;
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* sources(url);
    else if (/\.(ts|md|lua)$/.test(entry.name)) yield url;
  }
}

Deno.test("every § cited in the repository is a rule stated in docs/PROTOCOL.md", async () => {
  const rules = await statedRules();
  ok(rules.has("§5.3") && rules.has("§9"), [...rules].join(" "));
  const missing: string[] = [];
  for await (const url of sources(ROOT)) {
    const text = await Deno.readTextFile(url);
    for (const [cited] of text.matchAll(/§\d+(?:\.\d+)?/g)) {
      if (!rules.has(cited)) {
        missing.push(`${cited} in ${url.pathname.slice(ROOT.pathname.length)}`);
      }
    }
  }
  deepStrictEqual([...new Set(missing)], []);
});
