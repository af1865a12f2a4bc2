// The disk adapter lives in the runtime (services/runtime/src/blob/disk.ts), shared with data exports.
export { DISK_OBJECT_PATH, DISK_UPLOAD_PATH, openDiskStorage, type DiskStorage, type DiskStorageOptions } from "@aviary/runtime/blob/disk";
