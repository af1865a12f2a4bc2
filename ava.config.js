// One ava config for the whole repo. Node 24 strips TypeScript types itself,
// so tests run from source with no build step.
export default {
  files: ["services/*/test/**/*.test.ts", "tools/test/**/*.test.ts"],
  extensions: { ts: "module" },
  nodeArguments: ["--disable-warning=ExperimentalWarning", "--disable-warning=TimeoutNegativeWarning"],
  // Integration suites share one Postgres, Redis and Kafka; 2 cores.
  concurrency: 2,
  timeout: "120s",
  workerThreads: false,
};
