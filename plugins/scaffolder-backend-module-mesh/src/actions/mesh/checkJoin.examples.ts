import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Before the first write of a join: refuse a network id another member already uses, and a tailnet without HTTPS',
    example: stringify({
      steps: [
        {
          id: 'preconditions',
          action: 'mesh:check-join',
          name: 'Check the join can work',
          input: {
            cluster: '${{ parameters.cluster }}',
            network: '${{ parameters.network }}',
          },
        },
      ],
    }),
  },
];
