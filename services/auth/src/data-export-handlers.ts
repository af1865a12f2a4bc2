// DataExportService: the owner asks for a copy of their data and reads how
// it is going. The request is a row plus an outbox event in one transaction;
// the exporter role builds the archive (export/worker.ts). Only the owner
// sees an export: anyone else's id is NOT_FOUND, like one that never existed.
import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DataExportService, DataExportState, type DataExportSchema } from "@aviary/gen/aviary/auth/v1/data_export_pb";
import type { BlobStorage } from "@aviary/runtime/blob/storage";
import type { Database } from "@aviary/runtime/db/database";
import { requirePrincipal } from "@aviary/runtime/context";
import { notFound, resourceExhausted } from "@aviary/runtime/errors";
import { pageSize, type PageTokens } from "@aviary/runtime/pagination";
import { findDataExport, inProgressExport, insertDataExport, lastCountedRequest, listDataExports, type DataExportCursor, type DataExportRow } from "./store/data-exports.ts";
import { requestDataExportBuild } from "./events/data-export.ts";

export interface DataExportDeps {
  database: Database;
  /** Where archives are kept; download URLs are presigned reads of it. */
  storage: BlobStorage;
  pageTokens: PageTokens;
  settings: {
    /** The exporter's topic (AUTH_EXPORT_TOPIC). */
    topic: string;
    /** How long after a request (one that did not fail) a new one is refused (AUTH_EXPORT_COOLDOWN). */
    cooldownMs: number;
  };
  now?: () => Date;
}

const states: Record<string, DataExportState> = {
  pending: DataExportState.PENDING,
  building: DataExportState.BUILDING,
  ready: DataExportState.READY,
  failed: DataExportState.FAILED,
  expired: DataExportState.EXPIRED,
};

export function createDataExportHandlers(deps: DataExportDeps): ServiceImpl<typeof DataExportService> {
  const now = deps.now ?? (() => new Date());
  const { db } = deps.database;

  /** The export as its owner sees it; a ready one past its expiry (not swept yet) is already EXPIRED, without a link. */
  async function present(row: DataExportRow): Promise<MessageInitShape<typeof DataExportSchema>> {
    const at = now();
    const downloadable = row.state === "ready" && row.objectKey !== null && row.expiresAt !== null && row.expiresAt > at;
    const state = row.state === "ready" && !downloadable ? DataExportState.EXPIRED : (states[row.state] ?? DataExportState.UNSPECIFIED);
    return {
      exportId: row.id,
      state,
      requestedAt: timestampFromDate(row.requestedAt),
      ...(row.readyAt ? { readyAt: timestampFromDate(row.readyAt) } : {}),
      ...(row.expiresAt ? { expiresAt: timestampFromDate(row.expiresAt) } : {}),
      // Signed per read and valid exactly until the archive's expiry, so a link never outlives the archive.
      downloadUrl: downloadable ? await deps.storage.readUrl(row.objectKey!, row.expiresAt!) : "",
      sizeBytes: downloadable ? BigInt(row.sizeBytes ?? 0) : 0n,
      failureReason: row.state === "failed" ? (row.failureReason ?? "") : "",
    };
  }

  return {
    async requestDataExport(_request, context) {
      const { userId } = requirePrincipal(context);
      const requestedAt = now();
      const outcome = await db.transaction(async (tx) => {
        // One at a time: asking again while one is being made answers that one.
        const running = await inProgressExport(tx, userId);
        if (running !== undefined) return { row: running, created: false };
        const last = await lastCountedRequest(tx, userId);
        const waitMs = last === undefined ? 0 : last.getTime() + deps.settings.cooldownMs - requestedAt.getTime();
        if (waitMs > 0) throw resourceExhausted("a data export was made recently; ask again later", waitMs / 1000);
        const id = crypto.randomUUID();
        if (!(await insertDataExport(tx, { id, userId, requestedAt }))) return undefined;
        await requestDataExportBuild(tx, deps.settings.topic, { exportId: id, userId, requestedAt });
        return { row: (await findDataExport(tx, id))!, created: true };
      });
      // A concurrent request inserted first (the unique index said no): answer that one.
      const answer = outcome ?? { row: (await inProgressExport(db, userId))!, created: false };
      return { export: await present(answer.row), created: answer.created };
    },

    async getDataExport(request, context) {
      const { userId } = requirePrincipal(context);
      const row = await findDataExport(db, request.exportId.toLowerCase());
      if (row === undefined || row.userId !== userId) throw notFound("no such data export", { type: "aviary.auth.v1.DataExport", name: request.exportId });
      return { export: await present(row) };
    },

    async listDataExports(request, context) {
      const { userId } = requirePrincipal(context);
      const limit = pageSize(request.pageSize, { default: 20, max: 50 });
      const after = request.pageToken === "" ? undefined : deps.pageTokens.decode(request.pageToken, parseCursor);
      const rows = await listDataExports(db, userId, limit + 1, after);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        exports: await Promise.all(page.map(present)),
        nextPageToken: rows.length > limit && last !== undefined ? deps.pageTokens.encode({ requestedAt: last.requestedAt.toISOString(), id: last.id } satisfies DataExportCursor) : "",
      };
    },
  };
}

function parseCursor(value: unknown): DataExportCursor {
  const cursor = value as Partial<DataExportCursor> | null;
  if (typeof cursor?.requestedAt !== "string" || typeof cursor.id !== "string" || Number.isNaN(Date.parse(cursor.requestedAt))) throw new Error("bad cursor");
  return { requestedAt: cursor.requestedAt, id: cursor.id };
}
