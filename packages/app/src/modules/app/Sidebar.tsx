import MenuIcon from '@material-ui/icons/Menu';
import {
  Sidebar as BackstageSidebar,
  SidebarDivider,
  SidebarGroup,
  SidebarItem,
  SidebarSpace,
} from '@backstage/core-components';
import { NavContentComponentProps } from '@backstage/plugin-app-react';
import { UserSettingsSignInAvatar } from '@backstage/plugin-user-settings';
import { SidebarLogo } from './SidebarLogo';

/**
 * The sidebar: the pages' own nav items (each page extension brings its title and icon, the
 * mesh page's included), the catalog, mesh and Create first, settings at the bottom.
 */
export const Sidebar = ({ navItems }: NavContentComponentProps) => {
  const nav = navItems.withComponent(item => (
    <SidebarItem icon={() => item.icon} to={item.href} text={item.title} />
  ));
  const first = ['page:catalog', 'page:mesh', 'page:scaffolder'].map(id =>
    nav.take(id),
  );
  const settings = nav.take('page:user-settings');
  const rest = nav.rest({ sortBy: 'title' });
  return (
    <BackstageSidebar>
      <SidebarLogo />
      <SidebarDivider />
      <SidebarGroup label="Menu" icon={<MenuIcon />}>
        {first}
        {rest}
      </SidebarGroup>
      <SidebarSpace />
      <SidebarDivider />
      <SidebarGroup
        label="Settings"
        icon={<UserSettingsSignInAvatar />}
        to="/settings"
      >
        {settings}
      </SidebarGroup>
    </BackstageSidebar>
  );
};
