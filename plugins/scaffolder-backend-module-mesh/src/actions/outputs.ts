import type { z as zod } from 'zod/v3';

type Z = typeof zod;

/** The outputs of every action that reports a `ChangeSet`; see `ChangeSet.writeTo`. */
export const changeOutputs = {
  changed: (z: Z) =>
    z
      .boolean()
      .describe('Whether anything was (or in a dry run would be) changed'),
  changes: (z: Z) =>
    z
      .array(z.string())
      .describe('One line per object, helm release or edit, with its outcome'),
  manifests: (z: Z) =>
    z
      .string()
      .optional()
      .describe('Dry run only: what would be applied, Secret data redacted'),
};
