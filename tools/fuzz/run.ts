// `make fuzz`: the long Schemathesis run against the whole mesh behind a real
// Envoy (tools/fuzz/schemathesis.ts), every phase including the stateful one
// (sequences along the OpenAPI links). FUZZ_MAX_EXAMPLES (default 200 per
// operation), FUZZ_SECONDS (default 1200: the phases repeat until then),
// FUZZ_SEED (default random; printed) and FUZZ_PHASES change it. Exits 1
// when any check failed.
import { runSchemathesis, startFuzzTarget } from "./schemathesis.ts";

const env = process.env;
const target = await startFuzzTarget();
let exitCode = 1;
try {
  const result = await runSchemathesis(target, {
    maxExamples: Number(env["FUZZ_MAX_EXAMPLES"] ?? 200),
    phases: (env["FUZZ_PHASES"] ?? "examples,coverage,fuzzing,stateful").split(","),
    maxTimeSeconds: Number(env["FUZZ_SECONDS"] ?? 1200),
    ...(env["FUZZ_SEED"] ? { seed: Number(env["FUZZ_SEED"]) } : {}),
  });
  process.stdout.write(result.output);
  console.log(`\nseed ${result.seed} (FUZZ_SEED=${result.seed} reruns it); schemathesis exited ${result.exitCode}`);
  exitCode = result.exitCode === 0 ? 0 : 1;
} finally {
  await target.close();
}
process.exit(exitCode);
