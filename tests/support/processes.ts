/**
 * Real simp processes for the end-to-end tests (tests/e2e_test.ts): daemons
 * and scripted clients started with `deno run mod.ts`, on the process
 * machinery of tools/_processes.ts that drives the clients of
 * `deno task demo` too.
 *
 * @example
 * ```ts ignore
 * const procs = new Processes();
 * try {
 *   await procs.daemon("127.0.80.1");
 *   const alice = procs.client("127.0.80.1", "alice");
 *   await alice.expect("connected to 127.0.80.1:7778 as alice");
 * } finally {
 *   await procs.close();
 * }
 * ```
 *
 * @module
 */

import { type Proc, ProcessGroup } from "../../tools/_processes.ts";

/** The scripted client's menu prompt (§8.3). */
export const MENU =
  "? menu: 1 = start a new chat, 2 = wait for invitations, q = quit";

/** The scripted client's chat prompt (§8.4, §8.5). */
export const CHAT = "? chat: type a message, /leave = leave the chat, q = quit";

/** The scripted client's prompt to answer an invitation (§8.2). */
export const ANSWER = "? answer: y = accept, n = decline, q = quit";

/**
 * What every process of the tests runs with: no colours in its output, and
 * not taken for a `deno task` run (INIT_CWD empty), so that the commands
 * its messages name are {@linkcode RUN_DAEMON}'s form.
 */
const ENV = { NO_COLOR: "1", INIT_CWD: "" };

/** How the processes of the tests name the command that runs a daemon. */
export const RUN_DAEMON = "deno run -A mod.ts daemon";

/** The daemons and clients of one test; `close` stops them all. */
export class Processes extends ProcessGroup {
  /**
   * Starts `simp daemon ip` (debug logs, so that reports show the wire
   * trace) and waits until it listens.
   */
  async daemon(ip: string, args: string[] = []): Promise<Proc> {
    const proc = this.spawn(`daemon ${ip}`, [
      "run",
      "-A",
      "mod.ts",
      "daemon",
      ip,
      "--log-level",
      "debug",
      ...args,
    ], { stdin: false, env: ENV });
    await proc.expect(/^simp daemon listening on /, { stream: "stderr" });
    return proc;
  }

  /** Starts a scripted client (stdin piped) of the daemon at `ip`. */
  client(ip: string, name: string, args: string[] = []): Proc {
    return this.spawn(name, [
      "run",
      "-A",
      "mod.ts",
      "client",
      ip,
      "--name",
      name,
      ...args,
    ], { stdin: true, env: ENV });
  }
}

/** Options of {@linkcode processTest}. */
export interface ProcessTestOptions {
  /** Skip the test (e.g. when a tool it needs is missing). */
  ignore?: boolean;
  /** How many last lines of each process a failure shows. */
  reportLines?: number;
}

/**
 * Registers a test that runs `fn` with a fresh {@linkcode Processes}: a
 * failure shows the last output of every process, and every process is
 * stopped at the end, whether the test passed or failed.
 */
export function processTest(
  name: string,
  fn: (procs: Processes) => Promise<void>,
  options: ProcessTestOptions = {},
): void {
  Deno.test({
    name,
    ignore: options.ignore ?? false,
    async fn() {
      const procs = new Processes();
      try {
        await fn(procs);
      } catch (error) {
        if (!(error instanceof Error)) throw error;
        throw new Error(
          `${error.message}\n${procs.report(options.reportLines)}`,
          { cause: error },
        );
      } finally {
        await procs.close();
      }
    },
  });
}

/**
 * A process's resident memory in KiB, from `ps` (reading `/proc` would need
 * `--allow-all`; the test task grants `--allow-run`).
 */
export async function rssKiB(pid: number): Promise<number> {
  const output = await new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const kib = Number(new TextDecoder().decode(output.stdout).trim());
  if (!output.success || !(kib > 0)) {
    throw new Error(`Cannot read the memory of process ${pid} with ps`);
  }
  return kib;
}
