import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { SharingService } from '../../services/sharing.service.js';
import { currentUser } from '../plugins/auth.js';
import { DatasetIdParams, NullResponse } from './schemas.js';

const tags = ['sharing'];

export const sharingRoutes: FastifyPluginAsyncTypebox<{ sharing: SharingService }> = async (app, { sharing }) => {
  app.put(
    '/manage/:datasetId/invite',
    {
      config: { datasetRole: 'owner' },
      schema: {
        tags,
        summary: 'Grant a registered user access (viewer unless `role` says editor); re-inviting changes the role',
        params: DatasetIdParams,
        body: Type.Object({
          grant_to_user_email: Type.String(),
          role: Type.Optional(Type.Union([Type.Literal('viewer'), Type.Literal('editor')])),
        }),
        response: { 200: NullResponse },
      },
    },
    async (request) => {
      await sharing.invite(currentUser(request).id, request.params.datasetId, request.body.grant_to_user_email, request.body.role);
      return null;
    },
  );

  app.get(
    '/manage/:datasetId/share',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'Members of the dataset with their roles, owner first',
        params: DatasetIdParams,
        response: { 200: Type.Array(Type.Object({ email: Type.String(), role: Type.String() })) },
      },
    },
    async (request) => sharing.members(currentUser(request).id, request.params.datasetId),
  );

  app.delete(
    '/manage/:datasetId/share/:email',
    {
      config: { datasetRole: 'owner' },
      schema: {
        tags,
        summary: "Revoke a member's access (owner only; the owner cannot be removed)",
        params: Type.Object({ datasetId: Type.String(), email: Type.String() }),
        response: { 200: NullResponse },
      },
    },
    async (request) => {
      await sharing.revoke(currentUser(request).id, request.params.datasetId, request.params.email);
      return null;
    },
  );
};
