/**
 * The command the user actually runs, for help texts and error messages:
 * `simp daemon …` from a compiled `simp` binary, `deno task daemon …` from
 * the source tree (the README's way), `deno run -A mod.ts daemon …` when
 * `mod.ts` was run directly. {@linkcode localiseCommands} rewrites the
 * `simp daemon`, `simp client` and `simp --help` written in texts.
 *
 * How it is told apart: a compiled binary's `Deno.execPath()` is the binary
 * itself (not `deno`); `deno task` sets `INIT_CWD` in the environment of
 * what it runs (as `npm run` does). Both are read once, by
 * {@linkcode currentInvocation}; the rest is pure.
 *
 * @module
 */

/** The commands to show, one per entry point. */
export interface Invocation {
  /** The top-level command (`simp`, `deno task simp`). */
  simp: string;
  /** Runs a daemon (`simp daemon`, `deno task daemon`). */
  daemon: string;
  /** Runs a client (`simp client`, `deno task client`). */
  client: string;
}

/** What {@linkcode invocationFor} looks at. */
export interface RunFacts {
  /** `Deno.execPath()`: the deno binary, or a compiled program. */
  execPath: string;
  /** Whether `deno task` started the program (`INIT_CWD` is set). */
  inTask: boolean;
}

/** The invocation of the compiled `simp`, as the help texts are written. */
export const COMPILED: Readonly<Invocation> = Object.freeze({
  simp: "simp",
  daemon: "simp daemon",
  client: "simp client",
});

/**
 * The commands to show for a program run as `facts` say.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { invocationFor } from "./invocation.ts";
 * const run = invocationFor({ execPath: "/usr/bin/deno", inTask: true });
 * strictEqual(run.daemon, "deno task daemon");
 * ```
 */
export function invocationFor(facts: RunFacts): Invocation {
  const binary = facts.execPath.split(/[\\/]/).pop() ?? "";
  const name = binary.replace(/\.exe$/i, "");
  if (name !== "deno") {
    const program = name === "" ? "simp" : name;
    return {
      simp: program,
      daemon: `${program} daemon`,
      client: `${program} client`,
    };
  }
  if (facts.inTask) {
    return {
      simp: "deno task simp",
      daemon: "deno task daemon",
      client: "deno task client",
    };
  }
  return {
    simp: "deno run -A mod.ts",
    daemon: "deno run -A mod.ts daemon",
    client: "deno run -A mod.ts client",
  };
}

/**
 * Whether `deno task` started this process: it sets `INIT_CWD` (not empty)
 * in the environment of what it runs. Without permission to read the
 * environment, `true` (the README's way): the permission is queried, not
 * requested, so that a program run without `--allow-env` on a terminal
 * (`deno task relay`, a script importing `mod.ts`) is not stopped by a prompt.
 */
export function underDenoTask(): boolean {
  try {
    const env = { name: "env", variable: "INIT_CWD" } as const;
    if (Deno.permissions.querySync(env).state !== "granted") return true;
    return (Deno.env.get("INIT_CWD") ?? "") !== "";
  } catch {
    return true;
  }
}

/** The invocation of this process (see the module documentation). */
export function currentInvocation(): Invocation {
  return invocationFor({ execPath: Deno.execPath(), inTask: underDenoTask() });
}

/**
 * `text` with the commands written as the compiled `simp` runs them
 * (`simp daemon`, `simp client`, `simp ladder`, `simp --help`,
 * `simp --version`)
 * rewritten for `invocation`. Words such as "simp:" at the start of a
 * message are left alone, and so is "simp relay", which texts name as a
 * program ("the log of simp relay").
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { localiseCommands } from "./invocation.ts";
 * const run = { simp: "deno task simp", daemon: "deno task daemon", client: "deno task client" };
 * strictEqual(
 *   localiseCommands("is `simp daemon 127.0.0.2` running?", run),
 *   "is `deno task daemon 127.0.0.2` running?",
 * );
 * ```
 */
export function localiseCommands(text: string, invocation: Invocation): string {
  return text.replace(
    /\bsimp (daemon|client|ladder|--help|--version)\b/g,
    (_, word: string) =>
      word === "daemon"
        ? invocation.daemon
        : word === "client"
        ? invocation.client
        : `${invocation.simp} ${word}`,
  );
}
