/**
 * YOLO txt folders: one `<image stem>.txt` per image, a line `class cx cy w h [confidence]` per
 * object (centre, width and height as fractions of the image) or a bare `class` for an image label,
 * with the class names in `classes.txt`, `obj.names` or `data.yaml`/`dataset.yaml` (`names:`).
 */
import path from 'node:path';
import {
  AnnotationFileError,
  type AnnotationProblem,
  type AnnotationRecord,
  type ParsedAnnotations,
} from './annotation-record.js';
import {
  annotationLimits,
  confidenceProblem,
  fitBox,
  numberOf,
  RELATIVE_EDGE_TOLERANCE,
  shown,
  tooManyRows,
  type AnnotationFileLimits,
} from './parse-common.js';

export interface YoloFile {
  /** '/'-separated, relative to the uploaded folder or archive. */
  path: string;
  bytes: Buffer;
}

/** Files that name the classes, most preferred first. */
export const YOLO_CLASS_FILES: readonly string[] = ['classes.txt', 'obj.names', 'data.yaml', 'dataset.yaml', 'data.yml', 'dataset.yml'];

/** Lists of images or splits that sit beside YOLO labels and are not labels. */
const NON_LABEL_TXT = new Set(['classes.txt', 'train.txt', 'val.txt', 'valid.txt', 'test.txt', 'readme.txt', 'license.txt']);

/** The class names, by id (a yaml map may skip ids). */
export interface YoloClasses {
  /** Where they came from, for messages: `classes.txt`, `data/data.yaml`. */
  file: string;
  names: Map<number, string>;
}

export function parseYolo(files: readonly YoloFile[], limits: Partial<AnnotationFileLimits> = {}): ParsedAnnotations {
  const { maxRows } = annotationLimits(limits);
  const classes = findClasses(files);
  const root = path.posix.dirname(classes.file);
  const labelFiles = labelFilesOf(files);
  if (labelFiles.length === 0) {
    throw new AnnotationFileError(`The YOLO folder has class names (${classes.file}) but no label .txt files`);
  }
  const records: AnnotationRecord[] = [];
  const problems: AnnotationProblem[] = [];
  let rowCount = 0;
  for (const file of labelFiles) {
    const fileName = mediaNameOf(file.path, root);
    const lines = textOf(file.bytes).split('\n');
    lines.forEach((rawLine, index) => {
      const line = rawLine.trim();
      if (line === '') return;
      rowCount += 1;
      if (rowCount > maxRows) throw tooManyRows('The YOLO folder', maxRows);
      const location = `${file.path} line ${index + 1}`;
      const result = readLine(line, classes);
      if (typeof result === 'string') problems.push({ location, fileName, reason: result });
      else records.push({ location, fileName, stemOnly: true, caption: null, source: null, ...result });
    });
  }
  return { format: 'yolo', records, problems, rowCount };
}

/** Whether a file, by its path, is part of a YOLO folder (labels, class names); everything else is passed over. */
export function isYoloFile(filePath: string): boolean {
  const base = path.posix.basename(filePath).toLowerCase();
  return base.endsWith('.txt') || YOLO_CLASS_FILES.includes(base);
}

