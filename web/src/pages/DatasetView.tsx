import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api, type Cluster, type Dataset, type EntityType, type ExplorationMetadata, type ExploreParams, type IssueSummary, type Preview } from '../api';
import { DatasetHeader, useDataset } from '../components/DatasetHeader';
import { VirtualGrid } from '../components/VirtualGrid';
import { Dialog, ErrorBanner, Spinner } from '../components/ui';
import { BUSY, blockers, plural } from '../format';
import { messageOf, useAsync, useDebounced, type AsyncState } from '../hooks';
import { Link, navigate, setQuery, useLocation } from '../router';

export const ISSUES = ['duplicates', 'outliers', 'blur', 'dark', 'bright', 'mislabels'] as const;
export type Issue = (typeof ISSUES)[number];
/** Issues every dataset has; mislabels only once the summary lists them (the dataset has labels). */
const ALWAYS: ReadonlySet<Issue> = new Set(['duplicates', 'outliers', 'blur', 'dark', 'bright']);
/** The near-duplicate levels every dataset has (calibrated similarity; 0.96 = "the same picture"). */
export const DUPLICATE_LEVELS = [0.96, 0.97, 0.98, 0.985, 0.99, 0.995, 0.999, 1.0];
const ISSUE_LABEL: Record<Issue, string> = { duplicates: 'Duplicates', outliers: 'Outliers', blur: 'Blurry', dark: 'Dark', bright: 'Bright', mislabels: 'Mislabels' };

const ROW_HEIGHT = 252;
const MIN_COLUMN = 190;
const PAGE = 100;

/** What the grid shows, from the URL (so back/forward and links keep it). */
interface View {
  level: number;
  issue: Issue | null;
  similarity: number;
  q: string;
  sort: 'size' | 'uniqueness';
  anchor: string | null;
  anchorType: 'MEDIA' | 'UPLOAD';
  /** Media carrying any of these labels (none: no filter). */
  labels: string[];
  entity: EntityType;
}

function viewOf(search: URLSearchParams): View {
  const level = Number(search.get('level') ?? 0);
  const issue = search.get('issue') as Issue | null;
  const similarity = Number(search.get('similarity') ?? 0.96);
  return {
    level: Number.isInteger(level) && level >= 0 && level <= 4 ? level : 0,
    issue: issue && (ISSUES as readonly string[]).includes(issue) ? issue : null,
    similarity: DUPLICATE_LEVELS.includes(similarity) ? similarity : 0.96,
    q: search.get('q') ?? '',
    sort: search.get('sort') === 'uniqueness' ? 'uniqueness' : 'size',
    anchor: search.get('anchor'),
    anchorType: search.get('anchor_type') === 'UPLOAD' ? 'UPLOAD' : 'MEDIA',
    labels: (search.get('labels') ?? '').split(',').filter(Boolean),
    entity: search.get('entity_type') === 'OBJECTS' ? 'OBJECTS' : 'IMAGES',
  };
}

function exploreParams(view: View, q: string): Omit<ExploreParams, 'page_number'> {
  const vql: unknown[] = [];
  if (view.issue === 'duplicates') vql.push({ duplicates: { op: 'duplicates', value: view.similarity } });
  else if (view.issue) vql.push({ issues: { op: 'issue', value: view.issue, mode: 'in' } });
  if (q.trim()) vql.push({ text: { op: 'fts', value: q.trim() } });
  return {
    entity_type: view.entity === 'OBJECTS' ? 'OBJECTS' : undefined,
    labels: view.labels.length ? view.labels.join(',') : undefined,
    threshold: view.level,
    vql: vql.length ? JSON.stringify(vql) : undefined,
    sort_by: view.anchor ? undefined : view.sort,
    anchor_media_id: view.anchor ?? undefined,
    anchor_type: view.anchor ? view.anchorType : undefined,
  };
}

interface Pages {
  clusters: Cluster[];
  next: number;
  hasMore: boolean;
  total: number | null;
}

