import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api } from './api/client';
import type { Me } from './api/types';
import type { Action } from './auth/roles';
import { can } from './auth/roles';

export interface AppContextValue {
  api: Api;
  me: Me;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const v = useContext(AppContext);
  if (!v) throw new Error('useApp outside the console');
  return v;
}

/** Whether the logged-in person's role allows `action`. */
export function useCan(action: Action): boolean {
  return can(useApp().me.role, action);
}
