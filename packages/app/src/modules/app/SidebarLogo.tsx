import { makeStyles, Typography } from '@material-ui/core';
import {
  Link,
  sidebarConfig,
  useSidebarOpenState,
} from '@backstage/core-components';

const useStyles = makeStyles(theme => ({
  root: {
    width: sidebarConfig.drawerWidthClosed,
    height: 3 * sidebarConfig.logoHeight,
    display: 'flex',
    flexFlow: 'row nowrap',
    alignItems: 'center',
    marginBottom: -14,
  },
  link: {
    marginLeft: 24,
    color: theme.palette.common.white,
    fontWeight: theme.typography.fontWeightBold as number,
    whiteSpace: 'nowrap',
  },
}));

/** The product name as the sidebar's logo: its initial while the sidebar is closed. */
export const SidebarLogo = () => {
  const classes = useStyles();
  const { isOpen } = useSidebarOpenState();
  return (
    <div className={classes.root}>
      <Link to="/" underline="none" className={classes.link} aria-label="Home">
        <Typography variant="h5" component="span">
          {isOpen ? 'Tailmesh' : 'T'}
        </Typography>
      </Link>
    </div>
  );
};