function textOf(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

function depthOf(filePath: string): number {
  return filePath.split('/').length;
}

/** The shallowest class-names file, by preference at equal depth. */
function findClasses(files: readonly YoloFile[]): YoloClasses {
  const candidates = files
    .filter((file) => YOLO_CLASS_FILES.includes(path.posix.basename(file.path).toLowerCase()))
    .sort(
      (a, b) =>
        depthOf(a.path) - depthOf(b.path) ||
        YOLO_CLASS_FILES.indexOf(path.posix.basename(a.path).toLowerCase()) -
          YOLO_CLASS_FILES.indexOf(path.posix.basename(b.path).toLowerCase()),
    );
  const chosen = candidates[0];
  if (!chosen) {
    throw new AnnotationFileError(
      'YOLO labels need their class names: add classes.txt (one name per line, line 1 = class 0), obj.names, or data.yaml with names:',
    );
  }
  const base = path.posix.basename(chosen.path).toLowerCase();
  const names = base.endsWith('.yaml') || base.endsWith('.yml') ? yamlNames(textOf(chosen.bytes), chosen.path) : lineNames(textOf(chosen.bytes), chosen.path);
  if (names.size === 0) throw new AnnotationFileError(`${chosen.path} names no classes`);
  return { file: chosen.path, names };
}

/** classes.txt / obj.names: line n (from 0) names class n; trailing blank lines are ignored, blank lines between names are not. */
function lineNames(text: string, file: string): Map<number, string> {
  const lines = text.split('\n').map((line) => line.trim());
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  const names = new Map<number, string>();
  lines.forEach((line, index) => {
    if (line === '') throw new AnnotationFileError(`${file} line ${index + 1} is blank; each line names the class of its number (from 0)`);
    names.set(index, line);
  });
  return names;
}

/**
 * The top-level `names:` of a data.yaml, in the three forms YOLO tools write: a flow list
 * (`names: [cat, 'dog']`, possibly over several lines), a block list (`- cat`) or a map
 * (`0: cat`, block or flow). Nothing else of YAML is read.
 */
export function yamlNames(text: string, file = 'data.yaml'): Map<number, string> {
  const lines = text.split('\n').map((line) => line.replace(/\r$/, ''));
  const start = lines.findIndex((line) => /^names\s*:/.test(line));
  if (start === -1) throw new AnnotationFileError(`${file} has no top-level names: key`);
  const inline = stripComment((lines[start] as string).replace(/^names\s*:/, '')).trim();
  if (inline.startsWith('[') || inline.startsWith('{')) {
    const close = inline.startsWith('[') ? ']' : '}';
    let flow = inline;
    for (let next = start + 1; !flowClosed(flow, close) && next < lines.length; next += 1) flow += ` ${stripComment(lines[next] as string).trim()}`;
    if (!flowClosed(flow, close)) throw new AnnotationFileError(`${file}: the names: list is never closed with '${close}'`);
    const items = splitFlow(flow.slice(1, flow.lastIndexOf(close)));
    return close === ']' ? listNames(items, file) : mapNames(items, file);
  }
  if (inline !== '') throw new AnnotationFileError(`${file}: names: must be a list or a map of class names, not ${shown(inline)}`);
  const block: string[] = [];
  for (let next = start + 1; next < lines.length; next += 1) {
    const line = lines[next] as string;
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    if (!/^\s/.test(line) && !line.startsWith('-')) break; // the next top-level key
    block.push(stripComment(line).trim());
  }
  if (block.every((item) => item.startsWith('-'))) return listNames(block.map((item) => item.slice(1).trim()), file);
  return mapNames(block, file);
}

function listNames(items: string[], file: string): Map<number, string> {
  const names = new Map<number, string>();
  items.forEach((item, index) => {
    const name = unquote(item);
    if (name === '') throw new AnnotationFileError(`${file}: class ${index} in names: is blank`);
    names.set(index, name);
  });
  return names;
}

function mapNames(items: string[], file: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const item of items) {
    const match = /^['"]?(\d+)['"]?\s*:\s*(.*)$/.exec(item);
    const name = match ? unquote(match[2] as string) : '';
    if (!match || name === '') throw new AnnotationFileError(`${file}: names: entry ${shown(item)} is not 'id: name'`);
    names.set(Number(match[1]), name);
  }
  return names;
}

/** Whether a flow collection's closing bracket has been seen outside quotes. */
function flowClosed(flow: string, close: string): boolean {
  let quote: string | null = null;
  for (const char of flow) {
    if (quote) {
      if (char === quote) quote = null;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === close) return true;
  }
  return false;
}

/** Splits `a, 'b, c', "d"` at commas outside quotes. */
function splitFlow(body: string): string[] {
  const items: string[] = [];
  let current = '';
  let quote: string | null = null;
  for (const char of body) {
    if (quote) {
      if (char === quote) quote = null;
      current += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      current += char;
    } else if (char === ',') {
      items.push(current.trim());
      current = '';
    } else current += char;
  }
  if (current.trim() !== '') items.push(current.trim());
  return items;
}

/** Drops a `# comment` that is not inside quotes. */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let index = 0; index < line.length; index += 1) {
    const char = line[index] as string;
    if (quote) {
      if (char === quote) quote = null;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === '#' && (index === 0 || /\s/.test(line[index - 1] as string))) return line.slice(0, index);
  }
  return line;
}

