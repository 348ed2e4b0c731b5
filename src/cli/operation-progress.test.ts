import { describe, expect, it } from 'vitest';
import type { DatasetStatus } from '../domain/dataset-status.js';
import {
  assessOperation,
  ProgressReporter,
  renderProgressLine,
  watchOperation,
  type OperationSnapshot,
  type ProgressOutput,
  type TaskSnapshot,
} from './operation-progress.js';

const state = (status: string, progress: number, message = '') => ({ status, progress, message });

function collector(columns?: number): ProgressOutput & { text: string } {
  const out = {
    text: '',
    columns,
    write(chunk: string) {
      out.text += chunk;
      return true;
    },
  };
  return out;
}

describe('renderProgressLine', () => {
  it('draws a 20-character bar with a right-aligned percentage on a TTY', () => {
    expect(renderProgressLine(state('INDEXING', 45, 'Processed 12 of 30 files'), { tty: true })).toBe(
      '[#########-----------]  45%  INDEXING  Processed 12 of 30 files',
    );
    expect(renderProgressLine(state('READY', 100), { tty: true })).toBe('[####################] 100%  READY');
    expect(renderProgressLine(state('INDEXING', 0, 'Queued'), { tty: true })).toBe('[--------------------]   0%  INDEXING  Queued');
  });

  it('honours the bar width and clamps the percentage', () => {
    expect(renderProgressLine(state('INDEXING', 50), { tty: true, barWidth: 10 })).toBe('[#####-----]  50%  INDEXING');
    expect(renderProgressLine(state('INDEXING', 250), { tty: true, barWidth: 4 })).toBe('[####] 100%  INDEXING');
    expect(renderProgressLine(state('INDEXING', -3), { tty: true, barWidth: 4 })).toBe('[----]   0%  INDEXING');
    expect(renderProgressLine(state('INDEXING', Number.NaN), { tty: false })).toBe('INDEXING 0%');
    expect(renderProgressLine(state('INDEXING', 33.6), { tty: false })).toBe('INDEXING 34%');
  });

  it('cuts a TTY line to the terminal width so it never wraps', () => {
    const line = renderProgressLine(state('INDEXING', 45, 'Processed 12 of 30 files'), { tty: true, columns: 30 });
    expect(line).toHaveLength(29);
    expect(line.startsWith('[#########-----------]  45%')).toBe(true);
  });

  it('prints a plain line without a bar when not on a TTY', () => {
    expect(renderProgressLine(state('INDEXING', 45, 'Processed 12 of 30 files'), { tty: false })).toBe('INDEXING 45% Processed 12 of 30 files');
    expect(renderProgressLine(state('PARTIAL INDEX', 100, '  '), { tty: false })).toBe('PARTIAL INDEX 100%');
  });
});

describe('ProgressReporter', () => {
  it('prints a plain line only when status, progress or message changes', () => {
    const out = collector();
    const reporter = new ProgressReporter(out, false);
    reporter.update(state('INDEXING', 0, 'Queued'));
    reporter.update(state('INDEXING', 0, 'Queued'));
    reporter.update(state('INDEXING', 40, 'Processed 8 of 20 files'));
    reporter.update(state('INDEXING', 40, 'Processed 8 of 20 files'));
    reporter.update(state('READY', 100, 'Processed 20 files'));
    reporter.finish();
    expect(out.text).toBe('INDEXING 0% Queued\nINDEXING 40% Processed 8 of 20 files\nREADY 100% Processed 20 files\n');
  });

  it('redraws one line on a TTY and ends it with a newline', () => {
    const out = collector();
    const reporter = new ProgressReporter(out, true);
    reporter.update(state('INDEXING', 50, 'half'));
    reporter.update(state('INDEXING', 50, 'half'));
    reporter.update(state('READY', 100));
    reporter.finish();
    expect(out.text).toBe('\r[##########----------]  50%  INDEXING  half\x1b[K\r[####################] 100%  READY\x1b[K\n');
    expect(out.text.split('\n')).toHaveLength(2);
  });

  it('writes nothing on finish when nothing was drawn', () => {
    const out = collector();
    new ProgressReporter(out, true).finish();
    expect(out.text).toBe('');
  });
});

const T0 = '2024-01-01T00:00:00.000Z';
const T1 = '2024-01-01T00:00:05.000Z';

function task(overrides: Partial<TaskSnapshot> = {}): TaskSnapshot {
  return { id: 'op', status: 'RUNNING', progress: 10, status_message: 'Processing media', error_message: null, created_at: T0, ...overrides };
}

function snapshot(status: DatasetStatus, overrides: Partial<OperationSnapshot> = {}): OperationSnapshot {
  return { dataset: { status, progress: 5, fatal_error_msg: null }, lockHolder: undefined, latestTask: undefined, operationTask: undefined, ...overrides };
}

const READY: ReadonlySet<DatasetStatus> = new Set(['READY']);
const PARTIAL: ReadonlySet<DatasetStatus> = new Set(['PARTIAL INDEX']);

