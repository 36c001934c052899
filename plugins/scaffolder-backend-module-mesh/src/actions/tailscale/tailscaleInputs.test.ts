import { ConfigReader } from '@backstage/config';
import { InputError } from '@backstage/errors';
import { operatorOauthClient } from './tailscaleInputs';

const policyOauth = { clientId: 'policy-id', clientSecret: 'policy-secret' };
const operatorOauth = { clientId: 'op-id', clientSecret: 'op-secret' };

type Client = { clientId?: string; clientSecret?: string };
const config = (tailscale: { oauth?: Client; operatorOauth?: Client } = {}) =>
  new ConfigReader({ mesh: { tailscale } });

/** The error operatorOauthClient throws, so its class and message can both be checked. */
function thrownBy(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, got none');
}

describe('operatorOauthClient', () => {
  it('reads mesh.tailscale.operatorOauth', () => {
    expect(
      operatorOauthClient(
        config({ oauth: policyOauth, operatorOauth }),
        undefined,
      ),
    ).toEqual({ clientId: 'op-id', clientSecret: 'op-secret' });
  });

  it('takes the task secrets over configuration', () => {
    expect(
      operatorOauthClient(config({ oauth: policyOauth, operatorOauth }), {
        tailscaleOperatorClientId: 'task-op-id',
        tailscaleOperatorClientSecret: 'task-op-secret',
      }),
    ).toEqual({ clientId: 'task-op-id', clientSecret: 'task-op-secret' });
  });

  it('takes each of id and secret from the task secrets when only that one is passed', () => {
    expect(
      operatorOauthClient(config({ operatorOauth }), {
        tailscaleOperatorClientSecret: 'task-op-secret',
      }),
    ).toEqual({ clientId: 'op-id', clientSecret: 'task-op-secret' });
  });

  it('never falls back to the policy-file client', () => {
    const e = thrownBy(() =>
      operatorOauthClient(config({ oauth: policyOauth }), {
        tailscaleClientId: 'task-policy-id',
        tailscaleClientSecret: 'task-policy-secret',
      }),
    );
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/No OAuth client for the Tailscale operator/);
  });

  it('names the config key, the task secrets and the scopes when the client is missing, and no secret', () => {
    const e = thrownBy(() =>
      operatorOauthClient(
        config({
          oauth: policyOauth,
          operatorOauth: { clientId: 'op-id' },
        }),
        { tailscaleClientSecret: 'task-policy-secret' },
      ),
    );
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toContain('mesh.tailscale.operatorOauth');
    expect(e.message).toContain('tailscaleOperatorClientId');
    expect(e.message).toContain('tailscaleOperatorClientSecret');
    expect(e.message).toMatch(/auth_keys, devices:core and services/);
    expect(e.message).not.toContain('policy-secret');
    expect(e.message).not.toContain('task-policy-secret');
  });

  it('refuses a missing id even when the secret is there', () => {
    const e = thrownBy(() =>
      operatorOauthClient(
        config({ operatorOauth: { clientSecret: 's3cr3t' } }),
        {},
      ),
    );
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toContain('mesh.tailscale.operatorOauth');
    expect(e.message).not.toContain('s3cr3t');
  });

  it('refuses the policy-file client from configuration', () => {
    const e = thrownBy(() =>
      operatorOauthClient(
        config({
          oauth: policyOauth,
          operatorOauth: {
            clientId: 'policy-id',
            clientSecret: 'other-secret',
          },
        }),
        undefined,
      ),
    );
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/policy-id is the policy-file client/);
    expect(e.message).not.toContain('policy-secret');
    expect(e.message).not.toContain('other-secret');
  });

  it('refuses the policy-file client passed as task secrets, whichever side comes from where', () => {
    // The policy client from task secrets, the operator's from configuration.
    const fromSecrets = thrownBy(() =>
      operatorOauthClient(config({ operatorOauth }), {
        tailscaleClientId: 'op-id',
        tailscaleClientSecret: 'task-policy-secret',
      }),
    );
    expect(fromSecrets).toBeInstanceOf(InputError);
    expect(fromSecrets.message).toMatch(/op-id is the policy-file client/);
    expect(fromSecrets.message).not.toContain('task-policy-secret');
    expect(fromSecrets.message).not.toContain('op-secret');

    // Both from task secrets, over a configuration where they differ.
    const bothSecrets = thrownBy(() =>
      operatorOauthClient(config({ oauth: policyOauth, operatorOauth }), {
        tailscaleClientId: 'same-id',
        tailscaleClientSecret: 'a',
        tailscaleOperatorClientId: 'same-id',
        tailscaleOperatorClientSecret: 'b',
      }),
    );
    expect(bothSecrets).toBeInstanceOf(InputError);
    expect(bothSecrets.message).toMatch(/same-id is the policy-file client/);
  });

  it('refuses the configured policy client as the operator client, even when the task passes another policy client', () => {
    // The configured policy client has policy_file whatever this run uses to edit the policy.
    expect(() =>
      operatorOauthClient(
        config({
          oauth: { clientId: 'op-id', clientSecret: 'x' },
          operatorOauth,
        }),
        { tailscaleClientId: 'task-policy-id', tailscaleClientSecret: 'y' },
      ),
    ).toThrow(/op-id is the policy-file client/);
  });

  it('refuses by id alone, when the policy client is not complete in this run', () => {
    expect(() =>
      operatorOauthClient(config({ operatorOauth }), {
        tailscaleClientId: 'op-id',
      }),
    ).toThrow(/op-id is the policy-file client/);
  });

  it('accepts an operator client when no policy client is configured at all', () => {
    expect(operatorOauthClient(config({ operatorOauth }), {})).toEqual(
      operatorOauth,
    );
  });
});
