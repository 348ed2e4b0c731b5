import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { TASK_STATUSES, TASK_TYPES } from '../../domain/tasks.js';
import type { TasksService } from '../../services/tasks.service.js';
import { currentUser } from '../plugins/auth.js';
import { Nullable } from './schemas.js';


const TaskResponse = Type.Object({
  task_id: Type.String(),
  dataset_id: Type.String(),
  dataset_name: Nullable(Type.String()),
  dataset_status: Nullable(Type.String()),
  created_by: Nullable(Type.String()),
  task_type: Type.String(),
  status: Type.String(),
  status_message: Nullable(Type.String()),
  progress_percentage: Type.Integer(),
  error_message: Nullable(Type.String()),
  start_time: Nullable(Type.String()),
  end_time: Nullable(Type.String()),
  created_at: Type.String(),
});

export const taskRoutes: FastifyPluginAsyncTypebox<{ tasks: TasksService }> = async (app, { tasks }) => {
  app.get(
    '/tasks',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Tasks on the datasets the caller can access, newest first',
        querystring: Type.Object({
          dataset_id: Type.Optional(Type.String()),
          task_type: Type.Optional(Type.Union(TASK_TYPES.map((t) => Type.Literal(t)))),
          task_status: Type.Optional(Type.Union(TASK_STATUSES.map((s) => Type.Literal(s)))),
          page: Type.Integer({ minimum: 1, default: 1 }),
          page_size: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
        }),
        response: {
          200: Type.Object({ tasks: Type.Array(TaskResponse), total: Type.Integer(), page: Type.Integer(), page_size: Type.Integer() }),
        },
      },
    },
    async (request) => {
      const q = request.query;
      return tasks.list(currentUser(request).id, {
        datasetId: q.dataset_id,
        taskType: q.task_type,
        taskStatus: q.task_status,
        page: q.page,
        pageSize: q.page_size,
      });
    },
  );
};
