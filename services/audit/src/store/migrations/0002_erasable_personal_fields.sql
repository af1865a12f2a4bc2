ALTER TABLE "audit"."entries" ALTER COLUMN "subject" DROP NOT NULL;--> statement-breakpoint
-- Entries recorded so far keep the cleartext rule (version 1): their hashes
-- are not recomputed, so the chain they form stays the one that was
-- verified. New entries are appended as version 2 (digests).
ALTER TABLE "audit"."entries" ADD COLUMN "chain_version" smallint DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "audit"."entries" ALTER COLUMN "chain_version" DROP DEFAULT;--> statement-breakpoint
ALTER TABLE "audit"."entries" ADD COLUMN "actor_salt" text;--> statement-breakpoint
ALTER TABLE "audit"."entries" ADD COLUMN "actor_digest" text;--> statement-breakpoint
ALTER TABLE "audit"."entries" ADD COLUMN "subject_salt" text;--> statement-breakpoint
ALTER TABLE "audit"."entries" ADD COLUMN "subject_digest" text;--> statement-breakpoint
ALTER TABLE "audit"."entries" ADD COLUMN "details_salts" jsonb;--> statement-breakpoint
ALTER TABLE "audit"."entries" ADD COLUMN "details_digests" jsonb;--> statement-breakpoint
ALTER TABLE "audit"."entries" ADD COLUMN "erased_at" timestamp with time zone;;--> statement-breakpoint
-- Still append-only, with one exception: an erasure (store/erasure.ts). It
-- must say so (the transaction-local setting audit.erasure = 'on', so a
-- stray UPDATE is refused as before), and it may only take personal data
-- out: a field's cleartext and its salt become null together, details keys
-- leave `details` and `details_salts` together, `erased_at` is set, and
-- every other column (seq, time, kind, digests, hashes…) stays as it was.
-- So even a caller who sets the flag cannot change what an entry says,
-- only forget who it was about; VerifyChain accepts exactly that.
CREATE OR REPLACE FUNCTION "audit"."refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  personal constant text[] := ARRAY['actor_id', 'actor_salt', 'subject', 'subject_salt', 'details', 'details_salts', 'erased_at'];
BEGIN
  IF TG_OP = 'UPDATE'
     AND current_setting('audit.erasure', true) = 'on'
     AND (to_jsonb(NEW) - personal) = (to_jsonb(OLD) - personal)
     AND ((NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id AND NEW.actor_salt IS NOT DISTINCT FROM OLD.actor_salt) OR (NEW.actor_id IS NULL AND NEW.actor_salt IS NULL))
     AND ((NEW.subject IS NOT DISTINCT FROM OLD.subject AND NEW.subject_salt IS NOT DISTINCT FROM OLD.subject_salt) OR (NEW.subject IS NULL AND NEW.subject_salt IS NULL))
     AND NEW.details <@ OLD.details
     AND ((OLD.details_salts IS NULL AND NEW.details_salts IS NULL)
          OR (NEW.details_salts <@ OLD.details_salts
              AND ARRAY(SELECT jsonb_object_keys(NEW.details) ORDER BY 1) = ARRAY(SELECT jsonb_object_keys(NEW.details_salts) ORDER BY 1)))
     AND NEW.erased_at IS NOT NULL
     AND (OLD.erased_at IS NULL OR NEW.erased_at = OLD.erased_at)
  THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit.entries is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
