/**
 * What the test bed's forwarders share (the tailnet model's proxies, the kube-proxy model): which
 * endpoint port a Service port leads to, and a TCP pipe to it.
 */
import net from 'node:net';

/** The endpoint port for a Service port (by name when the slice names ports, else targetPort). */
export function targetPort(
  p: { name?: string; port: number; targetPort?: number | string },
  slicePorts: Array<{ name?: string; port?: number }> | undefined,
): number | undefined {
  const named = slicePorts?.find(sp => (sp.name ?? '') === (p.name ?? ''));
  if (named?.port) return named.port;
  if (typeof p.targetPort === 'number') return p.targetPort;
  return p.port;
}

/**
 * Pipes an accepted connection to host:port (from `localAddress` when given). An upstream that
 * fails resets the caller, as a refused or unreachable target would.
 */
export function pipeTo(
  socket: net.Socket,
  host: string,
  port: number,
  localAddress?: string,
  onUpstreamError?: (err: Error) => void,
): void {
  const upstream = net.connect({ host, port, localAddress });
  socket.pipe(upstream).pipe(socket);
  upstream.on('error', err => {
    onUpstreamError?.(err);
    socket.resetAndDestroy();
  });
  socket.on('error', () => upstream.destroy());
  // A socket that stops feeding its upstream (dropped, closed) ends the upstream too.
  socket.once('close', () => upstream.destroy());
}
