import type { z as zod } from 'zod/v3';
import { Config } from '@backstage/config';
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
  validateClusterName,
  validateTailnet,
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

/**
 * Take over what the cluster already has but Tailmesh did not make (a helm release, a remote
 * secret, a plugged-in CA of the same root). Off by default: such objects stop the step.
 */
export const adoptInput = (z: Z, what: string) =>
  z
    .boolean()
    .default(false)
    .describe(
      `Take over ${what} that Tailmesh did not make (default false: such an object stops the step before anything is written; a dry run with adopt shows what would change)`,
    );

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

/** Throws one InputError listing every problem, if there is any. */
function throwIfProblems(problems: ReadonlyArray<string>): void {
  if (problems.length)
    throw new InputError(`Invalid input: ${problems.join('; ')}`);
}

/** What `checkInputs` reports, without throwing. */
function inputProblems(
  input: Record<string, unknown>,
  validators: Record<string, Validator>,
): string[] {
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
  return problems;
}

/**
 * Runs mesh-common's validators over the named inputs and throws one InputError listing every
 * problem, before the action touches anything. Array inputs are checked element by element.
 */
export function checkInputs(
  input: Record<string, unknown>,
  validators: Record<string, Validator>,
): void {
  throwIfProblems(inputProblems(input, validators));
}

/** What `assertClusterList` reports, without throwing. */
function clusterListProblems(
  what: string,
  names: ReadonlyArray<string>,
): string[] {
  if (names.length === 0) return [`${what} must list at least one cluster`];
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const name of names) (seen.has(name) ? twice : seen).add(name);
  if (twice.size === 0) return [];
  return [
    `${what} lists ${[...twice].map(n => describeInputValue(n)).join(', ')} more than once`,
  ];
}

/**
 * Throws an InputError when a cluster list is empty or names a cluster more than once (the
 * schema says so too, but a handler must not rely on its caller having checked).
 */
export function assertClusterList(
  what: string,
  names: ReadonlyArray<string>,
): void {
  throwIfProblems(clusterListProblems(what, names));
}

/**
 * Checks a cluster and its peers: every name valid, at least one peer, not the cluster itself,
 * none twice. Throws one InputError listing every problem.
 */
export function checkPeers(
  cluster: string,
  peers: ReadonlyArray<string>,
): void {
  const problems = inputProblems(
    { cluster, peers },
    { cluster: validateClusterName, peers: validateClusterName },
  );
  if (peers.includes(cluster))
    problems.push(
      `peers must not include the cluster itself (${describeInputValue(cluster)})`,
    );
  problems.push(...clusterListProblems('peers', peers));
  throwIfProblems(problems);
}

/** Config key of the tailnet's MagicDNS domain, the default of every `tailnet` input. */
const TAILNET_CONFIG_KEY = 'mesh.tailscale.dnsName';

/**
 * The tailnet's MagicDNS domain, from `mesh.tailscale.dnsName`. Every address the mesh writes
 * (remote secrets' servers, meshNetworks gateways, the CoreDNS forward) is derived from it, so it
 * is configuration an administrator set, not something a template run may choose: an input may
 * only repeat it. Otherwise `cluster.local` (every in-cluster lookup forwarded to the tailnet) or
 * an outside domain (remote secrets pointed at someone else's server) would be one form field away.
 */
export function resolveTailnet(config: Config, input?: string): string {
  const tailnet = config.getOptionalString(TAILNET_CONFIG_KEY);
  if (!tailnet) {
    throw new InputError(
      `No tailnet configured: set ${TAILNET_CONFIG_KEY} to the tailnet's MagicDNS domain (e.g. tail1234.ts.net); the tailnet comes from configuration, a template input may only repeat it`,
    );
  }
  if (input && input !== tailnet) {
    throw new InputError(
      `Invalid input: tailnet ${describeInputValue(input)} is not the configured tailnet ${describeInputValue(tailnet)} (${TAILNET_CONFIG_KEY}); the tailnet comes from configuration, an input may only repeat it`,
    );
  }
  checkInputs({ tailnet }, { tailnet: validateTailnet });
  return tailnet;
}
