CREATE TABLE "auth"."account_deletions" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"requested_at" timestamp with time zone NOT NULL,
	"purge_at" timestamp with time zone NOT NULL,
	"purged_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "account_deletions_due_idx" ON "auth"."account_deletions" USING btree ("purge_at") WHERE "auth"."account_deletions"."purged_at" is null;