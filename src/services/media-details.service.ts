import { NotFoundError, RequestValidationError } from '../domain/errors.js';
import { DEFAULT_DUPLICATE_THRESHOLD, snapDuplicateThreshold } from '../domain/similarity.js';
import type { MediaDetailsRepository, ObjectOfImageRow } from '../db/media-details.repository.js';
import type { AccessService } from './access.service.js';
import type { MediaUris } from './explore.service.js';
import { objectBox, type StoredBox } from '../domain/bounding-box.js';

export interface MediaIssueView {
  issue_type: string;
  confidence: number;
  duplicate_group_id: string | null;
  duplicate_threshold: number | null;
}

/** An object cut from an image: its class, its box [x, y, width, height] in pixels of the image (null until known), its status. */
export interface ImageObjectView {
  object_id: string;
  label: string | null;
  bbox: [number, number, number, number] | null;
  status: string;
}

export interface MediaDetailsView {
  media_id: string;
  dataset_id: string;
  media_type: string;
  status: string;
  file_name: string;
  original_media_uri: string;
  file_size: number;
  format: string | null;
  sha256: string;
  width: number | null;
  height: number | null;
  media_uri: string;
  media_thumb_uri: string | null;
  error: string | null;
  created_at: string;
  processed_at: string | null;
  /** For a video frame: the video it was taken from and when. */
  video: { media_id: string; file_name: string; media_uri: string; frame_timestamp: number | null; duration_seconds: number | null } | null;
  quality: { blur: number | null; mean_intensity: number | null; min_intensity: number | null; max_intensity: number | null; std_intensity: number | null; contrast: number | null };
  uniqueness_score: number | null;
  nn_similarity: number | null;
  issues: MediaIssueView[];
  clusters: { level: number; cluster_id: string }[];
  /** The media's own labels (an object's: its class). */
  labels: { name: string; source: string; confidence: number | null }[];
  caption: string | null;
  /** An image's objects (every status; FAILED ones too), top to bottom then left to right; empty for other media. */
  objects: ImageObjectView[];
  /** An object's image; null for other media. */
  parent_media_id: string | null;
  /** An object's box in its image's pixels (null while it is given in fractions of an image not yet processed); null for other media. */
  bounding_box: [number, number, number, number] | null;
}

export interface IssueSummaryView {
  media_count: number;
  duplicate_threshold: number;
  duplicate_groups: number;
  issues: { issue_type: string; count: number }[];
}

export interface DuplicateGroupMemberView {
  media_id: string;
  media_type: string;
  file_name: string;
  original_media_uri: string;
  media_uri: string;
  media_thumb_uri: string;
  width: number | null;
  height: number | null;
  file_size: number;
  uniqueness_score: number | null;
  coarse_cluster_id: string | null;
}

export interface DuplicateGroupsView {
  threshold: number;
  total: number;
  page_number: number;
  page_size: number;
  groups: { group_id: string; size: number; media: DuplicateGroupMemberView[] }[];
}

const LABEL_SOURCE_RANK: Record<string, number> = { User: 0, 'Visual Layer': 1, Model: 2 };

/** One entry per object (rows come one per label): its label the user's if any, else the first by name. */
function objectViews(rows: ObjectOfImageRow[], width: number | null, height: number | null): ImageObjectView[] {
  const byId = new Map<string, { view: ImageObjectView; rank: number }>();
  for (const row of rows) {
    const rank = row.source === null ? Infinity : (LABEL_SOURCE_RANK[row.source] ?? 3);
    const seen = byId.get(row.id);
    if (!seen) byId.set(row.id, { view: { object_id: row.id, label: row.label, bbox: pixelBox(row, width, height), status: row.status }, rank });
    else if (rank < seen.rank) byId.set(row.id, { view: { ...seen.view, label: row.label }, rank });
  }
  // Reading order: top to bottom, then left to right; boxes not yet known last.
  const key = (v: ImageObjectView) => v.bbox ?? [Infinity, Infinity];
  return [...byId.values()].map((o) => o.view).sort((a, b) => key(a)[1]! - key(b)[1]! || key(a)[0]! - key(b)[0]! || (a.object_id < b.object_id ? -1 : 1));
}

/** A stored box in pixels of a width × height image (null when it has none, or is in fractions of a size not known yet). */
function pixelBox(box: StoredBox, width: number | null, height: number | null): [number, number, number, number] | null {
  if (box.bbox_x === null || box.bbox_y === null || box.bbox_w === null || box.bbox_h === null) return null;
  const { bbox, units } = objectBox(box, { width, height });
  return units === 'px' ? bbox : null;
}

const SUMMARY_ISSUES = ['duplicates', 'outliers', 'blur', 'dark', 'bright'] as const;

/** One media item's metadata, issues and clusters; issue counts and duplicate groups of a dataset. */
export class MediaDetailsService {
  constructor(
    private readonly repo: MediaDetailsRepository,
    private readonly access: Pick<AccessService, 'require'>,
  ) {}

