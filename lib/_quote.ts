/**
 * Quoting the user's own text in an error message, cut short so that a long
 * paste does not flood the message.
 *
 * @module
 */

/** How many characters of the user's text an error message quotes. */
const QUOTE_LIMIT = 40;

/** `text` as JSON, cut to {@linkcode QUOTE_LIMIT} characters with `…`. */
export function quoteText(text: string): string {
  const characters = Array.from(text);
  return JSON.stringify(
    characters.length <= QUOTE_LIMIT
      ? text
      : characters.slice(0, QUOTE_LIMIT - 1).join("") + "…",
  );
}
