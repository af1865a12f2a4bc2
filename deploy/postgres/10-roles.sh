#!/bin/sh
# One database, one schema per service, each service its own role limited to
# its schema. The schema is created here, owned by the role; the role also
# gets CREATE on the database only because PostgreSQL checks that privilege
# before `CREATE SCHEMA IF NOT EXISTS` (the first auth migration) sees the
# schema exists. No role has any right on another service's schema.
# Run once by the postgres image on a fresh volume (docker-entrypoint-initdb.d);
# the passwords come from the AVIARY_*_DB_PASSWORD variables compose sets.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" <<SQL
CREATE ROLE auth LOGIN PASSWORD '$AVIARY_AUTH_DB_PASSWORD';
CREATE SCHEMA auth AUTHORIZATION auth;
ALTER ROLE auth SET search_path = auth;
CREATE ROLE user_svc LOGIN PASSWORD '$AVIARY_USER_DB_PASSWORD';
CREATE SCHEMA users AUTHORIZATION user_svc;
ALTER ROLE user_svc SET search_path = users;
CREATE ROLE media LOGIN PASSWORD '$AVIARY_MEDIA_DB_PASSWORD';
CREATE SCHEMA media AUTHORIZATION media;
ALTER ROLE media SET search_path = media;
CREATE ROLE post LOGIN PASSWORD '$AVIARY_POST_DB_PASSWORD';
CREATE SCHEMA posts AUTHORIZATION post;
ALTER ROLE post SET search_path = posts;
CREATE ROLE feed LOGIN PASSWORD '$AVIARY_FEED_DB_PASSWORD';
CREATE SCHEMA feed AUTHORIZATION feed;
ALTER ROLE feed SET search_path = feed;
CREATE ROLE notification LOGIN PASSWORD '$AVIARY_NOTIFICATION_DB_PASSWORD';
CREATE SCHEMA notification AUTHORIZATION notification;
ALTER ROLE notification SET search_path = notification;
CREATE ROLE chat LOGIN PASSWORD '$AVIARY_CHAT_DB_PASSWORD';
CREATE SCHEMA chat AUTHORIZATION chat;
ALTER ROLE chat SET search_path = chat;
CREATE ROLE moderation LOGIN PASSWORD '$AVIARY_MODERATION_DB_PASSWORD';
CREATE SCHEMA moderation AUTHORIZATION moderation;
ALTER ROLE moderation SET search_path = moderation;
CREATE ROLE audit LOGIN PASSWORD '$AVIARY_AUDIT_DB_PASSWORD';
CREATE SCHEMA audit AUTHORIZATION audit;
ALTER ROLE audit SET search_path = audit;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE "$POSTGRES_DB" FROM PUBLIC;
GRANT CONNECT, CREATE ON DATABASE "$POSTGRES_DB" TO auth, user_svc, media, post, feed, notification, chat, moderation, audit;
SQL