  async details(userId: string, datasetId: string, mediaId: string, uris: MediaUris): Promise<MediaDetailsView> {
    await this.access.require(userId, datasetId, 'viewer');
    const media = await this.repo.findMedia(datasetId, mediaId);
    if (!media) throw new NotFoundError('Media not found');
    const isObject = media.media_type === 'object';
    const [issues, clusters, labels, parent, objects] = await Promise.all([
      this.repo.issuesOf(datasetId, mediaId),
      this.repo.clustersOf(datasetId, mediaId),
      this.repo.labelsOf(datasetId, mediaId),
      media.parent_media_id ? this.repo.findMedia(datasetId, media.parent_media_id) : Promise.resolve(undefined),
      media.media_type === 'image' ? this.repo.objectsOf(datasetId, mediaId) : Promise.resolve([]),
    ]);
    // A frame's parent is its video; an object's, its image.
    const video = isObject ? undefined : parent;
    return {
      media_id: media.id,
      dataset_id: media.dataset_id,
      media_type: media.media_type,
      status: media.status,
      file_name: media.file_name,
      original_media_uri: media.original_media_uri,
      file_size: Number(media.file_size),
      format: media.format,
      sha256: media.sha256,
      width: media.width,
      height: media.height,
      media_uri: uris.file(datasetId, media.id),
      media_thumb_uri: media.thumb_key ? uris.thumbnail(datasetId, media.id) : null,
      error: media.error,
      created_at: media.created_at,
      processed_at: media.processed_at,
      video: video
        ? {
            media_id: video.id,
            file_name: video.file_name,
            media_uri: uris.file(datasetId, video.id),
            frame_timestamp: media.frame_timestamp,
            duration_seconds: video.duration_seconds,
          }
        : null,
      quality: {
        blur: media.blur,
        mean_intensity: media.mean_intensity,
        min_intensity: media.min_intensity,
        max_intensity: media.max_intensity,
        std_intensity: media.std_intensity,
        contrast: media.contrast,
      },
      uniqueness_score: media.uniqueness_score,
      nn_similarity: media.nn_similarity,
      issues: issues.map((i) => ({ issue_type: i.issue_type, confidence: i.confidence, duplicate_group_id: i.group_id, duplicate_threshold: i.threshold })),
      clusters: clusters.map((c) => ({ level: Number(c.level), cluster_id: c.cluster_id })),
      labels: labels.map((l) => ({ name: l.label, source: l.source, confidence: l.confidence })),
      caption: media.caption,
      objects: objectViews(objects, media.width, media.height),
      parent_media_id: isObject ? media.parent_media_id : null,
      bounding_box: isObject ? pixelBox(media, parent?.width ?? null, parent?.height ?? null) : null,
    };
  }

  /** How many media carry each issue (duplicates: at the threshold, default 0.96), for the UI's summary panel. */
  async issueSummary(userId: string, datasetId: string, duplicateThreshold: number | undefined): Promise<IssueSummaryView> {
    await this.access.require(userId, datasetId, 'viewer');
    const threshold = this.threshold(duplicateThreshold, 'duplicate_threshold');
    const [counts, groups, media] = await Promise.all([
      this.repo.issueCounts(datasetId, threshold),
      this.repo.countDuplicateGroups(datasetId, threshold),
      this.repo.countMedia(datasetId),
    ]);
    return {
      media_count: media,
      duplicate_threshold: threshold,
      duplicate_groups: groups,
      // Mislabels exist only once media carry labels (SPEC §5): listed then.
      issues: [...SUMMARY_ISSUES, ...(counts.has('mislabels') ? (['mislabels'] as const) : [])].map((issue) => ({ issue_type: issue, count: counts.get(issue) ?? 0 })),
    };
  }

  /** Near-duplicate groups at the threshold, largest first; in each, the largest picture first. */
  async duplicateGroups(
    userId: string,
    datasetId: string,
    query: { threshold: number | undefined; pageNumber: number; pageSize: number },
    uris: MediaUris,
  ): Promise<DuplicateGroupsView> {
    await this.access.require(userId, datasetId, 'viewer');
    const threshold = this.threshold(query.threshold, 'threshold');
    const [total, page] = await Promise.all([
      this.repo.countDuplicateGroups(datasetId, threshold),
      this.repo.duplicateGroupPage(datasetId, threshold, query.pageNumber * query.pageSize, query.pageSize),
    ]);
    const members = await this.repo.duplicateGroupMembers(
      datasetId,
      threshold,
      page.map((g) => g.group_id),
    );
    const byGroup = new Map<string, DuplicateGroupMemberView[]>();
    for (const m of members) {
      let list = byGroup.get(m.group_id);
      if (!list) byGroup.set(m.group_id, (list = []));
      list.push({
        media_id: m.id,
        media_type: m.media_type,
        file_name: m.file_name,
        original_media_uri: m.original_media_uri,
        media_uri: uris.file(datasetId, m.id),
        media_thumb_uri: uris.thumbnail(datasetId, m.id),
        width: m.width,
        height: m.height,
        file_size: Number(m.file_size),
        uniqueness_score: m.uniqueness_score,
        coarse_cluster_id: m.coarse_cluster_id,
      });
    }
    return {
      threshold,
      total,
      page_number: query.pageNumber,
      page_size: query.pageSize,
      groups: page.map((g) => ({ group_id: g.group_id, size: g.size, media: byGroup.get(g.group_id) ?? [] })),
    };
  }

  /** A requested similarity snapped to the computed level at or above it (default 0.96). */
  private threshold(requested: number | undefined, field: string): number {
    if (requested === undefined) return DEFAULT_DUPLICATE_THRESHOLD;
    if (!Number.isFinite(requested) || requested < 0 || requested > 1) {
      throw new RequestValidationError([{ loc: ['query', field], msg: `${field} must be a similarity between 0 and 1`, type: 'value_error' }]);
    }
    return snapDuplicateThreshold(requested);
  }
}
