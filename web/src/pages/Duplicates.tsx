import { useCallback, useEffect, useRef, useState } from 'react';
import { api, type Dataset, type DuplicateGroups, type SelectionItem } from '../api';
import { DatasetHeader, useDataset } from '../components/DatasetHeader';
import { ExportDialog, type ExportSelection } from '../components/ExportDialog';
import { VirtualGrid } from '../components/VirtualGrid';
import { ErrorBanner, GuardedButton, Spinner } from '../components/ui';
import { blockers, formatBytes, plural } from '../format';
import { messageOf } from '../hooks';
import { Link, setQuery, useLocation } from '../router';
import { DUPLICATE_LEVELS } from './DatasetView';

type Group = DuplicateGroups['groups'][number];
const PAGE_SIZE = 50;
const ROW_HEIGHT = 262;
/** A selection body must stay well under the server's 1 MiB JSON limit. */
const MAX_SELECTION_CLUSTERS = 5000;

export function DuplicatesPage({ id }: { id: string }) {
  const dataset = useDataset(id);
  if (!dataset.data) {
    return (
      <main className="page">
        <ErrorBanner error={dataset.error} onRetry={dataset.reload} />
        {dataset.loading && <Spinner />}
      </main>
    );
  }
  return (
    <div className="dataset-page">
      <DatasetHeader dataset={dataset.data} tab="duplicates" onChanged={dataset.reload} />
      <DuplicateGroupsView key={`${id}|${dataset.data.status_new}`} dataset={dataset.data} />
    </div>
  );
}

