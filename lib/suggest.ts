/**
 * "Did you mean …?" for a misspelled option, command or slash command:
 * the closest of the known words by edit distance (Levenshtein, with swapped neighbours counted once), or the
 * only one that starts with what was typed. Pure.
 *
 * @module
 */

/**
 * The edit distance between `a` and `b` (Damerau–Levenshtein, optimal
 * string alignment): how many characters must be inserted, deleted or
 * replaced, or neighbours swapped (`nmae` → `name` is one), to turn one
 * into the other.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { editDistance } from "./suggest.ts";
 * strictEqual(editDistance("--timout", "--timeout"), 1);
 * ```
 */
export function editDistance(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  let before: number[] = [];
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) {
      const replace = previous[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, replace);
      if (
        i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]
      ) {
        current[j] = Math.min(current[j], before[j - 2] + 1);
      }
    }
    before = previous;
    previous = current;
  }
  return previous[y.length];
}

/**
 * The known word `typed` most likely stands for, or `undefined` when none
 * is close: the nearest by {@linkcode editDistance} when at most a third of
 * its letters (at least one) differ, else the only word that starts with
 * `typed` (`--invite` → `--invite-limit`). Case is ignored; ties go to the
 * word listed first.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { closestWord } from "./suggest.ts";
 * strictEqual(closestWord("--timout", ["--port", "--timeout"]), "--timeout");
 * strictEqual(closestWord("--colour", ["--port", "--timeout"]), undefined);
 * ```
 */
export function closestWord(
  typed: string,
  known: readonly string[],
): string | undefined {
  const word = typed.toLowerCase();
  if (word.replace(/^[-/]+/, "") === "") return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(word, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const core = word.replace(/^[-/]+/, "");
  const allowed = Math.max(1, Math.floor(core.length / 3));
  if (best !== undefined && best !== typed && bestDistance <= allowed) {
    return best;
  }
  const prefixed = known.filter((candidate) =>
    candidate.toLowerCase().startsWith(word) && candidate.length > word.length
  );
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/**
 * `" Did you mean X?"`-style hint for `typed` among `known`, or `""`:
 * ready to append to an error message.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { didYouMean } from "./suggest.ts";
 * strictEqual(didYouMean("deamon", ["daemon", "client"]), ": did you mean daemon?");
 * ```
 */
export function didYouMean(typed: string, known: readonly string[]): string {
  const word = closestWord(typed, known);
  return word === undefined ? "" : `: did you mean ${word}?`;
}
