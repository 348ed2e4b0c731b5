/**
 * COCO JSON: an instances file (`images`, `annotations` with `bbox` and `category_id`, `categories`)
 * or a captions file (`annotations` with `caption`). Each annotation becomes one record; one that
 * cannot be used becomes one problem naming every reason found.
 */
import {
  AnnotationFileError,
  type AnnotationProblem,
  type AnnotationRecord,
  type ParsedAnnotations,
} from './annotation-record.js';
import { annotationLimits, confidenceProblem, fitBox, PX_EDGE_TOLERANCE, shown, tooManyRows, type AnnotationFileLimits } from './parse-common.js';

interface CocoImage {
  fileName: string;
  width: number | null;
  height: number | null;
}

export function parseCoco(bytes: Buffer, limits: Partial<AnnotationFileLimits> = {}): ParsedAnnotations {
  const { maxRows } = annotationLimits(limits);
  const document = parseJson(bytes);
  const annotations = document['annotations'];
  const imageList = document['images'];
  if (!Array.isArray(imageList)) throw new AnnotationFileError("COCO file has no 'images' array");
  if (!Array.isArray(annotations)) throw new AnnotationFileError("COCO file has no 'annotations' array");
  const categoryList = document['categories'] ?? [];
  if (!Array.isArray(categoryList)) throw new AnnotationFileError("COCO file's 'categories' is not an array");
  if (annotations.length > maxRows) throw tooManyRows('The COCO file', maxRows);

  const problems: AnnotationProblem[] = [];
  const images = readImages(imageList, problems);
  const categories = readCategories(categoryList, problems);
  const records: AnnotationRecord[] = [];
  annotations.forEach((annotation: unknown, index) => {
    const location = `annotations[${index}]`;
    const result = readAnnotation(annotation, images, categories);
    if ('record' in result) records.push({ location, ...result.record });
    else problems.push({ location, fileName: result.fileName, reason: result.reasons.join('; ') });
  });
  return { format: 'coco', records, problems, rowCount: annotations.length };
}

function parseJson(bytes: Buffer): Record<string, unknown> {
  let text = bytes.toString('utf8');
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new AnnotationFileError(`COCO file is not valid JSON: ${reason}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AnnotationFileError("COCO file must be a JSON object with 'images' and 'annotations' arrays");
  }
  return value as Record<string, unknown>;
}

/** COCO ids are numbers; a string id is matched by its text (so 7 and "7" are the same image). */
function idOf(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  return null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positiveOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : null;
}

function readImages(list: unknown[], problems: AnnotationProblem[]): Map<string, CocoImage> {
  const images = new Map<string, CocoImage>();
  list.forEach((image, index) => {
    const location = `images[${index}]`;
    if (!isObject(image)) {
      problems.push({ location, fileName: null, reason: 'image entry is not an object' });
      return;
    }
    const fileName = typeof image['file_name'] === 'string' ? image['file_name'].trim() : '';
    const id = idOf(image['id']);
    const reasons: string[] = [];
    if (id === null) reasons.push(`image has no usable id (${shown(image['id'])})`);
    if (fileName === '') reasons.push('image has no file_name');
    if (id !== null && images.has(id)) reasons.push(`image id ${id} is listed twice`);
    if (reasons.length > 0) {
      problems.push({ location, fileName: fileName || null, reason: reasons.join('; ') });
      return;
    }
    images.set(id as string, { fileName, width: positiveOrNull(image['width']), height: positiveOrNull(image['height']) });
  });
  return images;
}

function readCategories(list: unknown[], problems: AnnotationProblem[]): Map<string, string> {
  const categories = new Map<string, string>();
  list.forEach((category, index) => {
    const location = `categories[${index}]`;
    if (!isObject(category)) {
      problems.push({ location, fileName: null, reason: 'category entry is not an object' });
      return;
    }
    const id = idOf(category['id']);
    const name = typeof category['name'] === 'string' ? category['name'].trim() : '';
    const reasons: string[] = [];
    if (id === null) reasons.push(`category has no usable id (${shown(category['id'])})`);
    if (name === '') reasons.push('category has no name');
    if (id !== null && categories.has(id)) reasons.push(`category id ${id} is listed twice`);
    if (reasons.length > 0) {
      problems.push({ location, fileName: null, reason: reasons.join('; ') });
      return;
    }
    categories.set(id as string, name);
  });
  return categories;
}

type AnnotationResult =
  | { record: Omit<AnnotationRecord, 'location'> }
  | { fileName: string | null; reasons: string[] };

function readAnnotation(annotation: unknown, images: Map<string, CocoImage>, categories: Map<string, string>): AnnotationResult {
  if (!isObject(annotation)) return { fileName: null, reasons: ['annotation is not an object'] };
  const reasons: string[] = [];

  const imageId = idOf(annotation['image_id']);
  const image = imageId === null ? undefined : images.get(imageId);
  if (imageId === null) reasons.push('annotation has no image_id');
  else if (!image) reasons.push(`unknown image_id ${imageId}`);

  let label: string | null = null;
  const categoryValue = annotation['category_id'];
  if (categoryValue !== undefined && categoryValue !== null) {
    const categoryId = idOf(categoryValue);
    const name = categoryId === null ? undefined : categories.get(categoryId);
    if (name === undefined) reasons.push(`unknown category_id ${categoryId ?? shown(categoryValue)}`);
    else label = name;
  }

  let box: AnnotationRecord['box'] = null;
  const bboxValue = annotation['bbox'];
  if (bboxValue !== undefined && bboxValue !== null) {
    if (!Array.isArray(bboxValue) || bboxValue.length !== 4 || !bboxValue.every((n) => typeof n === 'number' && Number.isFinite(n))) {
      reasons.push(`bbox ${shown(bboxValue)} is not 4 numbers [x, y, width, height]`);
    } else {
      const [x, y, width, height] = bboxValue as [number, number, number, number];
      const fitted = fitBox({ x, y, width, height }, image?.width ?? null, image?.height ?? null, PX_EDGE_TOLERANCE);
      if ('problem' in fitted) reasons.push(fitted.problem);
      else box = { ...fitted.box, units: 'px' };
    }
  }

  let caption: string | null = null;
  const captionValue = annotation['caption'];
  if (captionValue !== undefined && captionValue !== null) {
    if (typeof captionValue !== 'string') reasons.push(`caption ${shown(captionValue)} is not text`);
    else if (captionValue.trim() === '') reasons.push('caption is empty');
    else caption = captionValue.trim();
  }

  let confidence: number | null = null;
  const scoreValue = annotation['score'];
  if (scoreValue !== undefined && scoreValue !== null) {
    if (typeof scoreValue !== 'number' || !Number.isFinite(scoreValue)) reasons.push(`score ${shown(scoreValue)} is not a number`);
    else {
      const problem = confidenceProblem(scoreValue, 'score');
      if (problem) reasons.push(problem);
      else confidence = scoreValue;
    }
  }

  const hasContent = [categoryValue, bboxValue, captionValue].some((value) => value !== undefined && value !== null);
  if (!hasContent) reasons.push('annotation has no category_id, bbox or caption');

  const fileName = image?.fileName ?? null;
  if (reasons.length > 0 || fileName === null) return { fileName, reasons };
  return { record: { fileName, stemOnly: false, label, box, caption, confidence, source: null } };
}
