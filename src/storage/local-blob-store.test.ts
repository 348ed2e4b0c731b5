import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describeBlobStore } from '../../test/helpers/blob-store-contract.js';
import { LocalBlobStore } from './local-blob-store.js';

describeBlobStore('LocalBlobStore', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'vizdex-local-blobs-'));
  return {
    store: new LocalBlobStore(root),
    scratchDir: null,
    bulkKeys: 50,
    async storedKeys() {
      const entries = await fsp.readdir(root, { recursive: true, withFileTypes: true });
      return entries
        .filter((entry) => entry.isFile())
        .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
        .sort();
    },
    close: () => fsp.rm(root, { recursive: true, force: true }),
  };
});
