import type { IncomingMessage } from 'node:http';

/** A response as text: the bench reads whole bodies, small enough to keep in memory. */
export interface TextResponse {
  status: number;
  body: string;
}

/** The response callback of `http(s).request` that settles with the status and the whole body. */
export function onTextResponse(
  resolve: (response: TextResponse) => void,
  reject: (error: Error) => void,
): (res: IncomingMessage) => void {
  return res => {
    const chunks: Buffer[] = [];
    res.on('data', c => chunks.push(c as Buffer));
    res.on('end', () =>
      resolve({
        status: res.statusCode ?? 0,
        body: Buffer.concat(chunks).toString('utf8'),
      }),
    );
    res.on('error', reject);
  };
}
