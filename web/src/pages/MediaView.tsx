import { useEffect, useRef, useState } from 'react';
import { api, thumbnailUrl, type Dataset, type MediaDetails, type MediaObject, type Preview } from '../api';
import { DatasetHeader, useDataset } from '../components/DatasetHeader';
import { ErrorBanner, Spinner } from '../components/ui';
import { blockers, formatBytes, formatDate, formatSeconds } from '../format';
import { messageOf, useAsync } from '../hooks';
import { Link, navigate } from '../router';

const NEIGHBOURS = 24;

/** One media item: the full image with its object boxes (or frame with its video, or an object's crop), caption, labels, metadata, issues, duplicates and nearest neighbours. */
export function MediaViewPage({ id, mediaId }: { id: string; mediaId: string }) {
  const dataset = useDataset(id);
  const media = useAsync((signal) => api.media(id, mediaId, signal), [id, mediaId]);
  const searchable = dataset.data ? blockers.search(dataset.data) === null : false;
  const duplicates = useAsync((signal) => api.duplicatesOf(id, mediaId, signal), [id, mediaId]);
  const [showBoxes, setShowBoxes] = useState(true);
  const [highlighted, setHighlighted] = useState<string | null>(null);
  const neighbours = useAsync(
    async (signal): Promise<Preview[]> => {
      if (!searchable) return [];
      const result = await api.explore(id, { threshold: 0, page_number: 0, anchor_media_id: mediaId, anchor_type: 'MEDIA' }, signal);
      return result.clusters.flatMap((c) => c.previews).filter((p) => p.media_id !== mediaId).slice(0, NEIGHBOURS);
    },
    [id, mediaId, searchable],
  );

  return (
    <div className="dataset-page">
      {dataset.data && <DatasetHeader dataset={dataset.data} tab="media" onChanged={dataset.reload} />}
      <ErrorBanner error={dataset.error} onRetry={dataset.reload} />
      <main className="media-page">
        <ErrorBanner error={media.error} onRetry={media.reload} />
        {media.loading && !media.data && <Spinner />}
        {media.data && (
          <>
            <section className="media-viewer">
              <MediaDisplay datasetId={id} media={media.data} showBoxes={showBoxes} highlighted={highlighted} />
              <div className="row">
                <button
                  type="button"
                  className="primary"
                  disabled={!searchable}
                  title={dataset.data ? (blockers.search(dataset.data) ?? undefined) : undefined}
                  onClick={() => navigate(`/dataset/${id}/data?anchor=${mediaId}&anchor_type=MEDIA`)}
                >
                  Find similar
                </button>
                <a className="button" href={media.data.media_uri} target="_blank" rel="noreferrer">
                  Open original
                </a>
                <Link className="button" to={`/dataset/${id}/data`}>
                  Back to the dataset
                </Link>
              </div>
            </section>
            <aside className="media-info">
              <h2 className="break">{media.data.file_name}</h2>
              <Caption datasetId={id} dataset={dataset.data} media={media.data} onSaved={(caption) => media.setData({ ...media.data!, caption })} />
              <Labels datasetId={id} dataset={dataset.data} media={media.data} onSaved={(labels) => media.setData({ ...media.data!, labels })} />
              <Objects datasetId={id} objects={media.data.objects ?? []} show={showBoxes} onShow={setShowBoxes} onHighlight={setHighlighted} />
              <Metadata media={media.data} />
              <Issues media={media.data} />
              <h3>Duplicates (similarity ≥ 0.96)</h3>
              <ErrorBanner error={duplicates.error} onRetry={duplicates.reload} />
              {duplicates.data && duplicates.data.length === 0 && <p className="muted">None.</p>}
              {duplicates.data && duplicates.data.length > 0 && (
                <div className="thumb-row" data-testid="duplicates">
                  {duplicates.data.map((other) => (
                    <Link key={other} to={`/dataset/${id}/data/image/${other}`}>
                      <img src={thumbnailUrl(id, other)} alt="duplicate" loading="lazy" />
                    </Link>
                  ))}
                </div>
              )}
            </aside>
          </>
        )}
      </main>
      <section className="neighbours">
        <h3>Nearest neighbours</h3>
        <ErrorBanner error={neighbours.error} onRetry={neighbours.reload} />
        {neighbours.loading && !neighbours.data && <Spinner />}
        {neighbours.data && neighbours.data.length === 0 && <p className="muted">{searchable ? 'No other media.' : 'Available once the dataset is indexed.'}</p>}
        <div className="neighbour-grid" data-testid="neighbours">
          {neighbours.data?.map((p) => (
            <Link key={p.media_id} to={`/dataset/${id}/data/image/${p.media_id}`} className="neighbour" title={p.file_name}>
              <img src={p.media_thumb_uri} alt={p.file_name} loading="lazy" />
              <span className="small-text">
                {p.file_name}
                {p.relevance_score !== null && <span className="muted"> · {(1 - p.relevance_score).toFixed(3)}</span>}
              </span>
            </Link>
          ))}
        </div>
      </section>
    </div>
  );
}