function unquote(value: string): string {
  const trimmed = value.trim();
  if (trimmed.length >= 2 && (trimmed[0] === '"' || trimmed[0] === "'") && trimmed.at(-1) === trimmed[0]) {
    const inner = trimmed.slice(1, -1);
    return trimmed[0] === "'" ? inner.replaceAll("''", "'") : inner.replace(/\\(["\\])/g, '$1');
  }
  return trimmed;
}

/**
 * The .txt files that hold labels: those under a `labels` folder when there is one, else every
 * .txt but class-name files and split lists (train.txt, val.txt, …).
 */
function labelFilesOf(files: readonly YoloFile[]): YoloFile[] {
  const texts = files.filter((file) => {
    const base = path.posix.basename(file.path).toLowerCase();
    return base.endsWith('.txt') && !NON_LABEL_TXT.has(base);
  });
  const underLabels = texts.filter((file) => file.path.split('/').slice(0, -1).includes('labels'));
  return (underLabels.length > 0 ? underLabels : texts).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The media a label file names: its path from the class-names file's folder without `.txt`, a
 * leading `labels` folder dropped (`labels/train/cat1.txt` → `train/cat1`, which ends both
 * `train/cat1.jpg` and Ultralytics' `images/train/cat1.jpg`) and an inner one read as `images`, as
 * YOLO tools pair them (Roboflow's `train/labels/cat1.txt` → `train/images/cat1`).
 */
function mediaNameOf(filePath: string, root: string): string {
  const relative = root !== '.' && filePath.startsWith(`${root}/`) ? filePath.slice(root.length + 1) : filePath;
  const segments = relative.slice(0, -'.txt'.length).split('/');
  const labels = segments.indexOf('labels');
  if (labels === 0 && segments.length > 1) segments.shift();
  else if (labels > 0 && labels < segments.length - 1) segments[labels] = 'images';
  return segments.join('/');
}

type LineResult = Pick<AnnotationRecord, 'label' | 'box' | 'confidence'> | string;

function readLine(line: string, classes: YoloClasses): LineResult {
  const fields = line.split(/\s+/);
  if (fields.length !== 1 && fields.length !== 5 && fields.length !== 6) {
    const polygon = fields.length >= 7 && fields.length % 2 === 1 ? ' (a segmentation polygon? only boxes are read)' : '';
    return `${fields.length} fields; expected 'class cx cy w h [confidence]' or a bare class${polygon}`;
  }
  const [classField, ...numberFields] = fields as [string, ...string[]];
  if (!/^\d+$/.test(classField)) return `class id ${shown(classField)} is not a whole number`;
  const classId = Number(classField);
  const label = classes.names.get(classId);
  if (label === undefined) {
    const ids = [...classes.names.keys()];
    return `class id ${classId} is out of range (${classes.file} names classes ${Math.min(...ids)}–${Math.max(...ids)})`;
  }
  if (numberFields.length === 0) return { label, box: null, confidence: null };

  const values: number[] = [];
  for (const field of numberFields) {
    const value = numberOf(field);
    if (value === null) return `non-numeric value ${shown(field)}`;
    values.push(value);
  }
  const [cx, cy, width, height, confidence] = values as [number, number, number, number, number | undefined];
  const outside = ['cx', 'cy', 'w', 'h'].flatMap((name, index) => {
    const value = values[index] as number;
    return value < 0 || value > 1 ? [`${name} ${value}`] : [];
  });
  if (outside.length > 0) return `${outside.join(', ')} outside [0, 1] (YOLO boxes are fractions of the image)`;
  if (confidence !== undefined) {
    const problem = confidenceProblem(confidence, 'confidence');
    if (problem) return problem;
  }
  const fitted = fitBox({ x: cx - width / 2, y: cy - height / 2, width, height }, 1, 1, RELATIVE_EDGE_TOLERANCE);
  if ('problem' in fitted) return fitted.problem;
  return { label, box: { ...fitted.box, units: 'relative' }, confidence: confidence ?? null };
}
