import { render } from 'preact';
import { Api } from './api/client';
import { App } from './app';
import { applyDocumentLang } from './i18n';
import './styles.css';

applyDocumentLang();
const api = new Api();
render(<App api={api} />, document.getElementById('app')!);
