import { Config } from '@backstage/config';
import { InputError } from '@backstage/errors';
import { TailscaleClient } from '@tailmesh/plugin-mesh-node';

/** Task secret names for a Tailscale OAuth client passed per run instead of from configuration. */
export const TAILSCALE_CLIENT_ID_SECRET = 'tailscaleClientId';
export const TAILSCALE_CLIENT_SECRET_SECRET = 'tailscaleClientSecret';
/** Task secret names for the operator's own OAuth client, passed per run. */
export const TAILSCALE_OPERATOR_CLIENT_ID_SECRET = 'tailscaleOperatorClientId';
export const TAILSCALE_OPERATOR_CLIENT_SECRET_SECRET =
  'tailscaleOperatorClientSecret';

/**
 * Scopes that must never reach a cluster: Istio's reader ClusterRole, which every mesh peer holds
 * through the API server proxy, reads every Secret there, the operator's OAuth Secret included
 * (istio-discovery templates/reader-clusterrole.yaml). `all` is every scope.
 */
export const SCOPES_NEVER_FOR_THE_OPERATOR = ['policy_file', 'all'];

/**
 * The Tailscale operator's OAuth client, from the task secrets tailscaleOperatorClientId /
 * tailscaleOperatorClientSecret, else `mesh.tailscale.operatorOauth`. It must be a client of its
 * own, never the one that edits the policy file: whatever is in a cluster, every mesh peer can read.
 */
export function operatorOauthClient(
  config: Config,
  secrets: Secrets,
): OAuthClient {
  const clientId =
    secrets?.[TAILSCALE_OPERATOR_CLIENT_ID_SECRET] ||
    config.getOptionalString('mesh.tailscale.operatorOauth.clientId');
  const clientSecret =
    secrets?.[TAILSCALE_OPERATOR_CLIENT_SECRET_SECRET] ||
    config.getOptionalString('mesh.tailscale.operatorOauth.clientSecret');
  if (!clientId || !clientSecret) {
    throw new InputError(
      `No OAuth client for the Tailscale operator: pass the task secrets ${TAILSCALE_OPERATOR_CLIENT_ID_SECRET} and ${TAILSCALE_OPERATOR_CLIENT_SECRET_SECRET}, or set mesh.tailscale.operatorOauth. It must be a client of its own with the scopes auth_keys, devices:core and services (tag tag:k8s-operator), never the policy_file client: every mesh peer can read the Secret the operator keeps it in`,
    );
  }
  // By id alone: the policy client need not be complete in this run for the two to be one.
  const policyClients = [
    secrets?.[TAILSCALE_CLIENT_ID_SECRET],
    config.getOptionalString('mesh.tailscale.oauth.clientId'),
  ];
  if (policyClients.includes(clientId)) {
    throw new InputError(
      `The Tailscale operator's OAuth client ${clientId} is the policy-file client; give the operator a client of its own (scopes auth_keys, devices:core, services): every mesh peer can read the Secret the operator keeps it in`,
    );
  }
  return { clientId, clientSecret };
}

type Secrets = Record<string, string | undefined> | undefined;

export interface OAuthClient {
  clientId: string;
  clientSecret: string;
}

/** The OAuth client from the task's secrets, else from `mesh.tailscale.oauth`; secrets win. */
export function oauthClient(config: Config, secrets: Secrets): OAuthClient {
  const clientId =
    secrets?.[TAILSCALE_CLIENT_ID_SECRET] ||
    config.getOptionalString('mesh.tailscale.oauth.clientId');
  const clientSecret =
    secrets?.[TAILSCALE_CLIENT_SECRET_SECRET] ||
    config.getOptionalString('mesh.tailscale.oauth.clientSecret');
  if (!clientId || !clientSecret) {
    throw new InputError(
      `No Tailscale OAuth client: pass the task secrets ${TAILSCALE_CLIENT_ID_SECRET} and ${TAILSCALE_CLIENT_SECRET_SECRET}, or set mesh.tailscale.oauth.clientId and clientSecret`,
    );
  }
  return { clientId, clientSecret };
}

/** A Tailscale API client for the policy file, with the OAuth client chosen as above. */
export function tailscaleClient(
  config: Config,
  secrets: Secrets,
): TailscaleClient {
  return TailscaleClient.fromConfig(config, oauthClient(config, secrets));
}
