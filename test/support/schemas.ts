import type { StandardSchemaV1 } from '@standard-schema/spec';

/**
 * A schema that transforms: strings in, their lengths out. A length is no string, so a message
 * validated twice fails the second time: tests use it to show a schema runs once per message.
 */
export const stringLength: StandardSchemaV1<unknown, number> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (v) =>
      typeof v === 'string' ? { value: v.length } : { issues: [{ message: 'not a string' }] },
  },
};

/** A schema that transforms bytes: a Uint8Array in, its length out (anything else fails). */
export const byteLength: StandardSchemaV1<unknown, number> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (v) =>
      v instanceof Uint8Array ? { value: v.byteLength } : { issues: [{ message: 'not bytes' }] },
  },
};
