import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import type { DialectName } from './dialect.js';
import type { Database } from './schema.js';
import { labelNamesOf } from './annotations.repository.js';

/**
 * Full-text search over captions, labels and file names (VQL `text` `fts`).
 *
 * Text is normalised here, the same way for both dialects: compatibility-decomposed (NFKD), marks
 * (diacritics) removed, lowercased, and split into runs of letters and digits. A document also keeps
 * the parts of a run where its case or letters/digits change, so `IMG0042_DogPark.JPG` is found by
 * `img0042`, `0042`, `dogpark`, `dog` and `park`. The database only indexes the space-separated
 * tokens (SQLite FTS5, PostgreSQL tsvector with the `simple` configuration).
 *
 * A query: every token of the text must begin a token of the document (prefix match, ANDed), in any
 * order: `dog par` finds `DogPark.jpg`, `at` does not find `cat.jpg`. Text without a letter or a
 * digit matches nothing.
 */

/** Longer tokens are cut (PostgreSQL does not index words over 2047 bytes); queries are cut alike. */
export const MAX_TOKEN_CHARS = 100;
/** Tokens of a search text beyond this many are ignored. */
export const MAX_QUERY_TOKENS = 32;

const MARKS = /\p{M}+/gu;
const RUN = /[\p{L}\p{N}]+/gu;
// Within a run: an acronym before a capitalised word (HTTP|Server), a (capitalised) word, capitals,
// digits, other letters (scripts without case).
const PART = /\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?\p{Ll}+|\p{Lu}+|\p{N}+|[^\p{Lu}\p{Ll}\p{N}]+/gu;

function stripMarks(text: string): string {
  return text.normalize('NFKD').replace(MARKS, '');
}

/** One token as stored and searched: lowercase, no marks, at most MAX_TOKEN_CHARS. */
function normaliseToken(run: string): string {
  // Lowercasing can bring marks back (`İ` → `i̇`).
  const token = stripMarks(run.toLowerCase());
  return token.length > MAX_TOKEN_CHARS ? Array.from(token).slice(0, MAX_TOKEN_CHARS).join('') : token;
}

function runsOf(text: string): string[] {
  return stripMarks(text).match(RUN) ?? [];
}

/** The tokens of a search text, in order, without repeats. */
export function searchTokens(text: string): string[] {
  const tokens = new Set<string>();
  for (const run of runsOf(text)) {
    const token = normaliseToken(run);
    if (token !== '') tokens.add(token);
  }
  return [...tokens].slice(0, MAX_QUERY_TOKENS);
}

/** The body of a search document made of these texts: each run of letters and digits, and its parts. */
export function documentBody(texts: (string | null | undefined)[]): string {
  const tokens = new Set<string>();
  for (const text of texts) {
    if (!text) continue;
    for (const run of runsOf(text)) {
      const whole = normaliseToken(run);
      if (whole === '') continue;
      tokens.add(whole);
      const parts = run.match(PART) ?? [];
      if (parts.length > 1) for (const part of parts) tokens.add(normaliseToken(part));
    }
  }
  tokens.delete('');
  return [...tokens].join(' ');
}

/**
 * A condition on the media alias `m`: the media's document has every token of `text` as a prefix of
 * one of its tokens. Only tokens (letters and digits) reach the query, quoted, so no search syntax
 * of the user's gets through. The dataset's documents must exist: see `ensureDocuments`.
 */
export function ftsCondition(dialect: DialectName, datasetId: string, text: string): RawBuilder<SqlBool> {
  const tokens = searchTokens(text);
  if (tokens.length === 0) return sql<SqlBool>`1 = 0`;
  if (dialect === 'postgres') {
    const query = tokens.map((t) => `${t}:*`).join(' & ');
    return sql<SqlBool>`m.id in (select s.media_id from media_search s where s.dataset_id = ${datasetId} and s.document @@ to_tsquery('simple', ${query}))`;
  }
  const query = tokens.map((t) => `"${t}"*`).join(' AND ');
  return sql<SqlBool>`m.id in (select s.media_id from media_search s where s.dataset_id = ${datasetId} and s.id in (select f.rowid from media_search_fts f where media_search_fts match ${query}))`;
}

