import type { IndexRepository } from '../../db/index.repository.js';
import type { SearcherSource, VectorSearcher } from '../../services/explore.service.js';
import type { KnnDatasetIndexer, LoadedDatasetIndex } from './dataset-indexer.js';
import { NO_NEIGHBOR } from './vector-index.js';

/** Search over a dataset's persisted vector index, answering media ids. */
export class PersistedIndexSearcher implements VectorSearcher {
  constructor(private readonly loaded: LoadedDatasetIndex) {}

  get size(): number {
    return this.loaded.index.size;
  }

  search(query: Float32Array, k: number): { mediaIds: string[]; similarities: number[] } {
    const result = this.loaded.index.search(query, Math.max(1, k));
    const mediaIds: string[] = [];
    const similarities: number[] = [];
    for (let j = 0; j < result.k; j++) {
      const key = result.neighbors[j]!;
      const id = this.loaded.mediaIds[key];
      if (key === NO_NEIGHBOR || id === undefined) continue;
      mediaIds.push(id);
      similarities.push(result.similarities[j]!);
    }
    return { mediaIds, similarities };
  }
}

/** The explore service's vectors: the indexer's persisted index, or the stored vectors. */
export function datasetSearcherSource(indexer: KnnDatasetIndexer, index: IndexRepository): SearcherSource {
  return {
    async persisted(datasetId, entity) {
      const loaded = await indexer.load(datasetId, entity);
      return loaded ? new PersistedIndexSearcher(loaded) : null;
    },
    loadVectors: (datasetId, entity) => index.loadVectors(datasetId, { entity }),
  };
}
