import { createFrontendModule } from '@backstage/frontend-plugin-api';
import {
  NavContentBlueprint,
  SignInPageBlueprint,
} from '@backstage/plugin-app-react';
import { LocalSignInPage } from './LocalSignInPage';
import { Sidebar } from './Sidebar';

/** Guest or mesh admin; signs in again by itself after a reload, until the user signs out. */
const signInPage = SignInPageBlueprint.make({
  params: {
    loader: async () => props => <LocalSignInPage {...props} />,
  },
});

const navContent = NavContentBlueprint.make({
  params: { component: Sidebar },
});

/** The app plugin's parts this product sets: its sign-in page and its sidebar. */
export const appModule = createFrontendModule({
  pluginId: 'app',
  extensions: [signInPage, navContent],
});
