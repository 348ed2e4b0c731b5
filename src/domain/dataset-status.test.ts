import { describe, expect, it } from 'vitest';
import { DATASET_STATUSES, legacyStatus } from './dataset-status.js';
import { roleAtLeast } from './roles.js';

describe('legacyStatus', () => {
  it('maps status_new to the legacy status of SPEC §2', () => {
    expect(Object.fromEntries(DATASET_STATUSES.map((s) => [s, legacyStatus(s)]))).toEqual({
      DRAFT: 'NEW',
      INDEXING: 'INDEXING',
      READY: 'READY',
      'READ ONLY': 'UPDATING',
      'PARTIAL INDEX': 'PENDING_INDEX',
      ERROR: 'FATAL_ERROR',
    });
  });
});

describe('roleAtLeast', () => {
  it('orders viewer < editor < owner', () => {
    expect(roleAtLeast('owner', 'editor')).toBe(true);
    expect(roleAtLeast('editor', 'editor')).toBe(true);
    expect(roleAtLeast('viewer', 'editor')).toBe(false);
    expect(roleAtLeast('editor', 'owner')).toBe(false);
  });
});
