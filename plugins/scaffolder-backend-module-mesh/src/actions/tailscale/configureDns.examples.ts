import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      "Make cluster east resolve the tailnet's names (tailnet from mesh.tailscale.dnsName)",
    example: stringify({
      steps: [
        {
          id: 'tailnet-dns',
          action: 'mesh:tailscale:configure-dns',
          name: 'Forward tailnet DNS',
          input: { cluster: 'east', timeoutSeconds: 300 },
        },
      ],
    }),
  },
  {
    description: 'Name the tailnet explicitly',
    example: stringify({
      steps: [
        {
          id: 'tailnet-dns',
          action: 'mesh:tailscale:configure-dns',
          input: {
            cluster: '${{ parameters.cluster }}',
            tailnet: 'tail1234.ts.net',
          },
        },
      ],
    }),
  },
];
