import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description: 'Verify a three-cluster mesh',
    example: stringify({
      steps: [
        {
          id: 'verify',
          action: 'mesh:verify',
          name: 'Verify the mesh',
          input: {
            members: ['east', 'west', 'central'],
            tailnet: 'tail1234.ts.net',
          },
        },
      ],
    }),
  },
  {
    description:
      'Verify the mesh including the cluster that just joined (members from an earlier step)',
    example: stringify({
      steps: [
        {
          id: 'verify',
          action: 'mesh:verify',
          input: { members: '${{ steps.members.output.members }}' },
        },
      ],
    }),
  },
];
