import { Type, type TSchema } from '@fastify/type-provider-typebox';

/** Schemas shared by several route files. */
export const DatasetIdParams = Type.Object({ datasetId: Type.String() });

export const ErrorResponse = Type.Object({ detail: Type.Unknown() }, { description: 'Error: `{"detail": ...}`' });

export const NullResponse = Type.Null({ description: 'The body is `null`' });

export const EmptyResponse = Type.Unsafe<void>({ description: 'Accepted; empty body' });

/** `T | null`, for fields the API answers with null when unknown. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
