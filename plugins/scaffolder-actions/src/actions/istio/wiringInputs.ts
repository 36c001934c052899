import { InputError } from '@backstage/errors';
import { Config } from '@backstage/config';
import {
  describeInputValue,
  validateTailnet,
} from '@tailmesh/plugin-mesh-common';

/** Config key of the tailnet's MagicDNS domain, the default of every `tailnet` input. */
export const TAILNET_CONFIG_KEY = 'mesh.tailscale.dnsName';

/**
 * The tailnet from the input, else from configuration. Peers' addresses are derived from it, so
 * a missing or malformed one must stop the action before anything is written.
 */
export function resolveTailnet(
  config: Config,
  input: string | undefined,
): string {
  const tailnet = input ?? config.getOptionalString(TAILNET_CONFIG_KEY);
  if (tailnet === undefined || tailnet === '') {
    throw new InputError(
      `Invalid input: tailnet is required (give it as input or set ${TAILNET_CONFIG_KEY})`,
    );
  }
  const problem = validateTailnet(tailnet);
  if (problem)
    throw new InputError(
      `Invalid input: tailnet ${describeInputValue(tailnet)}: ${problem}`,
    );
  return tailnet;
}

/**
 * Throws an InputError when a cluster list is empty or names a cluster more than once (the
 * schema says so too, but a handler must not rely on its caller having checked).
 */
export function assertClusterList(
  what: string,
  names: ReadonlyArray<string>,
): void {
  if (names.length === 0)
    throw new InputError(
      `Invalid input: ${what} must list at least one cluster`,
    );
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const name of names) (seen.has(name) ? twice : seen).add(name);
  if (twice.size) {
    throw new InputError(
      `Invalid input: ${what} lists ${[...twice].map(n => describeInputValue(n)).join(', ')} more than once`,
    );
  }
}