function MediaDisplay({ datasetId, media, showBoxes, highlighted }: { datasetId: string; media: MediaDetails; showBoxes: boolean; highlighted: string | null }) {
  const video = useRef<HTMLVideoElement>(null);
  const at = media.video?.frame_timestamp ?? 0;
  useEffect(() => {
    const el = video.current;
    if (!el) return;
    const seek = () => {
      el.currentTime = at;
    };
    if (el.readyState >= 1) seek();
    else el.addEventListener('loadedmetadata', seek, { once: true });
    return () => el.removeEventListener('loadedmetadata', seek);
  }, [at, media.media_id]);

  if (media.media_type === 'video') {
    return <video className="media-full" src={media.media_uri} controls preload="metadata" />;
  }
  if (media.media_type === 'object') return <ObjectDisplay datasetId={datasetId} media={media} />;
  return (
    <>
      <BoxedImage src={media.media_uri} alt={media.file_name} width={media.width} height={media.height} objects={showBoxes ? (media.objects ?? []) : []} highlighted={highlighted} />
      {media.video && (
        <div className="video-context">
          <p>
            Frame at <strong>{formatSeconds(media.video.frame_timestamp)}</strong> of <strong>{media.video.file_name}</strong>
            {media.video.duration_seconds !== null && <span className="muted"> ({formatSeconds(media.video.duration_seconds)} long)</span>}
          </p>
          <video ref={video} className="media-video" src={media.video.media_uri} controls preload="metadata" data-testid="frame-video" />
        </div>
      )}
    </>
  );
}

const boxText = (box: number[]) => {
  const [x, y, w, h] = box.map((v) => Math.round(v));
  return `${x}, ${y} · ${w} × ${h}`;
};

/**
 * The image with its objects' boxes drawn over it. The SVG covers the image element and maps image
 * pixels with the same "contain" fit as the image, so the boxes follow it at any displayed size.
 */
function BoxedImage({
  src,
  alt,
  width,
  height,
  objects,
  highlighted,
}: {
  src: string;
  alt: string;
  width: number | null;
  height: number | null;
  objects: MediaObject[];
  highlighted: string | null;
}) {
  const [natural, setNatural] = useState<{ w: number; h: number } | null>(null);
  const w = width ?? natural?.w;
  const h = height ?? natural?.h;
  const drawn = w && h ? objects.filter((o) => o.bbox && o.status !== 'FAILED') : [];
  const font = w && h ? Math.max(10, Math.round(Math.max(w, h) / 45)) : 12;
  const tagHeight = font * 1.4;
  return (
    <div className="media-stage">
      <img
        className="media-full"
        src={src}
        alt={alt}
        data-testid="media-image"
        onLoad={(e) => setNatural({ w: e.currentTarget.naturalWidth, h: e.currentTarget.naturalHeight })}
      />
      {drawn.length > 0 && (
        <svg className="box-overlay" viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="xMidYMid meet" data-testid="object-boxes" aria-hidden="true">
          {drawn.map((o) => {
            const [x = 0, y = 0, bw = 0, bh = 0] = o.bbox!;
            const name = o.label ?? 'unlabelled';
            const tagY = y >= tagHeight ? y - tagHeight : y;
            return (
              <g key={o.object_id} className={`box${o.object_id === highlighted ? ' box-active' : ''}`} data-testid="object-box" data-label={o.label ?? ''}>
                <rect className="box-rect" x={x} y={y} width={bw} height={bh} vectorEffect="non-scaling-stroke" />
                <rect className="box-tag" x={x} y={tagY} width={name.length * font * 0.62 + font * 0.6} height={tagHeight} />
                <text x={x + font * 0.3} y={tagY + font * 1.05} fontSize={font}>
                  {name}
                </text>
              </g>
            );
          })}
        </svg>
      )}
    </div>
  );
}

