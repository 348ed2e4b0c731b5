import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { MediaUris } from '../services/explore.service.js';

/** The absolute base of URIs handed out: VIZDEX_PUBLIC_URL, else the request's scheme and Host. */
export function requestBaseUrl(request: FastifyRequest, config: Pick<Config, 'publicUrl'>): string {
  return config.publicUrl ?? `${request.protocol}://${request.host}`;
}

/** Where a media item's bytes and thumbnail are served (routes/media.ts). */
export function mediaUris(base: string): MediaUris {
  const root = `${base}/api/v1/dataset`;
  return {
    file: (datasetId, mediaId) => `${root}/${datasetId}/media/${mediaId}/file`,
    thumbnail: (datasetId, mediaId) => `${root}/${datasetId}/media/${mediaId}/thumbnail`,
  };
}
