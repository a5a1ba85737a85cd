/**
 * The interactive client's colour functions, from `picocolors`. A module of
 * their own, loaded only with the terminal shell: `picocolors` reads the
 * environment (`FORCE_COLOR`, `CI`, `TERM`) as soon as it is loaded, so
 * importing it from `terminal.ts` made every program that imports `mod.ts`
 * need `--allow-env` (the echo bot crashed under `--allow-net` alone).
 *
 * @module
 */

// A full npm: specifier, so that mod.ts loads in projects without this
// deno.json (issue 7).
// deno-lint-ignore no-import-prefix
import picocolors from "npm:picocolors@1.1.1";

/** Colour functions (from `picocolors`): each returns its text unchanged when colours are off. */
export type Palette = ReturnType<typeof picocolors.createColors>;

/**
 * The colour functions for `enabled` (see `colourWanted` in `terminal.ts`).
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { palette } from "./palette.ts";
 * strictEqual(palette(false).red("x"), "x");
 * ```
 */
export function palette(enabled: boolean): Palette {
  return picocolors.createColors(enabled);
}
