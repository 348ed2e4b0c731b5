import { useState } from 'react';
import { api, type AnnotationFormat, type AnnotationReport, type Dataset, type LabelSource } from '../api';
import { blockers, formatBytes, plural } from '../format';
import { messageOf } from '../hooks';
import { Dialog, ErrorBanner } from './ui';

const FORMATS: { value: AnnotationFormat | ''; label: string }[] = [
  { value: '', label: 'Guess from the file' },
  { value: 'csv', label: 'CSV (file_name, label[, x, y, w, h][, caption])' },
  { value: 'parquet', label: 'Parquet (same columns)' },
  { value: 'coco', label: 'COCO JSON (instances or captions)' },
  { value: 'yolo', label: 'YOLO folder (.zip, .tar, .tar.gz)' },
];
const SOURCES: LabelSource[] = ['User', 'Model', 'Visual Layer'];
/** Problems listed in the dialog; the import keeps the first 1,000. */
const SHOWN_PROBLEMS = 20;

/** Import labels, boxes and captions from one annotation file; shows what was applied and the rows that were not. */
export function ImportAnnotationsDialog({ dataset, onClose, onImported }: { dataset: Dataset; onClose: () => void; onImported: () => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [format, setFormat] = useState<AnnotationFormat | ''>('');
  const [source, setSource] = useState<LabelSource>('User');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [report, setReport] = useState<AnnotationReport | null>(null);
  const blocked = blockers.importAnnotations(dataset);

  const submit = async () => {
    if (!file) return;
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      setReport(await api.importAnnotations(dataset.id, file, { format: format || undefined, source }));
      onImported();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog title="Import annotations" onClose={onClose}>
      <p className="muted">Labels, boxes (each becomes an object) and captions, matched to the media by file name or path.</p>
      <label>
        Annotation file
        <input type="file" disabled={busy} accept=".csv,.parquet,.json,.zip,.tar,.tar.gz,.tgz" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
      </label>
      {file && <p className="muted small-text">{`${file.name}, ${formatBytes(file.size)}`}</p>}
      <label>
        Format
        <select name="format" value={format} disabled={busy} onChange={(e) => setFormat(e.target.value as AnnotationFormat | '')}>
          {FORMATS.map((f) => (
            <option key={f.value} value={f.value}>
              {f.label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Source
        <select name="source" value={source} disabled={busy} onChange={(e) => setSource(e.target.value as LabelSource)}>
          {SOURCES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <p className="hint">New boxes on an indexed dataset are cut out and embedded by the next reindex (the dataset becomes PARTIAL INDEX).</p>
      {blocked && <p className="hint">{blocked}</p>}
      {busy && <p>Importing…</p>}
      {report && <ImportReport report={report} />}
      <ErrorBanner error={error} />
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          {report ? 'Close' : 'Cancel'}
        </button>
        <button type="button" className="primary" disabled={busy || !file || blocked !== null} onClick={submit}>
          {busy ? 'Importing…' : report ? 'Import again' : 'Import'}
        </button>
      </div>
    </Dialog>
  );
}

function ImportReport({ report }: { report: AnnotationReport }) {
  const skipped = report.n_unmatched + report.n_invalid;
  return (
    <div data-testid="import-report">
      <div className={`banner ${skipped > 0 ? 'banner-warn' : 'banner-ok'}`} role="status">
        <span>
          Imported {report.format.toUpperCase()}: {plural(report.n_rows, 'row')} read — {plural(report.n_image_labels, 'image label')}, {plural(report.n_objects, 'object')},{' '}
          {plural(report.n_captions, 'caption')}
          {skipped > 0 && `; ${report.n_unmatched} unmatched, ${report.n_invalid} invalid`}.
        </span>
      </div>
      <dl className="kv small-text" data-testid="import-counts">
        <dt>Rows</dt>
        <dd>{report.n_rows.toLocaleString()}</dd>
        <dt>Image labels</dt>
        <dd>{report.n_image_labels.toLocaleString()}</dd>
        <dt>Objects</dt>
        <dd>{report.n_objects.toLocaleString()}</dd>
        <dt>Captions</dt>
        <dd>{report.n_captions.toLocaleString()}</dd>
        <dt>Unmatched</dt>
        <dd>{report.n_unmatched.toLocaleString()}</dd>
        <dt>Invalid</dt>
        <dd>{report.n_invalid.toLocaleString()}</dd>
      </dl>
      {report.problems.length > 0 && (
        <>
          <h3>Rows not used</h3>
          <ul className="compact small-text" data-testid="import-problems">
            {report.problems.slice(0, SHOWN_PROBLEMS).map((p, i) => (
              <li key={i}>
                <strong>{p.location}</strong>
                {p.file_name ? ` (${p.file_name})` : ''}: {p.reason}
              </li>
            ))}
            {(report.problems.length > SHOWN_PROBLEMS || report.problems_truncated) && (
              <li className="muted">
                … and {report.problems_truncated ? 'more' : `${report.problems.length - SHOWN_PROBLEMS} more`} (the first 1,000 are kept with the import: GET …/annotations/imports/{report.annotation_import_id})
              </li>
            )}
          </ul>
        </>
      )}
    </div>
  );
}
