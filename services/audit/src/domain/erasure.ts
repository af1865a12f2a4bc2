// What erasing a deleted account takes out of one entry. The entry stays (a
// security event about the account, its deletion included, is still a
// fact), but every field of it that names the account, or is the account's
// own data, loses its cleartext and its salt. The digests stay, so the
// chain still verifies (domain/chain.ts).
import type { ChainedEntry } from "./chain.ts";

/**
 * Details that are the account's own data whenever the entry is by or about
 * it (where it signed in from, with what, which session), whatever their
 * value: erased with the account's id.
 */
export const accountDetailKeys: ReadonlySet<string> = new Set(["ip_address", "device_name", "user_agent", "session_id"]);

/** The fields an erasure leaves (undefined: erased), or undefined when the entry does not name the account. */
export interface ErasedFields {
  readonly actorId: string | undefined;
  readonly actorSalt: string | undefined;
  readonly subject: string | undefined;
  readonly subjectSalt: string | undefined;
  readonly details: Record<string, string>;
  readonly detailsSalts: Record<string, string> | undefined;
}

export function erasureOf(entry: ChainedEntry, userId: string): ErasedFields | undefined {
  const id = userId.toLowerCase();
  const names = (value: string | undefined) => value !== undefined && value.toLowerCase().includes(id);
  const byActor = names(entry.actorId);
  const aboutSubject = names(entry.subject);
  const erasedKeys = Object.entries(entry.details)
    .filter(([key, value]) => names(value) || ((byActor || aboutSubject) && accountDetailKeys.has(key)))
    .map(([key]) => key);
  if (!byActor && !aboutSubject && erasedKeys.length === 0) return undefined;
  const without = (values: Readonly<Record<string, string>>) => Object.fromEntries(Object.entries(values).filter(([key]) => !erasedKeys.includes(key)));
  return {
    actorId: byActor ? undefined : entry.actorId,
    actorSalt: byActor ? undefined : entry.actorSalt,
    subject: aboutSubject ? undefined : entry.subject,
    subjectSalt: aboutSubject ? undefined : entry.subjectSalt,
    details: without(entry.details),
    detailsSalts: entry.detailsSalts === undefined ? undefined : without(entry.detailsSalts),
  };
}
