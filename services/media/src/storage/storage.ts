// The storage port moved to the runtime (services/runtime/src/blob) when the
// auth service's data exports started keeping archives too; this module keeps
// the media service's imports short.
export type * from "@aviary/runtime/blob/storage";
