import { getLang, languages, setLang, t, type Lang } from '../i18n';

export function LangSwitch() {
  const lang = getLang();
  return (
    <div class="lang-switch">
      <label for="lang-switch" class="visually-hidden">
        {t('header.language')}
      </label>
      <select
        id="lang-switch"
        data-testid="lang-switch"
        value={lang}
        onChange={(e) => setLang((e.target as HTMLSelectElement).value as Lang)}
      >
        {languages.map((l) => (
          <option value={l} key={l}>
            {t(l === 'en' ? 'lang.en' : 'lang.zh')}
          </option>
        ))}
      </select>
    </div>
  );
}