/** Pages already seen, so coming back from a media page restores the grid and its scroll position. */
const pageCache = new Map<string, { pages: Pages; scrollTop: number }>();
const CACHED_VIEWS = 8;
/** Annotation imports made from this page, by dataset: part of the grid's version (labels change, the dataset may not). */
const annotationImports = new Map<string, number>();
/** Object URLs of uploaded query images, by anchor id (to show what was searched for). */
export const uploadedAnchors = new Map<string, { url: string; name: string }>();

/** Explore pages for these parameters, fetched 100 clusters at a time as the grid asks for more. */
function useClusterPages(datasetId: string, params: Omit<ExploreParams, 'page_number'>, enabled: boolean, version: string) {
  const key = `${datasetId}|${version}|${JSON.stringify(params)}`;
  const empty = (): Pages => ({ clusters: [], next: 0, hasMore: true, total: null });
  const [pages, setPages] = useState<Pages>(() => pageCache.get(key)?.pages ?? empty());
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const state = useRef({ key, pages, error, inflight: null as AbortController | null });

  const loadMore = useCallback(() => {
    const s = state.current;
    if (!enabled || s.inflight || s.error || !s.pages.hasMore || s.key !== key) return;
    const controller = new AbortController();
    s.inflight = controller;
    setLoading(true);
    api.explore(datasetId, { ...params, page_number: s.pages.next }, controller.signal).then(
      (result) => {
        if (state.current !== s || controller.signal.aborted) return;
        s.inflight = null;
        const hasMore = params.anchor_media_id ? result.clusters.length === PAGE : (result.metadata.has_more ?? result.clusters.length === PAGE);
        const next: Pages = { clusters: [...s.pages.clusters, ...result.clusters], next: s.pages.next + 1, hasMore, total: result.metadata.total_clusters ?? null };
        s.pages = next;
        const scrollTop = pageCache.get(key)?.scrollTop ?? 0;
        pageCache.delete(key);
        pageCache.set(key, { pages: next, scrollTop });
        while (pageCache.size > CACHED_VIEWS) pageCache.delete(pageCache.keys().next().value!);
        setPages(next);
        setLoading(false);
      },
      (err: unknown) => {
        if (state.current !== s || controller.signal.aborted) return;
        s.inflight = null;
        s.error = messageOf(err);
        setError(s.error);
        setLoading(false);
      },
    );
  }, [datasetId, key, enabled]);

  // New parameters: back to their cached pages (or none), then fetch what is missing.
  useEffect(() => {
    if (state.current.key !== key) {
      state.current.inflight?.abort();
      const restored = pageCache.get(key)?.pages ?? empty();
      state.current = { key, pages: restored, error: null, inflight: null };
      setPages(restored);
      setError(null);
      setLoading(false);
    }
    if (state.current.pages.clusters.length === 0) loadMore();
  }, [key, loadMore]);

  useEffect(
    () => () => {
      state.current.inflight?.abort();
      state.current.inflight = null;
    },
    [],
  );

  const retry = () => {
    state.current.error = null;
    setError(null);
    loadMore();
  };
  const saveScroll = (scrollTop: number) => {
    const entry = pageCache.get(key);
    if (entry) entry.scrollTop = scrollTop;
  };
  const current = state.current.key === key ? pages : (pageCache.get(key)?.pages ?? empty());
  return { pages: current, loading, error, loadMore, retry, key, saveScroll, initialScrollTop: pageCache.get(key)?.scrollTop ?? 0 };
}

export function DatasetViewPage({ id }: { id: string }) {
  const dataset = useDataset(id);
  if (!dataset.data) {
    return (
      <main className="page">
        <ErrorBanner error={dataset.error} onRetry={dataset.reload} />
        {dataset.loading && <Spinner />}
      </main>
    );
  }
  return <DatasetExplorer dataset={dataset.data} reload={dataset.reload} pollError={dataset.pollError} />;
}

