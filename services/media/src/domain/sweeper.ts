// The sweeper lives in the runtime (services/runtime/src/blob/sweeper.ts), shared with data exports.
export { startSweeper, type Sweeper, type SweeperDeps } from "@aviary/runtime/blob/sweeper";
