import type { ExportIssueRow, ExportLabelRow, ExportMediaRow, ExportObjectRow } from '../db/export.repository.js';
import type { LabelSource } from '../db/schema.js';
import { objectBox } from '../domain/bounding-box.js';

export const EXPORT_SCHEMA_VERSION = '1.1';

/** `coco`: annotations.json in COCO "instances" layout, of the media that carry a label or an object. */
export type ExportFormat = 'json' | 'parquet' | 'coco';

export interface IssueProperties {
  issue_type: string;
  confidence: number;
  duplicate_group_id: string | null;
  duplicate_threshold: number | null;
}

/** An image label: a class of the whole media item. */
export interface ImageLabelProperties {
  category_name: string;
  source: LabelSource;
  /** Only when the label has one (a model's score). */
  confidence?: number;
}

/** An object cut from the media item: its class and its box, `[x, y, width, height]` from the top-left corner. */
export interface ObjectLabelProperties {
  /** null only for an object stored without a class. */
  category_name: string | null;
  /** In pixels of the original image. */
  bbox: [number, number, number, number];
  /** Present (`relative`) only when the box is still in fractions of the image size because that size is unknown. */
  bbox_units?: 'relative';
  source: LabelSource | null;
  confidence?: number;
  /** The object's own media id (explore it with `entity_type=OBJECTS`). */
  object_id: string;
  /** The object's own issues (a `mislabels` flag above all); absent when it has none. */
  issues?: IssueProperties[];
}

export type MetadataItem =
  | { type: 'issue'; properties: IssueProperties }
  | { type: 'image_label'; properties: ImageLabelProperties }
  | { type: 'object_label'; properties: ObjectLabelProperties }
  | { type: 'caption'; properties: { caption: string } }
  | { type: 'user_tag'; properties: { tag_name: string; tag_id: string } }
  | { type: 'video_info'; properties: { video_name: string | null; frame_timestamp: number | null } };

/** One entry of `media_items` in metadata.json (Visual Layer's export layout, schema 1.1). */
export interface ExportItem {
  media_id: string;
  media_type: 'image' | 'video_frame';
  file_name: string;
  file_path: string;
  file_size: string;
  uniqueness_score: number | null;
  height: number | null;
  width: number | null;
  url: string;
  cluster_id: string | null;
  /** Where the image lies under `images/` (only when the export includes images). */
  image_filename?: string;
  metadata_items: MetadataItem[];
}

export interface ExportInfo {
  schema_version: string;
  dataset: string;
  description: string;
  dataset_url: string;
  export_time: string;
  dataset_creation_time: string;
  exported_by: string;
  total_media_items: number;
}

