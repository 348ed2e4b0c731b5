import { BadRequestError, NotFoundError } from '../domain/errors.js';
import type { Role } from '../domain/roles.js';
import type { DatasetsRepository } from '../db/datasets.repository.js';
import type { UsersRepository } from '../db/users.repository.js';
import type { AccessService } from './access.service.js';
import type { Clock } from './clock.js';

export interface MemberView {
  email: string;
  role: Role;
}

/** Who shares a dataset, with which role. Only the owner changes membership. */
export class SharingService {
  constructor(
    private readonly datasets: DatasetsRepository,
    private readonly users: UsersRepository,
    private readonly access: AccessService,
    private readonly clock: Clock,
  ) {}

  /** Grants `role` (viewer by default); inviting an existing member changes their role. */
  async invite(ownerId: string, datasetId: string, email: string, role: Exclude<Role, 'owner'> = 'viewer'): Promise<void> {
    const { dataset } = await this.access.require(ownerId, datasetId, 'owner');
    const grantee = await this.users.findByEmail(email.trim());
    if (!grantee) throw new NotFoundError(`User with email ${email} not found`);
    if (grantee.id === dataset.owned_by) throw new BadRequestError('The owner already has full access to the dataset');
    await this.datasets.upsertMember(dataset.id, grantee.id, role, this.clock.now().toISOString());
  }

  async members(userId: string, datasetId: string): Promise<MemberView[]> {
    const { dataset } = await this.access.require(userId, datasetId, 'viewer');
    const members = await this.datasets.listMembers(dataset.id);
    // The owner first, then members in the order they were invited.
    members.sort((a, b) => Number(b.role === 'owner') - Number(a.role === 'owner'));
    return members.map(({ email, role }) => ({ email, role }));
  }

  async revoke(ownerId: string, datasetId: string, email: string): Promise<void> {
    const { dataset } = await this.access.require(ownerId, datasetId, 'owner');
    const member = await this.users.findByEmail(email.trim());
    if (member?.id === dataset.owned_by) throw new BadRequestError('The owner cannot be removed from the dataset');
    if (!member || !(await this.datasets.deleteMember(dataset.id, member.id))) {
      throw new NotFoundError(`${email} is not a member of this dataset`);
    }
  }
}
