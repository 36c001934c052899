import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Wire cluster east to the existing members west and central, both ways',
    example: stringify({
      steps: [
        {
          id: 'remote-secrets',
          action: 'mesh:istio:create-remote-secrets',
          name: 'Create Istio remote secrets',
          input: {
            cluster: 'east',
            peers: ['west', 'central'],
            tailnet: 'tail1234.ts.net',
          },
        },
      ],
    }),
  },
  {
    description:
      'Wire the cluster chosen in the form to the members picked in the form; the tailnet comes from mesh.tailscale.dnsName',
    example: stringify({
      steps: [
        {
          id: 'remote-secrets',
          action: 'mesh:istio:create-remote-secrets',
          input: {
            cluster: '${{ parameters.cluster }}',
            peers: '${{ parameters.peers }}',
          },
        },
      ],
    }),
  },
];