const BROWSABLE = new Set(['READY', 'PARTIAL INDEX', 'READ ONLY']);

/**
 * What the grid and the summary depend on: a finished operation (new media, a reindex) changes
 * `updated_at`; while media are being added (READ ONLY) the status alone, so progress does not reload.
 */
const datasetVersion = (d: Dataset) => (BUSY.has(d.status_new) ? d.status_new : `${d.status_new}|${d.updated_at}`);

function DatasetExplorer({ dataset, reload, pollError }: { dataset: Dataset; reload: () => void; pollError: string | null }) {
  const { search } = useLocation();
  const view = viewOf(search);
  const [text, setText] = useState(view.q);
  const q = useDebounced(text, 300);
  useEffect(() => {
    if (q !== view.q) setQuery({ q: q || null });
  }, [q]);
  useEffect(() => setText(view.q), [view.q]);

  const browsable = BROWSABLE.has(dataset.status_new);
  const labelKey = view.labels.join(',');
  const params = useMemo(
    () => exploreParams(view, view.q),
    [view.level, view.issue, view.similarity, view.q, view.sort, view.anchor, view.anchorType, labelKey, view.entity],
  );
  // Annotations imported here change labels without changing the dataset: they count as a new version too.
  const [annotated, setAnnotated] = useState(() => annotationImports.get(dataset.id) ?? 0);
  const changed = () => {
    annotationImports.set(dataset.id, annotated + 1);
    setAnnotated(annotated + 1);
    reload();
  };
  const version = `${datasetVersion(dataset)}|${annotated}`;
  // A dataset that changes (indexing ends, media added) starts the grid afresh.
  const grid = useClusterPages(dataset.id, params, browsable, version);
  const facts = useFacts(dataset, view.similarity, version);
  const issues = ISSUES.filter((issue) => ALWAYS.has(issue) || view.issue === issue || facts.summary.data?.issues.some((i) => i.issue_type === issue));
  const labels = facts.meta.data?.labels ?? [];
  const showObjects = dataset.n_objects > 0 || view.entity === 'OBJECTS';
  const [openCluster, setOpenCluster] = useState<Cluster | null>(null);
  const [searchError, setSearchError] = useState<string | null>(null);
  const [searching, setSearching] = useState(false);

  const searchByImage = async (file: File) => {
    setSearching(true);
    setSearchError(null);
    try {
      const { anchor_media_id } = await api.searchByImage(dataset.id, file);
      uploadedAnchors.set(anchor_media_id, { url: URL.createObjectURL(file), name: file.name });
      setQuery({ anchor: anchor_media_id, anchor_type: 'UPLOAD' }, { replace: false });
    } catch (err) {
      setSearchError(messageOf(err));
    } finally {
      setSearching(false);
    }
  };

  const shown = grid.pages.clusters.length;
  return (
    <div className="dataset-page">
      <DatasetHeader dataset={dataset} tab="data" onChanged={changed} />
      <ErrorBanner error={pollError && `Refreshing the dataset failed: ${pollError}`} />
      <div className="dataset-layout">
        <aside className="sidebar" aria-label="Filters">
          <Summary dataset={dataset} view={view} facts={facts} issues={issues} />
          <section className="panel">
            <h3>Filters</h3>
            {showObjects && (
              <fieldset className="entity-switch">
                <legend>Show</legend>
                <label className="inline">
                  <input type="radio" name="entity_type" checked={view.entity === 'IMAGES'} onChange={() => setQuery({ entity_type: null })} /> Images
                </label>
                <label className="inline">
                  <input type="radio" name="entity_type" checked={view.entity === 'OBJECTS'} onChange={() => setQuery({ entity_type: 'OBJECTS' })} /> Objects
                  <span className="muted small-text">({dataset.n_objects.toLocaleString()})</span>
                </label>
              </fieldset>
            )}
            {(labels.length > 0 || view.labels.length > 0) && <LabelFilter labels={labels} selected={view.labels} />}
            <label>
              File name
              <input type="search" name="q" value={text} placeholder="Search file names" onChange={(e) => setText(e.target.value)} />
            </label>
            <fieldset className="issue-filter">
              <legend>Issues</legend>
              <label className="inline">
                <input type="radio" name="issue" checked={view.issue === null} onChange={() => setQuery({ issue: null })} /> All media
              </label>
              {issues.map((issue) => (
                <label key={issue} className="inline">
                  <input type="radio" name="issue" value={issue} checked={view.issue === issue} onChange={() => setQuery({ issue })} /> {ISSUE_LABEL[issue]}
                </label>
              ))}
            </fieldset>
            {view.issue === 'duplicates' && (
              <label>
                Similarity ≥ <strong data-testid="similarity-value">{view.similarity}</strong>
                <input
                  type="range"
                  name="similarity"
                  min={0}
                  max={DUPLICATE_LEVELS.length - 1}
                  step={1}
                  value={DUPLICATE_LEVELS.indexOf(view.similarity)}
                  onChange={(e) => setQuery({ similarity: DUPLICATE_LEVELS[Number(e.target.value)] })}
                />
                <span className="range-labels">
                  <span>0.96 near</span>
                  <span>1.0 exact</span>
                </span>
              </label>
            )}
            <label>
              Cluster granularity: <strong data-testid="level-value">{view.level}</strong>
              <input type="range" name="level" min={0} max={4} step={1} value={view.level} onChange={(e) => setQuery({ level: Number(e.target.value) || null })} />
              <span className="range-labels">
                <span>0 fine</span>
                <span>4 coarse</span>
              </span>
            </label>
            <label>
              Order
              <select name="sort" value={view.sort} disabled={view.anchor !== null} onChange={(e) => setQuery({ sort: e.target.value === 'uniqueness' ? 'uniqueness' : null })}>
                <option value="size">Largest clusters first</option>
                <option value="uniqueness">Most unique first</option>
              </select>
            </label>
            <label className="button" title={blockers.search(dataset) ?? undefined}>
              {searching ? 'Searching…' : 'Search by image…'}
              <input
                type="file"
                hidden
                accept="image/*"
                disabled={searching || blockers.search(dataset) !== null}
                data-testid="search-image-input"
                onChange={(e) => {
                  const file = e.target.files?.[0];
                  e.target.value = '';
                  if (file) void searchByImage(file);
                }}
              />
            </label>
            <ErrorBanner error={searchError} onDismiss={() => setSearchError(null)} />
            {(view.issue || view.q || view.anchor || view.level || view.sort !== 'size' || view.labels.length > 0 || view.entity !== 'IMAGES') && (
              <button type="button" className="link" onClick={() => navigate(`/dataset/${dataset.id}/data`)}>
                Clear filters
              </button>
            )}
          </section>
        </aside>
        <section className="grid-area" aria-label="Media">
          {view.anchor && <AnchorBanner datasetId={dataset.id} anchor={view.anchor} type={view.anchorType} />}
          {!browsable ? (
            <NotBrowsable dataset={dataset} />
          ) : (
            <>
              <div className="grid-status muted" data-testid="grid-status">
                {grid.pages.total !== null
                  ? `${plural(shown, 'cluster')} of ${grid.pages.total.toLocaleString()}`
                  : view.anchor
                    ? `${plural(shown, 'cluster')}, nearest first`
                    : plural(shown, 'cluster')}
                {view.entity === 'OBJECTS' && ' · objects'}
                {view.labels.length > 0 && ` · labelled ${view.labels.join(' or ')}`}
                {view.sort === 'uniqueness' && !view.anchor && ' · most unique first'}
              </div>
              <VirtualGrid
                key={grid.key}
                items={grid.pages.clusters}
                minColumnWidth={MIN_COLUMN}
                rowHeight={ROW_HEIGHT}
                getKey={(c) => c.cluster_id}
                renderItem={(c) => <ClusterTile cluster={c} datasetId={dataset.id} onOpen={() => setOpenCluster(c)} />}
                onNearEnd={grid.pages.hasMore ? grid.loadMore : undefined}
                initialScrollTop={grid.initialScrollTop}
                onScrollTopChange={grid.saveScroll}
                label="Clusters"
                footer={
                  grid.error ? (
                    <ErrorBanner error={grid.error} onRetry={grid.retry} />
                  ) : grid.loading ? (
                    <Spinner label="Loading clusters…" />
                  ) : !grid.pages.hasMore && shown === 0 ? (
                    <div className="empty">Nothing matches these filters.</div>
                  ) : null
                }
              />
            </>
          )}
        </section>
      </div>
      {openCluster && <ClusterDialog cluster={openCluster} datasetId={dataset.id} onClose={() => setOpenCluster(null)} />}
    </div>
  );
}

