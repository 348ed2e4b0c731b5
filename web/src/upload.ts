/** Picking files (dropped folders included) and uploading them in batches, as the API takes them. */
import { upload, type UploadHandle } from './api';

export const MEDIA_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.heic', '.heif', '.mp4', '.mov', '.webm', '.mkv', '.avi'];
export const ARCHIVE_EXTENSIONS = ['.zip', '.tar', '.tar.gz', '.tgz'];

const extensionOf = (name: string) => {
  const lower = name.toLowerCase();
  if (lower.endsWith('.tar.gz')) return '.tar.gz';
  const dot = lower.lastIndexOf('.');
  return dot >= 0 ? lower.slice(dot) : '';
};

export const isMedia = (file: File) => MEDIA_EXTENSIONS.includes(extensionOf(file.name));

/** Media files to upload, and the others (left out, with their names shown). */
export function splitMedia(files: File[]): { media: File[]; skipped: string[] } {
  const media: File[] = [];
  const skipped: string[] = [];
  for (const file of files) {
    if (file.name.startsWith('.')) continue; // .DS_Store and friends
    if (isMedia(file)) media.push(file);
    else skipped.push(relativeName(file));
  }
  return { media, skipped };
}

export const relativeName = (file: File) => (file as File & { webkitRelativePath?: string }).webkitRelativePath || file.name;

/** The files of a drop, walking dropped folders (Chrome, Firefox, Safari: webkitGetAsEntry). */
export async function filesFromDrop(transfer: DataTransfer): Promise<{ files: File[]; folderName: string | null }> {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0) return { files: [...transfer.files], folderName: null };
  const files: File[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile) {
      files.push(await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      // readEntries answers in chunks (100 in Chrome) until an empty one.
      for (;;) {
        const chunk = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
        if (chunk.length === 0) break;
        for (const child of chunk) await walk(child);
      }
    }
  };
  for (const entry of entries) await walk(entry);
  const folder = entries.length === 1 && entries[0]!.isDirectory ? entries[0]!.name : null;
  return { files, folderName: folder };
}

/** Batches of at most `maxFiles` files and (unless one file is larger) `maxBytes` bytes. */
export function batches(files: File[], maxFiles = 50, maxBytes = 64 * 1024 * 1024): File[][] {
  const out: File[][] = [];
  let current: File[] = [];
  let bytes = 0;
  for (const file of files) {
    if (current.length > 0 && (current.length >= maxFiles || bytes + file.size > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(file);
    bytes += file.size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

export interface UploadProgress {
  sentBytes: number;
  totalBytes: number;
  doneFiles: number;
  totalFiles: number;
}

/**
 * Uploads every batch to `path` (multipart field `field`), two requests at a time; stops at the
 * first failure (the error says which request) and reports progress in bytes and files.
 */
export async function uploadBatches(
  path: string,
  groups: File[][],
  field: string,
  onProgress: (progress: UploadProgress) => void,
  signal?: AbortSignal,
  onBatchDone?: (group: File[]) => void,
): Promise<void> {
  const totalBytes = groups.flat().reduce((n, f) => n + f.size, 0);
  const totalFiles = groups.flat().length;
  const sent = new Array<number>(groups.length).fill(0);
  let doneFiles = 0;
  const report = () => onProgress({ sentBytes: sent.reduce((a, b) => a + b, 0), totalBytes, doneFiles, totalFiles });
  let next = 0;
  let failed: unknown = null;
  const handles = new Set<UploadHandle>();
  const abort = () => handles.forEach((h) => h.abort());
  signal?.addEventListener('abort', abort, { once: true });
  const worker = async () => {
    while (failed === null && next < groups.length && !signal?.aborted) {
      const index = next++;
      const group = groups[index]!;
      const form = new FormData();
      for (const file of group) form.append(field, file, file.name);
      const bytes = group.reduce((n, f) => n + f.size, 0);
      const handle = upload(path, form, (loaded, total) => {
        sent[index] = total > 0 ? (loaded / total) * bytes : 0;
        report();
      });
      handles.add(handle);
      try {
        await handle.promise;
        sent[index] = bytes;
        doneFiles += group.length;
        onBatchDone?.(group);
        report();
      } catch (error) {
        if (failed === null) failed = error;
        abort();
      } finally {
        handles.delete(handle);
      }
    }
  };
  report();
  await Promise.all([worker(), worker()]);
  signal?.removeEventListener('abort', abort);
  if (failed !== null) throw failed;
}
