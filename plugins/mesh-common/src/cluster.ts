import { InputError } from '@backstage/errors';
import { EAST_WEST_GATEWAY_HOSTNAME_SUFFIX } from './istio';
import { describeInputValue, Validator } from './inputErrors';
import {
  DNS1035_LABEL_PATTERN,
  DNS1123_LABEL_MAX_LENGTH,
  DNS1123_SUBDOMAIN_MAX_LENGTH,
  validateDnsLabel,
  validateDnsSubdomain,
  validateLabelValue,
} from './kubernetesNames';

/**
 * One cluster of the mesh, as the user describes it when joining it.
 *
 * @public
 */
export interface MeshClusterSpec {
  /** Istio cluster name (`global.multiCluster.clusterName`); every derived name starts with it. */
  name: string;
  /** Istio network (`global.network`, `topology.istio.io/network`). */
  network: string;
  /** Locality region, as in `topology.kubernetes.io/region`. */
  region: string;
  /** Locality zone, as in `topology.kubernetes.io/zone`. */
  zone: string;
}

/**
 * The mesh every cluster joins.
 *
 * @public
 */
export interface MeshSpec {
  /** Istio mesh ID (`global.meshID`), the same on every cluster. */
  meshId: string;
  /** The tailnet's MagicDNS domain, for example `tail1234.ts.net`. */
  tailnet: string;
}

/**
 * Shape of a cluster name: a DNS-1035 label, because `<cluster>-k8s-operator` is also the name of
 * the egress Service peers reach it through, and Kubernetes requires Service names to start with a
 * letter.
 *
 * @public
 */
export const CLUSTER_NAME_PATTERN = DNS1035_LABEL_PATTERN;

/**
 * Longest cluster name (41): the longest name derived from it, the east-west gateway's tailnet
 * hostname `<cluster>-istio-eastwestgateway`, must remain a 63-character DNS label.
 *
 * @public
 */
export const CLUSTER_NAME_MAX_LENGTH =
  DNS1123_LABEL_MAX_LENGTH - EAST_WEST_GATEWAY_HOSTNAME_SUFFIX.length;

/**
 * Longest tailnet domain (189), so that `<longest hostname>.<tailnet>` stays within the 253
 * characters of a DNS name.
 *
 * @public
 */
export const TAILNET_MAX_LENGTH =
  DNS1123_SUBDOMAIN_MAX_LENGTH - DNS1123_LABEL_MAX_LENGTH - 1;

/**
 * Checks a cluster name; see {@link CLUSTER_NAME_PATTERN} and {@link CLUSTER_NAME_MAX_LENGTH}.
 *
 * @public
 */
export function validateClusterName(value: string): string | undefined {
  if (value === '') {
    return 'must not be empty';
  }
  const problems: string[] = [];
  const shape = validateDnsLabel(value, {
    startWithLetter: true,
    maxLength: Number.POSITIVE_INFINITY,
  });
  if (shape !== undefined) {
    problems.push(shape);
  }
  if (value.length > CLUSTER_NAME_MAX_LENGTH) {
    problems.push(
      `must be at most ${CLUSTER_NAME_MAX_LENGTH} characters (is ${value.length}), so that ` +
        `"<name>${EAST_WEST_GATEWAY_HOSTNAME_SUFFIX}" fits in a ${DNS1123_LABEL_MAX_LENGTH}-character DNS label`,
    );
  }
  return problems.length > 0 ? problems.join(', ') : undefined;
}

/**
 * Checks an Istio network name (a non-empty Kubernetes label value).
 *
 * @public
 */
export const validateNetwork: Validator = validateLabelValue;

/**
 * Checks an Istio mesh ID (a non-empty Kubernetes label value).
 *
 * @public
 */
export const validateMeshId: Validator = validateLabelValue;

/**
 * Checks a locality region (a non-empty Kubernetes label value).
 *
 * @public
 */
export const validateRegion: Validator = validateLabelValue;

/**
 * Checks a locality zone (a non-empty Kubernetes label value).
 *
 * @public
 */
export const validateZone: Validator = validateLabelValue;

/**
 * Checks a tailnet's MagicDNS domain: a lowercase DNS name of at least two labels, each at most 63
 * characters, at most {@link TAILNET_MAX_LENGTH} in all.
 *
 * @public
 */
export function validateTailnet(value: string): string | undefined {
  const problem = validateDnsSubdomain(value, TAILNET_MAX_LENGTH);
  if (problem !== undefined) {
    return problem;
  }
  const labels = value.split('.');
  // Every device name the mesh derives, `<host>.<tailnet>`, must match what the Tailscale operator
  // accepts: ^[a-zA-Z0-9-]+\.[a-zA-Z0-9-]+\.ts\.net\.?$ (tailscale cmd/k8s-operator/operator.go),
  // so the tailnet's domain is one label under ts.net. Anything else (cluster.local, a domain of
  // someone else's) would send in-cluster lookups or remote secrets elsewhere.
  if (labels.length !== 3 || labels[1] !== 'ts' || labels[2] !== 'net') {
    return 'must be the MagicDNS domain of the tailnet, such as "tail1234.ts.net"';
  }
  const tooLong = labels.find(label => label.length > DNS1123_LABEL_MAX_LENGTH);
  return tooLong === undefined
    ? undefined
    : `must not have a label longer than ${DNS1123_LABEL_MAX_LENGTH} characters`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Collects every field's problem before throwing, so that a form or a scaffolder run reports them
// all at once instead of one per attempt.
function parseStringFields<K extends string>(
  what: string,
  input: unknown,
  validators: Record<K, Validator>,
): Record<K, string> {
  if (!isRecord(input)) {
    throw new InputError(
      `Invalid ${what}: must be an object, got ${describeInputValue(input)}`,
    );
  }
  const problems: string[] = [];
  const result: Partial<Record<K, string>> = {};
  for (const field of Object.keys(validators) as K[]) {
    const value = input[field];
    if (value === undefined) {
      problems.push(`${field} is required`);
    } else if (typeof value !== 'string') {
      problems.push(
        `${field} must be a string, got ${describeInputValue(value)}`,
      );
    } else {
      const problem = validators[field](value);
      if (problem === undefined) {
        result[field] = value;
      } else {
        problems.push(`${field} ${describeInputValue(value)} ${problem}`);
      }
    }
  }
  if (problems.length > 0) {
    throw new InputError(`Invalid ${what}: ${problems.join('; ')}`);
  }
  return result as Record<K, string>;
}

/**
 * Reads a {@link MeshClusterSpec} from untrusted input, dropping unknown fields.
 *
 * @throws InputError listing every invalid field with its value.
 * @public
 */
export function parseMeshClusterSpec(input: unknown): MeshClusterSpec {
  return parseStringFields('mesh cluster spec', input, {
    name: validateClusterName,
    network: validateNetwork,
    region: validateRegion,
    zone: validateZone,
  });
}

/**
 * Reads a {@link MeshSpec} from untrusted input, dropping unknown fields.
 *
 * @throws InputError listing every invalid field with its value.
 * @public
 */
export function parseMeshSpec(input: unknown): MeshSpec {
  return parseStringFields('mesh spec', input, {
    meshId: validateMeshId,
    tailnet: validateTailnet,
  });
}
