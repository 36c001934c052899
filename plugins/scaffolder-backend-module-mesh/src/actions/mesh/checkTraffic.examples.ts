import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      "The recipe's echo test after a join: 20 requests from the new member to echo.default, answered by every member that runs a ready echo pod",
    example: stringify({
      steps: [
        {
          id: 'traffic',
          action: 'mesh:check-traffic',
          name: 'Requests cross clusters',
          input: {
            cluster: '${{ parameters.cluster }}',
            service: 'echo',
            namespace: 'default',
            port: 80,
            members:
              '${{ steps.members.output.members.concat([parameters.cluster]) }}',
          },
        },
      ],
    }),
  },
  {
    description:
      "From a namespace of its own, with a curl image mirrored into the cluster's registry, and a longer wait",
    example: stringify({
      steps: [
        {
          id: 'traffic',
          action: 'mesh:check-traffic',
          name: 'Requests cross clusters',
          input: {
            cluster: 'cluster1',
            service: 'helloworld',
            namespace: 'sample',
            port: 5000,
            members: ['cluster1', 'cluster2'],
            requests: 40,
            image: 'registry.example.com/mirror/curlimages/curl:8.11.1',
            timeoutSeconds: 300,
          },
        },
      ],
    }),
  },
];
