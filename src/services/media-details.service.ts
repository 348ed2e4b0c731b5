import { NotFoundError, RequestValidationError } from '../domain/errors.js';
import { DEFAULT_DUPLICATE_THRESHOLD, snapDuplicateThreshold } from '../domain/similarity.js';
import type { MediaDetailsRepository } from '../db/media-details.repository.js';
import type { AccessService } from './access.service.js';
import type { MediaUris } from './explore.service.js';

export interface MediaIssueView {
  issue_type: string;
  confidence: number;
  duplicate_group_id: string | null;
  duplicate_threshold: number | null;
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
    const [issues, clusters, labels, parent] = await Promise.all([
      this.repo.issuesOf(datasetId, mediaId),
      this.repo.clustersOf(datasetId, mediaId),
      this.repo.labelsOf(datasetId, mediaId),
      media.parent_media_id ? this.repo.findMedia(datasetId, media.parent_media_id) : Promise.resolve(undefined),
    ]);
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
      video: parent
        ? {
            media_id: parent.id,
            file_name: parent.file_name,
            media_uri: uris.file(datasetId, parent.id),
            frame_timestamp: media.frame_timestamp,
            duration_seconds: parent.duration_seconds,
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
