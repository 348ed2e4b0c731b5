import type { Dataset, DatasetStatus, Role } from './api';

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return `${m}:${s < 10 ? '0' : ''}${s.toFixed(1)}`;
}

export const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** The statuses during which the dataset changes by itself (poll it). */
export const BUSY: ReadonlySet<DatasetStatus> = new Set(['INDEXING', 'READ ONLY']);

const RANK: Record<Role, number> = { viewer: 0, editor: 1, owner: 2 };
export const atLeast = (role: Role, wanted: Role) => RANK[role] >= RANK[wanted];

/** Why an operation is not possible now (null: it is), mirroring the API's rules and 403/409s. */
export const blockers = {
  addMedia(dataset: Dataset): string | null {
    if (!atLeast(dataset.role, 'editor')) return `Adding media needs the editor or owner role; yours is ${dataset.role}.`;
    if (dataset.status_new !== 'READY' && dataset.status_new !== 'PARTIAL INDEX') return `Media can be added only when the dataset is READY or PARTIAL INDEX; it is ${dataset.status_new}.`;
    return null;
  },
  reindex(dataset: Dataset): string | null {
    if (!atLeast(dataset.role, 'editor')) return `Reindexing needs the editor or owner role; yours is ${dataset.role}.`;
    if (dataset.status_new !== 'PARTIAL INDEX') return `Reindex is possible only in PARTIAL INDEX (after adding media); the dataset is ${dataset.status_new}.`;
    return null;
  },
  importAnnotations(dataset: Dataset): string | null {
    if (!atLeast(dataset.role, 'editor')) return `Importing annotations needs the editor or owner role; yours is ${dataset.role}.`;
    if (!['DRAFT', 'READY', 'PARTIAL INDEX'].includes(dataset.status_new)) return `Annotations can be imported only when the dataset is DRAFT, READY or PARTIAL INDEX and no operation runs; it is ${dataset.status_new}.`;
    return null;
  },
  editCaption(dataset: Dataset): string | null {
    if (!atLeast(dataset.role, 'editor')) return `Editing captions needs the editor or owner role; yours is ${dataset.role}.`;
    return null;
  },
  editLabels(dataset: Dataset): string | null {
    if (!atLeast(dataset.role, 'editor')) return `Editing labels needs the editor or owner role; yours is ${dataset.role}.`;
    return null;
  },
  export(dataset: Dataset): string | null {
    if (dataset.status_new !== 'READY') return `Export needs a READY dataset; it is ${dataset.status_new}.`;
    return null;
  },
  search(dataset: Dataset): string | null {
    if (!['READY', 'PARTIAL INDEX', 'READ ONLY'].includes(dataset.status_new)) return `Search needs an indexed dataset; it is ${dataset.status_new}.`;
    return null;
  },
};
