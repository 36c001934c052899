import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Deploy the east-west gateway of cluster east (network east-net) on the tailnet tail1234.ts.net',
    example: stringify({
      steps: [
        {
          id: 'eastwest',
          action: 'mesh:istio:deploy-eastwest-gateway',
          name: 'Deploy the east-west gateway',
          input: {
            cluster: 'east',
            network: 'east-net',
            tailnet: 'tail1234.ts.net',
            timeoutSeconds: 300,
          },
        },
      ],
    }),
  },
  {
    description:
      'Deploy the gateway of the cluster chosen in the form, then use its tailnet address in a later step',
    example: stringify({
      steps: [
        {
          id: 'eastwest',
          action: 'mesh:istio:deploy-eastwest-gateway',
          input: {
            cluster: '${{ parameters.cluster }}',
            network: '${{ parameters.network }}',
          },
        },
        {
          id: 'log-address',
          action: 'debug:log',
          input: {
            message:
              'East-west gateway: ${{ steps.eastwest.output.gatewayAddress }}',
          },
        },
      ],
    }),
  },
];
