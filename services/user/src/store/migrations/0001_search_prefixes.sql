CREATE TABLE "users"."profile_name_tails" (
	"user_id" uuid NOT NULL,
	"tail" text NOT NULL,
	CONSTRAINT "profile_name_tails_user_id_tail_pk" PRIMARY KEY("user_id","tail")
);
--> statement-breakpoint
CREATE INDEX "profile_name_tails_prefix_idx" ON "users"."profile_name_tails" USING btree ("tail" text_pattern_ops);--> statement-breakpoint
CREATE INDEX "profiles_username_prefix_idx" ON "users"."profiles" USING btree ("username_key" text_pattern_ops);--> statement-breakpoint
-- Backfill: the tails of every existing display name (the same rule as store/profiles.ts replaceNameTails).
INSERT INTO "users"."profile_name_tails" ("user_id", "tail")
SELECT DISTINCT p."user_id", substr(n.name, i + 1)
FROM "users"."profiles" p
CROSS JOIN LATERAL (SELECT lower(p."display_name") AS name) n
CROSS JOIN LATERAL generate_series(1, length(n.name) - 1) i
WHERE substr(n.name, i, 1) = ' ' AND substr(n.name, i + 1, 1) <> ' '
ON CONFLICT DO NOTHING;
