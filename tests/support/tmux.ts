/**
 * A tmux server of a test's own (its own socket), so no user session is
 * touched: start a program in a pane of a given size, type into it
 * (`send-keys`), paste into it (bracketed, as a terminal does), read the
 * screen (`capture-pane`), and close everything it started.
 */

import { ROOT, STEP_TIMEOUT_MS } from "../../tools/_processes.ts";

/** Whether tmux can be run (CI installs it, see .ci/run). */
export const HAVE_TMUX: boolean = (() => {
  try {
    return new Deno.Command("tmux", {
      args: ["-V"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();

/** Size of a pane. */
export interface PaneSize {
  /** Columns (default 100). */
  columns?: number;
  /** Rows (default 30). */
  rows?: number;
}

/** One tmux server with one session; see the module documentation. */
export class Tmux {
  readonly socket = `simp-t-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  readonly session = `s${Deno.pid}`;
  /** The last screen captured, for failure reports. */
  screen: string[] = [];

  /** The session's pane, as a target that cannot be mistaken. */
  get target(): string {
    return `${this.session}:`;
  }

  /** Runs `tmux -L socket args…` and returns its stdout. */
  async run(...args: string[]): Promise<string> {
    const output = await new Deno.Command("tmux", {
      args: ["-L", this.socket, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    if (!output.success) {
      throw new Error(
        `tmux ${args.join(" ")} failed: ${decoder.decode(output.stderr)}`,
      );
    }
    return decoder.decode(output.stdout);
  }

  /**
   * Starts the session running `sh -c script arg0 args…` in the project's
   * folder; the pane stays after the script exits so that its last screen
   * can be read.
   */
  async start(
    script: string,
    args: readonly string[],
    size: PaneSize = {},
  ): Promise<void> {
    await this.run(
      "-f",
      "/dev/null",
      "start-server",
      ";",
      "set-option",
      "-g",
      "remain-on-exit",
      "on",
      ";",
      "new-session",
      "-d",
      "-s",
      this.session,
      "-x",
      String(size.columns ?? 100),
      "-y",
      String(size.rows ?? 30),
      "-c",
      decodeURIComponent(ROOT.pathname),
      "sh",
      "-c",
      script,
      ...args,
    );
  }

  /** Types `text` literally. */
  async type(text: string): Promise<void> {
    await this.run("send-keys", "-t", this.target, "-l", text);
  }

  /** Presses keys by their tmux names (`Enter`, `C-c`, `Left`, `Home`, `Up`). */
  async keys(...names: string[]): Promise<void> {
    await this.run("send-keys", "-t", this.target, ...names);
  }

  /** Presses Enter. */
  async enter(): Promise<void> {
    await this.keys("Enter");
  }

  /** Types `text`, then Enter. */
  async line(text: string): Promise<void> {
    await this.type(text);
    await this.enter();
  }

  /**
   * Pastes `text` as a terminal does: in bracketed-paste markers when the
   * program asked for them (`paste-buffer -p`).
   */
  async paste(text: string): Promise<void> {
    await this.run("set-buffer", "-b", "t", "--", text);
    await this.run("paste-buffer", "-p", "-d", "-b", "t", "-t", this.target);
  }

  /** Whether the program in the pane rang the terminal bell (tmux keeps the flag). */
  async rang(): Promise<boolean> {
    const flag = await this.run(
      "display-message",
      "-p",
      "-t",
      this.target,
      "#{window_bell_flag}",
    );
    return flag.trim() === "1";
  }

  /** The screen's lines, trailing blanks and empty lines removed. */
  async capture(): Promise<string[]> {
    const text = await this.run("capture-pane", "-p", "-t", this.target);
    const lines = text.split("\n").map((line) => line.trimEnd());
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    this.screen = lines;
    return lines;
  }

  /** Polls the screen until `check` holds, or fails after the step timeout. */
  async waitFor(
    what: string,
    check: (lines: string[]) => boolean,
    timeoutMs = STEP_TIMEOUT_MS,
  ): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = await this.capture();
      if (check(lines)) return lines;
      if (Date.now() > deadline) {
        throw new Error(
          `The terminal did not show ${what} within ${timeoutMs} ms; screen:\n${
            lines.join("\n")
          }`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Kills what still runs in the pane (its process group, by id), then the
   * server, and removes the server's socket (tmux leaves it behind).
   */
  async close(): Promise<void> {
    let socketPath = "";
    try {
      const [dead, pid, path] = (await this.run(
        "display-message",
        "-p",
        "-t",
        this.target,
        "#{pane_dead} #{pane_pid} #{socket_path}",
      )).trim().split(" ");
      socketPath = path ?? "";
      if (dead !== "1" && Number(pid) > 1) {
        try {
          Deno.kill(-Number(pid), "SIGKILL");
        } catch {
          // It exited meanwhile.
        }
      }
    } catch {
      // No session (it never started): nothing runs in it.
    }
    try {
      await this.run("kill-server");
    } catch {
      // No server.
    }
    if (socketPath.includes(this.socket)) {
      // With rm rather than Deno.remove: the test task grants --allow-run,
      // not --allow-write.
      await new Deno.Command("rm", {
        args: ["-f", "--", socketPath],
        stdout: "null",
        stderr: "null",
      }).output();
    }
  }
}

/** The last line of the screen: the interactive client's input line. */
export function inputLine(lines: readonly string[]): string {
  return lines[lines.length - 1] ?? "";
}

/** A screen line: `HH:MM ` then `text` (and maybe more after it). */
export function timedLine(text: string): RegExp {
  return new RegExp(
    `^[0-2][0-9]:[0-5][0-9] ${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`,
  );
}