/** `48.27KB`, as Visual Layer writes sizes (1024-based, two decimals). */
export function humanFileSize(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes}B` : `${value.toFixed(2)}${units[unit]}`;
}

/** The name of a media item's bytes under `images/`: the media id keeps names from colliding. */
export function imageFilename(media: Pick<ExportMediaRow, 'id' | 'file_name'>): string {
  const safe = media.file_name.replace(/[\\/\0]/g, '_').replace(/^\.+/, '_') || 'image';
  return `${media.id}_${safe}`;
}

export interface ItemContext {
  baseUrl: string;
  datasetId: string;
  issues: ExportIssueRow[];
  /** The media's user tags, by name. */
  tags?: { id: string; name: string }[];
  /** The media's image labels. */
  labels?: ExportLabelRow[];
  /** The objects cut from the media, one row per object and class. */
  objects?: ExportObjectRow[];
  /** Issues of those objects, by object id. */
  objectIssues?: Map<string, ExportIssueRow[]>;
  clusterId: string | null;
  videoName: string | null;
  includeImages: boolean;
}

function issueProperties(issue: ExportIssueRow): IssueProperties {
  return {
    issue_type: issue.issue_type,
    confidence: issue.confidence,
    duplicate_group_id: issue.issue_type === 'duplicates' ? issue.group_id : null,
    duplicate_threshold: issue.issue_type === 'duplicates' ? issue.threshold : null,
  };
}

export { objectBox };

export function toExportItem(media: ExportMediaRow, context: ItemContext): ExportItem {
  const metadataItems: MetadataItem[] = context.issues.map((issue) => ({ type: 'issue', properties: issueProperties(issue) }));
  for (const label of context.labels ?? []) {
    metadataItems.push({
      type: 'image_label',
      properties: { category_name: label.label, source: label.source, ...(label.confidence !== null ? { confidence: label.confidence } : {}) },
    });
  }
  for (const object of context.objects ?? []) {
    const { bbox, units } = objectBox(object, media);
    const issues = context.objectIssues?.get(object.id) ?? [];
    metadataItems.push({
      type: 'object_label',
      properties: {
        category_name: object.label,
        bbox,
        ...(units === 'relative' ? { bbox_units: 'relative' as const } : {}),
        source: object.source,
        ...(object.confidence !== null ? { confidence: object.confidence } : {}),
        object_id: object.id,
        ...(issues.length > 0 ? { issues: issues.map(issueProperties) } : {}),
      },
    });
  }
  if (media.caption !== null && media.caption !== '') metadataItems.push({ type: 'caption', properties: { caption: media.caption } });
  for (const tag of context.tags ?? []) metadataItems.push({ type: 'user_tag', properties: { tag_name: tag.name, tag_id: tag.id } });
  if (media.media_type === 'video_frame') {
    metadataItems.push({ type: 'video_info', properties: { video_name: context.videoName, frame_timestamp: media.frame_timestamp } });
  }
  return {
    media_id: media.id,
    media_type: media.media_type === 'video_frame' ? 'video_frame' : 'image',
    file_name: media.file_name,
    file_path: media.original_media_uri,
    file_size: humanFileSize(media.file_size),
    uniqueness_score: media.uniqueness_score,
    height: media.height,
    width: media.width,
    url: `${context.baseUrl}/dataset/${context.datasetId}/data/image/${media.id}`,
    cluster_id: context.clusterId,
    ...(context.includeImages ? { image_filename: imageFilename(media) } : {}),
    metadata_items: metadataItems,
  };
}

/** One flat row of metadata.parquet; column order is the order of PARQUET_COLUMNS. */
export interface ParquetRow {
  media_id: string;
  media_type: string;
  image_filename: string | null;
  file_name: string;
  file_path: string;
  file_size: string;
  file_size_bytes: number;
  width: number | null;
  height: number | null;
  uniqueness_score: number | null;
  cluster_id: string | null;
  url: string;
  video_name: string | null;
  frame_timestamp: number | null;
  is_duplicate: boolean;
  /** The loosest level (lowest threshold) the media is grouped at; every level is in `duplicate_groups`. */
  duplicate_group_id: string | null;
  duplicate_threshold: number | null;
  /** JSON array of `{"duplicate_threshold","duplicate_group_id","confidence"}`, one per level. */
  duplicate_groups: string | null;
  is_outlier: boolean;
  outlier_confidence: number | null;
  is_blur: boolean;
  blur_confidence: number | null;
  is_dark: boolean;
  dark_confidence: number | null;
  is_bright: boolean;
  bright_confidence: number | null;
  /** JSON array of every issue's properties, as in metadata.json. */
  issues: string;
  /** The media's user tag names, comma-joined by name (names hold no commas); null when none. */
  user_tags: string | null;
  caption: string | null;
  /** The media's image label names (each once, sorted); empty when none. */
  image_labels: string[];
  /** The objects cut from the media: class, pixel box `[x, y, w, h]`, source, confidence, object id. */
  object_labels: ParquetObjectLabel[];
}

export interface ParquetObjectLabel {
  category_name: string | null;
  bbox: number[];
  /** `px`, or `relative` when the parent's size was unknown (see `objectBox`). */
  bbox_units: 'px' | 'relative';
  source: string | null;
  confidence: number | null;
  object_id: string;
}

/** `VARCHAR[]`: a list of strings; `OBJECT_LABELS`: a list of ParquetObjectLabel structs. */
export type ParquetColumnType = 'VARCHAR' | 'BIGINT' | 'INTEGER' | 'DOUBLE' | 'BOOLEAN' | 'VARCHAR[]' | 'OBJECT_LABELS';

export const PARQUET_COLUMNS: ReadonlyArray<readonly [keyof ParquetRow, ParquetColumnType]> = [
  ['media_id', 'VARCHAR'],
  ['media_type', 'VARCHAR'],
  ['image_filename', 'VARCHAR'],
  ['file_name', 'VARCHAR'],
  ['file_path', 'VARCHAR'],
  ['file_size', 'VARCHAR'],
  ['file_size_bytes', 'BIGINT'],
  ['width', 'INTEGER'],
  ['height', 'INTEGER'],
  ['uniqueness_score', 'DOUBLE'],
  ['cluster_id', 'VARCHAR'],
  ['url', 'VARCHAR'],
  ['video_name', 'VARCHAR'],
  ['frame_timestamp', 'DOUBLE'],
  ['is_duplicate', 'BOOLEAN'],
  ['duplicate_group_id', 'VARCHAR'],
  ['duplicate_threshold', 'DOUBLE'],
  ['duplicate_groups', 'VARCHAR'],
  ['is_outlier', 'BOOLEAN'],
  ['outlier_confidence', 'DOUBLE'],
  ['is_blur', 'BOOLEAN'],
  ['blur_confidence', 'DOUBLE'],
  ['is_dark', 'BOOLEAN'],
  ['dark_confidence', 'DOUBLE'],
  ['is_bright', 'BOOLEAN'],
  ['bright_confidence', 'DOUBLE'],
  ['issues', 'VARCHAR'],
  ['user_tags', 'VARCHAR'],
  ['caption', 'VARCHAR'],
  ['image_labels', 'VARCHAR[]'],
  ['object_labels', 'OBJECT_LABELS'],
];

export function toParquetRow(item: ExportItem, media: ExportMediaRow, includeImages: boolean): ParquetRow {
  const issues = item.metadata_items.flatMap((m) => (m.type === 'issue' ? [m.properties] : []));
  const video = item.metadata_items.find((m) => m.type === 'video_info');
  const tagNames = item.metadata_items.flatMap((m) => (m.type === 'user_tag' ? [m.properties.tag_name] : []));
  const duplicates = issues.filter((i) => i.issue_type === 'duplicates').sort((a, b) => (a.duplicate_threshold ?? 0) - (b.duplicate_threshold ?? 0));
  const loosest = duplicates[0];
  const confidenceOf = (type: string) => issues.find((i) => i.issue_type === type)?.confidence ?? null;
  return {
    media_id: item.media_id,
    media_type: item.media_type,
    image_filename: includeImages ? imageFilename(media) : null,
    file_name: item.file_name,
    file_path: item.file_path,
    file_size: item.file_size,
    file_size_bytes: media.file_size,
    width: item.width,
    height: item.height,
    uniqueness_score: item.uniqueness_score,
    cluster_id: item.cluster_id,
    url: item.url,
    video_name: video?.type === 'video_info' ? video.properties.video_name : null,
    frame_timestamp: video?.type === 'video_info' ? video.properties.frame_timestamp : null,
    is_duplicate: loosest !== undefined,
    duplicate_group_id: loosest?.duplicate_group_id ?? null,
    duplicate_threshold: loosest?.duplicate_threshold ?? null,
    duplicate_groups:
      duplicates.length > 0
        ? JSON.stringify(duplicates.map((d) => ({ duplicate_threshold: d.duplicate_threshold, duplicate_group_id: d.duplicate_group_id, confidence: d.confidence })))
        : null,
    is_outlier: confidenceOf('outliers') !== null,
    outlier_confidence: confidenceOf('outliers'),
    is_blur: confidenceOf('blur') !== null,
    blur_confidence: confidenceOf('blur'),
    is_dark: confidenceOf('dark') !== null,
    dark_confidence: confidenceOf('dark'),
    is_bright: confidenceOf('bright') !== null,
    bright_confidence: confidenceOf('bright'),
    issues: JSON.stringify(issues),
    user_tags: tagNames.length > 0 ? tagNames.join(',') : null,
    caption: item.metadata_items.flatMap((m) => (m.type === 'caption' ? [m.properties.caption] : []))[0] ?? null,
    image_labels: [...new Set(item.metadata_items.flatMap((m) => (m.type === 'image_label' ? [m.properties.category_name] : [])))].sort(),
    object_labels: item.metadata_items.flatMap((m) =>
      m.type === 'object_label'
        ? [
            {
              category_name: m.properties.category_name,
              bbox: m.properties.bbox,
              bbox_units: m.properties.bbox_units ?? 'px',
              source: m.properties.source,
              confidence: m.properties.confidence ?? null,
              object_id: m.properties.object_id,
            },
          ]
        : [],
    ),
  };
}
