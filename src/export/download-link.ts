import type { Keyring } from '../security/keyring.js';

/** How long a handed-out `download_uri` works. */
export const DOWNLOAD_LINK_TTL_SECONDS = 24 * 60 * 60;

export interface DownloadGrant {
  datasetId: string;
  exportId: string;
  /** Unix seconds. */
  expires: number;
}

const message = (grant: DownloadGrant) => `export-download:v1:${grant.datasetId}:${grant.exportId}:${grant.expires}`;

/** HMAC (server key) over dataset, export id and expiry: the link is bound to that one export. */
export function signDownload(keyring: Keyring, grant: DownloadGrant): string {
  return keyring.sign(message(grant));
}

export function verifyDownload(keyring: Keyring, grant: DownloadGrant, signature: string): boolean {
  return keyring.verify(message(grant), signature);
}

/** The path (under the base URL) of a signed download; works without credentials until it expires. */
export function downloadPath(grant: DownloadGrant, signature: string): string {
  return `/api/v1/dataset/${grant.datasetId}/export_download/${grant.exportId}?expires=${grant.expires}&signature=${signature}`;
}
