/**
 * `deno task compile`: builds the standalone `dist/simp` executable from
 * `mod.ts` with `deno compile`.
 *
 * `deno compile` needs the `denort` runtime of the running Deno version. It
 * downloads it from Deno's download server unless the environment variable
 * `DENORT_BIN` names a local `denort` binary (the environment is passed
 * through unchanged). Offline, without `DENORT_BIN`, compiling fails: this
 * script then says why and how to fix it, and exits non-zero. It never
 * produces a stand-in binary.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("../", import.meta.url);
const OUTPUT = "dist/simp";

/** The flags the compiled `simp` runs with: what the daemon and client use. */
const PERMISSIONS = [
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-sys=networkInterfaces",
  "--unstable-net",
  // simp conformance: --driver CMD runs a program, --json FILE writes one.
  "--allow-run",
  "--allow-write",
];

/** Runs `deno compile` and resolves to the exit code for this task. */
async function compile(): Promise<number> {
  const denort = Deno.env.get("DENORT_BIN");
  if (denort !== undefined && !(await isFile(denort))) {
    console.error(
      `compile: DENORT_BIN is set to ${denort}, which is not a file; point it at a denort binary of Deno ${Deno.version.deno} or unset it`,
    );
    return 1;
  }
  await Deno.mkdir(new URL("dist/", ROOT), { recursive: true });
  const args = ["compile", ...PERMISSIONS, "--output", OUTPUT, "mod.ts"];
  console.error(`compile: deno ${args.join(" ")}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code === 0) return await verify(denort);
  const version = Deno.version.deno;
  console.error(
    denort === undefined
      ? [
        `compile: deno compile failed (exit code ${code})`,
        `deno compile needs the denort runtime of Deno ${version} and downloads it from Deno's download server, which is unreachable without internet access (as on this project's machines)`,
        `To compile offline, set DENORT_BIN=/path/to/denort (the denort binary of Deno ${version} for this platform) and run deno task compile again`,
      ].join("\n")
      : [
        `compile: deno compile failed (exit code ${code}) with DENORT_BIN=${denort}`,
        `Check that it is the denort binary of Deno ${version} for this platform, and read the error above`,
      ].join("\n"),
  );
  return code;
}

/**
 * Runs the new binary's `--version`: a `DENORT_BIN` that is not a real denort
 * gives a file that does not run, which must not be left behind as if built.
 */
async function verify(denort: string | undefined): Promise<number> {
  const binary = new URL(OUTPUT, ROOT);
  const expected = `simp ${denoJson.version}`;
  let actual: string;
  try {
    const { stdout } = await new Deno.Command(binary, {
      args: ["--version"],
      stdin: "null",
      stderr: "null",
    }).output();
    actual = new TextDecoder().decode(stdout).trim().split("\n")[0];
  } catch (error) {
    actual = error instanceof Error ? error.message : String(error);
  }
  if (actual === expected) {
    console.error(`compile: built ${OUTPUT} (${expected})`);
    return 0;
  }
  await Deno.remove(binary).catch(() => {});
  console.error(
    `compile: removed ${OUTPUT}: it printed ${
      JSON.stringify(actual)
    } for --version instead of ${JSON.stringify(expected)}`,
  );
  console.error(
    denort === undefined
      ? "Report this: deno compile produced a binary that does not run"
      : `Check that DENORT_BIN=${denort} is the denort binary of Deno ${Deno.version.deno} for this platform`,
  );
  return 1;
}

/** Whether `path` names an existing regular file. */
async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  Deno.exit(await compile());
}
