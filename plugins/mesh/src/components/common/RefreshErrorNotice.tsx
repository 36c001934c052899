import Button from '@material-ui/core/Button';
import Typography from '@material-ui/core/Typography';
import { errorText } from './errorText';
import { formatAge } from './formatAge';

/**
 * Said above data that is still shown after a refresh failed, so a failing backend is visible
 * without the last good answer disappearing.
 */
export function RefreshErrorNotice(props: {
  error: Error;
  receivedAt?: Date;
  onRetry: () => void;
}) {
  const { error, receivedAt, onRetry } = props;
  return (
    <Typography variant="body2" color="error" role="status" gutterBottom>
      Refresh failed ({errorText(error)}); showing the answer from{' '}
      {receivedAt ? formatAge(receivedAt.toISOString()) : 'earlier'}.{' '}
      <Button size="small" onClick={onRetry}>
        Retry now
      </Button>
    </Typography>
  );
}
