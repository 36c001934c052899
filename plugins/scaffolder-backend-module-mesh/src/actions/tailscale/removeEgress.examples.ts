import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      "Remove cluster east's egress Services to the API server proxies of west and central",
    example: stringify({
      steps: [
        {
          id: 'remove-egress',
          action: 'mesh:tailscale:remove-egress',
          name: 'Remove egress to peers',
          input: {
            cluster: 'east',
            peers: ['west', 'central'],
            timeoutSeconds: 120,
          },
        },
      ],
    }),
  },
  {
    description:
      'When east leaves the mesh: remove its egress Services to the peers, and the egress Service to east from a peer (one step per direction)',
    example: stringify({
      steps: [
        {
          id: 'remove-egress-east',
          action: 'mesh:tailscale:remove-egress',
          input: { cluster: 'east', peers: ['west'] },
        },
        {
          id: 'remove-egress-west',
          action: 'mesh:tailscale:remove-egress',
          input: { cluster: 'west', peers: ['east'] },
        },
      ],
    }),
  },
];
