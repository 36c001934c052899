import { EmptyState } from '@backstage/core-components';
import { ResponseError } from '@backstage/errors';

/** HTTP status the mesh backend answers when the permission policy denies a read. */
const FORBIDDEN = 403;

/** Whether an error is the backend refusing the request for lack of permission. */
export function isNotAllowedError(error: unknown): boolean {
  return ResponseError.is(error) && error.statusCode === FORBIDDEN;
}

/** Shown instead of mesh data the user may not read, naming the permission to ask for. */
export function NotAllowedState(props: {
  permissionName: string;
  what: string;
}) {
  return (
    <EmptyState
      missing="info"
      title="Not allowed"
      description={`You are not allowed to see ${props.what}: it needs the ${props.permissionName} permission. Ask a platform admin for access.`}
    />
  );
}