function NotBrowsable({ dataset }: { dataset: Dataset }) {
  const text: Record<string, string> = {
    DRAFT: 'No media processed yet: this dataset is a draft (its upload was not finished).',
    INDEXING: 'Indexing: the clusters appear as soon as the dataset is READY.',
    ERROR: 'Processing failed, so there is nothing to explore.',
  };
  return <div className="empty">{text[dataset.status_new] ?? `Not browsable while ${dataset.status_new}.`}</div>;
}

function AnchorBanner({ datasetId, anchor, type }: { datasetId: string; anchor: string; type: 'MEDIA' | 'UPLOAD' }) {
  const uploaded = type === 'UPLOAD' ? uploadedAnchors.get(anchor) : undefined;
  const media = useAsync((signal) => (type === 'MEDIA' ? api.media(datasetId, anchor, signal) : Promise.resolve(null)), [datasetId, anchor, type]);
  const src = type === 'MEDIA' ? media.data?.media_thumb_uri : uploaded?.url;
  const name = type === 'MEDIA' ? media.data?.file_name : (uploaded?.name ?? 'your uploaded image');
  return (
    <div className="anchor-banner" data-testid="anchor-banner">
      {src && <img src={src} alt="" />}
      <span>
        Most similar to <strong>{name ?? '…'}</strong> (nearest first)
      </span>
      <button type="button" className="link" onClick={() => setQuery({ anchor: null, anchor_type: null }, { replace: false })}>
        Clear
      </button>
    </div>
  );
}

