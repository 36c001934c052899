import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Install the Tailscale operator in cluster east with the OAuth client from mesh.tailscale.oauth',
    example: stringify({
      steps: [
        {
          id: 'tailscale-operator',
          action: 'mesh:tailscale:install-operator',
          name: 'Install the Tailscale operator',
          input: { cluster: 'east', timeoutSeconds: 600 },
        },
      ],
    }),
  },
  {
    description:
      'Install it with the OAuth client the user entered as secrets, and a custom tailnet hostname',
    example: stringify({
      steps: [
        {
          id: 'tailscale-operator',
          action: 'mesh:tailscale:install-operator',
          input: {
            cluster: '${{ parameters.cluster }}',
            hostname: '${{ parameters.cluster }}-api',
          },
        },
      ],
      // The form's secret fields (ui:field: Secret) arrive as ctx.secrets, never in the task log.
      parameters: {
        properties: {
          tailscaleClientId: { type: 'string', 'ui:field': 'Secret' },
          tailscaleClientSecret: { type: 'string', 'ui:field': 'Secret' },
        },
      },
    }),
  },
];
