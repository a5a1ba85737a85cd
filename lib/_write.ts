/**
 * Writing text to a synchronous stream, for the log and the client's
 * terminal output. Internal: not part of the public API.
 *
 * @module
 */

const encoder = new TextEncoder();

/** A stream that takes bytes synchronously, like `Deno.stdout`. */
export interface SyncWriter {
  /** Writes some of `bytes`; returns how many. */
  writeSync(bytes: Uint8Array): number;
}

/** Writes all of `text` to `stream`, synchronously, as UTF-8. */
export function writeAll(stream: SyncWriter, text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) {
    written += stream.writeSync(bytes.subarray(written));
  }
}
