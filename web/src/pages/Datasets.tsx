import { useState } from 'react';
import { api, type Dataset } from '../api';
import { CreateDatasetDialog } from '../components/CreateDatasetDialog';
import { ErrorBanner, ProgressBar, Spinner, StatusBadge } from '../components/ui';
import { BUSY, formatDate, plural } from '../format';
import { messageOf, useAsync, usePolling } from '../hooks';
import { Link } from '../router';

export function datasetCounts(d: Dataset): string {
  const parts = [plural(d.n_images, 'image')];
  if (d.n_videos > 0) parts.push(`${plural(d.n_videos, 'video')} (${plural(d.n_video_frames, 'frame')})`);
  if (d.n_failed_files > 0) parts.push(`${plural(d.n_failed_files, 'file')} failed`);
  return parts.join(' · ');
}

/** The datasets the user can see, with live progress; create and delete. */
export function DatasetsPage() {
  const list = useAsync((signal) => api.datasets(signal), []);
  const [creating, setCreating] = useState(false);
  const datasets = list.data ?? [];
  const busy = datasets.some((d) => BUSY.has(d.status_new));
  const pollError = usePolling(async (signal) => list.setData(await api.datasets(signal)), busy, 1000);

  return (
    <main className="page">
      <div className="page-header">
        <h1>Datasets</h1>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          New dataset
        </button>
      </div>
      <ErrorBanner error={list.error} onRetry={list.reload} />
      <ErrorBanner error={pollError && `Refreshing the progress failed: ${pollError}`} />
      {list.loading && !list.data && <Spinner />}
      {list.data && datasets.length === 0 && (
        <div className="empty">
          <p>No datasets yet.</p>
          <p className="muted">Create one from a folder of images or videos, or from an S3 location.</p>
        </div>
      )}
      <div className="dataset-list">
        {datasets.map((d) => (
          <DatasetRow key={d.id} dataset={d} onDeleted={() => list.setData(datasets.filter((x) => x.id !== d.id))} />
        ))}
      </div>
      {creating && (
        <CreateDatasetDialog
          onClose={() => setCreating(false)}
          onCreated={() => {
            setCreating(false);
            list.reload();
          }}
        />
      )}
    </main>
  );
}

function DatasetRow({ dataset: d, onDeleted }: { dataset: Dataset; onDeleted: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const remove = async () => {
    setDeleting(true);
    setError(null);
    try {
      await api.deleteDataset(d.id);
      onDeleted();
    } catch (err) {
      setError(messageOf(err));
      setDeleting(false);
      setConfirming(false);
    }
  };

  return (
    <article className="card dataset-row" data-testid="dataset-row" data-dataset-id={d.id} aria-label={d.display_name}>
      <div className="dataset-row-main">
        <div className="dataset-title">
          <Link to={`/dataset/${d.id}/data`} className="dataset-name">
            {d.display_name}
          </Link>
          <StatusBadge status={d.status_new} />
        </div>
        {BUSY.has(d.status_new) && <ProgressBar value={d.progress} label={d.status_new === 'INDEXING' ? 'Indexing' : 'Adding media'} />}
        <div className="muted">{datasetCounts(d)}</div>
        <div className="muted small-text">
          Owner {d.owner_email ?? d.owned_by} · your role: <strong>{d.role}</strong> · {d.source_type} · created {formatDate(d.created_at)}
        </div>
        {d.status_new === 'ERROR' && d.fatal_error_msg && <div className="banner banner-error">{d.fatal_error_msg}</div>}
        {d.status_new === 'DRAFT' && <div className="hint">Draft: files were not processed yet.</div>}
        <ErrorBanner error={error} onDismiss={() => setError(null)} />
      </div>
      <div className="dataset-row-actions">
        <Link to={`/dataset/${d.id}/data`} className="button">
          Open
        </Link>
        {d.role === 'owner' &&
          (confirming ? (
            <>
              <button type="button" className="danger" disabled={deleting} onClick={remove}>
                {deleting ? 'Deleting…' : 'Confirm delete'}
              </button>
              <button type="button" disabled={deleting} onClick={() => setConfirming(false)}>
                Cancel
              </button>
            </>
          ) : (
            <button type="button" onClick={() => setConfirming(true)}>
              Delete
            </button>
          ))}
      </div>
    </article>
  );
}
