/**
 * A strict reading of the SVG documents of `simp ladder` for the tests
 * (tests/ladder/): well-formedness checked by an independent XML parser
 * (fast-xml-parser) and a scan for characters XML 1.0 forbids, then a small
 * element tree to look things up in.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import { XMLParser, XMLValidator } from "fast-xml-parser";

/** An element of the parsed SVG: its name, attributes, text and children. */
export interface Element {
  name: string;
  attrs: Record<string, string>;
  text: string;
  children: Element[];
}

/**
 * Parses `svg` strictly: XMLValidator must accept it, and no character XML
 * 1.0 forbids may appear. Returns the root `svg` element.
 */
export function parseSvg(svg: string): Element {
  const valid = XMLValidator.validate(svg);
  ok(valid === true, `well-formed XML: ${JSON.stringify(valid)}`);
  for (let i = 0; i < svg.length; i++) {
    const c = svg.charCodeAt(i);
    ok(
      c >= 0x20 || c === 0x09 || c === 0x0a || c === 0x0d,
      `no character XML forbids (U+${c.toString(16)} at ${i})`,
    );
    ok(c !== 0xfffe && c !== 0xffff, "no U+FFFE or U+FFFF");
  }
  const parsed = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "",
    preserveOrder: true,
    trimValues: false,
    parseTagValue: false,
    parseAttributeValue: false,
  }).parse(svg) as Record<string, unknown>[];
  const elements = parsed.map(toElement).filter((e) => e.name === "svg");
  strictEqual(elements.length, 1, "one svg root");
  return elements[0];
}

/** One parsed node as an {@linkcode Element}. */
function toElement(node: Record<string, unknown>): Element {
  const name = Object.keys(node).find((key) => key !== ":@")!;
  const content = (node[name] ?? []) as Record<string, unknown>[];
  const children: Element[] = [];
  let text = "";
  for (const child of content) {
    if ("#text" in child) text += String(child["#text"]);
    else children.push(toElement(child));
  }
  return {
    name,
    attrs: (node[":@"] ?? {}) as Record<string, string>,
    text,
    children,
  };
}

/** Every element under `root` (itself included) that passes `test`. */
export function all(root: Element, test: (e: Element) => boolean): Element[] {
  const found: Element[] = [];
  (function walk(e: Element) {
    if (test(e)) found.push(e);
    e.children.forEach(walk);
  })(root);
  return found;
}

/** Whether `e` has the class `name`. */
export function hasClass(e: Element, name: string): boolean {
  return (e.attrs.class ?? "").split(" ").includes(name);
}