const BATCH = 500;

interface DocumentSource {
  id: string;
  file_name: string;
  original_media_uri: string;
  caption: string | null;
}

/** The search documents of media: built from the media rows and their labels, kept per READY media. */
export class SearchTextRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Builds the documents the dataset's READY media lack (new media, or ones whose name, caption or
   * labels changed since: the database's triggers delete those). Returns how many it built.
   */
  async ensureDocuments(datasetId: string): Promise<number> {
    // Documents exist only for READY media of their dataset (the triggers and cascades see to it), so
    // equal counts mean none is missing: two index-only counts instead of an anti-join per search.
    if (await this.complete(datasetId)) return 0;
    let built = 0;
    for (let after = ''; ; ) {
      const missing = await this.db
        .selectFrom('media as m')
        .select(['m.id', 'm.file_name', 'm.original_media_uri', 'm.caption'])
        .where('m.dataset_id', '=', datasetId)
        .where('m.status', '=', 'READY')
        .where('m.id', '>', after)
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom('media_search as s').select('s.media_id').whereRef('s.media_id', '=', 'm.id'))))
        .orderBy('m.id')
        .limit(BATCH)
        .execute();
      if (missing.length === 0) return built;
      after = missing[missing.length - 1]!.id;
      await this.insertDocuments(datasetId, missing);
      built += missing.length;
    }
  }

  /** Recomputes the documents of these media (after a change the triggers do not see); gone or not READY: no document. */
  async refresh(datasetId: string, mediaIds: string[]): Promise<void> {
    for (let i = 0; i < mediaIds.length; i += BATCH) {
      const ids = mediaIds.slice(i, i + BATCH);
      await this.db.deleteFrom('media_search').where('dataset_id', '=', datasetId).where('media_id', 'in', ids).execute();
      const rows = await this.db
        .selectFrom('media')
        .select(['id', 'file_name', 'original_media_uri', 'caption'])
        .where('dataset_id', '=', datasetId)
        .where('status', '=', 'READY')
        .where('id', 'in', ids)
        .execute();
      if (rows.length > 0) await this.insertDocuments(datasetId, rows);
    }
  }

  /** The stored document body of a media (tests, diagnostics). */
  async documentOf(mediaId: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('media_search').select('body').where('media_id', '=', mediaId).executeTakeFirst();
    return row?.body;
  }

  private async complete(datasetId: string): Promise<boolean> {
    const [ready, documents] = await Promise.all([
      this.db.selectFrom('media').select((eb) => eb.fn.countAll<number>().as('n')).where('dataset_id', '=', datasetId).where('status', '=', 'READY').executeTakeFirstOrThrow(),
      this.db.selectFrom('media_search').select((eb) => eb.fn.countAll<number>().as('n')).where('dataset_id', '=', datasetId).executeTakeFirstOrThrow(),
    ]);
    return Number(ready.n) === Number(documents.n);
  }

  private async insertDocuments(datasetId: string, media: DocumentSource[]): Promise<void> {
    const ids = media.map((m) => m.id);
    // A media's own labels, and the labels of the objects cut from it.
    const labels = await labelNamesOf(this.db, datasetId, ids);
    const values = media.map((m) => ({
      media_id: m.id,
      dataset_id: datasetId,
      body: documentBody([m.file_name, m.original_media_uri, m.caption, ...(labels.get(m.id) ?? [])]),
    }));
    // Another search may build the same documents at the same time: the first one stays.
    await this.db
      .insertInto('media_search')
      .values(values)
      .onConflict((oc) => oc.column('media_id').doNothing())
      .execute();
  }
}

