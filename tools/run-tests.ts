// Runs the ava suites and ends the output with the one line CI reads:
// "N passed, N failed". ava's TAP reporter gives exact counts to parse;
// a crashed run (non-zero exit with no failure counted) counts as one failure,
// so a broken suite can never read as green.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const avaCli = fileURLToPath(new URL("../node_modules/ava/entrypoints/cli.mjs", import.meta.url));

const child = spawn(process.execPath, [avaCli, "--tap", ...process.argv.slice(2)], { stdio: ["ignore", "pipe", "inherit"] });
let tail = "";
child.stdout.on("data", (chunk: Buffer) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString("utf8")).slice(-4096);
});
child.on("close", (code) => {
  const count = (label: string) => Number(new RegExp(`^# ${label} (\\d+)$`, "m").exec(tail)?.[1] ?? 0);
  const passed = count("pass");
  let failed = count("fail");
  if (code !== 0 && failed === 0) failed = 1;
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  process.exit(code ?? 1);
});
