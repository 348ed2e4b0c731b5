import type { AnnotationRecord } from './annotation-record.js';

/** What a row can be matched to: a media item known by the name or path it came with. */
export interface NamedMedia {
  id: string;
  original_media_uri: string;
}

/** `ambiguous`: several media fit; otherwise none does (the row is unmatched). */
export type MatchResult<M> = { media: M } | { problem: string; ambiguous: boolean };

/**
 * Finds the media an annotation row names. A row names a media by base name (`cat1.jpg`) or by a
 * path (`train/cat1.jpg`), which must be the end of the media's original path (archive path, S3 key,
 * upload name); YOLO rows give the path without its extension. A base name several media share is
 * ambiguous: the row must give more of the path. Exact case first, then case-insensitively.
 */
export class MediaMatcher<M extends NamedMedia> {
  private readonly byName = new Map<string, M[]>();
  private readonly byStem = new Map<string, M[]>();
  private readonly byNameFolded = new Map<string, M[]>();
  private readonly byStemFolded = new Map<string, M[]>();

  add(media: M): void {
    const path = pathOf(media.original_media_uri);
    const name = baseName(path);
    const stem = stripExtension(name);
    push(this.byName, name, media);
    push(this.byStem, stem, media);
    push(this.byNameFolded, name.toLowerCase(), media);
    push(this.byStemFolded, stem.toLowerCase(), media);
  }

  match(record: Pick<AnnotationRecord, 'fileName' | 'stemOnly'>): MatchResult<M> {
    const wanted = normalisePath(record.fileName);
    if (wanted === '') return { problem: 'the row names no file', ambiguous: false };
    const exact = this.find(wanted, record.stemOnly, false);
    if ('media' in exact || exact.ambiguous) return settle(exact, record.fileName);
    return settle(this.find(wanted, record.stemOnly, true), record.fileName);
  }

  private find(wanted: string, stemOnly: boolean, folded: boolean): { media: M } | { candidates: number; ambiguous: boolean } {
    const key = folded ? wanted.toLowerCase() : wanted;
    const name = baseName(key);
    const index = stemOnly ? (folded ? this.byStemFolded : this.byStem) : folded ? this.byNameFolded : this.byName;
    const candidates = index.get(name) ?? [];
    const hasFolder = key.includes('/');
    const fits = candidates.filter((m) => {
      if (!hasFolder) return true;
      let path = pathOf(m.original_media_uri);
      if (folded) path = path.toLowerCase();
      if (stemOnly) path = stripExtension(path);
      return path === key || path.endsWith(`/${key}`);
    });
    if (fits.length === 1) return { media: fits[0]! };
    // YOLO exports keep labels in folders (train/labels/x.txt) the user may not have uploaded the
    // images in: a stem no other media shares still names one image.
    if (fits.length === 0 && stemOnly && hasFolder && candidates.length === 1) return { media: candidates[0]! };
    return { candidates: fits.length, ambiguous: fits.length > 1 };
  }
}

function settle<M>(found: { media: M } | { candidates: number; ambiguous: boolean }, fileName: string): MatchResult<M> {
  if ('media' in found) return found;
  if (found.ambiguous) {
    return { problem: `${found.candidates} media in the dataset are named "${fileName}"; give more of the path (e.g. folder/${baseName(fileName)})`, ambiguous: true };
  }
  return { problem: `no media in the dataset is named "${fileName}"`, ambiguous: false };
}

/** The path part of an original URI: a key without `s3://bucket/`, a URL's path without host and query. */
export function pathOf(uri: string): string {
  let path = uri.replaceAll('\\', '/');
  const url = /^[a-z][a-z0-9+.-]*:\/\/[^/]*\/?(.*)$/i.exec(path);
  if (url) path = (url[1] ?? '').split(/[?#]/)[0] ?? '';
  return normalisePath(path);
}

function normalisePath(path: string): string {
  return path
    .replaceAll('\\', '/')
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.')
    .join('/');
}

function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

function stripExtension(path: string): string {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  return dot > slash + 1 ? path.slice(0, dot) : path;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
