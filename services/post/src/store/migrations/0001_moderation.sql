CREATE TABLE "posts"."moderated_content" (
	"target_kind" text NOT NULL,
	"target_id" uuid NOT NULL,
	"removed" boolean NOT NULL,
	"reason" text NOT NULL,
	"changed_at" timestamp with time zone NOT NULL,
	CONSTRAINT "moderated_content_target_kind_target_id_pk" PRIMARY KEY("target_kind","target_id")
);
--> statement-breakpoint
CREATE TABLE "posts"."moderated_users" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"suspended" boolean NOT NULL,
	"changed_at" timestamp with time zone NOT NULL
);
