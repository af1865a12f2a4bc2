// The exporter role: reads DataExportRequested from the export topic and
// builds the archive. Building is idempotent, so at-least-once delivery is
// enough: the archive's key is fixed by the export (exports/<user>/<export>.zip),
// so a build started again after a crash or a redelivery overwrites the same
// object (never a second archive), and only a `building` row becomes
// `ready`, so a finished export is not built again.
//
// Failures: a peer or store that is unreachable is retried by the bus for as
// long as it lasts (bus/failures.ts); anything else is retried up to
// AUTH_EXPORT_MAX_ATTEMPTS and then the export is FAILED with the reason, so
// the owner can ask again (a parked event would leave it BUILDING for ever).
import { toJson, type DescMessage, type JsonObject, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { ExportUserDataResponseSchema } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { ExportUserPostsResponseSchema } from "@aviary/gen/aviary/post/v1/post_internal_pb";
import { MediaSchema } from "@aviary/gen/aviary/media/v1/media_pb";
import { ExportUserMessagesResponseSchema } from "@aviary/gen/aviary/chat/v1/chat_internal_pb";
import { ExportUserNotificationsResponseSchema } from "@aviary/gen/aviary/notification/v1/notification_internal_pb";
import { ExportUserReportsResponseSchema } from "@aviary/gen/aviary/moderation/v1/moderation_internal_pb";
import { DataExportRequestedSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import type { BlobStorage } from "@aviary/runtime/blob/storage";
import type { DeliveredEvent, EventBus, Subscription } from "@aviary/runtime/bus/bus";
import { classifyFailure } from "@aviary/runtime/bus/failures";
import type { Database } from "@aviary/runtime/db/database";
import { keysetRows } from "@aviary/runtime/export";
import type { Logger } from "@aviary/runtime/log";
import { decodedEvent, eventUuid } from "@aviary/runtime/outbox/fields";
import { findUserById } from "../store/accounts.ts";
import { deleteExports, exportsOfUser, markFailed, markReady, sessionsPage, startBuilding, type DataExportRow } from "../store/data-exports.ts";
import type { SessionRow } from "../store/sessions.ts";
import { jsonFile, mediaFileName, zipArchive, type ArchiveFile } from "./archive.ts";
import type { ExportPeers } from "./peers.ts";

/** The default consumer group of the exporter role (AUTH_EXPORTER_GROUP). */
export const exporterGroup = "auth-data-exporter";

export interface ExporterDeps {
  database: Database;
  bus: EventBus;
  storage: BlobStorage;
  peers: ExportPeers;
  topic: string;
  groupId: string;
  /** How long a ready archive can be downloaded (AUTH_EXPORT_TTL). */
  ttlMs: number;
  maxAttempts: number;
  /** Deadline of each call to a peer and of each media download. */
  callTimeoutMs: number;
  logger: Logger;
  now?: () => Date;
  /**
   * Test seam: runs after the archive is stored and before the export is
   * marked ready (where a crash hurts most), with the signal of the exporter
   * stopping.
   */
  afterUpload?: (exportId: string, stopping: AbortSignal) => Promise<void>;
}

/** The object key of an export's archive: fixed per export, so a rebuild replaces it. */
export function archiveKeyFor(userId: string, exportId: string): string {
  return `exports/${userId}/${exportId}.zip`;
}

export async function startExporter(deps: ExporterDeps): Promise<Subscription> {
  // Stopping makes an in-flight build give up before it marks anything, so
  // the event stays uncommitted and the next exporter builds it again.
  const stopping = new AbortController();
  const subscription = await deps.bus.subscribe({
    groupId: deps.groupId,
    topics: [deps.topic],
    maxAttempts: deps.maxAttempts,
    handle: (event) => handleRequest(deps, event, stopping.signal),
  });
  return {
    async stop() {
      stopping.abort();
      await subscription.stop();
    },
  };
}

async function handleRequest(deps: ExporterDeps, event: DeliveredEvent, stopping: AbortSignal): Promise<void> {
  const { id, message } = decodedEvent(DataExportRequestedSchema, event);
  const exportId = eventUuid(message.exportId, "export_id", id);
  const now = deps.now ?? (() => new Date());
  const row = await startBuilding(deps.database.db, exportId, now());
  if (row === undefined) return; // Finished (or never existed): nothing to build.
  const log = { exportId, attempt: event.attempt };
  try {
    const archive = await zipArchive(await collectFiles(deps, row, stopping), now());
    if (stopping.aborted) throw new Error("the exporter is stopping");
    const objectKey = archiveKeyFor(row.userId, row.id);
    await deps.storage.put(objectKey, archive, "application/zip");
    await deps.afterUpload?.(row.id, stopping);
    if (stopping.aborted) throw new Error("the exporter is stopping");
    const readyAt = now();
    if (!(await markReady(deps.database.db, row.id, { objectKey, sizeBytes: archive.length, readyAt, expiresAt: new Date(readyAt.getTime() + deps.ttlMs) }))) {
      // The export went away meanwhile (its account was purged): so does its archive.
      await deps.storage.delete(objectKey);
      return;
    }
    deps.logger.info({ ...log, sizeBytes: archive.length }, "data export ready");
  } catch (error) {
    const retried = stopping.aborted || classifyFailure(error) === "infrastructure" || event.attempt < deps.maxAttempts;
    if (retried) throw error;
    deps.logger.warn({ ...log, err: error }, "data export failed");
    await markFailed(deps.database.db, row.id, "the export could not be built; please ask for a new one");
  }
}

/** Every file of the archive: one JSON document per service, then the media files. */
async function collectFiles(deps: ExporterDeps, row: DataExportRow, stopping: AbortSignal): Promise<ArchiveFile[]> {
  const call = () => ({ signal: stopping, timeoutMs: deps.callTimeoutMs });
  const userId = row.userId;
  const [account, user, posts, chat, notifications, moderation, media] = await Promise.all([
    accountDocument(deps.database, userId),
    groupedItems(ExportUserDataResponseSchema, deps.peers.user.exportUserData({ userId }, call())),
    groupedItems(ExportUserPostsResponseSchema, deps.peers.post.exportUserPosts({ userId }, call())),
    groupedItems(ExportUserMessagesResponseSchema, deps.peers.chat.exportUserMessages({ userId }, call())),
    groupedItems(ExportUserNotificationsResponseSchema, deps.peers.notification.exportUserNotifications({ userId }, call())),
    groupedItems(ExportUserReportsResponseSchema, deps.peers.moderation.exportUserReports({ userId }, call())),
    collectMedia(deps.peers.media.exportUserMedia({ userId }, call())),
  ]);
  const files: ArchiveFile[] = [
    jsonFile("account.json", { ...account, exportId: row.id, requestedAt: row.requestedAt.toISOString() }),
    jsonFile("user.json", { profile: user["profile"]?.[0] ?? null, following: user["following"] ?? [], followers: user["follower"] ?? [], blocked: user["blocked"] ?? [], devices: user["device"] ?? [] }),
    jsonFile("posts.json", { posts: posts["post"] ?? [], comments: posts["comment"] ?? [], likes: posts["like"] ?? [] }),
    jsonFile("chat.json", { messages: chat["message"] ?? [] }),
    jsonFile("notifications.json", { settings: notifications["settings"]?.[0] ?? null, notifications: notifications["notification"] ?? [] }),
    jsonFile("moderation.json", { reports: moderation["report"] ?? [], suspension: moderation["suspension"]?.[0] ?? null }),
    jsonFile(
      "media.json",
      // The read URL is for the exporter only (it expires long before anyone opens the archive); the file is inside.
      media.map(({ url: _url, urlExpiresAt: _expiresAt, ...item }) => ({ ...toJson(MediaSchema, { ...item, $typeName: MediaSchema.typeName, url: "" }) as JsonObject, file: mediaFileName(item.mediaId, item.contentType) })),
    ),
  ];
  // One file at a time: a user's uploads are the bulk of an export, so they are not all fetched at once.
  for (const item of media) {
    if (stopping.aborted) throw new Error("the exporter is stopping");
    const response = await fetch(item.url, { signal: AbortSignal.any([stopping, AbortSignal.timeout(deps.callTimeoutMs)]) });
    if (!response.ok) throw new Error(`media ${item.mediaId} could not be read (HTTP ${response.status})`);
    files.push({ name: mediaFileName(item.mediaId, item.contentType), data: new Uint8Array(await response.arrayBuffer()) });
  }
  return files;
}

/** The items of an export stream whose messages each hold one oneof member, as JSON, by member name. */
async function groupedItems<Desc extends DescMessage>(schema: Desc, stream: AsyncIterable<MessageShape<Desc>>): Promise<Record<string, JsonValue[]>> {
  const groups: Record<string, JsonValue[]> = {};
  for await (const message of stream) {
    for (const [kind, value] of Object.entries(toJson(schema, message) as JsonObject)) (groups[kind] ??= []).push(value);
  }
  return groups;
}

async function collectMedia(stream: AsyncIterable<{ media?: MessageShape<typeof MediaSchema> }>): Promise<Array<MessageShape<typeof MediaSchema>>> {
  const items: Array<MessageShape<typeof MediaSchema>> = [];
  for await (const message of stream) if (message.media !== undefined) items.push(message.media);
  return items;
}

/** The auth service's own share: the account's identities and every session's metadata (never a secret or hash). */
async function accountDocument(database: Database, userId: string): Promise<JsonObject> {
  const user = await findUserById(database.db, userId);
  const sessions: JsonObject[] = [];
  for await (const session of keysetRows<SessionRow>((after, limit) => sessionsPage(database.db, userId, after, limit))) {
    sessions.push({
      sessionId: session.id,
      deviceName: session.deviceName,
      ipAddress: session.ipAddress,
      userAgent: session.userAgent,
      createdAt: session.createdAt.toISOString(),
      lastUsedAt: session.lastUsedAt.toISOString(),
      expiresAt: session.expiresAt.toISOString(),
      revokedAt: session.revokedAt?.toISOString() ?? null,
      revokedReason: session.revokedReason,
    });
  }
  const time = (at: Date | null | undefined) => (at ? at.toISOString() : null);
  return {
    account: user
      ? {
          userId: user.id,
          email: user.email,
          emailVerifiedAt: time(user.emailVerifiedAt),
          phone: user.phone,
          phoneVerifiedAt: time(user.phoneVerifiedAt),
          createdAt: time(user.createdAt),
          passwordChangedAt: time(user.passwordChangedAt),
        }
      : null,
    sessions,
  };
}

/**
 * An account's purge (AccountDeleted): its archives, then its export rows
 * (objects first, so a failed delete is retried with the event). A build
 * still running for it finds its row gone and deletes what it stored.
 */
export async function purgeUserExports(database: Database, storage: BlobStorage, userId: string): Promise<void> {
  const rows = await exportsOfUser(database.db, userId);
  for (const row of rows) await storage.delete(row.objectKey ?? archiveKeyFor(row.userId, row.id));
  await deleteExports(database.db, rows.map((row) => row.id));
}
