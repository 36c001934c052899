import { Config } from '@backstage/config';
import { InputError } from '@backstage/errors';
import { TailscaleClient } from '@tailmesh/plugin-mesh-node';

/** Task secret names for a Tailscale OAuth client passed per run instead of from configuration. */
export const TAILSCALE_CLIENT_ID_SECRET = 'tailscaleClientId';
export const TAILSCALE_CLIENT_SECRET_SECRET = 'tailscaleClientSecret';

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