/** An object: its crop (the thumbnail; until it is cut out, the image with its box) and the image it comes from. */
function ObjectDisplay({ datasetId, media }: { datasetId: string; media: MediaDetails }) {
  const box = media.bounding_box ?? null;
  const label = media.labels?.[0]?.name ?? null;
  return (
    <>
      {media.media_thumb_uri ? (
        <div className="media-crop-frame">
          <img className="media-crop" src={media.media_thumb_uri} alt={`${label ?? 'object'} in ${media.file_name}`} data-testid="object-crop" />
        </div>
      ) : (
        <BoxedImage
          src={media.media_uri}
          alt={media.file_name}
          width={null}
          height={null}
          objects={box ? [{ object_id: media.media_id, label, bbox: box, status: media.status }] : []}
          highlighted={null}
        />
      )}
      <p className="object-context" data-testid="object-parent">
        Object cut from{' '}
        {media.parent_media_id ? <Link to={`/dataset/${datasetId}/data/image/${media.parent_media_id}`}>{media.file_name}</Link> : media.file_name}
        {box && <span className="muted"> at {boxText(box)}</span>}
        {media.status !== 'READY' && (
          <>
            {' '}
            <span className={`badge ${media.status === 'FAILED' ? 'badge-red' : 'badge-grey'}`}>{media.status}</span>
          </>
        )}
      </p>
    </>
  );
}