/** Near-duplicate groups side by side; pick the one to keep in each; export the kept selection. */
function DuplicateGroupsView({ dataset }: { dataset: Dataset }) {
  const { search } = useLocation();
  const requested = Number(search.get('similarity') ?? 0.96);
  const threshold = DUPLICATE_LEVELS.includes(requested) ? requested : 0.96;
  const [groups, setGroups] = useState<Group[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [kept, setKept] = useState<Map<string, string>>(new Map());
  const [exporting, setExporting] = useState<ExportSelection | null>(null);
  const state = useRef({ threshold, done: false, inflight: false, groups: [] as Group[] });

  const fetchPage = useCallback(
    async (pageSize: number) => {
      const s = state.current;
      const page = await api.duplicateGroups(dataset.id, s.threshold, Math.floor(s.groups.length / pageSize), pageSize);
      if (state.current !== s) return false;
      s.groups = [...s.groups, ...page.groups];
      s.done = s.groups.length >= page.total || page.groups.length === 0;
      setGroups(s.groups);
      setTotal(page.total);
      return true;
    },
    [dataset.id],
  );

  const loadMore = useCallback(async () => {
    const s = state.current;
    if (s.inflight || s.done) return;
    s.inflight = true;
    setLoading(true);
    setError(null);
    try {
      await fetchPage(PAGE_SIZE);
    } catch (err) {
      if (state.current === s) setError(messageOf(err));
    } finally {
      s.inflight = false;
      if (state.current === s) setLoading(false);
    }
  }, [fetchPage]);

  useEffect(() => {
    state.current = { threshold, done: false, inflight: false, groups: [] };
    setGroups([]);
    setTotal(null);
    setKept(new Map());
    void loadMore();
  }, [threshold, loadMore]);

  /** Every group, for a selection that covers them all. */
  const loadAll = async () => {
    const s = state.current;
    while (!s.done && state.current === s) {
      if (s.groups.length % PAGE_SIZE !== 0) throw new Error('Groups changed while loading; reload the page');
      await fetchPage(PAGE_SIZE);
    }
    return s.groups;
  };

  const keptOf = (g: Group) => kept.get(g.group_id) ?? g.media[0]?.media_id;
  const removedCount = groups.reduce((n, g) => n + Math.max(0, g.media.length - 1), 0);

  const exportKept = () =>
    setExporting({
      description: `One media from each of the ${plural(total ?? groups.length, 'duplicate group')} (the one marked “keep”).`,
      build: async () => {
        const all = await loadAll();
        const ids = all.map((g) => kept.get(g.group_id) ?? g.media[0]?.media_id).filter((x): x is string => !!x);
        if (ids.length === 0) throw new Error('There are no duplicate groups to export');
        return [{ type: 'media', payload: { media_ids: ids } }];
      },
    });

  const exportDeduplicated = () =>
    setExporting({
      description: `The whole dataset without the media not kept from each duplicate group (${plural(total ?? groups.length, 'group')}).`,
      build: async () => {
        const all = await loadAll();
        const dropped = new Map<string, string[]>();
        for (const g of all) {
          const keep = kept.get(g.group_id) ?? g.media[0]?.media_id;
          for (const m of g.media) {
            if (m.media_id === keep || !m.coarse_cluster_id) continue;
            const list = dropped.get(m.coarse_cluster_id) ?? [];
            list.push(m.media_id);
            dropped.set(m.coarse_cluster_id, list);
          }
        }
        const clusters: string[] = [];
        for (let page = 0; ; page++) {
          const result = await api.explore(dataset.id, { threshold: 4, page_number: page });
          clusters.push(...result.clusters.map((c) => c.cluster_id));
          if (!result.metadata.has_more || result.clusters.length === 0) break;
          if (clusters.length > MAX_SELECTION_CLUSTERS) throw new Error(`The dataset has more than ${MAX_SELECTION_CLUSTERS} coarse clusters: export the kept media instead`);
        }
        return clusters.map(
          (cluster_id): SelectionItem => ({ type: 'cluster', payload: { cluster_id, cluster_filters: { entity_type: 'IMAGES' }, exclude_media_ids: dropped.get(cluster_id) ?? [] } }),
        );
      },
    });

  const exportBlocked = blockers.export(dataset);
  return (
    <main className="duplicates-page">
      <div className="duplicates-toolbar">
        <label>
          Similarity ≥ <strong data-testid="dup-threshold">{threshold}</strong>
          <input
            type="range"
            min={0}
            max={DUPLICATE_LEVELS.length - 1}
            value={DUPLICATE_LEVELS.indexOf(threshold)}
            onChange={(e) => setQuery({ similarity: DUPLICATE_LEVELS[Number(e.target.value)] })}
          />
        </label>
        <span className="muted" data-testid="dup-summary">
          {total === null ? 'Loading…' : `${plural(total, 'group')} · ${plural(removedCount, 'media', 'media')} not kept in the ${plural(groups.length, 'group')} shown`}
        </span>
        <span className="spacer" />
        <GuardedButton reason={exportBlocked ?? (total === 0 ? 'No duplicate groups at this similarity.' : null)} onClick={exportKept}>
          Export kept media
        </GuardedButton>
        <GuardedButton reason={exportBlocked ?? (total === 0 ? 'No duplicate groups at this similarity.' : null)} onClick={exportDeduplicated} className="primary">
          Export without duplicates
        </GuardedButton>
      </div>
      {total === 0 && <div className="empty">No near-duplicates at similarity ≥ {threshold}.</div>}
      <VirtualGrid
        key={threshold}
        items={groups}
        minColumnWidth={100_000}
        rowHeight={ROW_HEIGHT}
        getKey={(g) => g.group_id}
        onNearEnd={loadMore}
        label="Duplicate groups"
        renderItem={(g) => <GroupRow group={g} datasetId={dataset.id} keep={keptOf(g)} onKeep={(mediaId) => setKept(new Map(kept).set(g.group_id, mediaId))} />}
        footer={error ? <ErrorBanner error={error} onRetry={() => void loadMore()} /> : loading ? <Spinner label="Loading groups…" /> : null}
      />
      {exporting && <ExportDialog dataset={dataset} selection={exporting} onClose={() => setExporting(null)} />}
    </main>
  );
}

function GroupRow({ group, datasetId, keep, onKeep }: { group: Group; datasetId: string; keep: string | undefined; onKeep: (mediaId: string) => void }) {
  return (
    <section className="group card" data-testid="dup-group" aria-label={`Group of ${group.size}`}>
      <div className="group-title small-text muted">Group of {group.size}</div>
      <div className="group-members">
        {group.media.map((m) => {
          const kept = m.media_id === keep;
          return (
            <figure key={m.media_id} className={`member${kept ? ' member-kept' : ' member-dropped'}`} data-testid="dup-member" data-file-name={m.file_name}>
              <Link to={`/dataset/${datasetId}/data/image/${m.media_id}`}>
                <img src={m.media_thumb_uri} alt={m.file_name} loading="lazy" decoding="async" />
              </Link>
              <figcaption>
                <span className="tile-name" title={m.original_media_uri}>
                  {m.file_name}
                </span>
                <span className="muted small-text">
                  {m.width}×{m.height} · {formatBytes(m.file_size)}
                </span>
                <label className="inline small-text">
                  <input type="radio" name={`keep-${group.group_id}`} checked={kept} onChange={() => onKeep(m.media_id)} /> {kept ? 'Keep' : 'Keep this one'}
                </label>
              </figcaption>
            </figure>
          );
        })}
      </div>
    </section>
  );
}
