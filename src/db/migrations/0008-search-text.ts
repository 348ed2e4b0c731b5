import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../dialect.js';

/**
 * The full-text index behind VQL `text` `fts`: one search document per READY media (its file name,
 * original path, caption, its labels and the labels of its objects), already normalised into
 * lowercase tokens without diacritics by src/db/search-text.repository.ts.
 *
 * `media_search` holds the documents in both dialects (cascading with its media, so deleting a media
 * or a dataset removes them). SQLite indexes them in the FTS5 table `media_search_fts` (external
 * content, kept in step by triggers); PostgreSQL in a generated tsvector column with a GIN index.
 *
 * A document is only ever missing, never stale: triggers delete it whenever what it is made of
 * changes (a media's name, path, caption or status; a label on it or on one of its objects; one of its
 * objects deleted), and the next text search rebuilds the missing ones (`ensureDocuments`). The ingest
 * and annotation paths need no hook.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') await upPostgres(db);
  else await upSqlite(db);
}

async function upSqlite(db: Kysely<unknown>): Promise<void> {
  // `id` is the FTS5 rowid: an INTEGER PRIMARY KEY keeps it stable across VACUUM.
  await sql`create table media_search (
    id integer primary key,
    media_id text not null unique references media(id) on delete cascade,
    dataset_id text not null,
    body text not null
  )`.execute(db);
  await sql`create index media_search_dataset on media_search (dataset_id)`.execute(db);
  // The documents are tokenised already (src/db/search-text.repository.ts): the tokenizer must only
  // split them on spaces, so it removes no diacritics of its own (both dialects then agree).
  await sql`create virtual table media_search_fts using fts5(body, content='media_search', content_rowid='id', tokenize='unicode61 remove_diacritics 0')`.execute(db);
  await sql`create trigger media_search_fts_insert after insert on media_search begin
    insert into media_search_fts(rowid, body) values (new.id, new.body);
  end`.execute(db);
  await sql`create trigger media_search_fts_delete after delete on media_search begin
    insert into media_search_fts(media_search_fts, rowid, body) values ('delete', old.id, old.body);
  end`.execute(db);
  await sql`create trigger media_search_fts_update after update on media_search begin
    insert into media_search_fts(media_search_fts, rowid, body) values ('delete', old.id, old.body);
    insert into media_search_fts(rowid, body) values (new.id, new.body);
  end`.execute(db);

  await sql`create trigger media_search_media_changed after update of file_name, original_media_uri, caption, status on media
    when old.file_name is not new.file_name or old.original_media_uri is not new.original_media_uri or old.caption is not new.caption or old.status is not new.status
  begin
    delete from media_search where media_id = new.id;
  end`.execute(db);
  await sql`create trigger media_search_object_deleted after delete on media when old.media_type = 'object' and old.parent_media_id is not null begin
    delete from media_search where media_id = old.parent_media_id;
  end`.execute(db);
  const owners = (row: 'new' | 'old') => sql.raw(`(${row}.media_id, (select o.parent_media_id from media o where o.id = ${row}.media_id and o.media_type = 'object'))`);
  await sql`create trigger media_search_label_added after insert on media_labels begin
    delete from media_search where media_id in ${owners('new')};
  end`.execute(db);
  await sql`create trigger media_search_label_removed after delete on media_labels begin
    delete from media_search where media_id in ${owners('old')};
  end`.execute(db);
  await sql`create trigger media_search_label_changed after update of label, media_id on media_labels begin
    delete from media_search where media_id in ${owners('old')};
    delete from media_search where media_id in ${owners('new')};
  end`.execute(db);
}

async function upPostgres(db: Kysely<unknown>): Promise<void> {
  await sql`create table media_search (
    media_id text collate "C" primary key references media(id) on delete cascade,
    dataset_id text collate "C" not null,
    body text not null,
    document tsvector generated always as (to_tsvector('simple', body)) stored
  )`.execute(db);
  await sql`create index media_search_document on media_search using gin (document)`.execute(db);
  await sql`create index media_search_dataset on media_search (dataset_id)`.execute(db);

  await sql`create function media_search_media_changed() returns trigger language plpgsql as $$
  begin
    if tg_op = 'DELETE' then
      delete from media_search where media_id = old.parent_media_id;
    else
      delete from media_search where media_id = new.id;
    end if;
    return null;
  end $$`.execute(db);
  await sql`create trigger media_search_media_changed after update of file_name, original_media_uri, caption, status on media for each row
    when (old.file_name is distinct from new.file_name or old.original_media_uri is distinct from new.original_media_uri or old.caption is distinct from new.caption or old.status is distinct from new.status)
    execute function media_search_media_changed()`.execute(db);
  await sql`create trigger media_search_object_deleted after delete on media for each row
    when (old.media_type = 'object' and old.parent_media_id is not null)
    execute function media_search_media_changed()`.execute(db);

  await sql`create function media_search_label_changed() returns trigger language plpgsql as $$
  begin
    if tg_op in ('UPDATE', 'DELETE') then
      delete from media_search where media_id in (old.media_id, (select o.parent_media_id from media o where o.id = old.media_id and o.media_type = 'object'));
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
      delete from media_search where media_id in (new.media_id, (select o.parent_media_id from media o where o.id = new.media_id and o.media_type = 'object'));
    end if;
    return null;
  end $$`.execute(db);
  await sql`create trigger media_search_label_changed after insert or delete or update of label, media_id on media_labels for each row
    execute function media_search_label_changed()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') {
    await sql`drop trigger if exists media_search_label_changed on media_labels`.execute(db);
    await sql`drop trigger if exists media_search_object_deleted on media`.execute(db);
    await sql`drop trigger if exists media_search_media_changed on media`.execute(db);
    await sql`drop function if exists media_search_label_changed()`.execute(db);
    await sql`drop function if exists media_search_media_changed()`.execute(db);
    await sql`drop table if exists media_search`.execute(db);
    return;
  }
  for (const trigger of ['media_search_label_changed', 'media_search_label_removed', 'media_search_label_added', 'media_search_object_deleted', 'media_search_media_changed']) {
    await sql`drop trigger if exists ${sql.raw(trigger)}`.execute(db);
  }
  await sql`drop table if exists media_search_fts`.execute(db);
  await sql`drop table if exists media_search`.execute(db);
}
