import { useState } from 'react';
import { api, type Dataset } from '../api';
import { BUSY, blockers, plural } from '../format';
import { messageOf, useAsync, usePolling, type AsyncState } from '../hooks';
import { Link } from '../router';
import { AddMediaDialog } from './AddMediaDialog';
import { ExportDialog } from './ExportDialog';
import { ImportAnnotationsDialog } from './ImportAnnotationsDialog';
import { ShareDialog } from './ShareDialog';
import { ErrorBanner, GuardedButton, ProgressBar, StatusBadge } from './ui';

/** The dataset, kept fresh while it changes by itself (INDEXING, READ ONLY). */
export function useDataset(id: string): AsyncState<Dataset> & { pollError: string | null } {
  const state = useAsync((signal) => api.dataset(id, signal), [id]);
  const busy = state.data ? BUSY.has(state.data.status_new) : false;
  const pollError = usePolling(async (signal) => state.setData(await api.dataset(id, signal)), busy, 1000);
  return { ...state, pollError };
}

type Tab = 'data' | 'duplicates' | 'media';

/** Name, status and progress, the page tabs, and the actions (each disabled with its reason when the state forbids it). */
export function DatasetHeader({ dataset, tab, onChanged }: { dataset: Dataset; tab: Tab; onChanged: () => void }) {
  const [dialog, setDialog] = useState<'share' | 'export' | 'add' | 'annotations' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reindexing, setReindexing] = useState(false);
  const tasks = useAsync((signal) => api.tasks(dataset.id, signal), [dataset.id, dataset.status_new]);
  const lastTask = tasks.data?.tasks[0];

  const reindex = async () => {
    setReindexing(true);
    setError(null);
    try {
      await api.reindex(dataset.id);
      onChanged();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setReindexing(false);
    }
  };

  const reasons = [
    ['Add media', blockers.addMedia(dataset)],
    ['Reindex', blockers.reindex(dataset)],
    ['Import annotations', blockers.importAnnotations(dataset)],
    ['Export', blockers.export(dataset)],
  ].filter(([, r]) => r !== null) as [string, string][];

  return (
    <header className="dataset-header">
      <div className="dataset-header-top">
        <div className="dataset-title">
          <Link to="/datasets" className="muted">
            Datasets
          </Link>
          <span className="muted">/</span>
          <h1>{dataset.display_name}</h1>
          <StatusBadge status={dataset.status_new} />
          <span className="muted small-text">
            {plural(dataset.n_images, 'image')}
            {dataset.n_videos > 0 && ` · ${plural(dataset.n_videos, 'video')}`} · your role: {dataset.role}
          </span>
        </div>
        <nav className="tabs" aria-label="Dataset pages">
          <Link to={`/dataset/${dataset.id}/data`} aria-current={tab === 'data' ? 'page' : undefined}>
            Explore
          </Link>
          <Link to={`/dataset/${dataset.id}/duplicates`} aria-current={tab === 'duplicates' ? 'page' : undefined}>
            Duplicates
          </Link>
        </nav>
        <div className="actions">
          <button type="button" onClick={() => setDialog('share')}>
            Share
          </button>
          <GuardedButton reason={blockers.export(dataset)} onClick={() => setDialog('export')}>
            Export
          </GuardedButton>
          <GuardedButton reason={blockers.addMedia(dataset)} onClick={() => setDialog('add')}>
            Add media
          </GuardedButton>
          <GuardedButton reason={reindexing ? 'Starting…' : blockers.reindex(dataset)} onClick={reindex}>
            Reindex
          </GuardedButton>
          <GuardedButton reason={blockers.importAnnotations(dataset)} onClick={() => setDialog('annotations')}>
            Import annotations
          </GuardedButton>
        </div>
      </div>
      {BUSY.has(dataset.status_new) && (
        <ProgressBar value={dataset.progress} label={dataset.status_new === 'INDEXING' ? 'Indexing' : 'Adding media (browsing still works)'} />
      )}
      {dataset.status_new === 'ERROR' && <div className="banner banner-error">Processing failed: {dataset.fatal_error_msg ?? 'no reason recorded'}</div>}
      {dataset.status_new === 'PARTIAL INDEX' && (
        <div className="hint">New media are visible; duplicates, outliers and uniqueness that involve them come with a reindex.</div>
      )}
      {lastTask && (lastTask.status === 'FAILED' || lastTask.status === 'ABORTED') && (
        <div className="banner banner-warn">
          The last {lastTask.task_type.toLowerCase().replace('_', ' ')} {lastTask.status.toLowerCase()}: {lastTask.error_message ?? lastTask.status_message ?? 'no reason recorded'}
        </div>
      )}
      {reasons.length > 0 && (
        <details className="reasons">
          <summary>Why are some actions unavailable?</summary>
          <ul className="compact">
            {reasons.map(([what, why]) => (
              <li key={what}>
                <strong>{what}:</strong> {why}
              </li>
            ))}
          </ul>
        </details>
      )}
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {dialog === 'share' && <ShareDialog dataset={dataset} onClose={() => setDialog(null)} />}
      {dialog === 'export' && <ExportDialog dataset={dataset} onClose={() => setDialog(null)} />}
      {dialog === 'annotations' && <ImportAnnotationsDialog dataset={dataset} onClose={() => setDialog(null)} onImported={onChanged} />}
      {dialog === 'add' && (
        <AddMediaDialog
          dataset={dataset}
          onClose={() => setDialog(null)}
          onStarted={() => {
            setDialog(null);
            onChanged();
          }}
        />
      )}
    </header>
  );
}
