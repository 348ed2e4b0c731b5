import type { Readable } from 'node:stream';
import { NotFoundError, RequestValidationError } from '../domain/errors.js';
import { DEFAULT_DUPLICATE_THRESHOLD, snapDuplicateThreshold } from '../domain/similarity.js';
import type { ExploreRepository } from '../db/explore.repository.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { AccessService } from './access.service.js';

export type MediaVariant = 'file' | 'thumbnail';

/** What to send for a media request: status, headers and (unless 304/416) the bytes. */
export interface MediaResponse {
  status: 200 | 206 | 304 | 416;
  headers: Record<string, string>;
  body: Readable | null;
}

const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.heic': 'image/heic',
  '.heif': 'image/heif',
  '.mp4': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
  '.avi': 'video/x-msvideo',
};

/** Media bytes are immutable per id; private because they are served only to members. */
const CACHE_CONTROL = 'private, max-age=86400';

/** Media items of a dataset: their bytes and thumbnails, lookup by source, near-duplicates. */
export class MediaService {
  constructor(
    private readonly repo: ExploreRepository,
    private readonly blobs: BlobStore,
    private readonly access: AccessService,
  ) {}

  /** The media's bytes (or thumbnail) with caching headers, honouring one `Range` and `If-None-Match`. */
  async open(userId: string, datasetId: string, mediaId: string, variant: MediaVariant, request: { range?: string; ifNoneMatch?: string }): Promise<MediaResponse> {
    await this.access.require(userId, datasetId, 'viewer');
    const media = await this.repo.findMedia(datasetId, mediaId);
    if (!media) throw new NotFoundError('Media not found');
    const key = variant === 'file' ? media.blob_key : media.thumb_key;
    if (!key) throw new NotFoundError('This media has no thumbnail');
    const etag = `"${media.sha256}${variant === 'thumbnail' ? '-thumb' : ''}"`;
    const headers: Record<string, string> = {
      'content-type': contentTypeOf(key),
      'cache-control': CACHE_CONTROL,
      etag,
      'accept-ranges': 'bytes',
    };
    if (request.ifNoneMatch && request.ifNoneMatch.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*')) {
      return { status: 304, headers, body: null };
    }
    if (variant === 'thumbnail' || !request.range) {
      const body = await this.read(key);
      if (variant === 'file') headers['content-length'] = String(media.file_size);
      return { status: 200, headers, body };
    }
    const range = parseRange(request.range, media.file_size);
    if (range === 'unsatisfiable') return { status: 416, headers: { ...headers, 'content-range': `bytes */${media.file_size}` }, body: null };
    if (range === null) return { status: 200, headers: { ...headers, 'content-length': String(media.file_size) }, body: await this.read(key) };
    return {
      status: 206,
      headers: { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${media.file_size}`, 'content-length': String(range.end - range.start + 1) },
      body: await this.read(key, range),
    };
  }

  async idByOriginalUri(userId: string, datasetId: string, originalMediaUri: string): Promise<string> {
    await this.access.require(userId, datasetId, 'viewer');
    const id = await this.repo.findMediaIdByOriginalUri(datasetId, originalMediaUri);
    if (!id) throw new NotFoundError(`No media with original_media_uri ${originalMediaUri} in this dataset`);
    return id;
  }

  /** The other members of the media's near-duplicate group at the threshold (snapped to a computed level). */
  async duplicates(userId: string, datasetId: string, mediaId: string, threshold: number | undefined): Promise<string[]> {
    await this.access.require(userId, datasetId, 'viewer');
    if (threshold !== undefined && (!Number.isFinite(threshold) || threshold < 0 || threshold > 1)) {
      throw new RequestValidationError([{ loc: ['query', 'threshold'], msg: 'threshold must be a similarity between 0 and 1', type: 'value_error' }]);
    }
    if (!(await this.repo.findMedia(datasetId, mediaId))) throw new NotFoundError('Media not found');
    const group = await this.repo.duplicateGroup(datasetId, mediaId, snapDuplicateThreshold(threshold ?? DEFAULT_DUPLICATE_THRESHOLD));
    return (group ?? []).filter((id) => id !== mediaId);
  }

  private async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    try {
      return await this.blobs.get(key, range);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('Media file not found');
      throw error;
    }
  }
}

function contentTypeOf(key: string): string {
  const dot = key.lastIndexOf('.');
  return (dot >= 0 && CONTENT_TYPES[key.slice(dot).toLowerCase()]) || 'application/octet-stream';
}

/**
 * One byte range of RFC 9110 (`bytes=a-b`, `bytes=a-`, `bytes=-n`). Several ranges or another unit:
 * null (the whole file is sent, as the RFC allows); a range past the end: unsatisfiable.
 */
export function parseRange(header: string, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return null;
  const [, from = '', to = ''] = match;
  if (from === '' && to === '') return null;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}
