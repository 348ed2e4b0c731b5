import { useEffect, useRef, useState } from 'react';
import { api, type Dataset, type ExportFormat, type ExportStatus, type SelectionItem } from '../api';
import { blockers } from '../format';
import { messageOf } from '../hooks';
import { Dialog, ErrorBanner, ProgressBar } from './ui';

export interface ExportSelection {
  /** What is exported, in words ("12 kept media"). */
  description: string;
  /** Builds the `media_selection` (may fetch what it needs). */
  build: () => Promise<SelectionItem[]>;
}

const POLL_MS = 1000;

/** Export the dataset (or a selection): json/parquet/COCO, images or not; progress; download link. */
export function ExportDialog({ dataset, selection, onClose }: { dataset: Dataset; selection?: ExportSelection; onClose: () => void }) {
  const [format, setFormat] = useState<ExportFormat>('json');
  const [includeImages, setIncludeImages] = useState(false);
  const [fileName, setFileName] = useState(`${dataset.display_name.replace(/[^\w.-]+/g, '_') || 'dataset'}_export.zip`);
  const [phase, setPhase] = useState<'idle' | 'starting' | 'running' | 'done'>('idle');
  const [status, setStatus] = useState<ExportStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  const alive = useRef(true);
  const blocked = blockers.export(dataset);

  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  const poll = async (taskId: string) => {
    let failures = 0;
    while (alive.current) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (!alive.current) return;
      try {
        const s = await api.exportStatus(dataset.id, taskId);
        failures = 0;
        setStatus(s);
        if (s.status === 'COMPLETED') return setPhase('done');
        if (s.status === 'FAILED' || s.status === 'ABORTED') {
          setPhase('idle');
          return setError(`The export ${s.status === 'FAILED' ? 'failed' : 'was aborted'}: ${s.error_message ?? s.status_message ?? 'no reason given'}`);
        }
      } catch (err) {
        if (++failures >= 5) {
          setPhase('idle');
          return setError(`Lost track of the export: ${messageOf(err)}`);
        }
      }
    }
  };

  const start = async () => {
    setError(null);
    setStatus(null);
    setPhase('starting');
    try {
      const options = { fileName: fileName.trim() || 'export.zip', format, includeImages };
      const { id } = selection ? await api.exportSelection(dataset.id, await selection.build(), options) : await api.exportAll(dataset.id, options);
      setPhase('running');
      void poll(id);
    } catch (err) {
      setPhase('idle');
      setError(messageOf(err));
    }
  };

  const running = phase === 'starting' || phase === 'running';
  return (
    <Dialog title={selection ? 'Export selection' : `Export “${dataset.display_name}”`} onClose={onClose}>
      <p className="muted">{selection ? selection.description : 'Every media item with its metadata, issues and clusters.'}</p>
      <fieldset disabled={running}>
        <legend>Format</legend>
        <label className="inline">
          <input type="radio" name="format" value="json" checked={format === 'json'} onChange={() => setFormat('json')} /> JSON (metadata.json)
        </label>
        <label className="inline">
          <input type="radio" name="format" value="parquet" checked={format === 'parquet'} onChange={() => setFormat('parquet')} /> Parquet (metadata.parquet)
        </label>
        <label className="inline">
          <input type="radio" name="format" value="coco" checked={format === 'coco'} onChange={() => setFormat('coco')} /> COCO (annotations.json)
        </label>
        {format === 'coco' && <p className="hint">Labelled images only (at least one label or box); image-level labels go under <code>image_labels</code>.</p>}
      </fieldset>
      <label className="inline">
        <input type="checkbox" name="include_images" checked={includeImages} disabled={running} onChange={(e) => setIncludeImages(e.target.checked)} /> Include the images
      </label>
      <label>
        File name
        <input type="text" name="file_name" value={fileName} disabled={running} onChange={(e) => setFileName(e.target.value)} />
      </label>
      {blocked && <p className="hint">{blocked}</p>}
      {phase === 'starting' && <p>Starting the export…</p>}
      {phase === 'running' && <ProgressBar value={status?.progress ?? 0} label={status?.status_message ?? status?.status ?? 'Queued'} />}
      {phase === 'done' && status?.download_uri && (
        <div className="banner banner-ok" role="status">
          Export ready.{' '}
          <a href={status.download_uri} download={status.file_name ?? fileName} className="button primary" data-testid="download">
            Download {status.file_name ?? fileName}
          </a>
        </div>
      )}
      <ErrorBanner error={error} />
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Close
        </button>
        <button type="button" className="primary" disabled={running || blocked !== null} onClick={start}>
          {phase === 'done' ? 'Export again' : 'Start export'}
        </button>
      </div>
    </Dialog>
  );
}
