import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Let cluster east reach the API server proxies and east-west gateways of west and north through the tailnet (two egress Services per peer)',
    example: stringify({
      steps: [
        {
          id: 'egress',
          action: 'mesh:tailscale:create-egress',
          name: 'Egress to peer clusters',
          input: { cluster: 'east', peers: ['west', 'north'] },
        },
      ],
    }),
  },
  {
    description:
      'Egress to the peers chosen in the form, on an explicit tailnet',
    example: stringify({
      steps: [
        {
          id: 'egress',
          action: 'mesh:tailscale:create-egress',
          input: {
            cluster: '${{ parameters.cluster }}',
            peers: '${{ parameters.peers }}',
            tailnet: 'tail1234.ts.net',
          },
        },
      ],
    }),
  },
];
