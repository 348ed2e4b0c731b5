import path from 'node:path';
import type { NewMediaRow } from '../db/media.repository.js';
import type { MediaType } from '../db/schema.js';

export interface PendingMedia {
  id: string;
  datasetId: string;
  mediaType: MediaType;
  /** What identified the media at its source: upload name, path in an archive, s3:// URI, local path. */
  originalUri: string;
  blobKey: string;
  fileSize: number;
  /** '' until the bytes are known (fetched later). */
  sha256: string;
  createdAt: string;
  transactionId?: string | null;
  importId?: string | null;
  /** Where a worker copies the bytes from before decoding; null when they are stored already. */
  fetchFrom?: string | null;
  /** Set when the media is known to be unusable: the row is FAILED with this reason. */
  failure?: string;
}

/** A media row as it enters a dataset: PENDING (to be processed), or FAILED with its reason. */
export function newMediaRow(media: PendingMedia): NewMediaRow {
  return {
    id: media.id,
    dataset_id: media.datasetId,
    transaction_id: media.transactionId ?? null,
    import_id: media.importId ?? null,
    fetch_from: media.failure ? null : (media.fetchFrom ?? null),
    media_type: media.mediaType,
    status: media.failure ? 'FAILED' : 'PENDING',
    original_media_uri: media.originalUri,
    file_name: fileNameOf(media.originalUri),
    blob_key: media.blobKey,
    file_size: media.fileSize,
    sha256: media.sha256,
    width: null,
    height: null,
    format: null,
    thumb_key: null,
    duration_seconds: null,
    error: media.failure ?? null,
    parent_media_id: null,
    frame_timestamp: null,
    created_at: media.createdAt,
    processed_at: media.failure ? media.createdAt : null,
  };
}

/** The last path segment; a URL's query string is not part of its name. */
function fileNameOf(uri: string): string {
  const withoutQuery = /^https?:\/\//i.test(uri) ? (uri.split(/[?#]/)[0] ?? uri) : uri;
  return path.posix.basename(withoutQuery.replaceAll('\\', '/')) || uri;
}
