CREATE TABLE "notification"."suspended_users" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"suspended" boolean NOT NULL,
	"changed_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "notification"."notifications" ADD COLUMN "hidden_by_suspension" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "notifications_hidden_actor_idx" ON "notification"."notifications" USING btree ("actor_id") WHERE "notification"."notifications"."hidden_by_suspension";