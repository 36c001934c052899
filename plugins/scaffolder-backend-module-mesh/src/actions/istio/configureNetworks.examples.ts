import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Give the three members east, west and central the same meshNetworks and restart istiod where it changed',
    example: stringify({
      steps: [
        {
          id: 'mesh-networks',
          action: 'mesh:istio:configure-networks',
          name: 'Configure mesh networks',
          input: {
            members: ['east', 'west', 'central'],
            tailnet: 'tail1234.ts.net',
            timeoutSeconds: 300,
          },
        },
      ],
    }),
  },
  {
    description:
      'Update meshNetworks after a cluster joined, without restarting istiod (it watches the ConfigMap key itself)',
    example: stringify({
      steps: [
        {
          id: 'mesh-networks',
          action: 'mesh:istio:configure-networks',
          input: { members: '${{ parameters.members }}', restartIstiod: false },
        },
      ],
    }),
  },
];