/** An image's objects: class and box, each linking to the object's own page; and whether the boxes are drawn. */
function Objects({
  datasetId,
  objects,
  show,
  onShow,
  onHighlight,
}: {
  datasetId: string;
  objects: MediaObject[];
  show: boolean;
  onShow: (show: boolean) => void;
  onHighlight: (objectId: string | null) => void;
}) {
  if (objects.length === 0) return null;
  return (
    <section data-testid="objects">
      <h3>Objects ({objects.length})</h3>
      <label className="inline">
        <input type="checkbox" checked={show} onChange={(e) => onShow(e.target.checked)} /> Show boxes on the image
      </label>
      <ul className="object-list">
        {objects.map((o) => (
          <li
            key={o.object_id}
            className={o.status === 'FAILED' ? 'object-failed' : undefined}
            title={o.status === 'READY' ? undefined : o.status === 'FAILED' ? 'FAILED: could not be cut out' : 'PENDING: cut out by the next indexing'}
            onMouseEnter={() => onHighlight(o.object_id)}
            onMouseLeave={() => onHighlight(null)}
          >
            <Link to={`/dataset/${datasetId}/data/image/${o.object_id}`} data-testid="object-link">
              {o.label ?? 'unlabelled'}
            </Link>{' '}
            <span className="muted small-text">{o.bbox ? boxText(o.bbox) : 'box not known yet'}</span>
            {o.status !== 'READY' && <span className="muted small-text"> · {o.status}</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Metadata({ media }: { media: MediaDetails }) {
  const q = media.quality;
  const round = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? '—' : v.toFixed(digits));
  return (
    <dl className="kv" data-testid="metadata">
      <dt>Path</dt>
      <dd className="break">{media.original_media_uri}</dd>
      <dt>Type</dt>
      <dd>
        {media.media_type.replace('_', ' ')}
        {media.format ? ` (${media.format})` : ''}
      </dd>
      <dt>Dimensions</dt>
      <dd>{media.width && media.height ? `${media.width} × ${media.height}` : '—'}</dd>
      <dt>File size</dt>
      <dd>{formatBytes(media.file_size)}</dd>
      <dt>Uniqueness</dt>
      <dd>{round(media.uniqueness_score, 3)}</dd>
      <dt>Nearest neighbour</dt>
      <dd>{media.nn_similarity === null ? '—' : `similarity ${round(media.nn_similarity, 3)}`}</dd>
      <dt>Quality</dt>
      <dd>
        blur {round(q.blur, 1)} · mean {round(q.mean_intensity, 1)} · contrast {round(q.contrast, 1)}
      </dd>
      <dt>Clusters</dt>
      <dd className="small-text">
        {media.clusters.length === 0 ? '—' : media.clusters.map((c) => <div key={c.level}>level {c.level}: {c.cluster_id.slice(0, 8)}</div>)}
      </dd>
      <dt>SHA-256</dt>
      <dd className="small-text break">{media.sha256}</dd>
      <dt>Added</dt>
      <dd>{formatDate(media.created_at)}</dd>
      {media.error && (
        <>
          <dt>Error</dt>
          <dd className="error-text">{media.error}</dd>
        </>
      )}
    </dl>
  );
}

function Issues({ media }: { media: MediaDetails }) {
  const duplicates = media.issues.filter((i) => i.issue_type === 'duplicates');
  const others = media.issues.filter((i) => i.issue_type !== 'duplicates');
  return (
    <>
      <h3>Issues</h3>
      {media.issues.length === 0 && <p className="muted">No issues.</p>}
      <ul className="issues" data-testid="issues">
        {others.map((i) => (
          <li key={i.issue_type}>
            <span className="badge badge-amber">{i.issue_type}</span> confidence {i.confidence.toFixed(2)}
          </li>
        ))}
        {duplicates.length > 0 && (
          <li>
            <span className="badge badge-red">duplicates</span> near-duplicate at similarity ≥ {Math.min(...duplicates.map((d) => d.duplicate_threshold ?? 1))}
            {duplicates.length > 1 && ` (grouped at ${duplicates.length} levels, up to ${Math.max(...duplicates.map((d) => d.duplicate_threshold ?? 0))})`}
          </li>
        )}
      </ul>
    </>
  );
}

/** The caption: shown to everyone, edited by editors and owners (images and frames). */
function Caption({ datasetId, dataset, media, onSaved }: { datasetId: string; dataset: Dataset | undefined; media: MediaDetails; onSaved: (caption: string | null) => void }) {
  const [draft, setDraft] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const caption = media.caption ?? null;
  const captionable = media.media_type === 'image' || media.media_type === 'video_frame';
  const blocked = dataset ? blockers.editCaption(dataset) : 'Loading the dataset…';
  const editable = captionable && blocked === null;

  const save = async () => {
    if (draft === null) return;
    setSaving(true);
    setError(null);
    try {
      const saved = await api.setCaption(datasetId, media.media_id, draft.trim() === '' ? null : draft);
      onSaved(saved.caption);
      setDraft(null);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setSaving(false);
    }
  };

  return (
    <section data-testid="caption">
      <h3>Caption</h3>
      {draft === null ? (
        <>
          {caption ? (
            <p className="caption-text" data-testid="caption-text">
              {caption}
            </p>
          ) : (
            <p className="muted">No caption.</p>
          )}
          {editable && (
            <button type="button" className="small" onClick={() => setDraft(caption ?? '')}>
              {caption ? 'Edit caption' : 'Add a caption'}
            </button>
          )}
        </>
      ) : (
        <>
          <label>
            Caption text
            <textarea name="caption" rows={3} value={draft} disabled={saving} onChange={(e) => setDraft(e.target.value)} />
          </label>
          <p className="hint">Empty clears it. Captions are searched by the file-name search too.</p>
          <div className="row">
            <button type="button" className="small primary" disabled={saving} onClick={save}>
              {saving ? 'Saving…' : 'Save caption'}
            </button>
            <button type="button" className="small" disabled={saving} onClick={() => (setDraft(null), setError(null))}>
              Cancel
            </button>
          </div>
        </>
      )}
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
    </section>
  );
}

/** The media's own labels, with who set them and how sure they are; editors and owners replace them (as the user's). */
function Labels({
  datasetId,
  dataset,
  media,
  onSaved,
}: {
  datasetId: string;
  dataset: Dataset | undefined;
  media: MediaDetails;
  onSaved: (labels: NonNullable<MediaDetails['labels']>) => void;
}) {
  const labels = media.labels ?? [];
  const [draft, setDraft] = useState<string[] | null>(null);
  const [input, setInput] = useState('');
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const blocked = dataset ? blockers.editLabels(dataset) : 'Loading the dataset…';
  const editable = media.media_type !== 'video' && blocked === null;
  const withInput = (names: string[]) => {
    const name = input.trim();
    return name === '' || names.includes(name) ? names : [...names, name];
  };
  const add = () => {
    if (draft === null) return;
    setDraft(withInput(draft));
    setInput('');
  };
  const cancel = () => {
    setDraft(null);
    setInput('');
    setError(null);
  };
  const save = async () => {
    if (draft === null) return;
    setSaving(true);
    setError(null);
    try {
      const saved = await api.setLabels(datasetId, media.media_id, withInput(draft));
      onSaved(saved.labels.map((l) => ({ name: l.name, source: l.source, confidence: null })));
      cancel();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setSaving(false);
    }
  };

  return (
    <section data-testid="labels-section">
      <h3>{media.media_type === 'object' ? 'Class' : 'Labels'}</h3>
      {draft === null ? (
        <>
          {labels.length === 0 ? (
            <p className="muted">No labels.</p>
          ) : (
            <p data-testid="labels">
              {labels.map((l, i) => (
                <span
                  key={`${l.name}|${l.source}|${i}`}
                  className={`badge ${l.source === 'Model' ? 'badge-grey' : 'badge-blue'} label-badge`}
                  title={`${l.source}${l.confidence === null ? '' : `, confidence ${l.confidence.toFixed(2)}`}`}
                >
                  {l.name}
                  {l.confidence !== null && <span className="muted"> {l.confidence.toFixed(2)}</span>}
                </span>
              ))}
            </p>
          )}
          {editable && (
            <button type="button" className="small" onClick={() => setDraft([...new Set(labels.map((l) => l.name))])}>
              Edit labels
            </button>
          )}
        </>
      ) : (
        <div data-testid="label-editor">
          <p>
            {draft.length === 0 && <span className="muted">No labels. </span>}
            {draft.map((name) => (
              <span key={name} className="badge badge-blue label-badge label-chip">
                {name}
                <button type="button" className="chip-remove" aria-label={`Remove ${name}`} disabled={saving} onClick={() => setDraft(draft.filter((n) => n !== name))}>
                  ×
                </button>
              </span>
            ))}
          </p>
          <div className="row">
            <input
              name="label"
              aria-label="New label"
              placeholder="Add a label"
              value={input}
              maxLength={200}
              disabled={saving}
              onChange={(e) => setInput(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter') {
                  e.preventDefault();
                  add();
                }
              }}
            />
            <button type="button" className="small" disabled={saving || input.trim() === ''} onClick={add}>
              Add
            </button>
          </div>
          <p className="hint">Saving replaces the labels of every source with these, as yours (User); none removes them.</p>
          <div className="row">
            <button type="button" className="small primary" disabled={saving} onClick={save}>
              {saving ? 'Saving…' : 'Save labels'}
            </button>
            <button type="button" className="small" disabled={saving} onClick={cancel}>
              Cancel
            </button>
          </div>
        </div>
      )}
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
    </section>
  );
}