interface Facts {
  summary: AsyncState<IssueSummary | null>;
  meta: AsyncState<ExplorationMetadata | null>;
}

/** The issue summary and the exploration metadata (clusters, labels) of a browsable dataset. */
function useFacts(dataset: Dataset, similarity: number, version: string): Facts {
  const browsable = BROWSABLE.has(dataset.status_new);
  const key = `${dataset.id}|${version}`;
  const summary = useAsync((signal) => (browsable ? api.issuesSummary(dataset.id, similarity, signal) : Promise.resolve(null)), [key, similarity]);
  const meta = useAsync((signal) => (browsable ? api.explorationMetadata(dataset.id, signal) : Promise.resolve(null)), [key]);
  return { summary, meta };
}

/** The dataset's labels as checkboxes (most used first, as the API lists them): media carrying any of those checked. */
function LabelFilter({ labels, selected }: { labels: { name: string; count: number }[]; selected: string[] }) {
  const known = new Set(labels.map((l) => l.name));
  // A label in the URL that the dataset no longer has stays listed, so it can be unchecked.
  const all = [...labels, ...selected.filter((name) => !known.has(name)).map((name) => ({ name, count: 0 }))];
  const toggle = (name: string, on: boolean) => {
    const next = on ? [...selected, name] : selected.filter((n) => n !== name);
    setQuery({ labels: next.join(',') || null });
  };
  return (
    <fieldset className="label-filter" data-testid="label-filter">
      <legend>Labels{selected.length > 0 && <span className="muted small-text"> (any of {selected.length})</span>}</legend>
      <div className="label-list">
        {all.map((l) => (
          <label key={l.name} className="inline">
            <input type="checkbox" name="labels" value={l.name} checked={selected.includes(l.name)} onChange={(e) => toggle(l.name, e.target.checked)} />
            <span className="label-name">{l.name}</span>
            <span className="muted small-text">{l.count.toLocaleString()}</span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

function Summary({ dataset, view, facts, issues }: { dataset: Dataset; view: View; facts: Facts; issues: readonly Issue[] }) {
  const { summary, meta } = facts;
  const [showFailed, setShowFailed] = useState(false);
  const counts = new Map(summary.data?.issues.map((i) => [i.issue_type, i.count]) ?? []);
  return (
    <section className="panel" aria-label="Summary" data-testid="summary">
      <h3>Summary</h3>
      <ErrorBanner error={summary.error ?? meta.error} onRetry={() => (summary.reload(), meta.reload())} />
      <dl className="summary">
        <dt>Media</dt>
        <dd>{summary.data?.media_count.toLocaleString() ?? '—'}</dd>
        <dt>Clusters</dt>
        <dd>{meta.data?.clusters_count.toLocaleString() ?? '—'}</dd>
        {dataset.n_objects > 0 && (
          <>
            <dt>Objects</dt>
            <dd>{dataset.n_objects.toLocaleString()}</dd>
          </>
        )}
        {(meta.data?.labels?.length ?? 0) > 0 && (
          <>
            <dt>Labels</dt>
            <dd>{meta.data!.labels!.length.toLocaleString()}</dd>
          </>
        )}
        {issues.map((issue) => (
          <SummaryIssue key={issue} issue={issue} count={counts.get(issue)} active={view.issue === issue} groups={issue === 'duplicates' ? summary.data?.duplicate_groups : undefined} />
        ))}
        {dataset.n_failed_files > 0 && (
          <>
            <dt>Failed files</dt>
            <dd>
              <button type="button" className="link" onClick={() => setShowFailed(true)}>
                {dataset.n_failed_files}
              </button>
            </dd>
          </>
        )}
      </dl>
      {showFailed && <FailedFilesDialog datasetId={dataset.id} onClose={() => setShowFailed(false)} />}
    </section>
  );
}

function SummaryIssue({ issue, count, active, groups }: { issue: Issue; count: number | undefined; active: boolean; groups?: number }) {
  return (
    <>
      <dt>{ISSUE_LABEL[issue]}</dt>
      <dd>
        <button type="button" className={`link${active ? ' active' : ''}`} data-testid={`count-${issue}`} onClick={() => setQuery({ issue: active ? null : issue })}>
          {count === undefined ? '—' : count.toLocaleString()}
        </button>
        {groups !== undefined && groups > 0 && <span className="muted small-text"> in {plural(groups, 'group')}</span>}
      </dd>
    </>
  );
}

function FailedFilesDialog({ datasetId, onClose }: { datasetId: string; onClose: () => void }) {
  const failed = useAsync(() => api.failedFiles(datasetId), [datasetId]);
  return (
    <Dialog title="Files that could not be processed" onClose={onClose}>
      <ErrorBanner error={failed.error} onRetry={failed.reload} />
      {failed.loading && <Spinner />}
      {failed.data && (
        <ul className="compact">
          {failed.data.files.map((f) => (
            <li key={f.media_id}>
              <strong>{f.original_media_uri}</strong>: {f.reason}
            </li>
          ))}
          {failed.data.total > failed.data.files.length && <li className="muted">… and {failed.data.total - failed.data.files.length} more</li>}
        </ul>
      )}
    </Dialog>
  );
}

/** An object's parent image, from its `media_uri` (…/media/{parent}/file). */
const parentOf = (p: Preview) => (p.type === 'OBJECT' ? (/\/media\/([^/]+)\/file$/.exec(p.media_uri)?.[1] ?? null) : null);
/** The media page of a preview; an object's is its image's. */
const mediaPath = (datasetId: string, p: Preview) => `/dataset/${datasetId}/data/image/${parentOf(p) ?? p.media_id}`;

/** A preview's tooltip: its name, what it is, and the caption. */
function titleOf(p: Preview): string {
  const box = p.bounding_box ? ` (object at ${p.bounding_box.map((v) => Math.round(v)).join(', ')})` : '';
  return `${p.file_name}${box}${p.caption ? `\n“${p.caption}”` : ''}`;
}

function ClusterTile({ cluster, datasetId, onOpen }: { cluster: Cluster; datasetId: string; onOpen: () => void }) {
  const [first, ...rest] = cluster.previews;
  if (!first) return null;
  const members = Math.max(cluster.previews.length, cluster.n_images + (cluster.n_objects ?? 0));
  const similarity = first.relevance_score === null ? null : 1 - first.relevance_score;
  const labels = cluster.labels ?? [];
  return (
    <div className="tile" data-testid="tile" data-file-name={first.file_name} data-type={first.type}>
      <Link to={mediaPath(datasetId, first)} className="tile-main" title={`${titleOf(first)}${labels.length ? `\nLabels: ${labels.join(', ')}` : ''}`}>
        <img src={first.media_thumb_uri} alt={first.file_name} loading="lazy" decoding="async" />
        {first.type === 'VIDEO_FRAME' && <span className="tile-tag">video</span>}
        {first.type === 'OBJECT' && <span className="tile-tag">object</span>}
        {similarity !== null && <span className="tile-score">{similarity.toFixed(3)}</span>}
      </Link>
      <div className="tile-strip">
        {rest.slice(0, 4).map((p) => (
          <Link key={p.media_id} to={mediaPath(datasetId, p)} title={titleOf(p)}>
            <img src={p.media_thumb_uri} alt={p.file_name} loading="lazy" decoding="async" />
          </Link>
        ))}
      </div>
      <div className="tile-caption">
        <span className="tile-name">{first.file_name}</span>
        {members > 1 ? (
          <button type="button" className="link small-text" onClick={onOpen}>
            {plural(members, 'item')}
          </button>
        ) : null}
      </div>
      {labels.length > 0 && (
        <div className="tile-labels small-text" data-testid="tile-labels" title={labels.join(', ')}>
          {labels.join(' · ')}
        </div>
      )}
    </div>
  );
}

function ClusterDialog({ cluster, datasetId, onClose }: { cluster: Cluster; datasetId: string; onClose: () => void }) {
  const first = cluster.previews[0];
  const labels = cluster.labels ?? [];
  return (
    <Dialog title={`Cluster of ${plural(Math.max(cluster.n_images + (cluster.n_objects ?? 0), cluster.previews.length), 'item')}`} onClose={onClose} wide>
      {labels.length > 0 && (
        <p className="small-text">
          Labels:{' '}
          {labels.map((l) => (
            <span key={l} className="badge badge-blue label-badge">
              {l}
            </span>
          ))}
        </p>
      )}
      <div className="cluster-grid">
        {cluster.previews.map((p) => (
          <Link key={p.media_id} to={mediaPath(datasetId, p)} className="cluster-item" onClick={onClose} title={titleOf(p)}>
            <img src={p.media_thumb_uri} alt={p.file_name} loading="lazy" />
            <span className="small-text">{p.file_name}</span>
            {p.caption && <span className="small-text muted">{p.caption}</span>}
          </Link>
        ))}
      </div>
      {cluster.n_images + (cluster.n_objects ?? 0) > cluster.previews.length && (
        <p className="hint">Explore shows {cluster.previews.length} members of each cluster; “Find similar” lists the rest by similarity.</p>
      )}
      {first && (
        <div className="dialog-actions">
          <button
            type="button"
            className="primary"
            onClick={() => {
              onClose();
              setQuery({ anchor: first.media_id, anchor_type: 'MEDIA' }, { replace: false });
            }}
          >
            Find similar
          </button>
        </div>
      )}
    </Dialog>
  );
}
