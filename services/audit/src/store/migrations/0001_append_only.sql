-- The log is append-only in the database too: whoever holds the service's
-- credentials (or a bug) cannot change or remove an entry. Only someone who
-- can disable triggers (the table owner or a superuser) gets past this, and
-- then the hash chain shows where (VerifyChain).
CREATE OR REPLACE FUNCTION "audit"."refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit.entries is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "entries_append_only" BEFORE UPDATE OR DELETE ON "audit"."entries" FOR EACH ROW EXECUTE FUNCTION "audit"."refuse_change"();
--> statement-breakpoint
CREATE TRIGGER "entries_no_truncate" BEFORE TRUNCATE ON "audit"."entries" FOR EACH STATEMENT EXECUTE FUNCTION "audit"."refuse_change"();
