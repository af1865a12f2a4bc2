// The RPCs of aviary.audit.v1.AuditService. Both are admin-only, declared in
// the proto (required_role = ROLE_ADMIN) and enforced by the runtime's auth
// interceptor before these run.
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { AuditService } from "@aviary/gen/aviary/audit/v1/audit_pb";
import type { Database } from "@aviary/runtime/db/database";
import { invalidArgument, unavailable } from "@aviary/runtime/errors";
import { pageSize, type PageTokens } from "@aviary/runtime/pagination";
import { GENESIS_HASH } from "./domain/chain.ts";
import { cursorPayload, parseCursor, presentEntry } from "./domain/present.ts";
import { auditKinds } from "./events/entries.ts";
import { entryAt, entryPage, type EntryFilters } from "./store/entries.ts";
import type { AnchorStore } from "./store/anchors.ts";
import { walkChain } from "./store/verify.ts";

export interface AuditDeps {
  database: Database;
  pageTokens: PageTokens;
  /** Where the chain head is anchored outside the database (VerifyChain compares with the latest). */
  anchors: AnchorStore;
}

/** VerifyChain's slice per call. */
const VERIFY_LIMIT = 10_000;

export function createAuditHandlers(deps: AuditDeps): ServiceImpl<typeof AuditService> {
  const db = deps.database.db;

  return {
    async listAuditEntries(request) {
      const filters: EntryFilters = {
        actorId: request.actorId === "" ? undefined : request.actorId.toLowerCase(),
        subject: request.subject === "" ? undefined : request.subject.toLowerCase(),
        kind: request.kind === "" ? undefined : request.kind,
        since: request.since === undefined ? undefined : timestampDate(request.since),
        until: request.until === undefined ? undefined : timestampDate(request.until),
      };
      if (filters.kind !== undefined && !auditKinds.has(filters.kind)) {
        throw invalidArgument([{ field: "kind", description: "is not an audit entry kind", reason: "UNKNOWN_KIND" }]);
      }
      if (filters.since !== undefined && filters.until !== undefined && filters.since >= filters.until) {
        throw invalidArgument([{ field: "until", description: "must be after since", reason: "TIME_RANGE" }]);
      }
      const key = JSON.stringify([filters.actorId, filters.subject, filters.kind, filters.since?.toISOString(), filters.until?.toISOString()]);
      const after = request.pageToken === "" ? undefined : deps.pageTokens.decode(request.pageToken, parseCursor);
      if (after !== undefined && after.filters !== key) {
        throw invalidArgument([{ field: "page_token", description: "was made for other filters", reason: "INVALID_PAGE_TOKEN" }]);
      }
      const page = await entryPage(db, filters, pageSize(request.pageSize, { default: 50, max: 200 }), after?.beforeSeq);
      return {
        entries: page.rows.map(presentEntry),
        nextPageToken: page.next === undefined ? "" : deps.pageTokens.encode(cursorPayload({ beforeSeq: page.next, filters: key })),
      };
    },

    async verifyChain(request) {
      const afterSeq = Number(request.afterSeq);
      const limit = request.limit === 0 ? VERIFY_LIMIT : Math.min(request.limit, VERIFY_LIMIT);
      const start = afterSeq === 0 ? { seq: 0, hash: GENESIS_HASH } : await entryAt(db, afterSeq);
      if (start === undefined) throw invalidArgument([{ field: "after_seq", description: "is not an entry of the log", reason: "NOT_FOUND" }]);
      const anchor = await deps.anchors.latest().catch(() => {
        // Answering "intact" without the anchor would hide exactly what it is there to show.
        throw unavailable("the chain's anchors cannot be read; try again later");
      });
      const anchorFields = anchor === undefined ? {} : { anchorSeq: BigInt(anchor.seq), anchoredAt: timestampFromDate(anchor.anchoredAt) };
      const walk = await walkChain(db, start, limit, anchor);
      if (!walk.intact) {
        return { intact: false, checked: BigInt(walk.checked), lastSeq: BigInt(walk.firstBadSeq), firstBadSeq: BigInt(walk.firstBadSeq), problem: walk.problem, ...anchorFields };
      }
      // A slice used up: more may follow (the next call finds out).
      return { intact: true, checked: BigInt(walk.checked), lastSeq: BigInt(walk.last.seq), nextAfterSeq: walk.complete ? 0n : BigInt(walk.last.seq), anchorChecked: walk.anchorChecked, ...anchorFields };
    },
  };
}
