import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description: 'End the membership of cluster west, keeping Istio installed',
    example: stringify({
      steps: [
        {
          id: 'leave',
          action: 'mesh:istio:leave',
          name: 'Leave the mesh',
          input: { cluster: 'west' },
        },
      ],
    }),
  },
];
