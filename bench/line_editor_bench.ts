/**
 * Benchmarks of the interactive client's line editor: what one keystroke
 * costs (decode, edit, lay out, produce the redraw) on a line of 100 ASCII
 * characters and on a line of 55 CJK characters wrapped over two rows of a
 * 110-column terminal — against the reference of encoding the redraw as
 * UTF-8, which the shell does for every keystroke anyway.
 */

import { LineEditor } from "../lib/user/line_editor.ts";

const VIEW = { prompt: "[bob@127.0.0.2]> ", columns: 110, maxRows: 15 };

function editorWith(text: string): LineEditor {
  const editor = new LineEditor();
  editor.feed(text);
  editor.render(VIEW);
  return editor;
}

const ascii = editorWith("x".repeat(100));
const cjk = editorWith("漢".repeat(55));
const encoder = new TextEncoder();
const redraw = cjk.render(VIEW);

Deno.bench("reference: encode a redraw as UTF-8", {
  group: "keystroke",
  baseline: true,
}, () => {
  encoder.encode(redraw);
});

Deno.bench("keystroke on 100 ASCII characters (type, erase, redraw)", {
  group: "keystroke",
}, () => {
  ascii.feed("y");
  ascii.render(VIEW);
  ascii.feed("\x7f");
  ascii.render(VIEW);
});

Deno.bench(
  "keystroke on 55 CJK characters over two rows (type, erase, redraw)",
  {
    group: "keystroke",
  },
  () => {
    cjk.feed("字");
    cjk.render(VIEW);
    cjk.feed("\x7f");
    cjk.render(VIEW);
  },
);
