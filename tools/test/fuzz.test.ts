// The bounded API fuzz run of `make test` (the long one is `make fuzz`):
// Schemathesis against gen/openapi.json through a real Envoy in front of the
// whole mesh, authenticated, every operation (tools/fuzz/schemathesis.ts):
// no 5xx, every response (status, content type, headers, body) as the
// document says, stateful sequences along the document's links. A random
// seed each run, printed with the report when anything fails (FUZZ_SEED=…
// reruns it).
import test from "ava";
import { runSchemathesis, startFuzzTarget, type FuzzTarget } from "../fuzz/schemathesis.ts";

let target: FuzzTarget | undefined;

test.before(async () => {
  target = await startFuzzTarget();
});

test.after.always(async () => {
  await target?.close();
});

test("Schemathesis finds no server error and no response off the OpenAPI document", async (t) => {
  t.timeout(8 * 60_000);
  if (!target) throw new Error("the fuzz target did not start");
  const seed = process.env["FUZZ_SEED"];
  const result = await runSchemathesis(target, {
    // Per operation and phase. The coverage phase (every boundary of every
    // field, ~3,400 cases for 93 operations, most of the run's time whatever
    // the cap) is left to `make fuzz`; the bounded run keeps the explicit
    // examples, random fuzzing and the stateful link sequences.
    maxExamples: 5,
    phases: ["examples", "fuzzing", "stateful"],
    ...(seed ? { seed: Number(seed) } : {}),
  });
  // Ran at all: the summary names the operations it tested.
  t.regex(result.output, /Tested: \d+/);
  t.log(`seed ${result.seed}\n${result.output.slice(result.output.lastIndexOf("SUMMARY"))}`);
  t.is(result.exitCode, 0, `seed ${result.seed} (FUZZ_SEED=${result.seed} reruns it)\n${result.output}\n${result.command}`);
});
