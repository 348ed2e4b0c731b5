import { datasetNotFound, ForbiddenError } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';
import { roleAtLeast, type Role } from '../domain/roles.js';
import type { DatasetRow, DatasetsRepository } from '../db/datasets.repository.js';

export interface DatasetAccess {
  dataset: DatasetRow;
  role: Role;
}


/** Who may do what with a dataset. Non-members learn nothing: 404, as if it did not exist. */
export class AccessService {
  constructor(private readonly datasets: DatasetsRepository) {}

  async require(userId: string, datasetId: string, required: Role): Promise<DatasetAccess> {
    if (!isUuid(datasetId)) throw datasetNotFound();
    const [dataset, role] = await Promise.all([this.datasets.findById(datasetId), this.datasets.findRole(datasetId, userId)]);
    if (!dataset || !role) throw datasetNotFound();
    if (!roleAtLeast(role, required)) {
      throw new ForbiddenError(`Your role on this dataset is ${role}; this operation requires ${required}`);
    }
    return { dataset, role };
  }
}
