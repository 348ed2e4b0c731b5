import { useEffect, useRef, useState } from 'react';
import { upload, type Dataset, type UploadHandle } from '../api';
import { formatBytes, plural } from '../format';
import { messageOf } from '../hooks';
import { ARCHIVE_EXTENSIONS, MEDIA_EXTENSIONS, splitMedia } from '../upload';
import { Dialog, ErrorBanner, ProgressBar } from './ui';

type Source = 'files' | 'archive' | 's3';

/** Add media to an indexed dataset: files, one archive, or an S3 folder/manifest (one source per request). */
export function AddMediaDialog({ dataset, onClose, onStarted }: { dataset: Dataset; onClose: () => void; onStarted: () => void }) {
  const [source, setSource] = useState<Source>('files');
  const [files, setFiles] = useState<File[]>([]);
  const [archive, setArchive] = useState<File | null>(null);
  const [s3Uri, setS3Uri] = useState('');
  const [assumeRole, setAssumeRole] = useState('');
  const [autoReindex, setAutoReindex] = useState(true);
  const [progress, setProgress] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const handle = useRef<UploadHandle | null>(null);

  useEffect(() => () => handle.current?.abort(), []);

  const ready = source === 'files' ? files.length > 0 : source === 'archive' ? archive !== null : s3Uri.trim().startsWith('s3://');

  const submit = async () => {
    setBusy(true);
    setError(null);
    setProgress(0);
    const form = new FormData();
    form.set('auto_reindex', String(autoReindex));
    if (source === 's3') {
      form.set('s3_uri', s3Uri.trim());
      if (assumeRole.trim()) form.set('assume_role', assumeRole.trim());
    } else if (source === 'archive' && archive) {
      form.set('archive', archive, archive.name);
    } else {
      for (const file of files) form.append('files[]', file, file.name);
    }
    try {
      handle.current = upload(`/dataset/${dataset.id}/add_media`, form, (loaded, total) => setProgress(total > 0 ? (loaded / total) * 100 : 0));
      await handle.current.promise;
      onStarted();
    } catch (err) {
      setError(messageOf(err));
      setProgress(null);
    } finally {
      setBusy(false);
    }
  };

  const bytes = source === 'files' ? files.reduce((n, f) => n + f.size, 0) : (archive?.size ?? 0);
  return (
    <Dialog title="Add media" onClose={onClose}>
      <div className="tabs" role="tablist">
        {(['files', 'archive', 's3'] as const).map((s) => (
          <button key={s} type="button" role="tab" aria-selected={source === s} disabled={busy} onClick={() => setSource(s)}>
            {s === 'files' ? 'Files' : s === 'archive' ? 'Archive' : 'S3'}
          </button>
        ))}
      </div>
      {source === 'files' && (
        <label>
          Images and videos
          <input
            type="file"
            multiple
            disabled={busy}
            accept={MEDIA_EXTENSIONS.join(',')}
            onChange={(e) => setFiles(splitMedia([...(e.target.files ?? [])]).media)}
          />
        </label>
      )}
      {source === 'archive' && (
        <label>
          One .zip, .tar or .tar.gz
          <input type="file" disabled={busy} accept={ARCHIVE_EXTENSIONS.join(',')} onChange={(e) => setArchive(e.target.files?.[0] ?? null)} />
        </label>
      )}
      {source === 's3' && (
        <>
          <label>
            S3 folder or manifest (.csv, .parquet, .txt)
            <input type="text" value={s3Uri} disabled={busy} onChange={(e) => setS3Uri(e.target.value)} placeholder="s3://bucket/new-images/" />
          </label>
          <label>
            IAM role to assume (optional)
            <input type="text" value={assumeRole} disabled={busy} onChange={(e) => setAssumeRole(e.target.value)} placeholder="arn:aws:iam::123456789012:role/Reader" />
          </label>
        </>
      )}
      {source !== 's3' && bytes > 0 && <p className="muted">{source === 'files' ? `${plural(files.length, 'file')}, ` : ''}{formatBytes(bytes)}</p>}
      <label className="inline">
        <input type="checkbox" checked={autoReindex} disabled={busy} onChange={(e) => setAutoReindex(e.target.checked)} /> Reindex automatically when the new media are in
      </label>
      <p className="hint">Only the new media are processed; the dataset stays browsable (READ ONLY) meanwhile.</p>
      {progress !== null && busy && <ProgressBar value={progress} label={source === 's3' ? 'Checking the location' : 'Uploading'} />}
      <ErrorBanner error={error} />
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="primary" disabled={busy || !ready} onClick={submit}>
          {busy ? 'Sending…' : 'Add media'}
        </button>
      </div>
    </Dialog>
  );
}
