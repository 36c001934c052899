import '@backstage/cli/asset-types';
import ReactDOM from 'react-dom/client';
import App from './App';
// The Backstage plugins' newer components are styled by Backstage UI's stylesheet.
import '@backstage/ui/css/styles.css';

ReactDOM.createRoot(document.getElementById('root')!).render(App.createRoot());
