import { sql } from "drizzle-orm";
import { bigint, index, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

/** Everything the media service stores lives in its own schema. */
export const media = pgSchema("media");

/**
 * One uploaded (or announced) file. A row starts `pending` with what the
 * client declared; ConfirmUpload checks the stored object and makes it `ready`
 * with what was actually found. Pending rows past `expires_at` are swept
 * together with their objects.
 */
export const mediaItems = media.table(
  "media_items",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id").notNull(),
    /** "avatar" | "post". */
    purpose: text("purpose").notNull(),
    /** "pending" | "ready". */
    status: text("status").notNull().default("pending"),
    objectKey: text("object_key").notNull(),
    declaredContentType: text("declared_content_type").notNull(),
    declaredSizeBytes: bigint("declared_size_bytes", { mode: "number" }).notNull(),
    /** Set when ready: the type sniffed from the bytes and the stored size. */
    contentType: text("content_type"),
    sizeBytes: bigint("size_bytes", { mode: "number" }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    /** Pending only: after this the upload can no longer be confirmed and is swept. */
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    confirmedAt: timestamp("confirmed_at", { withTimezone: true }),
  },
  (t) => [
    uniqueIndex("media_items_object_key_key").on(t.objectKey),
    index("media_items_owner_idx").on(t.ownerId, t.createdAt.desc()),
    // The sweeper's scan: pending rows by expiry.
    index("media_items_pending_expiry_idx").on(t.expiresAt).where(sql`${t.status} = 'pending'`),
  ],
);
