// `make rest-contract BASE_URL=http://edge:8080` — the REST contract table
// against any running edge. Rows needing the issuer's private key (an expired
// but genuinely signed token) are skipped here; the runner test covers them.
import { newRestContext, runRestCases } from "./rest-runner.ts";

const baseUrl = process.argv[2] ?? process.env["BASE_URL"];
if (!baseUrl) {
  console.error("usage: node tools/edge/run-rest-contract.ts BASE_URL (or BASE_URL=…)");
  process.exit(2);
}
const results = await runRestCases(baseUrl, await newRestContext(baseUrl));
for (const r of results) {
  console.log(`${r.outcome === "passed" ? "ok  " : r.outcome === "skipped" ? "skip" : "FAIL"} ${r.name}`);
  for (const problem of r.outcome === "failed" ? r.problems : []) console.log(`       ${problem}`);
}
const count = (outcome: string) => results.filter((r) => r.outcome === outcome).length;
console.log(`\n${count("passed")} passed, ${count("failed")} failed, ${count("skipped")} skipped`);
process.exit(count("failed") > 0 ? 1 : 0);
