import Ajv from 'ajv';
import type { Manifest } from './kustomize';

/**
 * Offline validation against the Kubernetes OpenAPI schemas that
 * kubernetes-models 5.1.0 ships, compiled into validators (generated from the
 * upstream OpenAPI of the 1.34 line: storage.k8s.io/v1 VolumeAttributesClass
 * and resource.k8s.io/v1 are there, both GA in 1.34). They check types,
 * required fields, enums and formats; like the API server without strict field
 * validation, they do not reject unknown fields.
 */

type Model = new (data: unknown) => { validate(): void };

const modules: Record<string, Promise<Record<string, Model>>> = {};

function modulePath(apiVersion: string): string {
  return apiVersion === 'v1' ? 'kubernetes-models/v1' : `kubernetes-models/${apiVersion}`;
}

/** Throws with the schema's message when the object does not validate; undefined when the kind is not a built-in. */
export async function validateBuiltin(m: Manifest): Promise<boolean> {
  const path = modulePath(m.apiVersion);
  modules[path] ??= (import(path) as Promise<Record<string, Model>>).catch(() => ({}));
  const Cls = (await modules[path])[m.kind];
  if (!Cls) return false;
  new Cls(m).validate();
  return true;
}

const ajv = new Ajv({ allErrors: true, strict: false });

/** Validates a custom resource against the openAPIV3Schema of its CRD (served version), as the API server does. */
export function validateAgainstCrd(crd: Manifest, object: unknown): string[] {
  const spec = crd.spec as { versions: Array<{ name: string; schema: { openAPIV3Schema: object } }> };
  const version = spec.versions[0];
  const validate = ajv.compile(version.schema.openAPIV3Schema);
  if (validate(object)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/**
 * The VolumeSnapshotClass schema of kubernetes-csi/external-snapshotter
 * (snapshot.storage.k8s.io/v1): its required fields and the deletionPolicy
 * enum, written out here since no npm package ships the snapshot CRDs.
 */
export const VOLUME_SNAPSHOT_CLASS_SCHEMA = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'driver', 'deletionPolicy'],
  properties: {
    apiVersion: { const: 'snapshot.storage.k8s.io/v1' },
    kind: { const: 'VolumeSnapshotClass' },
    metadata: { type: 'object', required: ['name'] },
    driver: { type: 'string', minLength: 1 },
    deletionPolicy: { enum: ['Delete', 'Retain'] },
    parameters: { type: 'object', additionalProperties: { type: 'string' } },
  },
  additionalProperties: false,
};

export function validateSnapshotClass(object: unknown): string[] {
  const validate = ajv.compile(VOLUME_SNAPSHOT_CLASS_SCHEMA);
  if (validate(object)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/** VolumeSnapshot (snapshot.storage.k8s.io/v1): exactly one source, as the upstream CRD's validation rule requires. */
export const VOLUME_SNAPSHOT_SCHEMA = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'snapshot.storage.k8s.io/v1' },
    kind: { const: 'VolumeSnapshot' },
    metadata: { type: 'object', required: ['name'] },
    spec: {
      type: 'object',
      required: ['source'],
      additionalProperties: false,
      properties: {
        volumeSnapshotClassName: { type: 'string' },
        source: {
          type: 'object',
          additionalProperties: false,
          properties: { persistentVolumeClaimName: { type: 'string' }, volumeSnapshotContentName: { type: 'string' } },
          oneOf: [{ required: ['persistentVolumeClaimName'] }, { required: ['volumeSnapshotContentName'] }],
        },
      },
    },
  },
};

export function validateSnapshot(object: unknown): string[] {
  const validate = ajv.compile(VOLUME_SNAPSHOT_SCHEMA);
  if (validate(object)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}
