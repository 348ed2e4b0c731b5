import { useEffect, useRef, useState, type DragEvent } from 'react';
import { api } from '../api';
import { formatBytes, plural } from '../format';
import { messageOf } from '../hooks';
import { batches, filesFromDrop, MEDIA_EXTENSIONS, splitMedia, uploadBatches, type UploadProgress } from '../upload';
import { Dialog, ErrorBanner, ProgressBar } from './ui';

type Phase = 'pick' | 'creating' | 'uploading' | 'processing';

/** New dataset: drop files or a folder (uploaded in batches, then processed), or name an S3 location. */
export function CreateDatasetDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (datasetId: string) => void }) {
  const [tab, setTab] = useState<'upload' | 's3'>('upload');
  const [name, setName] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const [skipped, setSkipped] = useState<string[]>([]);
  const [dragging, setDragging] = useState(false);
  const [phase, setPhase] = useState<Phase>('pick');
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [bucketPath, setBucketPath] = useState('');
  const target = useRef<{ datasetId: string; transId: string; pending: File[][] } | null>(null);
  const abort = useRef<AbortController | null>(null);
  const folderInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    folderInput.current?.setAttribute('webkitdirectory', '');
    return () => abort.current?.abort();
  }, []);

  const choose = (picked: File[], folderName?: string | null) => {
    const { media, skipped: left } = splitMedia(picked);
    setFiles(media);
    setSkipped(left);
    setError(media.length === 0 && picked.length > 0 ? `None of the ${plural(picked.length, 'file')} is a supported image or video (${MEDIA_EXTENSIONS.join(' ')}).` : null);
    const folder = folderName ?? folderOf(picked);
    if (!name && folder) setName(folder);
    target.current = null;
  };

  const onDrop = async (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    try {
      const { files: dropped, folderName } = await filesFromDrop(event.dataTransfer);
      choose(dropped, folderName);
    } catch (err) {
      setError(`Could not read the dropped files: ${messageOf(err)}`);
    }
  };

  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  const busy = phase !== 'pick';

  const startUpload = async () => {
    setError(null);
    const controller = new AbortController();
    abort.current = controller;
    try {
      if (!target.current) {
        setPhase('creating');
        const { dataset_id } = await api.newDataset(name.trim());
        const { trans_id } = await api.openTransaction(dataset_id);
        target.current = { datasetId: dataset_id, transId: trans_id, pending: batches(files) };
      }
      const t = target.current;
      setPhase('uploading');
      await uploadBatches(`/ingestion/${t.datasetId}/data_files/${t.transId}`, t.pending, 'files', setProgress, controller.signal, (done) => {
        t.pending = t.pending.filter((g) => g !== done);
      });
      setPhase('processing');
      await api.processFiles(t.datasetId, t.transId);
      onCreated(t.datasetId);
    } catch (err) {
      setPhase('pick');
      const t = target.current;
      setError(
        t
          ? `${messageOf(err)} — the dataset was created as a draft and ${plural(t.pending.flat().length, 'file')} still need uploading; fix the problem and press “Resume upload”.`
          : messageOf(err),
      );
    }
  };

  const startS3 = async () => {
    setError(null);
    setPhase('creating');
    try {
      const { dataset_id } = await api.createFromS3(name.trim(), bucketPath.trim());
      onCreated(dataset_id);
    } catch (err) {
      setPhase('pick');
      setError(messageOf(err));
    }
  };

  const close = () => {
    abort.current?.abort();
    onClose();
  };

  return (
    <Dialog title="New dataset" onClose={close} wide>
      <div className="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={tab === 'upload'} disabled={busy} onClick={() => setTab('upload')}>
          Upload files
        </button>
        <button type="button" role="tab" aria-selected={tab === 's3'} disabled={busy} onClick={() => setTab('s3')}>
          From S3
        </button>
      </div>
      <label>
        Dataset name
        <input type="text" name="dataset_name" required value={name} disabled={busy} onChange={(e) => setName(e.target.value)} placeholder="e.g. Street scenes" />
      </label>

      {tab === 'upload' ? (
        <>
          <div
            className={`dropzone${dragging ? ' dropzone-active' : ''}`}
            onDragOver={(e) => {
              e.preventDefault();
              setDragging(true);
            }}
            onDragLeave={() => setDragging(false)}
            onDrop={onDrop}
            data-testid="dropzone"
          >
            <p>
              <strong>Drag images, videos or a whole folder here</strong>
            </p>
            <p className="muted">{MEDIA_EXTENSIONS.join(' ')}</p>
            <div className="row">
              <label className="button">
                Choose files
                <input type="file" multiple hidden disabled={busy} accept={MEDIA_EXTENSIONS.join(',')} onChange={(e) => choose([...(e.target.files ?? [])])} data-testid="file-input" />
              </label>
              <label className="button">
                Choose a folder
                <input ref={folderInput} type="file" multiple hidden disabled={busy} onChange={(e) => choose([...(e.target.files ?? [])])} data-testid="folder-input" />
              </label>
            </div>
          </div>
          {files.length > 0 && (
            <p data-testid="selection">
              {plural(files.length, 'file')} selected ({formatBytes(totalBytes)}), uploaded in {plural(batches(files).length, 'batch', 'batches')}.
            </p>
          )}
          {skipped.length > 0 && (
            <details className="hint">
              <summary>{plural(skipped.length, 'file')} left out (not an image or video)</summary>
              <ul className="compact">{skipped.slice(0, 50).map((s) => <li key={s}>{s}</li>)}</ul>
            </details>
          )}
          {phase === 'creating' && <p>Creating the dataset…</p>}
          {phase === 'uploading' && progress && (
            <ProgressBar
              value={progress.totalBytes > 0 ? (progress.sentBytes / progress.totalBytes) * 100 : 0}
              label={`Uploading ${progress.doneFiles}/${progress.totalFiles} files (${formatBytes(progress.sentBytes)} of ${formatBytes(progress.totalBytes)})`}
            />
          )}
          {phase === 'processing' && <p>Starting processing…</p>}
          <ErrorBanner error={error} />
          <div className="dialog-actions">
            <button type="button" onClick={close}>
              Cancel
            </button>
            <button type="button" className="primary" disabled={busy || files.length === 0 || name.trim() === ''} onClick={startUpload}>
              {target.current ? 'Resume upload' : 'Upload and process'}
            </button>
          </div>
        </>
      ) : (
        <>
          <label>
            S3 folder or manifest
            <input type="text" name="bucket_path" value={bucketPath} disabled={busy} onChange={(e) => setBucketPath(e.target.value)} placeholder="s3://bucket/folder/ or s3://bucket/list.csv" />
          </label>
          <p className="hint">The server reads the location with its own AWS credentials (or its S3-compatible endpoint).</p>
          {phase === 'creating' && <p>Checking the location and creating the dataset…</p>}
          <ErrorBanner error={error} />
          <div className="dialog-actions">
            <button type="button" onClick={close}>
              Cancel
            </button>
            <button type="button" className="primary" disabled={busy || name.trim() === '' || !bucketPath.trim().startsWith('s3://')} onClick={startS3}>
              Create from S3
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}

function folderOf(files: File[]): string | null {
  const path = (files[0] as (File & { webkitRelativePath?: string }) | undefined)?.webkitRelativePath;
  return path && path.includes('/') ? path.split('/')[0]! : null;
}
