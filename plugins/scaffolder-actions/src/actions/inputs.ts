import type { z as zod } from 'zod/v3';
import { DEFAULT_TIMEOUT_SECONDS } from '../service/waitUntil';
import { InputError } from '@backstage/errors';
import {
  CLUSTER_NAME_MAX_LENGTH,
  CLUSTER_NAME_PATTERN,
  DNS1123_SUBDOMAIN_MAX_LENGTH,
  DNS1123_SUBDOMAIN_PATTERN,
  LABEL_VALUE_MAX_LENGTH,
  LABEL_VALUE_PATTERN,
  Validator,
  describeInputValue,
} from '@tailmesh/plugin-mesh-common';

type Z = typeof zod;

// Patterns and lengths become JSON schema, so the scaffolder (and the form) reject bad input
// before a step runs; `checkInputs` repeats mesh-common's full checks inside the handler.

export const clusterInput = (
  z: Z,
  description = 'Name of a cluster configured in mesh.clusters',
) =>
  z
    .string()
    .min(1)
    .max(CLUSTER_NAME_MAX_LENGTH)
    .regex(
      CLUSTER_NAME_PATTERN,
      'must be a DNS-1035 label: lowercase letters, digits and "-", starting with a letter',
    )
    .describe(description);

const labelValue = (z: Z, description: string) =>
  z
    .string()
    .min(1)
    .max(LABEL_VALUE_MAX_LENGTH)
    .regex(LABEL_VALUE_PATTERN, 'must be a Kubernetes label value')
    .describe(description);

export const networkInput = (z: Z) =>
  labelValue(z, 'Istio network id of the cluster (topology.istio.io/network)');

export const meshIdInput = (z: Z) =>
  labelValue(z, 'Istio mesh id, the same on every member');

export const tailnetInput = (z: Z) =>
  z
    .string()
    .max(DNS1123_SUBDOMAIN_MAX_LENGTH)
    .regex(DNS1123_SUBDOMAIN_PATTERN, 'must be a DNS name')
    .describe("The tailnet's MagicDNS domain, e.g. tail1234.ts.net");

export const timeoutInput = (z: Z, defaultSeconds = DEFAULT_TIMEOUT_SECONDS) =>
  z
    .number()
    .int()
    .min(1)
    .max(3600)
    .default(defaultSeconds)
    .describe(
      `How long to wait for the result, in seconds (default ${defaultSeconds})`,
    );

/**
 * Runs mesh-common's validators over the named inputs and throws one InputError listing every
 * problem, before the action touches anything. Array inputs are checked element by element.
 */
export function checkInputs(
  input: Record<string, unknown>,
  validators: Record<string, Validator>,
): void {
  const problems: string[] = [];
  for (const [key, validate] of Object.entries(validators)) {
    const value = input[key];
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      const problem = typeof v === 'string' ? validate(v) : 'must be a string';
      if (problem) problems.push(`${key} ${describeInputValue(v)}: ${problem}`);
    }
  }
  if (problems.length)
    throw new InputError(`Invalid input: ${problems.join('; ')}`);
}
