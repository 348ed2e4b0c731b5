/**
 * The seed's local-upload steps as small helpers, so suites can set up datasets through the real
 * HTTP API in one line and keep their own assertions about the step under test.
 */
import { expect } from 'vitest';
import type { App } from '../../src/http/app.js';
import { multipart, waitForStatus } from './harness.js';

export type Headers = Record<string, string>;
export interface UploadFile {
  name: string;
  data: Buffer;
  field?: string;
}

export async function newDataset(app: App, headers: Headers, name = 'test dataset'): Promise<string> {
  const response = await app.inject({ method: 'GET', url: `/api/v1/ingestion/new_dataset?dataset_name=${encodeURIComponent(name)}`, headers });
  expect(response.statusCode, response.body).toBe(200);
  return (response.json() as { dataset_id: string }).dataset_id;
}

export async function openTransaction(app: App, headers: Headers, datasetId: string): Promise<string> {
  const response = await app.inject({ method: 'GET', url: `/api/v1/ingestion/${datasetId}/data_files`, headers });
  expect(response.statusCode, response.body).toBe(200);
  return (response.json() as { trans_id: string }).trans_id;
}

export function uploadFiles(app: App, headers: Headers, datasetId: string, transId: string, files: UploadFile[]) {
  const body = multipart(files);
  return app.inject({
    method: 'POST',
    url: `/api/v1/ingestion/${datasetId}/data_files/${transId}`,
    headers: { ...headers, ...body.headers },
    payload: body.payload,
  });
}

export function processFiles(app: App, headers: Headers, datasetId: string, transId: string) {
  return app.inject({ method: 'POST', url: `/api/v1/ingestion/${datasetId}/process_files/${transId}`, headers });
}

/** new_dataset → data_files → one upload (202 expected); the dataset stays DRAFT. */
export async function draftDataset(app: App, headers: Headers, files: UploadFile[], name?: string): Promise<{ datasetId: string; transId: string }> {
  const datasetId = await newDataset(app, headers, name);
  const transId = await openTransaction(app, headers, datasetId);
  if (files.length > 0) {
    const response = await uploadFiles(app, headers, datasetId, transId, files);
    expect(response.statusCode, response.body).toBe(202);
  }
  return { datasetId, transId };
}

/** GET /dataset/{id} as JSON. */
export async function getDataset(app: App, headers: Headers, datasetId: string): Promise<Record<string, unknown>> {
  const response = await app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}`, headers });
  expect(response.statusCode, response.body).toBe(200);
  return response.json() as Record<string, unknown>;
}

/** A dataset indexed from `files` through the local-upload steps, READY. */
export async function readyDataset(app: App, headers: Headers, files: UploadFile[], name?: string): Promise<string> {
  const { datasetId, transId } = await draftDataset(app, headers, files, name);
  const response = await processFiles(app, headers, datasetId, transId);
  expect(response.statusCode, response.body).toBe(202);
  const dataset = await waitForStatus(app, headers, datasetId, ['READY', 'ERROR'], 120_000);
  expect(dataset.status_new, JSON.stringify(dataset)).toBe('READY');
  return datasetId;
}

/** `POST /dataset/{id}/add_media` as a multipart form (the seed's curl -F). */
export function addMedia(app: App, headers: Headers, datasetId: string, form: { files?: UploadFile[]; fields?: Record<string, string> }) {
  const body = multipart(form.files ?? [], form.fields ?? {});
  return app.inject({ method: 'POST', url: `/api/v1/dataset/${datasetId}/add_media`, headers: { ...headers, ...body.headers }, payload: body.payload });
}

export function reindex(app: App, headers: Headers, datasetId: string) {
  return app.inject({ method: 'POST', url: `/api/v1/dataset/${datasetId}/reindex`, headers });
}

/** Tasks of a dataset, newest first. */
export async function datasetTasks(app: App, headers: Headers, datasetId: string): Promise<Record<string, unknown>[]> {
  const response = await app.inject({ method: 'GET', url: `/api/v1/tasks?dataset_id=${datasetId}`, headers });
  expect(response.statusCode, response.body).toBe(200);
  return (response.json() as { tasks: Record<string, unknown>[] }).tasks;
}
