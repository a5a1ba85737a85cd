/**
 * The docs hold what the code cites: every rule cited as §N or §N.M in the
 * code, tests, tools and docs is stated in docs/PROTOCOL.md's "Rules"
 * section (issue 7: citations must resolve inside the repository), and
 * every relative link of the docs reaches a file and a heading.
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

/** GitHub's anchors of the headings of a Markdown text. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  for (const [, title] of markdown.matchAll(/^#+ (.*)$/gm)) {
    found.add(
      title.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, "")
        .replaceAll(" ", "-"),
    );
  }
  return found;
}

Deno.test("every relative link of README.md and docs/ names a file that exists, and a heading in it", async () => {
  const files = [new URL("README.md", ROOT)];
  for await (const entry of Deno.readDir(new URL("docs/", ROOT))) {
    if (entry.name.endsWith(".md")) {
      files.push(new URL(`docs/${entry.name}`, ROOT));
    }
  }
  const broken: string[] = [];
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    for (
      const [, path, anchor] of text.matchAll(
        /\]\(([^)\s#]*)(?:#([^)\s]+))?\)/g,
      )
    ) {
      if (/^[a-z]+:/.test(path)) continue; // https:, mailto:
      const target = path === "" ? file : new URL(path, file);
      let targetText: string;
      try {
        targetText = await Deno.readTextFile(target);
      } catch {
        if (anchor === undefined) {
          try {
            await Deno.stat(target);
            continue;
          } catch { /* missing */ }
        }
        broken.push(`${file.pathname}: ${path}`);
        continue;
      }
      if (anchor !== undefined && !anchors(targetText).has(anchor)) {
        broken.push(`${file.pathname}: ${path}#${anchor}`);
      }
    }
  }
  deepStrictEqual(broken, []);
});