describe('assessOperation', () => {
  it('is not done while a task holds the lock, even once the status is reached', () => {
    const running = task();
    const result = assessOperation(snapshot('READY', { lockHolder: running, latestTask: running, operationTask: running }), READY);
    expect(result).toEqual({ done: false, state: { status: 'READY', progress: 10, message: 'Processing media' } });
  });

  it('succeeds when the status is reached and the lock is free', () => {
    const done = task({ status: 'COMPLETED', progress: 100, status_message: 'Processed 20 files' });
    const result = assessOperation(snapshot('READY', { latestTask: done, operationTask: done }), READY);
    expect(result.done && result.outcome).toEqual({ ok: true, status: 'READY', message: 'Processed 20 files' });
    // A finished task's progress is not shown: the dataset's is.
    expect(result.state.progress).toBe(5);
  });

  it('fails at once with the reason when the dataset is ERROR', () => {
    const result = assessOperation(
      { ...snapshot('ERROR'), dataset: { status: 'ERROR', progress: 0, fatal_error_msg: 'Processing failed: disk full' }, lockHolder: task() },
      READY,
    );
    expect(result.done && result.outcome).toEqual({ ok: false, status: 'ERROR', message: 'Processing failed: disk full' });
  });

  it('fails with the task reason when add_media failed and the dataset went back to a reachable status', () => {
    const failed = task({ status: 'FAILED', error_message: 'Add media failed: bucket gone' });
    const result = assessOperation(snapshot('PARTIAL INDEX', { latestTask: failed, operationTask: failed }), PARTIAL);
    expect(result.done && result.outcome).toEqual({ ok: false, status: 'PARTIAL INDEX', message: 'Add media failed: bucket gone' });
  });

  it('follows the REINDEX that auto_reindex started, and reports its failure', () => {
    const addition = task({ status: 'COMPLETED', progress: 100, status_message: 'Added 5 files' });
    const reindex = task({ id: 'reindex', status: 'RUNNING', progress: 50, status_message: 'Indexing', created_at: T1 });
    const running = assessOperation(snapshot('INDEXING', { lockHolder: reindex, latestTask: reindex, operationTask: addition }), READY);
    expect(running).toEqual({ done: false, state: { status: 'INDEXING', progress: 50, message: 'Indexing' } });

    const failed = { ...reindex, status: 'FAILED' as const, error_message: 'Reindex failed: out of memory' };
    const result = assessOperation(snapshot('PARTIAL INDEX', { latestTask: failed, operationTask: addition }), READY);
    expect(result.done && result.outcome).toEqual({ ok: false, status: 'PARTIAL INDEX', message: 'Reindex failed: out of memory' });
  });

  it('ignores failed tasks older than the operation', () => {
    const old = task({ id: 'old', status: 'FAILED', error_message: 'old failure', created_at: '2023-01-01T00:00:00.000Z' });
    const mine = task({ status: 'COMPLETED', status_message: 'Processed 3 files' });
    const result = assessOperation(snapshot('READY', { latestTask: old, operationTask: mine }), READY);
    expect(result.done && result.outcome).toEqual({ ok: true, status: 'READY', message: 'Processed 3 files' });
  });

  it('keeps waiting while the dataset is busy without a lock holder, and fails on an unexpected idle status', () => {
    const done = task({ status: 'COMPLETED' });
    expect(assessOperation(snapshot('INDEXING', { latestTask: done, operationTask: done }), READY).done).toBe(false);
    const result = assessOperation(snapshot('PARTIAL INDEX', { latestTask: done, operationTask: done }), READY);
    expect(result.done && result.outcome.ok).toBe(false);
  });

  it('reports a deleted dataset', () => {
    const result = assessOperation({ ...snapshot('READY'), dataset: undefined }, READY);
    expect(result.done && result.outcome).toEqual({ ok: false, status: 'DELETED', message: 'the dataset was deleted' });
  });
});

describe('watchOperation', () => {
  it('polls until done, printing each change once', async () => {
    const op = (overrides: Partial<TaskSnapshot>) => task(overrides);
    const frames: OperationSnapshot[] = [
      snapshot('INDEXING', { lockHolder: op({ status: 'INITIALIZING', progress: 0, status_message: 'Queued' }) }),
      snapshot('INDEXING', { lockHolder: op({ status: 'INITIALIZING', progress: 0, status_message: 'Queued' }) }),
      snapshot('INDEXING', { lockHolder: op({ progress: 40, status_message: 'Processed 8 of 20 files' }) }),
      snapshot('INDEXING', { lockHolder: op({ progress: 40, status_message: 'Processed 8 of 20 files' }) }),
      {
        ...snapshot('READY'),
        dataset: { status: 'READY', progress: 100, fatal_error_msg: null },
        latestTask: op({ status: 'COMPLETED', progress: 100, status_message: 'Processed 20 files' }),
        operationTask: op({ status: 'COMPLETED', progress: 100, status_message: 'Processed 20 files' }),
      },
    ];
    let calls = 0;
    const out = collector();
    const outcome = await watchOperation(async () => frames[Math.min(calls++, frames.length - 1)]!, { until: READY, out, tty: false, pollMs: 1 });
    expect(outcome).toEqual({ ok: true, status: 'READY', message: 'Processed 20 files' });
    expect(calls).toBe(5);
    expect(out.text).toBe('INDEXING 0% Queued\nINDEXING 40% Processed 8 of 20 files\nREADY 100% Processed 20 files\n');
  });

  it('finishes the TTY line even when the probe throws', async () => {
    const out = collector();
    let calls = 0;
    const probe = async () => {
      if (calls++ > 0) throw new Error('database closed');
      return snapshot('INDEXING', { lockHolder: task() });
    };
    await expect(watchOperation(probe, { until: READY, out, tty: true, pollMs: 1 })).rejects.toThrow('database closed');
    expect(out.text.endsWith('\n')).toBe(true);
  });
});
